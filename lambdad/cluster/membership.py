"""Membership: which nodes are alive, where they listen, and how loaded they are.

Every node writes a heartbeat into the JetStream key-value bucket ``<cluster>_nodes`` every ``BEAT`` seconds (key:
its node id; value: its endpoint, start time, version, cores, environments busy/idle and its provisioned
concurrency environments), and watches the bucket.
A node is alive while its last heartbeat, as this node received it, is younger than ``EXPIRY``; the bucket's
own TTL drops a dead node's key soon after, so ``lambdad cluster status`` (which reads the bucket once) does not
list it either. A node that stops cleanly deletes its key at once.

The embedded node is a cluster of one: ``live()`` is itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from lambdad.cluster.link import Link, read_bucket
from lambdad.tasks import cancel_and_wait

__all__ = ["Membership", "NodeInfo", "read_nodes", "BEAT", "EXPIRY"]

log = logging.getLogger(__name__)

BEAT = 2.0  # seconds between a node's heartbeats
EXPIRY = 6.0  # a node whose last heartbeat is older than this is taken for dead (three beats missed)
FRESH = 0.25  # seconds ``live()`` reuses its answer


@dataclass(frozen=True)
class NodeInfo:
    node: str
    endpoint: str
    started: float
    version: str
    cores: int
    busy: int  # environments running an invocation
    environments: int  # environments alive (busy, idle or starting)
    # provisioned concurrency here: "name:qualifier" -> [initialised environments, failure or None, version]
    provisioned: dict[str, list[Any]] = field(default_factory=dict)


class Membership:
    def __init__(self, link: Link, endpoint: str, version: str, load: Callable[[], tuple[int, int]],
                 provisioned: Callable[[], dict[str, list[Any]]] = dict) -> None:
        self._link = link
        self._provisioned = provisioned
        self.endpoint = endpoint  # set once the API listens
        self._version = version
        self._load = load  # (busy, environments) of this node now
        self._started = time.time()
        self._seen: dict[str, tuple[float, NodeInfo]] = {}  # node -> (monotonic time received, info)
        self._kv: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._live: list[NodeInfo] = []
        self._live_at = -FRESH
        self._caught_up = asyncio.Event()  # the watch has delivered what the bucket held when it began

    def me(self) -> NodeInfo:
        busy, environments = self._load()
        return NodeInfo(self._link.node_id, self.endpoint, self._started, self._version, os.cpu_count() or 1,
                        busy, environments, self._provisioned())

    def live(self) -> list[NodeInfo]:
        """The nodes alive now, this one included, by node id. Read on every routed invocation: worked out at most
        every ``FRESH`` seconds (this node's own entry as of then, like the others')."""
        now = time.monotonic()
        if now - self._live_at >= FRESH:
            nodes = {node: info for node, (seen, info) in self._seen.items() if now - seen < EXPIRY}
            nodes[self._link.node_id] = self.me()
            self._live = [nodes[n] for n in sorted(nodes)]
            self._live_at = now
        return self._live

    def live_ids(self) -> list[str]:
        return [n.node for n in self.live()]

    async def start(self) -> None:
        if not self._link.clustered:
            return
        self._kv = await _bucket(self._link)
        await self._beat()
        watcher = await self._kv.watchall()
        self._tasks = [asyncio.get_running_loop().create_task(self._beating(), name="heartbeat"),
                       asyncio.get_running_loop().create_task(self._watching(watcher), name="membership")]
        # the nodes already there are known before start() returns: what is worked out from the membership next
        # (a provisioned concurrency share, a version's home) does not take this node for the only one
        try:
            await asyncio.wait_for(self._caught_up.wait(), EXPIRY)
        except asyncio.TimeoutError:
            log.warning("cluster: the other nodes' heartbeats were not read within %.0f s", EXPIRY)
        log.info("cluster %s: node %s at %s", self._link.names.cluster, self._link.node_id, self.endpoint)

    async def _beat(self) -> None:
        await self._kv.put(self._link.node_id, json.dumps(asdict(self.me())).encode())

    async def _beating(self) -> None:
        while True:
            await asyncio.sleep(BEAT)
            try:
                await self._beat()
            except Exception as exc:  # NATS away: the others will take this node for dead until it is back
                log.warning("cluster: heartbeat not written: %s", exc)

    async def _watching(self, watcher: Any) -> None:
        async for entry in watcher:
            if entry is None:  # the end of what the bucket held when the watch began
                self._caught_up.set()
                continue
            if entry.operation in ("DEL", "PURGE") or not entry.value:
                if self._seen.pop(entry.key, None) is not None:
                    log.info("cluster: node %s left", entry.key)
                continue
            try:
                info = NodeInfo(**json.loads(entry.value))
            except (ValueError, TypeError):
                continue
            if entry.key not in self._seen and entry.key != self._link.node_id:
                log.info("cluster: node %s joined (%s)", entry.key, info.endpoint)
            self._seen[entry.key] = (time.monotonic(), info)

    async def aclose(self) -> None:
        for task in self._tasks:
            await cancel_and_wait(task)
        if self._kv is not None:
            try:
                await self._kv.delete(self._link.node_id)  # gone now, not in EXPIRY seconds
            except Exception as exc:
                log.warning("cluster: could not remove this node from the membership: %s", exc)


async def _bucket(link: Link) -> Any:
    from nats.js.api import KeyValueConfig

    assert link.jetstream is not None
    return await link.jetstream.create_key_value(KeyValueConfig(bucket=link.names.bucket("nodes"), ttl=EXPIRY * 2,
                                                                history=1))


async def read_nodes(link: Link) -> list[NodeInfo]:
    """The nodes whose heartbeat the bucket holds (``lambdad cluster status``)."""
    values = await read_bucket(link, await _bucket(link), link.names.bucket("nodes"))
    return sorted((NodeInfo(**json.loads(value)) for value in values.values()), key=lambda n: n.node)
