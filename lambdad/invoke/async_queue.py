"""The async (Event) invocation queue: durable, retried, at-least-once.

- ``submit`` writes the event to the store and only then returns (the API answers 202 after that), so an accepted
  event survives a crash; on start every stored event is scheduled again (an event in flight at a crash is
  delivered again, as on Lambda).
- A function error is retried after each delay in ``retry_delays`` (Lambda: ~1 min then ~2 min), as many times
  as the event's rules allow (``rules(event)``: the function's event invoke config, ``invoke/event_config.py``;
  2 by default), then dropped with a log line (RetriesExhausted). Throttles and platform errors do not count as
  attempts: they are retried with backoff. An event older than its rules' maximum age is dropped before its next
  attempt (EventAgeExceeded).
- The event is deleted from the store once it is delivered or given up on.
"""

from __future__ import annotations

import asyncio
import heapq
from dataclasses import replace
import logging
import time
import uuid
from typing import Awaitable, Callable, Protocol

from lambdad.ids import CURRENT_REQUEST_ID
from lambdad.invoke.destinations import DeliveryResult, Destinations
from lambdad.invoke.event_config import AsyncRules
from lambdad.errors import LambdaError, ResourceNotFoundException, TooManyRequestsException
from lambdad.store.interfaces import AsyncEvent, AsyncEventStore
from lambdad.tasks import cancel_and_wait

__all__ = ["AsyncQueue", "CountedQueue", "too_old", "Rules"]

log = logging.getLogger(__name__)

# One attempt: what the function gave (ok: no function error); raises LambdaError for platform faults.
Deliver = Callable[[AsyncEvent], Awaitable[DeliveryResult]]
Rules = Callable[[AsyncEvent], AsyncRules]  # the retries and maximum age that apply to an event

MAX_PARALLEL = 64
THROTTLE_BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class EventQueue(Protocol):
    """The queue of asynchronous invocations as the API sees it: the seam where cluster mode puts a queue that
    every node delivers from."""

    async def submit(self, function_name: str, qualifier: str, payload: bytes, client_context: str | None,
                     request_id: str | None = None, hops: int = 0) -> str: ...


class CountedQueue:
    """A queue's ``submit`` that counts each event it queued (AsyncEventsReceived) with ``count(function,
    qualifier)``: what the API and the destinations submit to."""

    def __init__(self, queue: EventQueue, count: Callable[[str, str], None]) -> None:
        self._queue = queue
        self._count = count

    async def submit(self, function_name: str, qualifier: str, payload: bytes, client_context: str | None,
                     request_id: str | None = None, hops: int = 0) -> str:
        event_id = await self._queue.submit(function_name, qualifier, payload, client_context, request_id, hops)
        self._count(function_name, qualifier)
        return event_id


class AsyncQueue:
    def __init__(self, store: AsyncEventStore, deliver: Deliver, *, retry_delays: tuple[float, ...],
                 rules: Rules, destinations: Destinations | None = None) -> None:
        self._destinations = destinations
        self._store = store
        self._deliver = deliver
        self._retry_delays = retry_delays
        self._rules = rules
        self._heap: list[tuple[float, str]] = []
        self._events: dict[str, AsyncEvent] = {}
        self._throttles: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(MAX_PARALLEL)
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> int:
        return len(self._events)

    async def start(self) -> None:
        for event in await self._store.load_async_events():
            self._schedule(event)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="async-queue")

    async def submit(self, function_name: str, qualifier: str, payload: bytes, client_context: str | None,
                     request_id: str | None = None, hops: int = 0) -> str:
        now = time.time()
        event = AsyncEvent(
            id=request_id or str(uuid.uuid4()), function_name=function_name, qualifier=qualifier, payload=payload,
            client_context=client_context, attempts=0, not_before=now, received=now, hops=hops,
        )
        await self._store.put_async_event(event)
        self._schedule(event)
        return event.id

    def _schedule(self, event: AsyncEvent) -> None:
        self._events[event.id] = event
        heapq.heappush(self._heap, (event.not_before, event.id))
        self._wake.set()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            now = time.time()
            while self._heap and self._heap[0][0] <= now:
                _, event_id = heapq.heappop(self._heap)
                event = self._events.get(event_id)
                if event is None or event.not_before > now:
                    continue  # delivered already, or a stale heap entry of a rescheduled event
                await self._slots.acquire()
                task = asyncio.get_running_loop().create_task(self._attempt(event))
                self._running.add(task)
                task.add_done_callback(self._running.discard)
            delay = self._heap[0][0] - time.time() if self._heap else 3600.0
            try:
                await asyncio.wait_for(self._wake.wait(), max(0.0, delay))
            except asyncio.TimeoutError:
                pass

    async def _attempt(self, event: AsyncEvent) -> None:
        CURRENT_REQUEST_ID.set(event.id)  # the invocation's request id, in this attempt's task
        try:
            if event.outcome is not None:  # the function part is over: its record is still to be sent
                await self._send(event)
                return
            rules = self._rules(event)
            if too_old(event, rules):
                await self._conclude(event, None, "EventAgeExceeded")
                return
            try:
                result = await self._deliver(event)
            except ResourceNotFoundException as exc:
                log.warning("async event %s dropped: %s", event.id, exc.message)
                await self._finish(event)
                return
            except (TooManyRequestsException, LambdaError) as exc:
                await self._retry_later(event, exc)
                return
            except Exception:
                log.exception("async event %s: delivery failed", event.id)
                await self._retry_later(event, None)
                return
            if result.ok:
                await self._conclude(event, result, "Success")
                return
            attempts = event.attempts + 1
            if attempts > min(rules.retries, len(self._retry_delays)):
                log.warning("async event %s for %s dropped after %d attempts (RetriesExhausted)", event.id,
                            event.function_name, attempts)
                await self._conclude(event, result, "RetriesExhausted")
                return
            not_before = time.time() + self._retry_delays[attempts - 1]
            await self._store.reschedule_async_event(event.id, attempts, not_before)
            self._schedule(replace(event, attempts=attempts, not_before=not_before))
        finally:
            self._slots.release()

    async def _conclude(self, event: AsyncEvent, result: DeliveryResult | None, condition: str) -> None:
        """The event is over: its record goes to its destination, if it has one, before the event is deleted."""
        outcome = self._destinations.outcome(event, result, condition) if self._destinations else None
        if outcome is None:
            await self._finish(event)
            return
        event = replace(event, outcome=outcome, attempts=event.attempts + (result is not None))
        # stored first: a crash from here on sends the record again, and never runs the function again
        await self._store.reschedule_async_event(event.id, event.attempts, event.not_before, outcome)
        await self._send(event)

    async def _send(self, event: AsyncEvent) -> None:
        assert self._destinations is not None and event.outcome is not None
        left = await self._destinations.send(event.outcome)
        if left is None:
            await self._finish(event)
            return
        n = self._throttles.get(event.id, 0)  # what could not be sent is kept, and tried again later
        self._throttles[event.id] = n + 1
        delay = THROTTLE_BACKOFF[min(n, len(THROTTLE_BACKOFF) - 1)]
        log.warning("async event %s: kept, its destinations tried again in %.1f s (try %d)", event.id, delay, n + 1)
        not_before = time.time() + delay
        await self._store.reschedule_async_event(event.id, event.attempts, not_before, left)
        self._schedule(replace(event, not_before=not_before, outcome=left))

    async def _retry_later(self, event: AsyncEvent, exc: LambdaError | None) -> None:
        if too_old(event, self._rules(event)):
            await self._conclude(event, None, "EventAgeExceeded")
            return
        n = self._throttles.get(event.id, 0)
        self._throttles[event.id] = n + 1
        delay = THROTTLE_BACKOFF[min(n, len(THROTTLE_BACKOFF) - 1)]
        self._schedule(replace(event, not_before=time.time() + delay))

    async def _finish(self, event: AsyncEvent) -> None:
        await self._store.delete_async_event(event.id)
        self._events.pop(event.id, None)
        self._throttles.pop(event.id, None)

    async def aclose(self) -> None:
        await cancel_and_wait(self._task)
        for task in list(self._running):
            task.cancel()
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)



def too_old(event: AsyncEvent, rules: AsyncRules) -> bool:
    """Whether ``event`` has waited longer than its rules allow (then it is dropped, and said so)."""
    if time.time() - event.received <= rules.max_age:
        return False
    log.warning("async event %s for %s dropped: older than %.0f s (EventAgeExceeded)", event.id, event.function_name,
                rules.max_age)
    return True
