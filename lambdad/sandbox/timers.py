"""Timers for moments that keep moving (an environment's deadline and its freeze)."""

from __future__ import annotations

import asyncio
import time
from typing import Callable

__all__ = ["_LazyTimer"]


class _LazyTimer:
    """A timer for a moment that keeps moving, as an environment's deadline and freeze do with every invocation.

    ``set`` moves the moment: to later for free (the armed timer, when it fires early, re-arms itself for the new
    moment), to earlier by re-arming now; ``clear`` forgets it (the armed timer then finds nothing to do);
    ``cancel`` also stops the timer. So a busy environment costs a timer per timeout period, not a
    ``call_later``/``cancel`` pair per invocation and per timer.

    The moment is kept on ``time.monotonic()``, the clock the environment stamps invocations with, not on the
    loop's: uvloop's ``loop.time()`` and its timers count whole milliseconds (libuv's ``uv_now``), so a delay
    counted on them can end up to a millisecond before the same delay counted from a monotonic stamp (a 1 s
    timeout was once reported as 999.892 ms). The loop's timer only wakes ``_check``, which fires once the
    monotonic clock has reached the moment, and re-arms otherwise: the callback never runs before ``delay`` has
    passed since ``set``."""

    def __init__(self, fire: Callable[[], object]) -> None:
        self._fire = fire
        self._due: float | None = None  # time.monotonic()
        self._handle: asyncio.TimerHandle | None = None
        self._handle_due = 0.0  # the moment the armed handle was set for, on the same clock

    def set(self, delay: float) -> None:
        due = self._due = time.monotonic() + delay
        if self._handle is not None and self._handle_due > due:
            self._handle.cancel()
            self._handle = None
        if self._handle is None:
            self._arm(due, delay)

    def clear(self) -> None:
        self._due = None

    def cancel(self) -> None:
        self._due = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _arm(self, due: float, delay: float) -> None:
        self._handle_due = due
        self._handle = asyncio.get_running_loop().call_later(delay, self._check)

    def _check(self) -> None:
        self._handle = None
        due = self._due
        if due is None:
            return
        left = due - time.monotonic()
        if left > 0:
            self._arm(due, left)
        else:
            self._due = None
            self._fire()
