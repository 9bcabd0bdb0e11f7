"""Timers for moments that keep moving (an environment's deadline and its freeze)."""

from __future__ import annotations

import asyncio
from typing import Callable

__all__ = ["_LazyTimer"]


class _LazyTimer:
    """A timer for a moment that keeps moving, as an environment's deadline and freeze do with every invocation.

    ``set`` moves the moment: to later for free (the armed timer, when it fires early, re-arms itself for the new
    moment), to earlier by re-arming now; ``clear`` forgets it (the armed timer then finds nothing to do);
    ``cancel`` also stops the timer. So a busy environment costs a timer per timeout period, not a
    ``call_later``/``cancel`` pair per invocation and per timer."""

    def __init__(self, fire: Callable[[], object]) -> None:
        self._fire = fire
        self._due: float | None = None  # loop time
        self._handle: asyncio.TimerHandle | None = None

    def set(self, delay: float) -> None:
        loop = asyncio.get_running_loop()
        due = self._due = loop.time() + delay
        if self._handle is not None and self._handle.when() > due:
            self._handle.cancel()
            self._handle = None
        if self._handle is None:
            self._handle = loop.call_at(due, self._check)

    def clear(self) -> None:
        self._due = None

    def cancel(self) -> None:
        self._due = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _check(self) -> None:
        self._handle = None
        due = self._due
        if due is None:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < due:
            self._handle = loop.call_at(due, self._check)
        else:
            self._due = None
            self._fire()
