"""The environment's moving timers (sandbox/timers.py) on uvloop, the loop lambdad serves on: a timer never fires
before its delay has passed since ``set`` by the monotonic clock (uvloop's clock and timers count whole
milliseconds, so a delay counted on them ends up to a millisecond early), a moment moved later or earlier is kept,
and a cleared one does not fire."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable

import uvloop

from lambdad.sandbox.timers import _LazyTimer


def _run(main: Callable[[], Awaitable[Any]]) -> Any:
    return uvloop.run(main())


def test_never_fires_before_its_delay() -> None:
    async def main() -> list[float]:
        early: list[float] = []
        for i in range(60):
            fired = asyncio.get_running_loop().create_future()
            timer = _LazyTimer(lambda: fired.set_result(time.monotonic()))
            time.sleep((i % 10) / 10_000)  # set at every tenth of the loop clock's millisecond
            armed = time.monotonic()
            timer.set(0.004)
            early.append(0.004 - (await fired - armed))
        return early

    early = _run(main)
    assert max(early) <= 0, f"{sum(e > 0 for e in early)} of 60 fired early, by up to {max(early) * 1e6:.0f} us"


def test_a_moment_moved_later_or_earlier_is_kept_and_a_cleared_one_is_not_fired() -> None:
    async def main() -> tuple[float, float, int]:
        fires: list[float] = []
        timer = _LazyTimer(lambda: fires.append(time.monotonic()))
        start = time.monotonic()
        timer.set(0.05)
        timer.set(0.15)  # later: the armed timer re-arms when it wakes
        await asyncio.sleep(0.25)
        later = fires[0] - start
        start = time.monotonic()
        timer.set(0.2)
        timer.set(0.05)  # earlier: re-armed now
        await asyncio.sleep(0.1)
        earlier = fires[1] - start
        timer.set(0.05)
        timer.clear()
        await asyncio.sleep(0.1)
        return later, earlier, len(fires)

    later, earlier, count = _run(main)
    assert 0.15 <= later < 0.22
    assert 0.05 <= earlier < 0.09
    assert count == 2
