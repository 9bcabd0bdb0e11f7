"""Background tasks: every one belongs to an owner that cancels it and waits for it on close."""

from __future__ import annotations

import asyncio

__all__ = ["cancel_and_wait"]

_AGAIN = 0.5  # seconds before a cancellation that did not end the task is sent again


async def cancel_and_wait(task: asyncio.Task[object] | None) -> None:
    """Cancel ``task`` (if any) and wait until it has finished; its cancellation is not an error. A cancellation
    swallowed by code the task awaited (nats-py's requests can return normally after one) is sent again, so a
    looping task ends rather than holding its owner's close forever."""
    if task is None:
        return
    task.cancel()
    while not task.done():
        await asyncio.wait([task], timeout=_AGAIN)
        if not task.done():
            task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
