"""Change notices: how a change made on one node reaches the memory of the others.

Each node keeps what the invoke path reads (functions, versions, aliases, policies, reservations, layers) in
memory and writes it through to the shared database. After every committed write of such state the store tells
``ChangeNotices`` (``SqlStore.written``: a kind and a name), which publishes ``{"node", "kind", "name"}`` on
``<cluster>.changed``; every other node reads that one thing from the database again and tells its own listeners,
so a function updated on node A retires its environments on node B as it would on A.

Order and loss: a notice is sent after the commit, so the reader always finds the change (or a later one). Core
NATS does not keep messages for a node that is away: when the connection comes back the node reloads everything
it keeps in memory (``reload_all``). Notices of one kind and name are handled one after another; a reload reads
the newest state, so a burst of notices costs at most one read each.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Awaitable, Callable

from lambdad.cluster.link import Link
from lambdad.tasks import cancel_and_wait

__all__ = ["ChangeNotices", "Reloader"]

log = logging.getLogger(__name__)

# kind -> what to do on another node's change of ``name``
Reloader = Callable[[str], Awaitable[None]]


class ChangeNotices:
    def __init__(self, link: Link, reloaders: dict[str, Reloader], reload_all: Callable[[], Awaitable[None]]) -> None:
        self._link = link
        self._reloaders = reloaders
        self._reload_all = reload_all
        self._subject = link.names.subject("changed")
        self._pending: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._subscription: Any = None
        self._sent: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        if not self._link.clustered:
            return
        self._worker = asyncio.get_running_loop().create_task(self._work())
        self._subscription = await self._link.nats.subscribe(self._subject, cb=self._received)
        self._link.on_reconnect(self._reconnected)

    def written(self, kind: str, name: str) -> None:
        """The store committed a change of ``kind`` ``name`` (called on the event loop, after the commit)."""
        if not self._link.clustered or kind not in self._reloaders:
            return
        body = json.dumps({"node": self._link.node_id, "kind": kind, "name": name}).encode()
        task = asyncio.get_running_loop().create_task(self._link.nats.publish(self._subject, body))
        self._sent.add(task)
        task.add_done_callback(self._sent.discard)

    async def _received(self, msg: Any) -> None:
        try:
            notice = json.loads(msg.data)
            node, kind, name = notice["node"], notice["kind"], notice["name"]
        except (ValueError, KeyError, TypeError):
            log.warning("cluster: a change notice that is not one: %r", msg.data[:200])
            return
        if node != self._link.node_id and kind in self._reloaders:
            self._pending.put_nowait((kind, name))

    async def _reconnected(self) -> None:
        self._pending.put_nowait(None)  # notices may have been missed: everything

    async def _work(self) -> None:
        while True:
            item = await self._pending.get()
            batch = {item}
            while not self._pending.empty():  # a burst: each thing once
                batch.add(self._pending.get_nowait())
            try:
                if None in batch:
                    await self._reload_all()
                    continue
                for kind, name in batch:  # type: ignore[misc]
                    await self._reloaders[kind](name)
            except Exception:
                log.exception("cluster: reloading after a change on another node failed; reloading everything")
                try:
                    await self._reload_all()
                except Exception:
                    log.exception("cluster: reloading everything failed")

    async def aclose(self) -> None:
        if self._subscription is not None:
            await self._subscription.unsubscribe()
        if self._sent:
            await asyncio.gather(*self._sent, return_exceptions=True)
        if self._worker is not None:
            await cancel_and_wait(self._worker)
