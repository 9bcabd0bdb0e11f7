"""Cluster mode: what lambdad nodes share, beside the metadata database (``store/sql.py`` on PostgreSQL).

- ``link.py``: a node's NATS (JetStream) connection and the names of every subject, stream and bucket, each
  prefixed by the cluster's name so that several clusters share one NATS;
- ``notices.py``: a change committed on one node is read again by the others;
- ``membership.py``: heartbeats, the live nodes (``lambdad cluster status``);
- ``routing.py``: where an invocation runs (here, or at its function version's home node);
- ``permits.py``: each node's share of each concurrency limit;
- ``async_queue.py``: async events in a JetStream stream every node delivers from;
- ``leases.py``: work that one node does at a time;
- ``blobs.py``: code in JetStream's object store, each node's data dir as its cache;
- ``migrate.py``: ``lambdad migrate``.

Without ``LAMBDAD_NATS_URL`` a node is a cluster of one and ``app.py`` wires the in-process implementations.
See docs/cluster.md.
"""
