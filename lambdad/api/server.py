"""The control API's HTTP/1.1 server: an asyncio protocol over httptools (llhttp, the C parser uvicorn uses).

Every Invoke crosses this server, so it is the thinnest HTTP layer that is still a complete HTTP/1.1 server for
what API clients send: keep-alive and ``Connection: close``, HTTP/1.0, pipelined requests (answered in order;
reading pauses while more than a few wait), chunked request bodies, ``Expect: 100-continue``, a body limit
(refused by its Content-Length before the body is read, or as it streams in), write back-pressure, idle
connections closed after ``idle_timeout`` (75 s, as aiohttp's keep-alive timeout; a request begun but not
finished counts as idle, so a client that stalls half-way cannot hold a connection forever), and a bounded
graceful stop. What it does not do: TLS, HTTP/2, response streaming (responses are whole byte strings; the
largest, a code download, is read from disk off the event loop first).

A bare aiohttp server costs ~140–170 µs of CPU per request on this machine and this one ~70 µs (a bare
``asyncio.Protocol`` echo ~30 µs); an Invoke goes through it once (``benchmarks/breakdown.py``;
docs/performance.md, "Where the time goes").

The application is one coroutine function, ``HttpRequest -> HttpResponse``; it must answer every request
(an exception it lets through becomes a bare 500 and is logged).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from typing import Awaitable, Callable, Sequence

import httptools

__all__ = ["HttpRequest", "HttpResponse", "HttpServer", "App"]

log = logging.getLogger(__name__)

_MAX_PIPELINED = 8  # requests read ahead on one connection before it stops reading
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_NOTED_LENGTHS = frozenset(len(name) for name in (b"host", b"content-length", b"expect"))  # headers read here


@dataclass(slots=True)
class HttpRequest:
    method: str
    target: str  # the request target as received: path and query, percent-encoding intact
    headers: list[tuple[str, str]]  # as received: names in their case, a name may repeat (latin-1 decoded)
    body: bytes
    keep_alive: bool
    host: str  # the Host header ("" if none)


@dataclass(slots=True)
class HttpResponse:
    status: int
    body: bytes = b""
    headers: Sequence[tuple[str, str]] = field(default_factory=tuple)


App = Callable[[HttpRequest], Awaitable[HttpResponse]]


class _Clock:
    """The Date header, formatted once per second."""

    def __init__(self) -> None:
        self._second = 0
        self._line = b""

    def date_line(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._line = b"Date: " + formatdate(now, usegmt=True).encode("ascii") + b"\r\n"
        return self._line


_CLOCK = _Clock()
_STATUS_LINES = {s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode("ascii")) for s in HTTPStatus}


def _head(response: HttpResponse, close: bool) -> bytes:
    """The status line and headers of ``response`` on the wire."""
    status_line = _STATUS_LINES.get(response.status) or b"HTTP/1.1 %d Unknown\r\n" % response.status
    fields = "".join([f"{name}: {value}\r\n" for name, value in response.headers])
    if fields.count("\n") != len(response.headers) or "\r" in fields.replace("\r\n", ""):
        # a value that could split the header is dropped
        fields = "".join(f"{name}: {value}\r\n" for name, value in response.headers
                         if "\n" not in value and "\r" not in value)
    tail = b"Content-Length: %d\r\n%s\r\n" % (len(response.body), b"Connection: close\r\n" if close else b"")
    return b"".join((status_line, _CLOCK.date_line(), fields.encode("latin-1", "replace"), tail))


class _Connection(asyncio.Protocol):
    """One client connection: parse requests, run the app on each, answer in order."""

    def __init__(self, server: "HttpServer") -> None:
        self._server = server
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._pending: collections.deque[HttpRequest] = collections.deque()
        self._running: asyncio.Task[None] | None = None
        self._can_write: asyncio.Future[None] | None = None  # set while the transport's buffer is full
        self._reading = True
        self.last_active = server.now()
        # the request being parsed
        self._url = b""
        self._headers: list[tuple[str, str]] = []
        self._host = ""
        self._length: int | None = None  # Content-Length, when given
        self._expect: str | None = None
        self._body: list[bytes] = []
        self._size = 0
        self._refused = False  # its body is over the limit: answered and closed once the headers are in

    # -- asyncio.Protocol -------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a stream transport (uvloop's is not a subclass)
        self._server._connections.add(self)

    def data_received(self, data: bytes) -> None:
        self.last_active = self._server.now()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, b"Protocol upgrades are not supported.")
        except httptools.HttpParserError:
            if not self._refused:
                self._fail(400, b"Malformed HTTP request.")

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._pending.clear()
        self._server._connections.discard(self)
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)

    def pause_writing(self) -> None:
        if self._can_write is None or self._can_write.done():
            self._can_write = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)

    # -- httptools callbacks ----------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._host = ""
        self._length = None
        self._expect = None
        self._body = []
        self._size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        text = value.decode("latin-1")
        self._headers.append((name.decode("latin-1"), text))
        if len(name) in _NOTED_LENGTHS:
            noted = name.lower()
            if noted == b"host":
                self._host = text
            elif noted == b"content-length":
                self._length = int(text) if text.isdigit() else None
            elif noted == b"expect":
                self._expect = text

    def on_headers_complete(self) -> None:
        if self._length is not None and self._length > self._server.max_body:
            self._refuse()
            return
        if self._expect is not None and self._expect.lower() == "100-continue" \
                and self._parser.get_http_version() == "1.1" and self._transport is not None:
            self._transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        if self._refused:
            return
        self._size += len(body)
        if self._size > self._server.max_body:
            self._refuse()
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        request = HttpRequest(self._parser.get_method().decode("latin-1"), self._url.decode("latin-1"),
                              self._headers, b"".join(self._body), self._parser.should_keep_alive(), self._host)
        self._body = []
        if self._running is None:
            self._running = asyncio.get_running_loop().create_task(self._serve(request))
        else:
            self._pending.append(request)
            if len(self._pending) >= _MAX_PIPELINED and self._reading and self._transport is not None:
                self._reading = False
                self._transport.pause_reading()

    # -- answering --------------------------------------------------------------------------------------------

    async def _serve(self, request: HttpRequest | None) -> None:
        while request is not None:
            try:
                response = await self._server.app(request)
            except Exception:  # the app's boundary should have caught it: still answer
                log.exception("%s %s failed", request.method, request.target)
                response = HttpResponse(500, b"Internal Server Error")
            if self._can_write is not None:
                await self._can_write  # the client is not reading: do not pile responses up in memory
            if self._transport is None:
                break
            close = not request.keep_alive or self._server.closing
            self._write(response, close)
            self.last_active = self._server.now()  # idle from its last answer on, not from its request
            if close:
                self._transport.close()
                self._transport = None
                break
            request = self._pending.popleft() if self._pending else None
            if not self._reading and len(self._pending) < _MAX_PIPELINED and self._transport is not None:
                self._reading = True
                self._transport.resume_reading()
        self._running = None

    def _write(self, response: HttpResponse, close: bool) -> None:
        assert self._transport is not None
        head, body = _head(response, close), response.body
        if len(body) < 65536:
            self._transport.write(head + body)  # one write, one segment
        else:
            self._transport.writelines((head, body))  # no copy of a large body

    def _refuse(self) -> None:
        self._refused = True
        self._body = []
        if self._transport is not None:
            self._write(self._server.too_large(), close=True)
            self._transport.close()
            self._transport = None

    def _fail(self, status: int, message: bytes) -> None:
        if self._transport is not None:
            self._write(HttpResponse(status, message, (("Content-Type", "text/plain"),)), close=True)
            self._transport.close()
            self._transport = None

    @property
    def idle(self) -> bool:
        return self._running is None


class HttpServer:
    """A listening HTTP server for ``app``. ``start`` binds it; ``aclose`` stops it gracefully."""

    def __init__(self, app: App, *, max_body: int, too_large: Callable[[], HttpResponse],
                 idle_timeout: float = 75.0) -> None:
        self.app = app
        self.max_body = max_body
        self.too_large = too_large  # the answer to a body over max_body (the connection is closed after it)
        self.idle_timeout = idle_timeout
        self.closing = False
        self.now = time.monotonic
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[_Connection] = set()
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0: any free port); returns the port."""
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _Connection(self), host, port, reuse_address=True)
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        return self._server.sockets[0].getsockname()[1]

    async def _sweep(self) -> None:
        """Close connections that sent nothing for ``idle_timeout`` seconds while no request of theirs was being
        answered (checked a few times per timeout, not per request: the request path only notes the time)."""
        while True:
            await asyncio.sleep(min(15.0, self.idle_timeout / 3))
            cutoff = self.now() - self.idle_timeout
            for connection in list(self._connections):
                if connection.idle and connection.last_active < cutoff and connection._transport is not None:
                    connection._transport.close()

    async def aclose(self, timeout: float = 5.0) -> None:
        """Stop listening, let requests being answered finish for up to ``timeout`` seconds, close everything."""
        self.closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._server is not None:
            self._server.close()
        deadline = time.monotonic() + timeout
        for connection in list(self._connections):
            if connection.idle and connection._transport is not None:
                connection._transport.close()
        while any(not c.idle for c in self._connections) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for connection in list(self._connections):
            if connection._running is not None:
                connection._running.cancel()
            if connection._transport is not None:
                connection._transport.abort()
        self._connections.clear()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
