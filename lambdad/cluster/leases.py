"""Leases: work that exactly one live node of a cluster must do (log retention, each event source mapping's poller;
later schedules).

A lease is a key of the JetStream key-value bucket ``<cluster>_leases``, whose value names its holder. A node takes
a free lease with ``create`` (which fails while another holds it) and keeps it by writing it again every ``RENEW``
seconds with ``update(last=revision)`` — a compare-and-set: it fails if anyone else wrote the key since. The
bucket forgets a key ``TTL`` seconds after its last write, so the lease of a node that died is free again within
``TTL`` seconds and the next node to try takes it. NATS decides every race; no code of ours votes.

Fencing: a holder counts its lease as held only until ``TTL - MARGIN`` seconds after its last successful renewal
(``Lease.held``), so when a node cannot renew (NATS away, the loop stalled) it stops the work before another node
can have taken the lease. A job checks ``held`` before each round (``Periodic`` does, given the lease).

A node that stops cleanly deletes the leases it holds, so another takes them at its next try, not after ``TTL``.
The embedded node is a cluster of one: it holds every lease.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from lambdad.cluster.link import Link, read_bucket
from lambdad.tasks import cancel_and_wait

__all__ = ["Leases", "Lease", "TTL", "RENEW"]

log = logging.getLogger(__name__)

TTL = 6.0  # seconds after its last renewal that a lease lapses
RENEW = 2.0  # seconds between a holder's renewals, and between a waiting node's tries
MARGIN = 1.5  # a holder stops counting its lease as held this long before it could lapse


class Lease:
    """One named lease as this node sees it."""

    def __init__(self, name: str, always: bool = False) -> None:
        self.name = name
        self._always = always
        self._valid_until = 0.0
        self.revision: int | None = None

    def held(self) -> bool:
        return self._always or time.monotonic() < self._valid_until

    def _renewed(self, revision: int, at: float) -> None:
        self.revision = revision
        self._valid_until = at + TTL - MARGIN

    def _lost(self) -> None:
        self.revision = None
        self._valid_until = 0.0


class Leases:
    def __init__(self, link: Link) -> None:
        self._link = link
        self._leases: dict[str, Lease] = {}
        self._kv: Any = None
        self._task: asyncio.Task[None] | None = None

    def lease(self, name: str) -> Lease:
        """The lease ``name``, tried for from now on (held at once by the embedded node)."""
        if name not in self._leases:
            self._leases[name] = Lease(name, always=not self._link.clustered)
        return self._leases[name]

    async def drop(self, name: str) -> None:
        """Stop trying for the lease ``name`` (its work is gone: a deleted event source mapping), giving it up if
        this node holds it."""
        lease = self._leases.pop(name, None)
        if lease is not None and lease.revision is not None and self._kv is not None:
            try:
                await self._kv.delete(name, last=lease.revision)
            except Exception as exc:
                log.warning("cluster: could not give up the lease %r: %s", name, exc)
        if lease is not None:
            lease._lost()

    def holders(self) -> dict[str, bool]:
        return {name: lease.held() for name, lease in self._leases.items()}

    async def start(self) -> None:
        if not self._link.clustered:
            return
        self._kv = await bucket(self._link)
        await self._round()
        self._task = asyncio.get_running_loop().create_task(self._keep(), name="leases")

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(RENEW)
            try:
                await self._round()
            except Exception:
                log.exception("cluster: a lease round failed")

    async def _round(self) -> None:
        from nats.js.errors import KeyWrongLastSequenceError

        me = self._link.node_id.encode()
        for lease in list(self._leases.values()):  # leases may be added (or dropped) during a round
            if self._leases.get(lease.name) is not lease:
                continue
            started = time.monotonic()
            try:
                if lease.revision is None:
                    lease._renewed(await self._kv.create(lease.name, me), started)
                    log.info("cluster: this node now holds the lease %r", lease.name)
                else:
                    lease._renewed(await self._kv.update(lease.name, me, last=lease.revision), started)
            except KeyWrongLastSequenceError:  # held by another node (or taken over since our last renewal)
                if lease.revision is not None:
                    log.warning("cluster: lost the lease %r to another node", lease.name)
                lease._lost()
            except Exception as exc:  # NATS away: the lease lapses by itself (held() says so in time)
                log.warning("cluster: lease %r not renewed: %s", lease.name, exc)

    async def aclose(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        for lease in self._leases.values():
            if lease.revision is not None and self._kv is not None:
                try:
                    await self._kv.delete(lease.name, last=lease.revision)
                except Exception as exc:
                    log.warning("cluster: could not give up the lease %r: %s", lease.name, exc)
                lease._lost()


async def bucket(link: Link) -> Any:
    from nats.js.api import KeyValueConfig

    assert link.jetstream is not None
    return await link.jetstream.create_key_value(KeyValueConfig(bucket=link.names.bucket("leases"), ttl=TTL,
                                                                history=1))


async def read_holders(link: Link) -> dict[str, str]:
    """lease name -> the node holding it (``lambdad cluster status``)."""
    values = await read_bucket(link, await bucket(link), link.names.bucket("leases"))
    return {key: value.decode() for key, value in values.items()}
