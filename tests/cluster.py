"""Several real ``lambdad serve`` nodes forming one cluster: a PostgreSQL database and a NATS cluster name of the
test's own, a data dir each (tests/services.py makes and removes the shared parts)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from tests.server import Server
from tests.services import NATS


class Cluster:
    def __init__(self, root: Path, database_url: str, cluster_name: str,
                 env: Mapping[str, str] | None = None) -> None:
        self.root = root
        self.env = {"LAMBDAD_DATABASE_URL": database_url, "LAMBDAD_NATS_URL": NATS,
                    "LAMBDAD_CLUSTER_NAME": cluster_name, **(env or {})}
        self.nodes: list[Server] = []

    def start_node(self, env: Mapping[str, str] | None = None, credentials: bool = True) -> Server:
        node = Server(self.root / f"node{len(self.nodes)}", env={**self.env, **(env or {})},
                      credentials=credentials).start()
        self.nodes.append(node)
        return node

    def start(self, count: int) -> "Cluster":
        for _ in range(count):
            self.start_node()
        return self

    def stop(self) -> None:
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.stop()
