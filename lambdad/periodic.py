"""A background job of the app: its work runs every ``interval`` seconds, or sooner when woken.

``wake()`` asks for a run soon (after ``settle`` seconds, so that a burst of wake-ups is one run); a run whose work
returns True is followed by another one soon (it could not finish: try again). ``aclose()`` does not cancel: a
run in progress finishes (a cancellation in the middle of a write could leave it half done), then the task ends.
A failing run is logged and the job goes on. The log sink, log retention and the code collector are such jobs.

A job given a ``lease`` (``cluster/leases.py``) runs only while this node holds it: in a cluster, work that one
node must do (log retention) is done by the lease's holder, and taken over by another node when it dies.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, Protocol

__all__ = ["Periodic"]

log = logging.getLogger(__name__)


class Held(Protocol):
    def held(self) -> bool: ...


class Periodic:
    def __init__(self, name: str, work: Callable[[], Awaitable[bool | None]], interval: float,
                 settle: float = 0.0, lease: Held | None = None) -> None:
        self.name = name
        self._lease = lease
        self._work = work
        self._interval = interval
        self._settle = settle
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def start(self, at_once: bool = False) -> None:
        if at_once:
            self._wake.set()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while not self._closing:
            try:
                await asyncio.wait_for(self._wake.wait(), self._interval)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            if self._closing:
                return
            if self._settle:
                await asyncio.sleep(self._settle)
            if self._lease is not None and not self._lease.held():
                continue  # another node's turn
            try:
                if await self._work():
                    self._wake.set()
            except Exception:  # tried again next time; the job must not end
                log.exception("%s: run failed", self.name)

    async def aclose(self) -> None:
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
