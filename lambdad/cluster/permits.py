"""Concurrency limits that hold across the nodes of a cluster: each node uses a share of each limit, and the
shares of all nodes together never pass it.

A scope is a limit: ``account`` (the unreserved pool: the account's limit minus reservations and provisioned
concurrency) or ``function:<name>`` (a reservation). The pool (``sandbox/pool.py``) admits an invocation when the
node's use of the scope is below both the limit and the node's share; when only the share is too small, it asks
for one permit more (``grow``): one transaction of the shared database (``SqlStore.grant_permits``), serialised per
scope, gives it only if the shares of all nodes stay within the limit. So a burst on every node at once cannot
overshoot; what cannot be granted is throttled with the reasons Lambda gives.

Shares are given back: every ``RENEW`` seconds a node renews its shares in the database and gives back what it has
not used for ``IDLE`` seconds (``settle_permits``). A node that dies stops renewing: a share not renewed for
``VOID`` seconds counts for nothing and is deleted by the next grant, so its permits return within ``VOID``
seconds. A node counts a share as its own only until ``VOID - MARGIN`` seconds after its last renewal (fencing,
as leases do), so a node that cannot reach the database stops using shares before they can be handed to others.

Where this is stricter than Lambda: permits one node holds idle are given back after ``IDLE`` seconds, so within
that second another node can be throttled while the whole limit is not in use.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from lambdad.store.sql import SqlStore
from lambdad.tasks import cancel_and_wait

__all__ = ["ClusterPermits", "VOID", "RENEW", "IDLE"]

log = logging.getLogger(__name__)

VOID = 10.0  # seconds after its last renewal that a node's share counts for nothing
RENEW = 1.0  # seconds between a node's renewals (and returns of idle permits)
IDLE = 1.0  # permits unused this long are given back
MARGIN = 3.0  # a node stops counting a share this long before it could be void


class ClusterPermits:
    def __init__(self, store: SqlStore, node: str, usage: Callable[[], dict[str, int]]) -> None:
        self._store = store
        self._node = node
        self._usage = usage
        self._held: dict[str, int] = {}
        self._valid_until: dict[str, float] = {}
        self._busy_at: dict[str, float] = {}  # when each scope last used all of its share
        # grants and settlements take turns: a settlement writes the shares it read, so a grant between its read
        # and its write would be undone in the database while this node already uses it
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def held(self, scope: str) -> int:
        if time.monotonic() >= self._valid_until.get(scope, 0.0):
            return 0
        return self._held.get(scope, 0)

    async def grow(self, scope: str, cap: int, used: int) -> bool:
        """One permit more of ``scope`` for this node, if the limit ``cap`` allows it across the cluster."""
        if used >= cap:
            return False
        async with self._lock:  # a burst here asks the database one at a time
            if self.held(scope) > used:
                return True  # another caller's grant made room meanwhile
            asked = time.monotonic()
            more = await self._store.grant_permits(scope, self._node, 1, cap, time.time() - VOID)
            if not more:
                return False
            self._held[scope] = self.held(scope) + more
            self._valid_until[scope] = asked + VOID - MARGIN
            self._busy_at[scope] = asked
            return True

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._settling(), name="permits")

    async def _settling(self) -> None:
        while True:
            await asyncio.sleep(RENEW)
            try:
                await self.settle()
            except Exception as exc:  # the database away: shares lapse by themselves (held() says so in time)
                log.warning("cluster: concurrency shares not renewed: %s", exc)

    async def settle(self) -> None:
        """Renew this node's shares and give back what has been idle for ``IDLE`` seconds."""
        async with self._lock:
            await self._settle()

    async def _settle(self) -> None:
        now = time.monotonic()
        usage = self._usage()
        keep: dict[str, int] = {}
        for scope, held in list(self._held.items()):
            used = usage.get(scope, 0)
            if used >= held:
                self._busy_at[scope] = now
            keep[scope] = held if now - self._busy_at.get(scope, 0.0) < IDLE else min(held, used)
        lost = await self._store.settle_permits(self._node, {s: n for s, n in keep.items() if n > 0})
        for scope, n in keep.items():
            if n <= 0 or scope in lost:
                self._held.pop(scope, None)
                self._valid_until.pop(scope, None)
            else:
                self._held[scope] = min(n, self._held.get(scope, n))
                self._valid_until[scope] = now + VOID - MARGIN

    async def aclose(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        try:
            await self._store.settle_permits(self._node, {})  # every share back at once
        except Exception as exc:
            log.warning("cluster: could not give the concurrency shares back: %s", exc)
