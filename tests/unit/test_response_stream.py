"""Response streaming's pure parts: the event-stream writer (read back by botocore's own parser), the stream
between the Runtime API and its reader (order, back-pressure, end), the sink's limits and error trailers, and the
HTTP integration prelude that function URLs read."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from botocore.eventstream import EventStreamBuffer

from lambdad.api.eventstream import event_message, payload_chunk
from lambdad.invoke.service import InvokeOutcome
from lambdad.invoke.streaming import PreludeError, StreamedInvocation, read_http_prelude
from lambdad.sandbox.response_stream import HIGH_WATER, ResponseStream, StreamSink, error_details
from lambdad.sandbox.spec import InvocationResult


def test_event_stream_messages_parse_with_botocore() -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(payload_chunk(b"\x00binary\xff") + event_message(
        "InvokeComplete", {"ErrorCode": "Error", "ErrorDetails": "boom", "LogResult": None}))
    chunk, complete = list(buffer)
    assert chunk.headers == {":event-type": "PayloadChunk", ":content-type": "application/octet-stream",
                             ":message-type": "event"}
    assert chunk.payload == b"\x00binary\xff"
    assert complete.headers[":event-type"] == "InvokeComplete"
    assert json.loads(complete.payload) == {"ErrorCode": "Error", "ErrorDetails": "boom"}


def test_stream_delivers_in_order_and_pauses_its_writer_past_the_high_water_mark() -> None:
    async def run() -> None:
        stream = ResponseStream()
        drained: list[bool] = []
        stream.on_drain = lambda: drained.append(True)
        stream.open("text/plain")
        assert stream.write(b"a") is True
        assert stream.write(b"b" * HIGH_WATER) is False  # the writer must wait for on_drain
        stream.end()
        received = [data async for data in stream.chunks()]
        assert received == [b"a" + b"b" * HIGH_WATER]
        assert drained == [True]
        assert stream.write(b"late") is True and stream.size == HIGH_WATER + 1  # nothing is taken after the end

    asyncio.run(run())


def test_an_abandoned_stream_lets_its_writer_go_on() -> None:
    stream = ResponseStream()
    drained: list[bool] = []
    stream.on_drain = lambda: drained.append(True)
    assert stream.write(b"x" * (HIGH_WATER + 1)) is False
    stream.abandon()  # the reader went away
    assert drained == [True]
    assert stream.write(b"y" * (HIGH_WATER + 1)) is True  # dropped, never held back


def test_sink_gathers_a_buffered_answer_and_refuses_one_over_its_limit() -> None:
    answers: list[tuple[bytes, str | None, str]] = []
    sink = StreamSink(None, "text/plain", lambda *answer: answers.append(answer), buffered_limit=10)
    sink.write(b"hello ")
    sink.write(b"you")
    sink.close(None, None)
    assert answers == [(b"hello you", None, "success")]
    answers.clear()
    sink = StreamSink(None, None, lambda *answer: answers.append(answer), buffered_limit=10)
    sink.write(b"x" * 11)
    sink.write(b"more")  # read and dropped
    sink.close(None, None)
    assert sink.too_large and len(answers) == 1
    assert json.loads(answers[0][0]) == {
        "errorMessage": "Response payload size exceeded maximum allowed payload size (10 bytes).",
        "errorType": "Function.ResponseSizeTooLarge"}


def test_sink_reads_the_error_trailers() -> None:
    answers: list[tuple[bytes, str | None, str]] = []
    stream = ResponseStream()
    sink = StreamSink(stream, "text/plain", lambda *answer: answers.append(answer), buffered_limit=10)
    assert stream.opened and stream.content_type == "text/plain"
    error = json.dumps({"errorType": "Custom.Broken", "errorMessage": "half-way"}).encode()
    sink.close("Custom.Broken", base64.b64encode(error).decode())
    assert answers == [(error, "Unhandled", "error")] and stream.ended
    assert error_details(answers[0][0]) == ("Custom.Broken", "half-way")
    assert error_details(b"not json") == ("Unhandled", "not json")


def _streamed(body: list[bytes], content_type: str) -> StreamedInvocation:
    stream = ResponseStream()
    stream.open(content_type)
    for data in body:
        stream.write(data)
    stream.end()
    loop = asyncio.get_running_loop()
    running: asyncio.Future[InvokeOutcome] = loop.create_future()
    running.set_result(InvokeOutcome("rid", "$LATEST", InvocationResult(b"", None, "")))
    return StreamedInvocation("$LATEST", stream, running)  # type: ignore[arg-type]


def test_http_prelude_gives_the_metadata_and_the_body_after_it() -> None:
    async def run() -> None:
        prelude = json.dumps({"statusCode": 302, "headers": {"Location": "/x"}, "cookies": ["a=b"]}).encode()
        streamed = _streamed([prelude[:5], prelude[5:] + b"\0" * 4, b"\0" * 4 + b"body"],
                             "application/vnd.awslambda.http-integration-response")
        metadata, body = await read_http_prelude(streamed)
        assert metadata == {"statusCode": 302, "headers": {"Location": "/x"}, "cookies": ["a=b"]}
        assert b"".join([data async for data in body]) == b"body"
        metadata, body = await read_http_prelude(_streamed([b"plain"], "text/plain"))
        assert metadata is None and [data async for data in body] == [b"plain"]
        with pytest.raises(PreludeError):
            await read_http_prelude(_streamed([b"[1]" + b"\0" * 8], "application/vnd.awslambda.http-integration-response"))

    asyncio.run(run())
