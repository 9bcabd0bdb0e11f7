"""The async (Event) invocation queue of a cluster: a JetStream stream that every node delivers from.

``submit`` publishes the event to the file-backed stream ``<cluster>_async`` (work-queue retention: a message
lives until it is acknowledged) and returns once JetStream acknowledged the publish, so the API answers 202 only
for an event that a node's death cannot lose. Every node pulls from one durable consumer (``deliver``), so each
event goes to one node at a time; while its invocation runs the node tells JetStream it is still working on it
every ``PROGRESS`` seconds, and an event whose node died (no word for ``ACK_WAIT`` seconds) is delivered again
to another node: at-least-once, as on Lambda.

The rules are the embedded queue's (``invoke/async_queue.py``): a function error is retried after each of
``retry_delays`` and then dropped with a log line; a throttle or platform error backs off (``THROTTLE_BACKOFF``)
without counting as an attempt, until the event is older than its rules allow (``rules``); an event whose function is gone
is dropped. A retry is a new message carrying the attempt count and the time before which it must not run,
published before the old one is acknowledged; a node that receives a message early gives it back with that delay
(``nak``), which is how JetStream delays a message.

Events accepted by the embedded queue and moved into the cluster's database by ``lambdad migrate`` are moved into
the stream at start (``adopt``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
import zlib
from dataclasses import replace
from typing import Any

from lambdad.cluster.link import Link
from lambdad.errors import LambdaError, ResourceNotFoundException, ServiceException
from lambdad.ids import CURRENT_REQUEST_ID
from lambdad.invoke.async_queue import MAX_PARALLEL, THROTTLE_BACKOFF, Deliver, Rules, too_old
from lambdad.invoke.destinations import DeliveryResult, Destinations
from lambdad.store.interfaces import AsyncEvent, AsyncEventStore
from lambdad.tasks import cancel_and_wait

__all__ = ["JetStreamQueue", "ACK_WAIT", "PROGRESS"]

log = logging.getLogger(__name__)

ACK_WAIT = 15.0  # seconds without word from the node working on an event before it goes to another
PROGRESS = 5.0  # seconds between a working node's "still on it"
_HEADER = "Lambdad-Event"
_ENCODING = "Lambdad-Encoding"  # "zlib": the payload is compressed (it did not fit one NATS message as it was)
_ENVELOPE = 8 * 1024  # the headers of an event's message, at most


class JetStreamQueue:
    def __init__(self, link: Link, store: AsyncEventStore, deliver: Deliver, *, retry_delays: tuple[float, ...],
                 rules: Rules, destinations: Destinations | None = None) -> None:
        self._destinations = destinations
        self._link = link
        self._store = store
        self._deliver = deliver
        self._retry_delays = retry_delays
        self._rules = rules
        self._stream = link.names.bucket("async")
        self._subject = link.names.subject("async", "events")
        self._slots = asyncio.Semaphore(MAX_PARALLEL)
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._subscription: Any = None

    async def _ensure_stream(self) -> None:
        from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig

        js = self._link.jetstream
        assert js is not None
        await js.add_stream(StreamConfig(name=self._stream, subjects=[self._subject],
                                         retention=RetentionPolicy.WORK_QUEUE, storage=StorageType.FILE))
        self._subscription = await js.pull_subscribe(
            self._subject, durable="deliver", stream=self._stream,
            config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=ACK_WAIT, max_deliver=-1,
                                  max_ack_pending=-1))

    async def start(self) -> None:
        await self._ensure_stream()
        await self.adopt()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="async-queue")

    async def adopt(self) -> None:
        """Move the events the database holds (a migrated data dir's queue) into the stream."""
        for event in await self._store.load_async_events():
            await self._publish(event)
            await self._store.delete_async_event(event.id)

    async def submit(self, function_name: str, qualifier: str, payload: bytes, client_context: str | None,
                     request_id: str | None = None, hops: int = 0) -> str:
        now = time.time()
        event = AsyncEvent(id=request_id or str(uuid.uuid4()), function_name=function_name, qualifier=qualifier,
                           payload=payload, client_context=client_context, attempts=0, not_before=now, received=now,
                           hops=hops)
        await self._publish(event)
        return event.id

    async def _publish(self, event: AsyncEvent) -> None:
        meta = {"id": event.id, "function_name": event.function_name, "qualifier": event.qualifier,
                "client_context": event.client_context, "attempts": event.attempts, "not_before": event.not_before,
                "received": event.received, "hops": event.hops, "outcome": event.outcome is not None}
        js = self._link.jetstream
        assert js is not None
        # the message id makes a publish that is retried (or an adoption done twice) one message; a record still to
        # send is published again for each try (its time tells the tries apart)
        step = f"o{event.not_before:.3f}" if event.outcome is not None else "r"
        headers = {_HEADER: json.dumps(meta), "Nats-Msg-Id": f"{event.id}:{event.attempts}:{step}"}
        # the record to send, once the function part is over (it holds the request payload), else the payload
        payload = event.outcome.encode() if event.outcome is not None else event.payload
        if len(payload) + _ENVELOPE > self._link.nats.max_payload:  # an async payload may be 1 MiB: NATS's own cap
            payload = await asyncio.to_thread(zlib.compress, payload, 6)
            headers[_ENCODING] = "zlib"
            if len(payload) + _ENVELOPE > self._link.nats.max_payload:
                raise ServiceException("The event's payload does not fit the cluster's queue even compressed "
                                       f"({len(payload)} bytes; NATS max_payload {self._link.nats.max_payload}).")
        await js.publish(self._subject, payload, stream=self._stream, headers=headers)

    async def _run(self) -> None:
        from nats.errors import TimeoutError as NatsTimeout

        while True:
            await self._slots.acquire()  # fetch only what this node can start now
            free = 1
            while free < 16 and not self._slots.locked():
                await self._slots.acquire()
                free += 1
            try:
                messages = await self._subscription.fetch(free, timeout=1.0)
            except NatsTimeout:
                messages = []
            except Exception as exc:  # NATS away: try again shortly
                log.warning("async queue: fetch failed: %r", exc)
                messages = []
                await asyncio.sleep(1.0)
            for _ in range(free - len(messages)):
                self._slots.release()
            for msg in messages:
                task = asyncio.get_running_loop().create_task(self._attempt(msg))
                self._running.add(task)
                task.add_done_callback(self._running.discard)

    async def _attempt(self, msg: Any) -> None:
        try:
            try:
                meta = json.loads((msg.headers or {})[_HEADER])
                data = msg.data
                if (msg.headers or {}).get(_ENCODING) == "zlib":
                    data = await asyncio.to_thread(zlib.decompress, data)
                outcome = data.decode() if meta.pop("outcome", False) else None
                event = AsyncEvent(payload=b"" if outcome is not None else data, outcome=outcome, **meta)
            except (KeyError, ValueError, TypeError, zlib.error):
                log.warning("async queue: a message that is no event dropped")
                await msg.term()
                return
            early = event.not_before - time.time()
            if early > 0.05:
                await msg.nak(delay=early)
                return
            CURRENT_REQUEST_ID.set(event.id)
            await self._run_event(msg, event)
        except Exception:
            log.exception("async queue: handling a message failed (it will be delivered again)")
        finally:
            self._slots.release()

    async def _run_event(self, msg: Any, event: AsyncEvent) -> None:
        if event.outcome is not None:  # the function part is over: its record is still to be sent
            await self._send(msg, event)
            return
        rules = self._rules(event)
        if too_old(event, rules):
            await self._conclude(msg, event, None, "EventAgeExceeded")
            return
        progress = asyncio.get_running_loop().create_task(self._in_progress(msg))
        try:
            try:
                result = await self._deliver(event)
            except asyncio.CancelledError:  # this node stops: another node takes the event at once
                await asyncio.shield(msg.nak())
                raise
        except ResourceNotFoundException as exc:
            log.warning("async event %s dropped: %s", event.id, exc.message)
            await msg.ack()
            return
        except Exception as exc:
            if not isinstance(exc, LambdaError):
                log.exception("async event %s: delivery failed", event.id)
            await self._retry_later(msg, event)
            return
        finally:
            await cancel_and_wait(progress)
        if result.ok:
            await self._conclude(msg, event, result, "Success")
            return
        attempts = event.attempts + 1
        if attempts > min(rules.retries, len(self._retry_delays)):
            log.warning("async event %s for %s dropped after %d attempts (RetriesExhausted)", event.id,
                        event.function_name, attempts)
            await self._conclude(msg, event, result, "RetriesExhausted")
            return
        await self._publish(replace(event, attempts=attempts, not_before=time.time() + self._retry_delays[attempts - 1]))
        await msg.ack()

    async def _conclude(self, msg: Any, event: AsyncEvent, result: DeliveryResult | None, condition: str) -> None:
        """The event is over: with a destination, its record is published to the stream (durable: it is sent by
        whichever node gets it next, and the function never runs again); without, it is acknowledged."""
        outcome = self._destinations.outcome(event, result, condition) if self._destinations else None
        if outcome is not None:
            await self._publish(replace(event, outcome=outcome, payload=b"", not_before=time.time(),
                                        attempts=event.attempts + (result is not None)))
        await msg.ack()

    async def _send(self, msg: Any, event: AsyncEvent) -> None:
        assert self._destinations is not None and event.outcome is not None
        left = await self._destinations.send(event.outcome)
        if left is not None:  # what could not be sent is kept (published again), and tried again later
            delivered = msg.metadata.num_delivered if msg.metadata is not None else 1
            delay = THROTTLE_BACKOFF[min(delivered - 1, len(THROTTLE_BACKOFF) - 1)]
            log.warning("async event %s: kept, its destinations tried again in %.1f s", event.id, delay)
            await self._publish(replace(event, outcome=left, not_before=time.time() + delay))
        await msg.ack()

    async def _retry_later(self, msg: Any, event: AsyncEvent) -> None:
        if too_old(event, self._rules(event)):
            await self._conclude(msg, event, None, "EventAgeExceeded")
            return
        delivered = msg.metadata.num_delivered if msg.metadata is not None else 1
        await msg.nak(delay=THROTTLE_BACKOFF[min(delivered - 1, len(THROTTLE_BACKOFF) - 1)])

    async def _in_progress(self, msg: Any) -> None:
        while True:
            await asyncio.sleep(PROGRESS)
            try:
                await msg.in_progress()
            except Exception as exc:
                log.warning("async queue: could not tell JetStream an event is still running: %s", exc)

    async def aclose(self) -> None:
        await cancel_and_wait(self._task)
        if self._subscription is not None:
            try:
                await self._subscription.unsubscribe()
            except Exception as exc:
                log.warning("async queue: unsubscribing failed: %s", exc)
        for task in list(self._running):
            task.cancel()
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)


async def read_queued(nats_url: str, cluster_name: str, most: int = 100_000) -> list[tuple[str, float]]:
    """(function name, time received) of every event in a cluster's async stream (``lambdad queued``): its
    messages are read one by one by sequence, so the nodes' consumer is left alone; at most ``most`` of them."""
    from nats.js.errors import NotFoundError

    link = await Link.open(nats_url, cluster_name)
    try:
        assert link.jetstream is not None
        stream = link.names.bucket("async")
        try:
            state = (await link.jetstream.stream_info(stream)).state
        except NotFoundError:
            return []
        found = []
        for seq in range(state.first_seq, min(state.last_seq, state.first_seq + most - 1) + 1):
            try:
                msg = await link.jetstream.get_msg(stream, seq)
            except NotFoundError:
                continue  # acknowledged and removed (work-queue retention)
            meta = json.loads((msg.headers or {}).get(_HEADER, "{}"))
            if "function_name" in meta:
                found.append((str(meta["function_name"]), float(meta["received"])))
        return found
    finally:
        await link.aclose()
