"""The control API's HTTP/1.1 server: an asyncio protocol over httptools (llhttp, the C parser uvicorn uses).

Every Invoke crosses this server, so it is the thinnest HTTP layer that is still a complete HTTP/1.1 server for
what API clients send: keep-alive and ``Connection: close``, HTTP/1.0, pipelined requests (answered in order;
reading pauses while more than a few wait), chunked request bodies, ``Expect: 100-continue``, a body limit
(refused by its Content-Length before the body is read, or as it streams in), write back-pressure, idle
connections closed after ``idle_timeout`` (75 s, as aiohttp's keep-alive timeout), and a bounded graceful stop.

Limits, for clients that are not trusted until their signature verifies (each a ``Limits`` field, documented in
docs/security.md, "Limits of the API"):

- the request line and headers together: at most ``max_head`` bytes, counted as they arrive (the parser would
  otherwise gather an endless header); past it 431, or 414 when the URL alone is over ``max_url``;
- the body: at most what ``body_limit(method, target, headers)`` allows for that request (its operation),
  refused by Content-Length before it is read or as it streams in (``too_large``);
- a body over ``precheck_over`` bytes (or chunked) is not read until ``precheck(method, target, headers)`` has
  passed (the access key is known, the clock is right): reading pauses, ``100 Continue`` waits for it, and a
  refusal is answered without reading a byte of the body;
- the bodies held by all connections together (received, not yet answered): at most ``max_buffered`` bytes. A
  body is counted by its Content-Length as soon as its head is read (and its precheck passed), so a request
  that would go past the budget is refused before its client sends the body, and one admitted is never cut
  off half-way; a chunked body is counted as it arrives. Refused: ``too_busy`` (429, so SDKs retry);
- a request must arrive whole in time: its head within ``head_timeout`` seconds of its first byte, its body at
  ``min_rate`` bytes per second or better (a byte now and then does not keep it alive); past that 408;
- at most ``max_connections`` connections: at the cap, the connection that has waited longest between requests
  (or for its first) is closed to make room; when none waits, the new one is answered 503 and closed.

Responses are whole byte strings (the largest, a code download, is read from disk off the event loop first), or
a ``StreamedResponse``: its body an async iterator whose every item goes out as one HTTP/1.1 chunk as soon as it
is produced (``Transfer-Encoding: chunked``; InvokeWithResponseStream), the next one awaited only once the client
takes what was written (write back-pressure); a client that goes away ends the iterator (``aclose``). What it
does not do: TLS, HTTP/2.

A bare aiohttp server costs ~140–170 µs of CPU per request on this machine and this one ~70 µs (a bare
``asyncio.Protocol`` echo ~30 µs); an Invoke goes through it once (``benchmarks/breakdown.py``;
docs/performance.md, "Where the time goes").

The application is one coroutine function, ``HttpRequest -> HttpResponse``; it must answer every request
(an exception it lets through becomes a bare 500 and is logged).
"""

from __future__ import annotations

import asyncio
import socket
import collections
import logging
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from typing import AsyncIterator, Awaitable, Callable, Sequence

from lambdad.httpconn import BodyBudget, HttpConnection

__all__ = ["HttpRequest", "HttpResponse", "StreamedResponse", "HttpServer", "App", "Limits", "Precheck",
           "BodyLimit"]

log = logging.getLogger(__name__)

_MAX_PIPELINED = 8  # requests read ahead on one connection before it stops reading
_SWEEP_SECONDS = 1.0  # how often request deadlines and idle connections are checked
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_NOTED_LENGTHS = frozenset(len(name) for name in (b"host", b"content-length", b"expect", b"transfer-encoding"))


@dataclass(slots=True)
class HttpRequest:
    method: str
    target: str  # the request target as received: path and query, percent-encoding intact
    headers: list[tuple[str, str]]  # as received: names in their case, a name may repeat (latin-1 decoded)
    body: bytes
    keep_alive: bool
    host: str  # the Host header ("" if none)
    peer: str = ""  # the client's address (IPv4 or IPv6), "" when it has none (a Unix socket)


@dataclass(slots=True)
class HttpResponse:
    status: int
    body: bytes = b""
    headers: Sequence[tuple[str, str]] = field(default_factory=tuple)


@dataclass(slots=True)
class StreamedResponse:
    """A response whose body is written as it is produced, each item one HTTP chunk (see the module's docstring)."""

    status: int
    headers: Sequence[tuple[str, str]]
    body: AsyncIterator[bytes]


App = Callable[[HttpRequest], Awaitable["HttpResponse | StreamedResponse"]]
# may a request with this head send its body? None: yes; else the answer that refuses it
Precheck = Callable[[str, str, list[tuple[str, str]]], Awaitable[HttpResponse | None]]
BodyLimit = Callable[[str, str, list[tuple[str, str]]], int]


@dataclass(frozen=True)
class Limits:
    """What one server accepts from clients (see the module's docstring)."""

    max_head: int = 64 * 1024
    max_url: int = 16 * 1024
    max_connections: int = 1024
    max_buffered: int = 256 * 1024 * 1024
    head_timeout: float = 10.0
    min_rate: float = 64 * 1024  # bytes per second a body must at least arrive at
    precheck_over: int = 64 * 1024


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


def _stream_head(response: StreamedResponse, close: bool) -> bytes:
    """The status line and headers of a streamed response: chunked, no length."""
    status_line = _STATUS_LINES.get(response.status) or b"HTTP/1.1 %d Unknown\r\n" % response.status
    fields = "".join(f"{name}: {value}\r\n" for name, value in response.headers
                     if "\n" not in value and "\r" not in value)
    tail = b"Transfer-Encoding: chunked\r\n%s\r\n" % (b"Connection: close\r\n" if close else b"")
    return b"".join((status_line, _CLOCK.date_line(), fields.encode("latin-1", "replace"), tail))


class _Connection(HttpConnection):
    """One client connection: parse requests, run the app on each, answer in order."""

    def __init__(self, server: "HttpServer") -> None:
        super().__init__(server.budget, server.limits.max_head)
        self._server = server
        self._pending: collections.deque[HttpRequest] = collections.deque()
        self._running: asyncio.Task[None] | None = None
        self._can_write: asyncio.Future[None] | None = None  # set while the transport's buffer is full
        self.last_active = server.now()
        # the request being parsed
        self._url = b""
        self._headers: list[tuple[str, str]] = []
        self._host = ""
        self._length: int | None = None  # Content-Length, when given
        self._expect: str | None = None
        self._body: list[bytes] = []
        self._size = 0
        self._limit = server.max_body  # the body limit of the request being parsed
        self._refused = False  # answered with an error and closing: nothing more is read or served
        self.deadline: float | None = None  # the request being received must be whole by then
        self._admitting: asyncio.Task[None] | None = None  # the last precheck in progress (reading paused)
        self._held_requests: list[HttpRequest] = []  # complete while a precheck ran: served once all passed
        self._chunked = False
        self._peer = ""

    # -- asyncio.Protocol -------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a stream transport (uvloop's is not a subclass)
        server = self._server
        if len(server._connections) >= server.limits.max_connections and not server.evict_idle():
            self._fail(503, "Too many connections.")
            return
        server._connections.add(self)
        peer = transport.get_extra_info("peername")
        self._peer = peer[0] if isinstance(peer, tuple) and peer else ""

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self.last_active = self._server.now()
        self._parse(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._pending.clear()
        self._server._connections.discard(self)
        self._release_all()
        if self._admitting is not None:
            self._admitting.cancel()
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
        self.deadline = self.last_active + self._server.limits.head_timeout
        self._url = b""
        self._headers = []
        self._host = ""
        self._length = None
        self._expect = None
        self._chunked = False
        self._body = []
        self._size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self._server.limits.max_url and not self._refused:
            self._fail(414, "URI too long.")

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
            elif noted == b"transfer-encoding":
                self._chunked = True

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        server = self._server
        self._head_done()
        method, target = self._parser.get_method().decode("latin-1"), self._url.decode("latin-1")
        self._limit = server.body_limit(method, target, self._headers) if server.body_limit else server.max_body
        length = self._length
        if length is not None and length > self._limit:
            self._refuse()
            return
        # the body must arrive at min_rate or better, and at least as fast as a head
        self.deadline = self.last_active + max(server.limits.head_timeout, (length or 0) / server.limits.min_rate)
        continue_wanted = self._expect is not None and self._expect.lower() == "100-continue" \
            and self._parser.get_http_version() == "1.1"
        if server.precheck is not None and (self._chunked or (length or 0) > server.limits.precheck_over):
            # do not read the body of a request that will be refused anyway
            if self._transport is not None:
                self._transport.pause_reading()
            self._admitting = asyncio.get_running_loop().create_task(
                self._admit(self._admitting, method, target, list(self._headers), length, continue_wanted))
            return
        if length and not self._reserve(length):
            return
        if continue_wanted and self._transport is not None:
            self._transport.write(_CONTINUE)

    def _reserve(self, length: int) -> bool:
        """Count a body of ``length`` bytes against the server's budget before it is read (so that a request
        that does not fit is refused before its client sends it, and one admitted is never cut off half-way);
        False, and the request refused, when it does not fit."""
        if not self._hold(length):
            self._refuse(self._server.too_busy())
            return False
        return True

    async def _admit(self, before: "asyncio.Task[None] | None", method: str, target: str,
                     headers: list[tuple[str, str]], length: int | None, continue_wanted: bool) -> None:
        """Run the server's precheck on a request whose body is not read yet (after the one ``before`` it, when
        one request's data brought another's head); then reserve its body's bytes and read it, or refuse it. A
        request refused by the precheck never counted against the budget."""
        if before is not None:
            await before
        if self._transport is None or self._refused:
            return
        try:
            refusal = await self._server.precheck(method, target, headers)  # type: ignore[misc]
        except Exception:  # the precheck must answer; a failure of its own refuses nothing
            log.exception("precheck of %s %s failed", method, target)
            refusal = None
        if self._admitting is asyncio.current_task():
            self._admitting = None
        if self._transport is None:
            return
        if refusal is not None:
            self._refuse(refusal)
            return
        if length and not self._reserve(length):
            return
        if continue_wanted:
            self._transport.write(_CONTINUE)
        if self._admitting is None:  # the last precheck: what completed meanwhile is served, in order
            held, self._held_requests = self._held_requests, []
            for request in held:
                self._dispatch(request)
            if self._reading and self._transport is not None:
                self._transport.resume_reading()

    def on_body(self, body: bytes) -> None:
        if self._refused:
            return
        n = len(body)
        self._size += n
        if self._size > self._limit:
            self._refuse()
            return
        if self._chunked:  # no length to reserve ahead: each chunk is counted as it comes, and buys its time
            if not self._hold(n):
                self._refuse(self._server.too_busy())
                return
            if self.deadline is not None:
                self.deadline += n / self._server.limits.min_rate
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._in_body = False
        self.deadline = None
        if self._refused:
            return
        request = HttpRequest(self._parser.get_method().decode("latin-1"), self._url.decode("latin-1"),
                              self._headers, b"".join(self._body), self._parser.should_keep_alive(), self._host,
                              self._peer)
        self._body = []
        if self._admitting is not None:
            self._held_requests.append(request)  # served once the precheck passes
            return
        self._dispatch(request)

    def _dispatch(self, request: HttpRequest) -> None:
        if self._running is None:
            self._running = asyncio.get_running_loop().create_task(self._serve(request))
        else:
            self._pending.append(request)
            if len(self._pending) >= _MAX_PIPELINED:
                self._pause_reading()

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
            if type(response) is HttpResponse:
                self._write(response, close)
            else:
                assert isinstance(response, StreamedResponse)
                await self._write_stream(response, close)
                if self._transport is None:
                    break
            if request.body:
                self._release(len(request.body))
            self.last_active = self._server.now()  # idle from its last answer on, not from its request
            if close:
                self._transport.close()
                self._transport = None
                break
            request = self._pending.popleft() if self._pending else None
            if not self._reading and len(self._pending) < _MAX_PIPELINED:
                self._resume_reading()
        self._running = None

    async def _write_stream(self, response: StreamedResponse, close: bool) -> None:
        """Write ``response``'s head, then each item of its body as one chunk as soon as it comes, then the last
        chunk; the next item is awaited only once the client takes what was written. A client that goes away
        meanwhile ends the body's iterator."""
        assert self._transport is not None
        self._transport.write(_stream_head(response, close))
        body = response.body
        try:
            async for data in body:
                transport = self._transport
                if transport is None:
                    return
                if data:
                    transport.writelines((b"%x\r\n" % len(data), data, b"\r\n"))
                self.last_active = self._server.now()
                if self._can_write is not None and not self._can_write.done():
                    await self._can_write
            if self._transport is not None:
                self._transport.write(b"0\r\n\r\n")
        except Exception:  # the body failed half-way: nothing valid can follow on this connection
            log.exception("a streamed response failed")
            if self._transport is not None:
                self._transport.close()
                self._transport = None
        finally:
            aclose = getattr(body, "aclose", None)
            if aclose is not None:
                await aclose()

    def _write(self, response: HttpResponse, close: bool) -> None:
        assert self._transport is not None
        head, body = _head(response, close), response.body
        if len(body) < 65536:
            self._transport.write(head + body)  # one write, one segment
        else:
            self._transport.writelines((head, body))  # no copy of a large body

    def _refuse(self, response: HttpResponse | None = None) -> None:
        """Answer ``response`` (the body-too-large answer by default) and close: nothing more is read."""
        self._refused = True
        self._body = []
        self.deadline = None
        if self._transport is not None:
            self._write(response or self._server.too_large(self._limit), close=True)
            self._transport.close()
            self._transport = None

    def _fail(self, status: int, message: str) -> None:
        if not self._refused:
            self._refuse(HttpResponse(status, message.encode(), (("Content-Type", "text/plain"),)))

    @property
    def idle(self) -> bool:
        return self._running is None

    @property
    def waiting(self) -> bool:
        """Open, between requests (or before its first): nothing of a request received, nothing to answer."""
        return self._transport is not None and self._running is None and self.deadline is None \
            and self._admitting is None and not self._in_body


class HttpServer:
    """A listening HTTP server for ``app``. ``start`` binds it; ``aclose`` stops it gracefully."""

    def __init__(self, app: App, *, max_body: int, too_large: Callable[[int], HttpResponse],
                 idle_timeout: float = 75.0, limits: Limits = Limits(), body_limit: BodyLimit | None = None,
                 precheck: Precheck | None = None, too_busy: Callable[[], HttpResponse] | None = None) -> None:
        self.app = app
        self.max_body = max_body  # the largest body of any request; body_limit may allow less per request
        self.too_large = too_large  # the answer to a body over its limit, given the limit (then the connection closes)
        self.idle_timeout = idle_timeout
        self.limits = limits
        self.body_limit = body_limit
        self.precheck = precheck
        self.too_busy = too_busy or (lambda: HttpResponse(429, b"Too many request bytes in flight.",
                                                          (("Retry-After", "1"),)))
        self.budget = BodyBudget(limits.max_buffered)  # body bytes held by all connections (not yet answered)
        self.closing = False
        self.now = time.monotonic
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[_Connection] = set()
        self._waiting: collections.deque[_Connection] = collections.deque()  # at the last sweep, longest first
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0: any free port); returns the port."""
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _Connection(self), host, port, reuse_address=True)
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    async def serve_socket(self, listener: socket.socket) -> asyncio.AbstractServer:
        """Serve a listening socket opened elsewhere as well (in an environment's network namespace), under the
        same limits; the caller closes the returned server."""
        listener.setblocking(False)
        return await asyncio.get_running_loop().create_server(lambda: _Connection(self), sock=listener)

    def evict_idle(self) -> bool:
        """Make room for a new connection at the cap by closing the one that has waited longest without a
        request in progress (as nginx reuses its keep-alive connections): a client that holds connections open
        and silent cannot lock others out, while connections with a request under way are never cut. Candidates
        are those already waiting at the last sweep (so one connection costs O(1) here, not a scan); False when
        there is none."""
        while self._waiting:
            victim = self._waiting.popleft()
            if victim.waiting and victim in self._connections:
                self._connections.discard(victim)  # its connection_lost comes a loop iteration later
                assert victim._transport is not None
                victim._transport.close()
                victim._transport = None
                return True
        return False

    async def _sweep(self) -> None:
        """Answer 408 to requests that did not arrive whole by their deadline, and close connections that sent
        nothing for ``idle_timeout`` seconds while no request of theirs was being answered (checked every
        second, not per request: the request path only notes the time). Notes the connections waiting between
        requests, longest first, for ``evict_idle``."""
        while True:
            await asyncio.sleep(min(_SWEEP_SECONDS, self.idle_timeout / 3))
            now = self.now()
            cutoff = now - self.idle_timeout
            for connection in list(self._connections):
                if connection._transport is None:
                    continue
                if connection.deadline is not None and connection.deadline < now \
                        and connection._admitting is None:
                    connection._fail(408, "The request did not arrive in time.")
                elif connection.idle and connection.last_active < cutoff:
                    connection._transport.close()
            if len(self._connections) * 2 >= self.limits.max_connections:  # only near the cap is it needed
                self._waiting = collections.deque(sorted((c for c in self._connections if c.waiting),
                                                         key=lambda c: c.last_active))
            elif self._waiting:
                self._waiting = collections.deque()

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
