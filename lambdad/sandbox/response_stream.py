"""A function's streamed response, from the runtime's chunked POST to whoever reads it.

Two halves meet here:

- ``ResponseStream``, made by a caller that reads a response as it is written (InvokeWithResponseStream, and
  function URLs in RESPONSE_STREAM mode): it rides on the ``Invocation`` (``Invocation.stream``). The environment
  writes into it; the caller iterates ``chunks()``. ``opened`` is set once the runtime began a streamed answer
  (its ``Content-Type`` is then known) and ``ended`` once nothing more will be written — because the runtime's
  stream ended, or because the invocation completed otherwise (a timeout, a crash, a buffered answer): the caller
  ends it then with ``end()``, so a reader never waits on a stream nobody writes any more.
- ``StreamSink``, what the Runtime API server writes a runtime's streamed POST into (one per such POST, given by
  ``Environment.open_stream``). It counts the bytes against the limit and ends the invocation: through the
  caller's ``ResponseStream`` when there is one (the chunks went out as they came), or, for a caller that did
  not ask for a stream (Invoke, an event, a destination), gathered into one buffered answer, as Lambda does.

Limits, as Lambda's: a streamed response may be at most ``stream_limit`` bytes (200 MiB by default, Lambda's
since July 2025; 20 MiB before), a buffered one at most 6 MB (``MAX_RESPONSE_BYTES``). Past it the invocation
ends at once with ``Function.ResponseSizeTooLarge``; what the runtime still sends is read and dropped, and its
POST is answered 413.

Back-pressure: ``write`` returns False when more than ``HIGH_WATER`` bytes wait for the reader; the Runtime API
connection then stops reading from the runtime until the reader has taken them (``on_drain``), so a slow client
slows the function's writes instead of filling lambdad's memory.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import json
from typing import AsyncIterator, Callable

__all__ = ["ResponseStream", "StreamSink", "STREAM_LIMIT_BYTES", "HIGH_WATER", "error_details"]

STREAM_LIMIT_BYTES = 200 * 1024 * 1024  # Lambda's streamed response limit (20 MiB until July 2025)
HIGH_WATER = 1024 * 1024  # bytes waiting for the reader before the runtime's connection stops being read

# (payload, function_error, status): how an invocation ends, as Environment._answered takes it
Finish = Callable[[bytes, "str | None", str], None]


class ResponseStream:
    """The chunks of one streamed response, in order, for one reader."""

    __slots__ = ("content_type", "limit", "_chunks", "_waiting", "_waiter", "_ended", "_opened", "on_drain",
                 "size", "_abandoned")

    def __init__(self, limit: int = STREAM_LIMIT_BYTES) -> None:
        self.limit = limit
        self.content_type: str | None = None  # the runtime's Content-Type, once it opened the stream
        self.size = 0  # bytes written so far
        self._chunks: collections.deque[bytes] = collections.deque()
        self._waiting = 0  # bytes written, not read yet
        self._waiter: asyncio.Future[None] | None = None  # the reader, waiting for a chunk or the end
        self._ended = False
        self._opened = False
        self._abandoned = False  # the reader went away
        self.on_drain: Callable[[], None] | None = None  # the writer may write again (set by the Runtime API side)

    @property
    def opened(self) -> bool:
        """The runtime began a streamed answer."""
        return self._opened

    @property
    def ended(self) -> bool:
        return self._ended

    def open(self, content_type: str | None) -> None:
        self._opened = True
        self.content_type = content_type
        self._wake()

    def write(self, data: bytes) -> bool:
        """Queue ``data`` for the reader; False when the writer should wait for ``on_drain``."""
        if self._ended or self._abandoned or not data:
            return True
        self._chunks.append(data)
        self.size += len(data)
        self._waiting += len(data)
        self._wake()
        return self._waiting <= HIGH_WATER

    def abandon(self) -> None:
        """The reader went away: what waits and what comes is dropped, and the writer is never held back again
        (the function runs to its end, as on Lambda, rather than hang on a full stream until its timeout)."""
        self._abandoned = True
        self._chunks.clear()
        held_back = self._waiting > HIGH_WATER
        self._waiting = 0
        if held_back and self.on_drain is not None:
            self.on_drain()

    def end(self) -> None:
        """Nothing more will be written (idempotent)."""
        if not self._ended:
            self._ended = True
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait_opened(self) -> None:
        """Until the runtime opened the stream, or the stream ended without it."""
        while not self._opened and not self._ended:
            await self._wait()

    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def chunks(self) -> AsyncIterator[bytes]:
        """Every chunk as it is written (several waiting are given as one), until the end."""
        while True:
            if self._chunks:
                data = self._chunks.popleft() if len(self._chunks) == 1 else b"".join(self._chunks)
                self._chunks.clear()
                drained = self._waiting > HIGH_WATER
                self._waiting = 0
                if drained and self.on_drain is not None:
                    self.on_drain()
                yield data
                continue
            if self._ended:
                return
            await self._wait()


def error_details(payload: bytes) -> tuple[str, str]:
    """The error type and message of an error payload (``{"errorType", "errorMessage"}``), for InvokeComplete's
    ErrorCode and ErrorDetails; the raw text as the message when it is not such JSON."""
    try:
        document = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return "Unhandled", payload.decode("utf-8", "replace")
    if not isinstance(document, dict):
        return "Unhandled", payload.decode("utf-8", "replace")
    return str(document.get("errorType") or "Unhandled"), str(document.get("errorMessage") or "")


def _error_payload(error_type: str, message: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type}).encode()


class StreamSink:
    """One runtime's streamed ``POST …/response``: where its body goes as it arrives (see the module's docstring)."""

    __slots__ = ("_stream", "_finish", "_buffered", "_size", "_limit", "too_large", "_done")

    def __init__(self, stream: ResponseStream | None, content_type: str | None, finish: Finish,
                 buffered_limit: int) -> None:
        self._stream = stream
        self._finish = finish
        self._buffered: list[bytes] | None = None if stream is not None else []
        self._size = 0
        self._limit = stream.limit if stream is not None else buffered_limit
        self.too_large = False
        self._done = False
        if stream is not None:
            stream.open(content_type)

    def set_drain(self, resume: Callable[[], None]) -> None:
        if self._stream is not None:
            self._stream.on_drain = resume

    def write(self, data: bytes) -> bool:
        """A piece of the runtime's body; False when the runtime's connection should pause (the reader lags)."""
        if self._done:
            return True
        self._size += len(data)
        if self._size > self._limit:
            self.too_large = True
            self._end(_error_payload(
                "Function.ResponseSizeTooLarge",
                f"Response payload size exceeded maximum allowed payload size ({self._limit} bytes)."),
                "Unhandled", "error")
            return True
        if self._buffered is not None:
            self._buffered.append(data)
            return True
        assert self._stream is not None
        return self._stream.write(data)

    def close(self, error_type: str | None, error_body: str | None) -> None:
        """The runtime's body ended, with its error trailers if it failed mid-stream."""
        if self._done:
            return
        if error_type is not None or error_body is not None:
            self._end(_trailer_error(error_type, error_body), "Unhandled", "error")
        elif self._buffered is not None:
            self._end(b"".join(self._buffered), None, "success")
        else:
            self._end(b"", None, "success")

    def _end(self, payload: bytes, function_error: str | None, status: str) -> None:
        self._done = True
        self._buffered = None
        if self._stream is not None:
            self._stream.end()
        self._finish(payload, function_error, status)


def _trailer_error(error_type: str | None, error_body: str | None) -> bytes:
    """The error a runtime reported in its trailers: ``Lambda-Runtime-Function-Error-Body`` is the error's JSON,
    base64-encoded (as AWS's runtime clients send it); taken as it is when it is not base64."""
    body = b""
    if error_body:
        try:
            body = base64.b64decode(error_body, validate=True)
        except (binascii.Error, ValueError):
            body = error_body.encode("utf-8", "replace")
    if not body:
        return _error_payload(error_type or "Runtime.Unknown", "Unknown application error occurred")
    return body
