"""Cluster mode: what lambdad nodes share, beside the metadata database (``store/sql.py`` on PostgreSQL).

``link.py`` holds a node's connection to NATS (JetStream): the bus the nodes tell each other things on, and the
names of every subject, stream and bucket, each prefixed by the cluster's name so that several clusters share one
NATS. Without ``LAMBDAD_NATS_URL`` a node is a cluster of one and the same interfaces have in-process
implementations.
"""
