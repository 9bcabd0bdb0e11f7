"""A background job of the app: its work runs every ``interval`` seconds, or sooner when woken.

``wake()`` asks for a run soon (after ``settle`` seconds, so that a burst of wake-ups is one run); a run whose work
returns True is followed by another one soon (it could not finish: try again). ``aclose()`` does not cancel: a
run in progress finishes (a cancellation in the middle of a write could leave it half done), then the task ends.
A failing run is logged and the job goes on. The log sink, log retention and the code collector are such jobs.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

__all__ = ["Periodic"]

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, name: str, work: Callable[[], Awaitable[bool | None]], interval: float,
                 settle: float = 0.0) -> None:
        self.name = name
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
