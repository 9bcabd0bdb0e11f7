"""A node's link to the others: its NATS connection, its id, and the names of what the cluster shares.

Every subject is ``<cluster>.<what>…`` and every JetStream stream or bucket ``<cluster>_<what>`` (``names``), so
clusters with different ``LAMBDAD_CLUSTER_NAME`` never see each other's traffic on one NATS. The embedded node
(no ``LAMBDAD_NATS_URL``) has no connection: ``Link.nats`` is None and each shared part uses its in-process
implementation.

The NATS client (nats-py) reconnects by itself after a NATS restart; while it is away the node keeps serving
what it can alone (invokes of functions it knows) and logs the outage.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

__all__ = ["Link", "ClusterNames", "CLUSTER_NAME", "read_bucket", "stream_subjects"]

log = logging.getLogger(__name__)

CLUSTER_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")  # one token of a NATS subject, and a valid stream/bucket name


@dataclass(frozen=True)
class ClusterNames:
    cluster: str

    def subject(self, *parts: str) -> str:
        return ".".join((self.cluster, *parts))

    def bucket(self, what: str) -> str:
        return f"{self.cluster}_{what}"


class Link:
    """This node's id and its NATS connection (None for the embedded node). Owner of the connection."""

    def __init__(self, names: ClusterNames, nats: Any = None, node_id: str | None = None) -> None:
        self.names = names
        self.nats = nats  # nats.aio.client.Client
        self.jetstream = nats.jetstream() if nats is not None else None
        self.node_id = node_id or uuid.uuid4().hex[:12]
        self._on_reconnect: list[Callable[[], Awaitable[None]]] = []

    def on_reconnect(self, callback: Callable[[], Awaitable[None]]) -> None:
        """``callback()`` runs each time the connection to NATS comes back after it was lost."""
        self._on_reconnect.append(callback)

    @property
    def clustered(self) -> bool:
        return self.nats is not None

    @classmethod
    async def open(cls, nats_url: str | None, cluster_name: str, node_id: str | None = None) -> "Link":
        names = ClusterNames(cluster_name)
        if not nats_url:
            return cls(names, None, node_id)
        import nats

        async def disconnected() -> None:
            log.warning("cluster: lost the connection to NATS; reconnecting")

        link: Link | None = None

        async def reconnected() -> None:
            log.info("cluster: connected to NATS again")
            for callback in link._on_reconnect if link is not None else ():
                await callback()

        async def error(exc: Exception) -> None:
            log.warning("cluster: NATS: %s", exc)

        client = await nats.connect(nats_url, name=f"lambdad-{cluster_name}", max_reconnect_attempts=-1,
                                    disconnected_cb=disconnected, reconnected_cb=reconnected, error_cb=error,
                                    connect_timeout=5)
        link = cls(names, client, node_id)
        return link

    async def aclose(self) -> None:
        """Close the connection (what needed answering was answered before: the parts stop first)."""
        if self.nats is not None:
            await self.nats.close()


async def stream_subjects(jetstream: Any, stream: str, subjects: str) -> list[str]:
    """The subjects among ``subjects`` (a filter) on which the JetStream ``stream`` holds messages, from the
    stream's info. Buckets and object stores are listed by these, each subject's last message read on its own,
    rather than with nats-py's watchers (``kv.keys()``, ``ObjectStore.list()``): a watcher waits for a delivery that
    says nothing more is pending, and while other nodes write beside it that delivery can come too early (a key
    left out: ~1 % of ``kv.keys()`` calls) or never (a hang: 10 of 45 ``ObjectStore.list()`` calls), against NATS
    2.9 (tests/unit/test_cluster_buckets.py, tests/unit/test_shared_blobs.py)."""
    state = (await jetstream.stream_info(stream, subjects_filter=subjects)).state
    return list(state.subjects or {})


async def read_bucket(link: Link, kv: Any, name: str) -> dict[str, bytes]:
    """Every key of the JetStream key-value bucket ``name`` (``kv``) with a value (``lambdad cluster status``), its
    keys listed by ``stream_subjects``."""
    assert link.jetstream is not None
    prefix = f"$KV.{name}."
    values = {}
    for subject in await stream_subjects(link.jetstream, f"KV_{name}", prefix + ">"):
        key = subject[len(prefix):]
        try:
            entry = await kv.get(key)
        except Exception:  # deleted, or gone since it was listed
            continue
        if entry.value:
            values[key] = entry.value
    return values
