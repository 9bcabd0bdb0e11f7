"""The RabbitMQ event source: Lambda's "Amazon MQ for RabbitMQ" mapping, as a source a poller drives.

The contract (what the event source mapping's poller calls, in this order):

1. ``source = RabbitSource(broker_arn, queue, virtual_host, endpoint)``; ``endpoint`` is an async callable giving the
   broker's URL and credentials (``brokers.endpoint_source``), called at every (re)connection.
2. ``await source.open()``: connect, open a channel and check the queue exists (a passive declare: the source never
   creates a queue). A failure raises ``RabbitSourceError`` whose ``reason`` is Lambda's StateTransitionReason code
   (EVENT_SOURCE_AUTHN_ERROR, EVENT_SOURCE_AUTHZ_ERROR, ESM_CONFIG_NOT_VALID) or None for a broker that could not
   be reached (worth retrying).
3. Repeatedly ``batch = await source.next_batch(batch_size, window_s)``: at most ``batch_size`` messages, gathered
   until the batch is full, its event reaches 6 MB, or ``window_s`` seconds have passed since the call; None when
   the window passed without a message (or while the broker is unreachable: the source reconnects by itself, with
   backoff from 0.5 s doubling to 30 s, and says why in ``last_error``). The consumer's prefetch is the batch size,
   so the broker holds back what a batch could not take.
4. With FilterCriteria, ``await batch.keep_only(matches)`` first: the records no filter matches are acknowledged
   (discarded, as Lambda does) and leave the batch; 0 left means nothing to invoke.
   ``batch.event()`` is the function's event; after the invocation ``await batch.ack()`` (success: the messages
   leave the queue) or ``await batch.nack()`` (failure: the whole batch returns to the queue, at its place, and
   comes back with ``redelivered: true``). Each is done once; both return False when the connection the batch came
   on was lost meanwhile — the broker has then put the messages back itself.
5. ``await source.close()``: idempotent; what is still unsettled returns to the queue.

At-least-once, as on Lambda: a function that always fails meets its batch again and again. AWS documents a
redelivery limit only for ActiveMQ brokers (ActiveMQ's client redelivery policy, 6 redeliveries), none for RabbitMQ,
and the source sets none; a queue bounds it with its own policy (a quorum queue's ``delivery-limit`` with a
dead-letter exchange). A message whose event record alone exceeds 6 MB cannot be delivered and is rejected
without requeue (dead-lettered where the queue has a dead-letter exchange, else dropped), as Lambda drops records
over its payload limit.

The event's shape follows Lambda's (a Java poller serialising the RabbitMQ client's properties): a string header is
``{"bytes": [...]}`` of its UTF-8 bytes as Java's signed bytes, a byte-array header a plain array of them; absent
properties are null; the timestamp is Java's medium date-time in UTC ("Jan 1, 1970, 12:33:41 AM").
"""

from __future__ import annotations

import asyncio
import base64
import collections
import datetime
import decimal
import json
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Sequence
from urllib.parse import quote

import aiormq
import aiormq.abc
import aiormq.exceptions
from pamqp import commands as spec
from yarl import URL

from lambdad.errors import LambdadError
from lambdad.esm.brokers import BrokerEndpoint, BrokerError

__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_WINDOW_SECONDS", "MAX_BATCH_SIZE", "MAX_PAYLOAD_BYTES", "Delivery",
           "RabbitBatch", "RabbitSource", "RabbitSourceError", "build_event", "connection_url", "message_record"]

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 100
MAX_BATCH_SIZE = 10_000
DEFAULT_WINDOW_SECONDS = 0.5
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # an invocation's payload: a batch stops short of it
_BACKOFF_FIRST, _BACKOFF_MAX = 0.5, 30.0
_CONNECT_TIMEOUT = 10.0
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class RabbitSourceError(LambdadError):
    """The source cannot consume: ``reason`` is Lambda's code for why, or None when the broker was unreachable."""

    def __init__(self, message: str, reason: str | None) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Delivery:
    """One message as the broker delivered it."""

    body: bytes
    properties: spec.Basic.Properties
    redelivered: bool
    delivery_tag: int


# -- the event -------------------------------------------------------------------------------------------------


def _java_bytes(data: bytes) -> list[int]:
    """Bytes as Java's signed ``byte`` values (-128..127), as Lambda's poller writes a ``byte[]``."""
    return [b - 256 if b > 127 else b for b in data]


def _java_date(moment: datetime.datetime) -> str:
    """Java's medium date-time format, en-US, in UTC: ``Jan 1, 1970, 12:33:41 AM``."""
    t = moment.astimezone(datetime.timezone.utc) if moment.tzinfo else moment
    hour = t.hour % 12 or 12
    return (f"{_MONTHS[t.month - 1]} {t.day}, {t.year}, {hour}:{t.minute:02d}:{t.second:02d} "
            f"{'AM' if t.hour < 12 else 'PM'}")


def _header_value(value: Any) -> Any:
    """An AMQP field value as Lambda's event shows it."""
    if isinstance(value, str):  # a long string (UTF-8)
        return {"bytes": _java_bytes(value.encode())}
    if isinstance(value, bytearray):  # a byte array ('x')
        return _java_bytes(bytes(value))
    if isinstance(value, bytes):  # a long string that is not UTF-8
        return {"bytes": _java_bytes(value)}
    if isinstance(value, dict):
        return {str(k): _header_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_header_value(v) for v in value]
    if isinstance(value, datetime.datetime):
        return _java_date(value)
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value  # bool, int, float, None


def message_record(body: bytes, properties: spec.Basic.Properties, redelivered: bool) -> dict[str, Any]:
    """One message's entry in ``rmqMessagesByQueue``."""
    p = properties
    return {
        "basicProperties": {
            "contentType": p.content_type,
            "contentEncoding": p.content_encoding,
            "headers": None if p.headers is None else _header_value(p.headers),
            "deliveryMode": p.delivery_mode,
            "priority": p.priority,
            "correlationId": p.correlation_id,
            "replyTo": p.reply_to,
            "expiration": p.expiration,
            "messageId": p.message_id,
            "timestamp": None if p.timestamp is None else _java_date(p.timestamp),
            "type": p.message_type,
            "userId": p.user_id,
            "appId": p.app_id,
            "clusterId": p.cluster_id or None,
            "bodySize": len(body),
        },
        "redelivered": redelivered,
        "data": base64.b64encode(body).decode("ascii"),
    }


def build_event(broker_arn: str, queue: str, virtual_host: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """The function's event for ``records`` (``message_record``s) of ``queue`` on ``virtual_host``."""
    return {"eventSource": "aws:rmq", "eventSourceArn": broker_arn,
            "rmqMessagesByQueue": {f"{queue}::{virtual_host}": records}}


def _size(record: dict[str, Any]) -> int:
    return len(json.dumps(record)) + 2  # and the ", " that joins it to the next


def connection_url(target: BrokerEndpoint, virtual_host: str) -> URL:
    """The URL aiormq connects to: the broker's, with the secret's user and password and the virtual host (quoted
    whole: ``/`` is ``%2F``); the broker URL's query (``?heartbeat=30``) is kept."""
    url = URL(target.url)
    return (url.with_user(target.username).with_password(target.password)
            .with_path("/" + quote(virtual_host, safe=""), encoded=True).with_query(url.query))


# -- the batch -------------------------------------------------------------------------------------------------


class RabbitBatch:
    """Messages gathered for one invocation, still unacknowledged on the channel they came on."""

    def __init__(self, source: RabbitSource, channel: aiormq.abc.AbstractChannel, deliveries: list[Delivery],
                 records: list[dict[str, Any]]) -> None:
        self._source = source
        self._channel = channel
        self.deliveries: tuple[Delivery, ...] = tuple(deliveries)
        self._records = records
        self.settled = False

    def __len__(self) -> int:
        return len(self.deliveries)

    def event(self) -> dict[str, Any]:
        s = self._source
        return build_event(s.broker_arn, s.queue, s.virtual_host, self._records)

    @property
    def records(self) -> tuple[dict[str, Any], ...]:
        """The messages' entries in the event, in queue order (what a FilterCriteria pattern is matched against)."""
        return tuple(self._records)

    async def keep_only(self, keep: Callable[[dict[str, Any]], bool]) -> int:
        """Filtering: acknowledge at once the messages whose record ``keep`` refuses — Lambda discards a record no
        filter matches — and leave the others in the batch; how many are left (0: invoke nothing, settle nothing).
        """
        kept = [i for i, record in enumerate(self._records) if keep(record)]
        if len(kept) == len(self._records):
            return len(kept)
        chosen = set(kept)
        dropped = [d for i, d in enumerate(self.deliveries) if i not in chosen]
        self.deliveries = tuple(self.deliveries[i] for i in kept)
        self._records = [self._records[i] for i in kept]
        await _settle_deliveries(self._channel, dropped, None, self._source.queue)
        if not kept:
            self.settled = True
        return len(kept)

    async def ack(self) -> bool:
        """The function succeeded: the messages leave the queue."""
        return await self._settle(requeue=None)

    async def nack(self) -> bool:
        """The function failed: the messages return to the queue, to be delivered again."""
        return await self._settle(requeue=True)

    async def _settle(self, requeue: bool | None) -> bool:
        if self.settled:
            return False
        self.settled = True
        return await _settle_deliveries(self._channel, self.deliveries, requeue, self._source.queue)


async def _settle_deliveries(channel: aiormq.abc.AbstractChannel, deliveries: Sequence[Delivery],
                             requeue: bool | None, queue: str) -> bool:
    """Ack (``requeue`` None) or nack ``deliveries``; False when their channel went (the broker put them back)."""
    if channel.is_closed or not deliveries:
        return False
    last = len(deliveries) - 1
    try:
        for i, d in enumerate(deliveries):  # one by one: other deliveries may be unsettled on the channel
            if requeue is None:
                await channel.basic_ack(d.delivery_tag, wait=i == last)
            else:
                await channel.basic_nack(d.delivery_tag, requeue=requeue, wait=i == last)
    except (aiormq.exceptions.AMQPError, aiormq.exceptions.ChannelInvalidStateError, ConnectionError) as exc:
        log.warning("settling a batch of %s: the connection was lost (%s); the broker redelivers it", queue, exc)
        return False
    return True


# -- the source ------------------------------------------------------------------------------------------------


class RabbitSource:
    """Consumes one queue of one virtual host of a broker (see the module's docstring for the contract)."""

    def __init__(self, broker_arn: str, queue: str, virtual_host: str,
                 endpoint: Callable[[], Awaitable[BrokerEndpoint]]) -> None:
        self.broker_arn = broker_arn
        self.queue = queue
        self.virtual_host = virtual_host or "/"
        self._endpoint = endpoint
        self._connection: aiormq.abc.AbstractConnection | None = None
        self._channel: aiormq.abc.AbstractChannel | None = None
        self._consumer_tag: str | None = None
        self._cancelled = False
        self._prefetch = 0
        self._buffer: collections.deque[Delivery] = collections.deque()
        self._arrived = asyncio.Event()
        self._retry_at = 0.0
        self._delay = _BACKOFF_FIRST
        self._closed = False
        self.last_error: str | None = None
        self.dropped = 0  # messages rejected for being over the payload limit on their own

    # -- connection ----------------------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect and check the queue; ``RabbitSourceError`` when that cannot be done."""
        if self._closed:
            raise RuntimeError("the source is closed")
        await self._connect()

    async def _connect(self) -> None:
        await self._drop_connection()
        try:
            target = await self._endpoint()
        except BrokerError as exc:
            raise RabbitSourceError(str(exc), "ESM_CONFIG_NOT_VALID") from exc
        url = connection_url(target, self.virtual_host)
        where = f"broker {self.broker_arn} (virtual host {self.virtual_host!r})"
        connection: aiormq.abc.AbstractConnection | None = None
        try:
            async with asyncio.timeout(_CONNECT_TIMEOUT):
                connection = await aiormq.connect(url)
                channel = await connection.channel()
                await channel.queue_declare(self.queue, passive=True)
        except (aiormq.exceptions.AuthenticationError, aiormq.exceptions.ProbableAuthenticationError) as exc:
            await _close_quietly(connection)
            raise RabbitSourceError(f"{where} refused the credentials: {exc}", "EVENT_SOURCE_AUTHN_ERROR") from exc
        except (aiormq.exceptions.ConnectionNotAllowed, aiormq.exceptions.ChannelAccessRefused) as exc:
            await _close_quietly(connection)
            raise RabbitSourceError(f"{where} refused access: {exc}", "EVENT_SOURCE_AUTHZ_ERROR") from exc
        except aiormq.exceptions.InvalidFrameError as exc:
            await _close_quietly(connection)
            if "Connection.OpenOk" in str(exc):  # connection.open answered by a close: the virtual host refused
                raise RabbitSourceError(f"{where} refused the virtual host (none such, or no permission)",
                                        "EVENT_SOURCE_AUTHZ_ERROR") from exc
            raise RabbitSourceError(f"{where} could not be reached: {exc!r}", None) from exc
        except aiormq.exceptions.ChannelNotFoundEntity as exc:
            await _close_quietly(connection)
            raise RabbitSourceError(f"{where} has no queue {self.queue!r}", "ESM_CONFIG_NOT_VALID") from exc
        except (OSError, TimeoutError, aiormq.exceptions.AMQPError) as exc:
            await _close_quietly(connection)
            raise RabbitSourceError(f"{where} could not be reached: {exc!r}", None) from exc
        self._connection, self._channel = connection, channel
        self._consumer_tag, self._prefetch, self._cancelled = None, 0, False
        self._buffer.clear()  # what came on an earlier channel the broker has put back
        channel.closing.add_done_callback(self._on_channel_closed)
        channel.on_consumer_cancel_callbacks.add(self._on_cancelled)
        self.last_error = None
        self._delay = _BACKOFF_FIRST

    def _on_channel_closed(self, closing: asyncio.Future[Any]) -> None:
        if not closing.cancelled():
            closing.exception()  # retrieved: the reason is logged by whoever meets it
        self._arrived.set()

    def _on_cancelled(self, frame: spec.Basic.Cancel) -> None:
        """The broker ended the consumer (the queue was deleted): the next batch reconnects, and says why."""
        if frame.consumer_tag == self._consumer_tag:
            self._cancelled = True
            self._arrived.set()

    def _usable(self) -> bool:
        channel = self._channel
        return channel is not None and not channel.is_closed and not self._cancelled

    async def _consume(self, batch_size: int) -> None:
        """Consume with a prefetch of ``batch_size`` (a prefetch holds for the consumers made after it is set)."""
        channel = self._channel
        assert channel is not None
        if self._consumer_tag is not None:
            await channel.basic_cancel(self._consumer_tag)
        await channel.basic_qos(prefetch_count=batch_size)
        ok = await channel.basic_consume(self.queue, self._on_message, no_ack=False)
        self._consumer_tag, self._prefetch = ok.consumer_tag, batch_size

    async def _on_message(self, message: aiormq.abc.DeliveredMessage) -> None:
        tag = message.delivery_tag
        if message.channel is not self._channel or tag is None or not isinstance(message.delivery, spec.Basic.Deliver):
            return
        self._buffer.append(Delivery(message.body, message.header.properties, bool(message.delivery.redelivered), tag))
        self._arrived.set()

    async def _ensure(self, batch_size: int) -> bool:
        """Connected and consuming with this prefetch: reconnect (with backoff) where needed."""
        if not self._usable():
            loop = asyncio.get_running_loop()
            if loop.time() < self._retry_at:
                return False
            try:
                await self._connect()
                log.info("connected to %s for queue %s", self.broker_arn, self.queue)
            except RabbitSourceError as exc:
                self._back_off(str(exc))
                return False
        if self._prefetch != batch_size:
            try:
                await self._consume(batch_size)
            except (aiormq.exceptions.AMQPError, aiormq.exceptions.ChannelInvalidStateError, ConnectionError) as exc:
                await self._drop_connection()
                self._back_off(f"consuming {self.queue} of broker {self.broker_arn}: {exc!r}")
                return False
        return True

    def _back_off(self, error: str) -> None:
        """Record why the source cannot consume and when it tries again (0.5 s, doubling up to 30 s)."""
        now = asyncio.get_running_loop().time()
        self.last_error = error
        self._retry_at = now + self._delay
        log.warning("%s; trying again in %.1f s", error, self._delay)
        self._delay = min(self._delay * 2, _BACKOFF_MAX)

    # -- batches -------------------------------------------------------------------------------------------

    async def next_batch(self, batch_size: int = DEFAULT_BATCH_SIZE,
                         window_s: float = DEFAULT_WINDOW_SECONDS) -> RabbitBatch | None:
        """Up to ``batch_size`` messages gathered within ``window_s`` seconds; None when none came."""
        if self._closed:
            raise RuntimeError("the source is closed")
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch size {batch_size} is not within 1..{MAX_BATCH_SIZE}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(window_s, 0.0)
        if not await self._ensure(batch_size):
            await asyncio.sleep(max(0.0, min(deadline, self._retry_at) - loop.time()))
            return None
        channel = self._channel
        assert channel is not None
        deliveries: list[Delivery] = []
        records: list[dict[str, Any]] = []
        size = len(json.dumps(build_event(self.broker_arn, self.queue, self.virtual_host, [])))
        while len(deliveries) < batch_size:
            if not self._buffer:
                if channel.is_closed or self._cancelled:
                    break
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._arrived.clear()
                try:
                    async with asyncio.timeout(remaining):
                        await self._arrived.wait()
                except TimeoutError:
                    break
                continue
            delivery = self._buffer[0]
            record = message_record(delivery.body, delivery.properties, delivery.redelivered)
            grown = size + _size(record)
            if grown > MAX_PAYLOAD_BYTES:
                if deliveries:
                    break  # it opens the next batch
                self._buffer.popleft()
                await self._drop(channel, delivery)
                continue
            self._buffer.popleft()
            deliveries.append(delivery)
            records.append(record)
            size = grown
        if channel.is_closed:
            self.last_error = f"the connection to broker {self.broker_arn} was lost"
            log.warning("%s; the broker redelivers what was unacknowledged", self.last_error)
            return None  # what was gathered the broker redelivers
        if not deliveries:
            return None
        return RabbitBatch(self, channel, deliveries, records)

    async def _drop(self, channel: aiormq.abc.AbstractChannel, delivery: Delivery) -> None:
        log.warning("a message of %d bytes on %s exceeds the %d-byte payload limit: rejected without requeue",
                    len(delivery.body), self.queue, MAX_PAYLOAD_BYTES)
        self.dropped += 1
        try:
            await channel.basic_reject(delivery.delivery_tag, requeue=False)
        except (aiormq.exceptions.AMQPError, aiormq.exceptions.ChannelInvalidStateError, ConnectionError):
            pass  # the channel went: the broker has it back

    # -- closing -------------------------------------------------------------------------------------------

    async def _drop_connection(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        self._buffer.clear()
        await _close_quietly(connection)

    async def close(self) -> None:
        """Close the connection; unsettled messages return to the queue. Idempotent."""
        self._closed = True
        await self._drop_connection()


async def _close_quietly(connection: aiormq.abc.AbstractConnection | None) -> None:
    if connection is None:
        return
    try:
        await connection.close()
    except Exception as exc:  # closing a connection that already failed: nothing left to release
        log.debug("closing a broker connection: %r", exc)
