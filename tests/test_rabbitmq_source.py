"""The RabbitMQ event source (lambdad/esm/rabbitmq.py) against a real RabbitMQ on 127.0.0.1:5672 (guest/guest), and
the broker registry behind it (lambdad/esm/brokers.py, `lambdad brokers`).

Messages are published with aiormq (the AMQP client the source itself is built on), which sets every basic
property on the wire as given. A connection loss is made real with a TCP relay between the source and the broker
that the test cuts; the broker itself is shared, so it is not restarted. Tests that make a virtual host need
rabbitmqctl (they run as root in CI); each queue and virtual host has a name of its test's own and is deleted after.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import json
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest

from lambdad.esm.brokers import BrokerEndpoint, BrokerError, add_broker, add_secret, endpoint_source
from lambdad.esm.rabbitmq import (MAX_PAYLOAD_BYTES, RabbitSource, RabbitSourceError, build_event, connection_url,
                                  message_record)
from lambdad.store.sql import SqlStore, database_url
from tests.services import answers

aiormq = pytest.importorskip("aiormq")
from pamqp import commands as spec  # noqa: E402  (aiormq's own dependency)

BROKER = "arn:aws:mq:us-east-1:123456789012:broker:test:b-9bcfa592-423a-4942-879d-eb284b418fc8"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rabbit-AbCdEf"
ADMIN = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture
def rabbit() -> None:
    if not answers("127.0.0.1", 5672):
        pytest.skip("needs RabbitMQ on 127.0.0.1:5672 with guest/guest (CI has it)")


def run(work: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(work())


def endpoint(url: str = "amqp://127.0.0.1:5672", password: str = "guest") -> Callable[[], Awaitable[BrokerEndpoint]]:
    async def resolve() -> BrokerEndpoint:
        return BrokerEndpoint(url, "guest", password)

    return resolve


def _vhost_path(vhost: str) -> str:
    from urllib.parse import quote

    return quote(vhost, safe="")


@contextlib.asynccontextmanager
async def queue(vhost: str = "/", count: int = 1) -> AsyncIterator[tuple[Any, list[str]]]:
    """A channel on ``vhost`` and ``count`` new durable queues; deleted afterwards."""
    connection = await aiormq.connect(f"amqp://guest:guest@127.0.0.1:5672/{_vhost_path(vhost)}")
    channel = await connection.channel()
    names = [f"esm-test-{secrets.token_hex(4)}" for _ in range(count)]
    for name in names:
        await channel.queue_declare(name, durable=True)
    try:
        yield channel, names
    finally:
        for name in names:
            with contextlib.suppress(Exception):
                await channel.queue_delete(name)
        await connection.close()


async def publish(channel: Any, name: str, body: bytes, **properties: Any) -> None:
    properties.setdefault("message_id", secrets.token_hex(4))
    await channel.basic_publish(body, routing_key=name, properties=spec.Basic.Properties(**properties))


async def depth(channel: Any, name: str) -> int:
    """Messages ready in ``name`` (not those delivered and unacknowledged)."""
    ok = await channel.queue_declare(name, passive=True)
    return int(ok.message_count)


# -- the event, field by field ---------------------------------------------------------------------------------


def test_event_builder_gives_lambdas_shape():
    """Lambda's RabbitMQ example event, rebuilt from the properties it came from."""
    body = json.dumps({"timeout": 0, "data": "CZrmf0Gw8Ov4bqLQxD4E"}, separators=(",", ":")).encode()
    props = spec.Basic.Properties(
        content_type="text/plain", headers={"header1": "value1", "header2": b"value2", "numberInHeader": 10},
        delivery_mode=1, priority=34, expiration="60000",
        timestamp=datetime.datetime.fromtimestamp(2021, tz=datetime.timezone.utc), user_id="AIDACKCEVSQ6C2EXAMPLE")
    event = build_event(BROKER, "test", "/", [message_record(body, props, False)])
    assert event == {
        "eventSource": "aws:rmq",
        "eventSourceArn": BROKER,
        "rmqMessagesByQueue": {"test::/": [{
            "basicProperties": {
                "contentType": "text/plain", "contentEncoding": None,
                "headers": {"header1": {"bytes": [118, 97, 108, 117, 101, 49]},
                            "header2": {"bytes": [118, 97, 108, 117, 101, 50]}, "numberInHeader": 10},
                "deliveryMode": 1, "priority": 34, "correlationId": None, "replyTo": None, "expiration": "60000",
                "messageId": None, "timestamp": "Jan 1, 1970, 12:33:41 AM", "type": None,
                "userId": "AIDACKCEVSQ6C2EXAMPLE", "appId": None, "clusterId": None,
                "bodySize": 43},  # the length of the body (the example says 80 of its 43-byte data)
            "redelivered": False,
            "data": "eyJ0aW1lb3V0IjowLCJkYXRhIjoiQ1pybWYwR3c4T3Y0YnFMUXhENEUifQ=="}]},
    }
    assert list(event) == ["eventSource", "eventSourceArn", "rmqMessagesByQueue"]


def test_event_builder_header_types():
    """Strings as Java's signed bytes, byte arrays bare, tables and arrays recursively, timestamps as dates."""
    props = spec.Basic.Properties(headers={
        "utf8": "é", "raw": bytearray(b"\x00\xff"), "flag": True, "pi": 3.5, "none": None,
        "nested": {"k": "v", "n": [1, "x"]}, "when": datetime.datetime(2026, 12, 5, 13, 4, 5, tzinfo=datetime.timezone.utc)})
    headers = message_record(b"", props, True)["basicProperties"]["headers"]
    assert headers == {"utf8": {"bytes": [-61, -87]}, "raw": [0, -1], "flag": True, "pi": 3.5, "none": None,
                       "nested": {"k": {"bytes": [118]}, "n": [1, {"bytes": [120]}]},
                       "when": "Dec 5, 2026, 1:04:05 PM"}
    assert message_record(b"", spec.Basic.Properties(), True)["basicProperties"]["headers"] is None


def test_event_from_the_broker_field_by_field(rabbit):
    async def work() -> None:
        async with queue() as (channel, [name]):
            body = bytes(range(256))
            await publish(channel, name, body, content_type="application/octet-stream", content_encoding="gzip",
                          headers={"trace": "abc", "attempt": 3}, delivery_mode=2, priority=7,
                          correlation_id="corr-1", reply_to="replies", expiration="60000", message_id="m-1",
                          timestamp=datetime.datetime(2026, 12, 5, 0, 7, 9, tzinfo=datetime.timezone.utc),
                          message_type="order.created", user_id="guest", app_id="shop")
            source = RabbitSource(BROKER, name, "/", endpoint())
            await source.open()
            try:
                batch = await source.next_batch(10, 1.0)
                assert batch is not None and len(batch) == 1
                event = batch.event()
                assert await batch.ack()
            finally:
                await source.close()
            assert event["eventSource"] == "aws:rmq" and event["eventSourceArn"] == BROKER
            [record] = event["rmqMessagesByQueue"][f"{name}::/"]
            assert record["basicProperties"] == {
                "contentType": "application/octet-stream", "contentEncoding": "gzip",
                "headers": {"trace": {"bytes": [97, 98, 99]}, "attempt": 3}, "deliveryMode": 2, "priority": 7,
                "correlationId": "corr-1", "replyTo": "replies", "expiration": "60000", "messageId": "m-1",
                "timestamp": "Dec 5, 2026, 12:07:09 AM", "type": "order.created", "userId": "guest",
                "appId": "shop", "clusterId": None, "bodySize": 256}
            assert record["redelivered"] is False
            assert base64.b64decode(record["data"]) == body
            assert json.loads(json.dumps(event)) == event  # JSON as it is

    run(work)


@pytest.mark.parametrize("vhost, path", [("/", "/%2F"), ("shop", "/shop"), ("a/b c", "/a%2Fb%20c")])
def test_connection_url(vhost: str, path: str):
    url = connection_url(BrokerEndpoint("amqps://rabbit.internal:5671?heartbeat=30", "us@r", "p:w/d%"), vhost)
    assert (url.scheme, url.host, url.port, url.raw_path) == ("amqps", "rabbit.internal", 5671, path)
    assert (url.user, url.password, dict(url.query)) == ("us@r", "p:w/d%", {"heartbeat": "30"})

    async def read_back() -> str:
        return str(aiormq.Connection(url).vhost)

    assert run(read_back) == vhost  # as aiormq reads it back


# -- batching --------------------------------------------------------------------------------------------------


def test_batches_by_size_then_by_window(rabbit):
    async def work() -> None:
        async with queue() as (channel, [name]):
            for i in range(25):
                await publish(channel, name, f"m{i}".encode())
            source = RabbitSource(BROKER, name, "/", endpoint())
            await source.open()
            try:
                sizes, bodies = [], []
                while True:
                    started = time.monotonic()
                    batch = await source.next_batch(10, 2.0)
                    if batch is None:
                        break
                    sizes.append((len(batch), time.monotonic() - started))
                    bodies += [base64.b64decode(r["data"]).decode()
                               for r in batch.event()["rmqMessagesByQueue"][f"{name}::/"]]
                    await batch.ack()
                assert [n for n, _ in sizes] == [10, 10, 5]
                assert all(took < 1.0 for _, took in sizes[:2])  # full batches go at once
                assert 1.9 < sizes[2][1] < 4.0  # the short one waits out its window
                assert bodies == [f"m{i}" for i in range(25)]  # in queue order
                started = time.monotonic()
                assert await source.next_batch(10, 0.3) is None  # an empty window: None, after the window
                assert 0.25 < time.monotonic() - started < 1.5
            finally:
                await source.close()

    run(work)


def test_window_gathers_what_arrives_during_it(rabbit):
    async def work() -> None:
        async with queue() as (channel, [name]):
            source = RabbitSource(BROKER, name, "/", endpoint())
            await source.open()
            try:
                async def trickle() -> None:
                    for i in range(3):
                        await asyncio.sleep(0.2)
                        await publish(channel, name, f"t{i}".encode())

                task = asyncio.create_task(trickle())
                batch = await source.next_batch(100, 1.5)
                await task
                assert batch is not None and len(batch) == 3
                await batch.ack()
            finally:
                await source.close()

    run(work)


def test_batch_stops_short_of_the_payload_limit(rabbit):
    async def work() -> None:
        async with queue() as (channel, [name]):
            for _ in range(3):
                await publish(channel, name, b"x" * 2_000_000)  # base64: ~2.67 MB of event each
            source = RabbitSource(BROKER, name, "/", endpoint())
            await source.open()
            try:
                first = await source.next_batch(10, 1.0)
                assert first is not None and len(first) == 2
                assert len(json.dumps(first.event())) <= MAX_PAYLOAD_BYTES
                await first.ack()
                second = await source.next_batch(10, 0.5)
                assert second is not None and len(second) == 1
                await second.ack()
            finally:
                await source.close()

    run(work)


def test_a_message_over_the_limit_alone_is_rejected(rabbit):
    async def work() -> None:
        async with queue() as (channel, [name]):
            await publish(channel, name, b"y" * 5_000_000)  # 6.67 MB once base64
            await publish(channel, name, b"small")
            source = RabbitSource(BROKER, name, "/", endpoint())
            await source.open()
            try:
                batch = await source.next_batch(10, 1.0)
                assert batch is not None and len(batch) == 1 and batch.deliveries[0].body == b"small"
                assert source.dropped == 1
                await batch.ack()
            finally:
                await source.close()
            assert await depth(channel, name) == 0

    run(work)


# -- acknowledgement -------------------------------------------------------------------------------------------


def test_ack_removes_and_nack_requeues_redelivered(rabbit):
    async def work() -> None:
        async with queue() as (channel, [name]):
            for i in range(3):
                await publish(channel, name, f"n{i}".encode())
            source = RabbitSource(BROKER, name, "/", endpoint())
            await source.open()
            try:
                batch = await source.next_batch(10, 1.0)
                assert batch is not None and len(batch) == 3
                assert [r["redelivered"] for r in batch.event()["rmqMessagesByQueue"][f"{name}::/"]] == [False] * 3
                assert await batch.nack()
                assert not await batch.nack() and not await batch.ack()  # once
                again = await source.next_batch(10, 1.0)
                assert again is not None
                records = again.event()["rmqMessagesByQueue"][f"{name}::/"]
                assert [base64.b64decode(r["data"]) for r in records] == [b"n0", b"n1", b"n2"]  # at their place
                assert [r["redelivered"] for r in records] == [True] * 3
                assert await again.ack()
                assert await source.next_batch(10, 0.3) is None
            finally:
                await source.close()
            assert await depth(channel, name) == 0

    run(work)


def test_prefetch_is_the_batch_size_and_close_returns_the_unsettled(rabbit):
    async def work() -> None:
        async with queue() as (channel, [name]):
            for i in range(8):
                await publish(channel, name, f"p{i}".encode())
            source = RabbitSource(BROKER, name, "/", endpoint())
            await source.open()
            batch = await source.next_batch(3, 1.0)
            assert batch is not None and len(batch) == 3
            await asyncio.sleep(0.3)
            assert await depth(channel, name) == 5  # the broker held back what the batch could not take
            await source.close()
            await source.close()  # idempotent
            assert not await batch.ack()  # its channel went: the broker has them back
            for _ in range(20):
                if await depth(channel, name) == 8:
                    break
                await asyncio.sleep(0.1)
            assert await depth(channel, name) == 8

    run(work)


# -- queues and virtual hosts ----------------------------------------------------------------------------------


def _ctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def vhost(rabbit) -> Any:
    if shutil.which("rabbitmqctl") is None or _ctl("list_vhosts").returncode != 0:
        pytest.skip("needs rabbitmqctl allowed to manage the local RabbitMQ (root, in CI) to make a virtual host")
    name = f"esm-test-{secrets.token_hex(4)}"
    assert _ctl("add_vhost", name).returncode == 0
    try:
        yield name
    finally:
        _ctl("delete_vhost", name)


def test_two_queues_on_two_virtual_hosts(vhost):
    async def work() -> None:
        refused = RabbitSource(BROKER, "anything", vhost, endpoint())
        with pytest.raises(RabbitSourceError) as excinfo:  # guest has no permissions on the new vhost yet
            await refused.open()
        assert excinfo.value.reason == "EVENT_SOURCE_AUTHZ_ERROR"
        await refused.close()
        assert _ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*").returncode == 0
        async with queue(count=2) as (default_channel, [a, b]), queue(vhost) as (other_channel, [c]):
            await publish(default_channel, a, b"to-a")
            await publish(default_channel, b, b"to-b")
            await publish(other_channel, c, b"to-c")
            sources = [RabbitSource(BROKER, a, "/", endpoint()), RabbitSource(BROKER, b, "/", endpoint()),
                       RabbitSource(BROKER, c, vhost, endpoint())]
            try:
                seen = {}
                for source in sources:
                    await source.open()
                    batch = await source.next_batch(10, 1.0)
                    assert batch is not None
                    [(key, [record])] = batch.event()["rmqMessagesByQueue"].items()
                    seen[key] = base64.b64decode(record["data"])
                    await batch.ack()
                assert seen == {f"{a}::/": b"to-a", f"{b}::/": b"to-b", f"{c}::{vhost}": b"to-c"}
            finally:
                for source in sources:
                    await source.close()

    run(work)


# -- failures and reconnection ---------------------------------------------------------------------------------


def test_open_says_why_it_cannot_consume(rabbit, tmp_path: Path):
    async def work() -> None:
        async with queue() as (_channel, [name]):
            wrong = "wrong-" + secrets.token_hex(6)
            cases = [
                (RabbitSource(BROKER, name, "/", endpoint(password=wrong)), "EVENT_SOURCE_AUTHN_ERROR"),
                (RabbitSource(BROKER, "esm-test-no-such-queue", "/", endpoint()), "ESM_CONFIG_NOT_VALID"),
                (RabbitSource(BROKER, name, "/", endpoint("amqp://127.0.0.1:1")), None),
            ]
            store = await SqlStore.open(database_url(None, tmp_path))
            try:  # a broker nobody registered
                cases.append((RabbitSource(BROKER, name, "/", endpoint_source(store, BROKER, SECRET)),
                              "ESM_CONFIG_NOT_VALID"))
                for source, reason in cases:
                    with pytest.raises(RabbitSourceError) as excinfo:
                        await source.open()
                    assert excinfo.value.reason == reason, excinfo.value
                    assert wrong not in str(excinfo.value) and "guest" not in str(excinfo.value)
                    await source.close()
            finally:
                await store.aclose()

    run(work)


class Relay:
    """A TCP relay to the broker whose connections the test can cut, as a broker restart cuts them."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self, port: int = 0) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", 5672)
        except OSError:
            writer.close()
            return
        self.writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()

    async def stop(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None


def test_reconnects_after_the_connection_is_lost(rabbit):
    async def work() -> None:
        relay = Relay()
        port = await relay.start()
        async with queue() as (channel, [name]):
            await publish(channel, name, b"before")
            source = RabbitSource(BROKER, name, "/", endpoint(f"amqp://127.0.0.1:{port}"))
            await source.open()
            try:
                batch = await source.next_batch(10, 1.0)
                assert batch is not None
                await relay.stop()  # the broker goes away while the function runs
                await asyncio.sleep(0.2)
                assert not await batch.ack()  # too late: the broker puts the message back
                assert await source.next_batch(10, 0.2) is None
                assert source.last_error
                await relay.start(port)  # it comes back
                await publish(channel, name, b"after")
                batch = None
                for _ in range(40):  # the backoff lets it retry within a few seconds
                    batch = await source.next_batch(10, 0.5)
                    if batch is not None:
                        break
                assert batch is not None and source.last_error is None
                records = batch.event()["rmqMessagesByQueue"][f"{name}::/"]
                assert [(base64.b64decode(r["data"]), r["redelivered"]) for r in records] == [
                    (b"before", True), (b"after", False)]
                assert await batch.ack()
            finally:
                await source.close()
                await relay.stop()

    run(work)


def test_a_deleted_queue_stops_the_source_with_its_reason(rabbit):
    async def work() -> None:
        async with queue() as (channel, [name]):
            source = RabbitSource(BROKER, name, "/", endpoint())
            await source.open()
            try:
                assert await source.next_batch(10, 0.2) is None
                await channel.queue_delete(name)
                await asyncio.sleep(0.2)
                assert await source.next_batch(10, 0.2) is None
                assert await source.next_batch(10, 0.2) is None
                assert source.last_error is not None and "no queue" in source.last_error
            finally:
                await source.close()

    run(work)


# -- the registry and `lambdad brokers` -------------------------------------------------------------------------


def brokers(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lambdad", "brokers", *args, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, timeout=60, input=stdin)


def test_brokers_cli_add_list_remove_never_shows_the_password(tmp_path: Path):
    password = "pw-" + secrets.token_hex(8)
    (tmp_path / "pw").write_text(password + "\n")
    out = brokers(tmp_path, "add", BROKER, "--url", "amqp://127.0.0.1:5672")
    assert out.returncode == 0, out.stderr
    out = brokers(tmp_path, "add-secret", SECRET, "--username", "guest", "--password-file", str(tmp_path / "pw"))
    assert out.returncode == 0, out.stderr
    assert password not in out.stdout + out.stderr
    listed = brokers(tmp_path, "list")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [row[:3] for row in rows] == [["broker", BROKER, "amqp://127.0.0.1:5672"],
                                         ["secret", SECRET, "user guest"]]
    assert password not in listed.stdout + listed.stderr

    async def resolved() -> BrokerEndpoint:
        store = await SqlStore.open(database_url(None, tmp_path))
        try:
            return await endpoint_source(store, BROKER, SECRET)()
        finally:
            await store.aclose()

    found = run(resolved)
    assert (found.url, found.username, found.password) == ("amqp://127.0.0.1:5672", "guest", password)
    assert password not in repr(found)

    out = brokers(tmp_path, "add-secret", SECRET, "--username", "other", "--password-file", "-", stdin="x2\n")
    assert out.returncode == 0, out.stderr  # replaced, from standard input
    assert run(resolved).password == "x2"
    assert brokers(tmp_path, "remove", SECRET).returncode == 0
    missing = brokers(tmp_path, "remove", SECRET)
    assert missing.returncode == 1 and "no broker or secret" in missing.stderr
    assert brokers(tmp_path, "list").stdout.splitlines()[0].startswith("broker\t")
    with pytest.raises(BrokerError, match="secret .* is not registered"):
        run(resolved)


@pytest.mark.parametrize("args, message", [
    (("add", "arn:aws:mq:us-east-1:123456789012:queue:x", "--url", "amqp://h"), "invalid broker ARN"),
    (("add", BROKER, "--url", "http://h"), "invalid broker URL"),
    (("add", BROKER, "--url", "amqp://guest:guest@h"), "carries no credentials"),
    (("add", BROKER, "--url", "amqp://h/vhost"), "names no virtual host"),
    (("add-secret", "arn:aws:secretsmanager:us-east-1:1234:secret:x", "--username", "u", "--password-file", "-"),
     "invalid secret ARN"),
])
def test_brokers_cli_refuses(tmp_path: Path, args: tuple[str, ...], message: str):
    out = brokers(tmp_path, *args, stdin="pw\n")
    assert out.returncode == 1 and message in out.stderr, out.stderr


def test_registry_feeds_a_source(rabbit, tmp_path: Path):
    """Registered broker and secret, resolved at connection as the poller will: the messages flow."""
    async def work() -> None:
        store = await SqlStore.open(database_url(None, tmp_path))
        try:
            await add_broker(store, BROKER, "amqp://127.0.0.1:5672")
            await add_secret(store, SECRET, "guest", "guest")
            async with queue() as (channel, [name]):
                await publish(channel, name, b"hello")
                source = RabbitSource(BROKER, name, "/", endpoint_source(store, BROKER, SECRET))
                await source.open()
                try:
                    batch = await source.next_batch(10, 1.0)
                    assert batch is not None and batch.deliveries[0].body == b"hello"
                    await batch.ack()
                finally:
                    await source.close()
        finally:
            await store.aclose()

    run(work)


def test_filtering_acknowledges_what_it_discards(rabbit):
    """keep_only: the records no filter matches are acknowledged at once (Lambda discards them); the rest stay in
    the batch, whose nack returns only them to the queue."""
    async def work() -> None:
        async with queue() as (channel, [name]):
            for kind in ("keep", "drop", "keep", "drop"):
                await publish(channel, name, json.dumps({"kind": kind}).encode())
            source = RabbitSource(BROKER, name, "/", endpoint())
            await source.open()
            try:
                batch = await source.next_batch(10, 1.0)
                assert batch is not None and len(batch) == 4
                left = await batch.keep_only(lambda r: json.loads(base64.b64decode(r["data"]))["kind"] == "keep")
                assert left == 2 and len(batch.event()["rmqMessagesByQueue"][f"{name}::/"]) == 2
                assert await batch.nack()
                again = await source.next_batch(10, 1.0)
                assert again is not None and len(again) == 2
                assert all(r["redelivered"] for r in again.records)
                assert await again.keep_only(lambda r: False) == 0 and again.settled
                assert await source.next_batch(10, 0.3) is None
            finally:
                await source.close()
            assert await depth(channel, name) == 0

    run(work)


def test_registry_on_postgresql(postgres_url: str, tmp_path: Path):
    """A cluster's nodes share the records: written through one store, read through another."""
    async def work() -> None:
        url = database_url(postgres_url, tmp_path)
        writer, reader = await SqlStore.open(url), await SqlStore.open(url)
        try:
            await add_broker(writer, BROKER, "amqps://rabbit.internal:5671")
            await add_secret(writer, SECRET, "lambda", "pw-1")
            await add_secret(writer, SECRET, "lambda", "pw-2")  # replaced
            found = await endpoint_source(reader, BROKER, SECRET)()
            assert (found.url, found.username, found.password) == ("amqps://rabbit.internal:5671", "lambda", "pw-2")
            from lambdad.esm.brokers import list_records, remove

            assert [(r.arn, r.kind) for r in await list_records(reader)] == [(BROKER, "broker"), (SECRET, "secret")]
            await remove(reader, BROKER)
            with pytest.raises(BrokerError, match="broker .* is not registered"):
                await endpoint_source(writer, BROKER, SECRET)()
        finally:
            await writer.aclose()
            await reader.aclose()

    run(work)


FUNCTION = '''import base64

def handler(event, context):
    [(key, records)] = event["rmqMessagesByQueue"].items()
    bodies = [base64.b64decode(r["data"]).decode() for r in records]
    headers = [bytes(b & 0xFF for b in r["basicProperties"]["headers"]["who"]["bytes"]).decode() for r in records]
    if "poison" in bodies and not all(r["redelivered"] for r in records):
        raise ValueError("first delivery fails")
    return {"source": event["eventSource"], "key": key, "bodies": bodies, "headers": headers,
            "redelivered": [r["redelivered"] for r in records]}
'''


def test_the_event_drives_a_real_function(rabbit, lam, fname):
    """What the poller will do, by hand: the batch's event invokes a function on a real server; its failure nacks
    the batch, which comes back redelivered and succeeds."""
    from tests.server import create_python_function

    create_python_function(lam, fname, FUNCTION)

    def invoke(event: dict[str, Any]) -> tuple[bool, Any]:
        out = lam.invoke(FunctionName=fname, Payload=json.dumps(event).encode())
        return "FunctionError" not in out, json.loads(out["Payload"].read())

    async def work() -> list[Any]:
        results = []
        async with queue() as (channel, [name]):
            for body in ("a", "poison", "ü"):
                await publish(channel, name, body.encode(), headers={"who": f"héllo-{body}"})
            source = RabbitSource(BROKER, name, "/", endpoint())
            await source.open()
            try:
                for _ in range(2):
                    batch = await source.next_batch(10, 1.0)
                    assert batch is not None
                    ok, result = await asyncio.to_thread(invoke, batch.event())
                    results.append((ok, result))
                    assert await (batch.ack() if ok else batch.nack())
                assert await source.next_batch(10, 0.3) is None
            finally:
                await source.close()
            results.append(name)
        return results

    (failed, error), (succeeded, result), name = run(work)
    assert not failed and error["errorMessage"] == "first delivery fails"
    assert succeeded and result == {"source": "aws:rmq", "key": f"{name}::/", "bodies": ["a", "poison", "ü"],
                                    "headers": ["héllo-a", "héllo-poison", "héllo-ü"],
                                    "redelivered": [True, True, True]}


PRINTING = '''import base64

def handler(event, context):
    for key, records in event["rmqMessagesByQueue"].items():
        for r in records:
            body = base64.b64decode(r["data"]).decode()
            print("BODY", event["eventSource"], key, body, r["redelivered"])
            if body == "keep-poison" and not r["redelivered"]:
                raise ValueError("first delivery fails")
'''


def test_a_mapping_feeds_a_function_from_a_queue(rabbit, server, lam, fname):
    """The unchanged CreateEventSourceMapping call on a broker registered with `lambdad brokers`: batches reach
    the function, FilterCriteria drop what they do not match (acknowledged), a failed batch comes back redelivered,
    and the queue ends empty."""
    from tests.server import create_python_function, wait_until

    create_python_function(lam, fname, PRINTING)
    broker = f"arn:aws:mq:us-east-1:000000000000:broker:{fname[:40]}:b-{secrets.token_hex(8)}"
    secret = f"arn:aws:secretsmanager:us-east-1:000000000000:secret:{fname[:40]}"
    assert brokers(server.data_dir, "add", broker, "--url", "amqp://127.0.0.1:5672").returncode == 0
    assert brokers(server.data_dir, "add-secret", secret, "--username", "guest", "--password-file", "-",
                   stdin="guest").returncode == 0

    def bodies() -> list[str]:
        out = subprocess.run([sys.executable, "-m", "lambdad", "logs", fname, "--data-dir", str(server.data_dir)],
                             capture_output=True, text=True, timeout=60)
        return [line.split("BODY ", 1)[1] for line in out.stdout.splitlines() if "BODY " in line]

    async def work() -> tuple[str, int]:
        async with queue() as (channel, [name]):
            with pytest.raises(lam.exceptions.InvalidParameterValueException, match="one BASIC_AUTH"):
                await asyncio.to_thread(lam.create_event_source_mapping, EventSourceArn=broker, FunctionName=fname,
                                        Queues=[name], SourceAccessConfigurations=[{"Type": "VIRTUAL_HOST",
                                                                                    "URI": "/"}])
            mapping = await asyncio.to_thread(
                lam.create_event_source_mapping, EventSourceArn=broker, FunctionName=fname, Queues=[name],
                BatchSize=10, MaximumBatchingWindowInSeconds=1,
                SourceAccessConfigurations=[{"Type": "BASIC_AUTH", "URI": secret}],
                FilterCriteria={"Filters": [{"Pattern": json.dumps({"data": [{"prefix": "keep"}]})}]})
            assert mapping["Queues"] == [name] and mapping["BatchSize"] == 10
            for body in ("keep-a", "drop-b", "keep-poison"):
                await publish(channel, name, body.encode())
            seen = await asyncio.to_thread(wait_until, lambda: any("keep-poison True" in b for b in bodies()), 30)
            assert seen, bodies()
            await asyncio.sleep(1.5)
            left = await depth(channel, name)
            await asyncio.to_thread(lam.delete_event_source_mapping, UUID=mapping["UUID"])
            return name, left

    name, left = run(work)
    got = bodies()
    assert f"aws:rmq {name}::/ keep-a False" in got and f"aws:rmq {name}::/ keep-poison True" in got
    assert not any("drop-b" in b for b in got)  # filtered out: acknowledged without an invocation
    assert left == 0
    brokers(server.data_dir, "remove", broker)
    brokers(server.data_dir, "remove", secret)


def test_a_mapping_throttled_or_disabled_loses_nothing(rabbit, server, lam, fname):
    """A RabbitMQ mapping whose function is throttled (reserved concurrency 0) returns its batches to the queue;
    disabled, it stops consuming; raised and enabled again, every message arrives once."""
    from tests.server import create_python_function, wait_until

    create_python_function(lam, fname, PRINTING)
    lam.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=0)
    broker = f"arn:aws:mq:us-east-1:000000000000:broker:{fname[:40]}:b-{secrets.token_hex(8)}"
    secret = f"arn:aws:secretsmanager:us-east-1:000000000000:secret:{fname[:40]}"
    assert brokers(server.data_dir, "add", broker, "--url", "amqp://127.0.0.1:5672").returncode == 0
    assert brokers(server.data_dir, "add-secret", secret, "--username", "guest", "--password-file", "-",
                   stdin="guest").returncode == 0

    def bodies() -> list[str]:
        out = subprocess.run([sys.executable, "-m", "lambdad", "logs", fname, "--data-dir", str(server.data_dir)],
                             capture_output=True, text=True, timeout=60)
        return [line.rsplit(" ", 2)[1] for line in out.stdout.splitlines() if "BODY " in line]

    async def work() -> tuple[list[str], int, int]:
        async with queue() as (channel, [name]):
            mapping = await asyncio.to_thread(
                lam.create_event_source_mapping, EventSourceArn=broker, FunctionName=fname, Queues=[name],
                BatchSize=3, SourceAccessConfigurations=[{"Type": "BASIC_AUTH", "URI": secret}])
            uuid = mapping["UUID"]
            sent = [f"t{i}" for i in range(5)]
            for body in sent:
                await publish(channel, name, body.encode())
            await asyncio.sleep(4)
            throttled = (await asyncio.to_thread(lam.get_event_source_mapping, UUID=uuid))["LastProcessingResult"]
            assert "throttled" in throttled and bodies() == []
            await asyncio.to_thread(lam.update_event_source_mapping, UUID=uuid, Enabled=False)
            await asyncio.sleep(2)  # the poller stops; what it held goes back to the queue
            waiting = await depth(channel, name)
            await asyncio.to_thread(lam.put_function_concurrency, FunctionName=fname,
                                    ReservedConcurrentExecutions=2)
            await asyncio.sleep(2)
            assert bodies() == []  # disabled: nothing invoked
            await asyncio.to_thread(lam.update_event_source_mapping, UUID=uuid, Enabled=True)
            assert await asyncio.to_thread(wait_until, lambda: len(bodies()) >= 5, 30), bodies()
            await asyncio.sleep(1.5)
            left = await depth(channel, name)
            await asyncio.to_thread(lam.delete_event_source_mapping, UUID=uuid)
            return sent, waiting, left

    sent, waiting, left = run(work)
    assert waiting == 5 and left == 0
    assert sorted(bodies()) == sorted(sent)  # each once
    brokers(server.data_dir, "remove", broker)
    brokers(server.data_dir, "remove", secret)


# prints each body, then takes 1.5 s more: a batch is acknowledged well after its lines reached the log (written
# every 0.2 s), so a kill -9 cannot lose the log of a batch the broker was told is done
SLOW_PRINTING = '''import base64, time

def handler(event, context):
    for key, records in event["rmqMessagesByQueue"].items():
        for r in records:
            print("BODY", event["eventSource"], key, base64.b64decode(r["data"]).decode(), r["redelivered"])
    time.sleep(1.5)
'''


def test_a_kill_mid_stream_loses_nothing(rabbit, tmp_path: Path, fname):
    """kill -9 of the server while a RabbitMQ mapping works through a queue: the mapping is there after the
    restart, what was not acknowledged comes back from the broker once it sees the connection is dead, and every
    message reaches the function."""
    import signal

    from tests.server import Server, create_python_function, wait_until

    srv = Server(tmp_path / "data").start()
    try:
        lam = srv.client()
        create_python_function(lam, fname, SLOW_PRINTING)
        broker = f"arn:aws:mq:us-east-1:000000000000:broker:{fname[:40]}:b-{secrets.token_hex(8)}"
        secret = f"arn:aws:secretsmanager:us-east-1:000000000000:secret:{fname[:40]}"
        # a short heartbeat: the broker notices the killed server's connection within seconds (two missed
        # heartbeats) and puts back the batch it held unacknowledged, instead of after the default minute or two
        assert brokers(srv.data_dir, "add", broker, "--url", "amqp://127.0.0.1:5672?heartbeat=2").returncode == 0
        assert brokers(srv.data_dir, "add-secret", secret, "--username", "guest", "--password-file", "-",
                       stdin="guest").returncode == 0

        def bodies() -> set[str]:
            out = subprocess.run([sys.executable, "-m", "lambdad", "logs", fname, "--data-dir", str(srv.data_dir)],
                                 capture_output=True, text=True, timeout=60)
            return {line.rsplit(" ", 2)[1] for line in out.stdout.splitlines() if "BODY " in line}

        async def work() -> tuple[set[str], int]:
            async with queue() as (channel, [name]):
                sent = {f"k{i}" for i in range(8)}
                for body in sorted(sent):
                    await publish(channel, name, body.encode())
                await asyncio.to_thread(
                    lam.create_event_source_mapping, EventSourceArn=broker, FunctionName=fname, Queues=[name],
                    BatchSize=2, SourceAccessConfigurations=[{"Type": "BASIC_AUTH", "URI": secret}])
                assert await asyncio.to_thread(wait_until, lambda: len(bodies()) >= 2, 30)
                await asyncio.to_thread(srv.stop, signal.SIGKILL)  # mid-stream: a batch may be in flight
                await asyncio.to_thread(srv.start)
                assert await asyncio.to_thread(wait_until, lambda: bodies() >= sent, 60), bodies()
                await asyncio.sleep(1.0)
                return sent, await depth(channel, name)

        sent, left = run(work)
        assert bodies() == sent and left == 0  # at least once each, none lost
    finally:
        srv.stop()
