"""cancel_and_wait (lambdad/tasks.py) ends a looping task even when code it awaits swallows a cancellation, as a
nats-py request can: a cluster node's lease loop once held its shutdown forever that way (a clean-clone run)."""

from __future__ import annotations

import asyncio

from lambdad.tasks import cancel_and_wait


def test_a_swallowed_cancellation_is_sent_again() -> None:
    swallowed: list[bool] = []

    async def request() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            if swallowed:
                raise
            swallowed.append(True)  # a library that eats the first cancellation and returns

    async def loop() -> None:
        while True:
            await request()
            await asyncio.sleep(0.01)

    async def main() -> float:
        task = asyncio.get_running_loop().create_task(loop())
        await asyncio.sleep(0.05)
        started = asyncio.get_running_loop().time()
        await asyncio.wait_for(cancel_and_wait(task), 5)
        assert task.cancelled() and swallowed
        return asyncio.get_running_loop().time() - started

    assert asyncio.run(main()) < 2.0
