"""Cluster mode (docs/cluster.md) through real nodes on the machine's PostgreSQL and NATS: each test has a
database and a cluster name of its own (tests/services.py), so tests run in parallel. Skipped with the reason
where PostgreSQL or NATS is absent."""

from __future__ import annotations

import json
import signal

from tests.server import create_python_function

ECHO = """
import json
def handler(event, context):
    return {"echo": event, "version": context.function_version}
"""


def test_a_node_on_postgresql_keeps_its_functions_across_a_kill(cluster, fname) -> None:
    nodes = cluster(1)
    (node,) = nodes.nodes
    lam = node.client()
    create_python_function(lam, fname, ECHO, Publish=True)
    lam.create_alias(FunctionName=fname, Name="live", FunctionVersion="1")
    lam.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=3)
    node.stop(signal.SIGKILL)
    node.start()
    lam = node.client()
    out = lam.invoke(FunctionName=fname, Qualifier="live", Payload=b'{"a": 1}')
    assert json.loads(out["Payload"].read()) == {"echo": {"a": 1}, "version": "1"}
    assert lam.get_function_concurrency(FunctionName=fname)["ReservedConcurrentExecutions"] == 3
    assert not (node.data_dir / "lambdad.db").exists()  # the metadata is in PostgreSQL, not the data dir
