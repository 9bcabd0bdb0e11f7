"""The Runtime API's HTTP side: one listener per execution environment, on 127.0.0.1 and a port of its own.

This module only speaks HTTP. It parses each request into a call on the environment it serves (a
``RuntimeApiTarget``) and renders what comes back; the environment holds every rule about invocations.

    GET  /2018-06-01/runtime/invocation/next            -> target.want_next(deliver)  (long poll)
    POST /2018-06-01/runtime/invocation/{id}/response   -> target.post_response(id, body, too_large)
         ... with Lambda-Runtime-Function-Response-Mode: streaming (chunked; errors in the trailers)
                                                        -> target.open_stream(id, content_type) -> StreamWriter
    POST /2018-06-01/runtime/invocation/{id}/error      -> target.post_error(id, error_type, body)
    POST /2018-06-01/runtime/init/error                 -> target.post_init_error(error_type, body)

and the Extensions API (external extensions: executables in /opt/extensions, see docs/runtimes.md):

    POST /2020-01-01/extension/register                 -> target.register_extension(name, body)
    GET  /2020-01-01/extension/event/next               -> target.extension_next(identifier)  (long poll)
    POST /2020-01-01/extension/init/error, /exit/error  -> target.extension_error(identifier, kind, type, body)

and the Telemetry API (lambdad/sandbox/telemetry.py):

    PUT  /2022-07-01/telemetry                          -> target.subscribe_telemetry(identifier, body)

Every invocation crosses this API twice, so it is a plain asyncio protocol over httptools (llhttp, the C parser
uvicorn uses) rather than a general web framework: three fixed routes need no router, middleware or request
objects, and each request costs a few microseconds of parsing. ``GET /next`` is not a task waiting on a queue:
the connection hands the target a callback, which the target calls with the invocation in the same call that
brings it (the Invoke request's), so the event is on its way to the runtime without a loop iteration in between.
Requests on one connection are answered in order (a runtime may pipeline ``GET /next`` behind its response, as
lambdad's Python runtime does); a connection that closes while its ``GET /next`` waits withdraws it
(``cancel_next``), so no invocation is handed to a runtime that is gone. A connection is served only when
``target.accepts_peer`` says its peer is one of the environment's own processes (other processes on the machine
can reach the port too), or when the platform made it for the runtime (``adopt``: the Python runtime's
socketpair). Errors the target raises (``RuntimeApiError``) become the API's own JSON errors,
``{"errorMessage", "errorType"}``; a body nested deeper than the target's JSON parser goes (``RecursionError``) is
a 400, never an unanswered, dropped connection.

A streamed response (response streaming) is not gathered: once its head is read the target gives a
``StreamWriter``, and each piece of the body goes to it as it arrives (no body budget is held for it); the
``Lambda-Runtime-Function-Error-Type`` / ``-Error-Body`` trailers, when the runtime sends them, close it as a
failure. While the writer's reader lags (``write`` returned False) the connection is not read, until the writer
calls back. The POST is answered when its body is complete: 202, or 413 when it went past the limit.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import socket
import uuid
from dataclasses import dataclass
from typing import Callable, Protocol

from lambdad.errors import LambdadError
from lambdad.httpconn import BodyBudget, HttpConnection

__all__ = ["RuntimeApiServer", "RuntimeApiTarget", "RuntimeApiError", "NextInvocation", "Deliver",
           "MAX_RESPONSE_BYTES", "StreamWriter"]

log = logging.getLogger(__name__)

_PREFIX = "/2018-06-01/runtime/"
_EXT_PREFIX = "/2020-01-01/extension/"
_TELEMETRY_PATH = "/2022-07-01/telemetry"
_NEXT_PATH = _PREFIX + "invocation/next"
MAX_RESPONSE_BYTES = 6 * 1024 * 1024 + 100  # Lambda's 6 MB response limit, as it reports it: 6291556 bytes
_REASONS = {200: b"OK", 202: b"Accepted", 400: b"Bad Request", 403: b"Forbidden", 404: b"Not Found",
            405: b"Method Not Allowed", 413: b"Payload Too Large", 431: b"Request Header Fields Too Large",
            500: b"Internal Server Error"}
_ACCEPTED_BODY = b'{"status":"OK"}'
_TOO_DEEP = "The request body is nested too deeply to parse"  # a target's JSON parser gave up (RecursionError)
_MAX_HEAD = 64 * 1024  # a request's line and headers, counted as they arrive (a function is not trusted)
_MAX_PENDING = 8  # requests of one connection read ahead before it stops reading
_MAX_CONNECTIONS = 64  # open connections to one environment's endpoint (its runtime and extensions need a few)
# body bytes all connections of one endpoint may hold at once (received, not yet served): a response and an error
# of the largest size, and some room; without it 64 connections each holding an unfinished 6 MB body pin 384 MB
_MAX_HELD = 2 * MAX_RESPONSE_BYTES + (4 << 20)


class RuntimeApiError(LambdadError):
    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message


@dataclass(slots=True)  # built per invocation: not frozen, which costs ~1 µs more per instance
class NextInvocation:
    request_id: str
    payload: bytes
    headers: dict[str, str]


Deliver = Callable[["NextInvocation | RuntimeApiError"], None]


class StreamWriter(Protocol):
    """Where a streamed response's body goes (``sandbox/response_stream.py``'s ``StreamSink``)."""

    too_large: bool

    def set_drain(self, resume: Callable[[], None]) -> None: ...
    def write(self, data: bytes) -> bool: ...
    def close(self, error_type: str | None, error_body: str | None) -> None: ...


class RuntimeApiTarget(Protocol):
    def accepts_peer(self, host: str, port: int) -> bool: ...
    def want_next(self, deliver: Deliver) -> None: ...
    def cancel_next(self, deliver: Deliver) -> None: ...
    def post_response(self, request_id: str, body: bytes, too_large: bool) -> None: ...
    def post_error(self, request_id: str, error_type: str | None, body: bytes) -> None: ...
    def open_stream(self, request_id: str, content_type: str | None) -> StreamWriter: ...
    def post_init_error(self, error_type: str | None, body: bytes) -> None: ...
    def register_extension(self, name: str | None, body: bytes) -> tuple[str, bytes]: ...
    async def extension_next(self, identifier: str | None) -> bytes: ...
    def extension_error(self, identifier: str | None, kind: str, error_type: str | None, body: bytes) -> None: ...
    def subscribe_telemetry(self, identifier: str | None, body: bytes) -> None: ...


@dataclass
class _Request:
    method: str
    path: str
    error_type: str | None
    body: bytes
    too_large: bool
    keep_alive: bool
    extension_name: str | None = None
    extension_id: str | None = None
    answer: bytes | None = None  # already decided (a streamed response, answered once its body is complete)

    @property
    def is_next(self) -> bool:
        """The runtime's ``GET /next``."""
        return self.method == "GET" and self.path == _NEXT_PATH


def _render(status: int, body: bytes, headers: dict[str, str] | None = None, close: bool = False) -> bytes:
    head = [b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
            % (status, _REASONS.get(status, b"Unknown"), len(body))]
    if headers:
        head.extend(f"{name}: {value}\r\n".encode("latin-1") for name, value in headers.items())
    if close:
        head.append(b"Connection: close\r\n")
    head.append(b"\r\n")
    head.append(body)
    return b"".join(head)


def _error_body(error_type: str, message: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type}).encode()


class _Connection(HttpConnection):
    """One runtime connection: parse requests, answer them in order."""

    def __init__(self, target: RuntimeApiTarget, trusted: bool = False,
                 owner: "set[_Connection] | None" = None, budget: BodyBudget | None = None) -> None:
        # the endpoint's held body bytes
        super().__init__(budget if budget is not None else BodyBudget(_MAX_HELD), _MAX_HEAD)
        self._target = target
        self._owner = owner if owner is not None else set()  # the endpoint's open connections
        self._trusted = trusted  # made by the platform for the environment (``adopt``): no peer to check
        self._pending: collections.deque[_Request] = collections.deque()
        self._waiting: asyncio.Task[None] | None = None  # an extension's GET event/next being answered
        self._next: _Request | None = None  # the runtime's GET /next, given to the target, not answered yet
        self._deliver: Deliver = self._deliver_next  # one bound method, so that cancel_next can find it
        self._later: bytes | None = None  # a 202 held back (see _serve_pending); goes out before anything else
        # the request being parsed
        self._url = b""
        self._error_type: str | None = None
        self._extension_name: str | None = None
        self._extension_id: str | None = None
        self._body: list[bytes] = []
        self._size = 0
        self._streamed = False  # Lambda-Runtime-Function-Response-Mode: streaming
        self._content_type: str | None = None
        self._error_body: str | None = None  # the Lambda-Runtime-Function-Error-Body trailer
        self._sink: StreamWriter | None = None  # where a streamed response's body goes
        self._stream_refusal: RuntimeApiError | None = None  # why the target refused a streamed response

    # -- asyncio.Protocol -------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a stream transport (uvloop's is not a subclass)
        if len(self._owner) >= _MAX_CONNECTIONS:  # a function hoarding the server's descriptors
            transport.close()  # nothing was written: closing is aborting
            self._transport = None
            return
        self._owner.add(self)
        if not self._trusted:
            peer = transport.get_extra_info("peername")
            self._trusted = bool(peer) and self._target.accepts_peer(peer[0], peer[1])

    def data_received(self, data: bytes) -> None:
        if self._transport is None or not self._parse(data):
            return
        # served once everything that came in is parsed: a response and the GET /next pipelined behind it are
        # seen together (see _serve_pending)
        if self._waiting is None and self._next is None:
            self._serve_pending()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._owner.discard(self)
        self._pending.clear()
        self._body = []  # the connection and its parser are a reference cycle: what it held goes now, not at a
        self._release_all()  # collection of the cycle, which a flood of bytes never triggers
        self._sink = None  # a runtime gone mid-stream: its exit (or the deadline) answers the invocation
        if self._waiting is not None:
            self._waiting.cancel()
        if self._next is not None:
            self._next = None
            self._target.cancel_next(self._deliver)

    # -- httptools callbacks ----------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._error_type = None
        self._extension_name = None
        self._extension_id = None
        self._body = []
        self._size = 0
        if self._streamed:
            self._streamed = False
            self._sink = None
            self._stream_refusal = None
        self._content_type = None
        self._error_body = None

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_headers_complete(self) -> None:
        self._head_done()
        if self._streamed:
            self._error_type = self._error_body = None  # a streamed response's error comes in its trailers only
            self._open_stream()

    def on_header(self, name: bytes, value: bytes) -> None:
        if name[:7].lower() != b"lambda-":
            if len(name) == 12 and name.lower() == b"content-type":
                self._content_type = value.decode("latin-1")
            return  # Host, User-Agent, Content-Length, ...: nothing else this API reads
        lname = name.lower()
        if lname in (b"lambda-runtime-function-error-type", b"lambda-extension-function-error-type"):
            self._error_type = value.decode("latin-1")
        elif lname == b"lambda-runtime-function-response-mode":
            self._streamed = value.strip().lower() == b"streaming"
        elif lname == b"lambda-runtime-function-error-body":  # a trailer of a streamed response
            self._error_body = value.decode("latin-1")
        elif lname == b"lambda-extension-identifier":
            self._extension_id = value.decode("latin-1")
        elif lname == b"lambda-extension-name":
            self._extension_name = value.decode("latin-1")

    def _open_stream(self) -> None:
        """The head of a streamed ``POST …/response`` is read: ask the target where its body goes."""
        path = self._url.split(b"?", 1)[0].decode("latin-1")
        prefix = _PREFIX + "invocation/"
        if (self._parser.get_method() != b"POST" or not path.startswith(prefix) or not path.endswith("/response")
                or not self._trusted):
            self._streamed = False  # served as any other request (and refused by it)
            return
        try:
            sink = self._target.open_stream(path[len(prefix):-len("/response")], self._content_type)
        except RuntimeApiError as exc:
            self._stream_refusal = exc  # answered once the body (read and dropped) is complete
            return
        sink.set_drain(self._stream_drained)
        self._sink = sink

    def _stream_drained(self) -> None:
        if self._transport is not None and len(self._pending) < _MAX_PENDING:
            self._resume_reading()

    def on_body(self, body: bytes) -> None:
        if self._streamed:
            sink = self._sink
            if sink is not None and not sink.write(body):
                self._pause_reading()  # the reader lags: resumed by _stream_drained
            return
        n = len(body)
        self._size += n
        if self._size <= MAX_RESPONSE_BYTES and self._transport is not None:
            if not self._hold(n):
                self._send(_render(413, _error_body(
                    "RequestEntityTooLarge", f"The environment's connections hold more than {_MAX_HELD} bytes of "
                    "requests at once."), close=True), True)
                return
            self._body.append(body)

    def on_message_complete(self) -> None:
        self._in_body = False
        if len(self._pending) >= _MAX_PENDING:
            self._pause_reading()
        path = self._url.split(b"?", 1)[0].decode("latin-1")
        if self._streamed:
            self._pending.append(self._stream_complete(path))
            return
        self._pending.append(_Request(
            method=self._parser.get_method().decode("latin-1"), path=path, error_type=self._error_type,
            body=b"".join(self._body), too_large=self._size > MAX_RESPONSE_BYTES,
            keep_alive=self._parser.should_keep_alive(),
            extension_name=self._extension_name, extension_id=self._extension_id,
        ))

    def _stream_complete(self, path: str) -> _Request:
        """A streamed response's body (and trailers) arrived whole: close its writer; the answer is decided."""
        keep_alive = self._parser.should_keep_alive()
        close = not keep_alive
        sink, self._sink = self._sink, None
        refusal = self._stream_refusal
        if sink is not None:
            sink.close(self._error_type, self._error_body)
            answer = _render(413, _error_body("RequestEntityTooLarge", "Exceeded maximum allowed payload size."),
                             close=close) if sink.too_large else _render(202, _ACCEPTED_BODY, close=close)
        elif refusal is not None:
            answer = _render(refusal.status, _error_body(refusal.error_type, refusal.message), close=close)
        else:
            answer = _render(400, _error_body("InvalidRequest", "Streamed response refused"), close=close)
        return _Request(method="POST", path=path, error_type=None, body=b"", too_large=False, keep_alive=keep_alive,
                        answer=answer)

    # -- answering --------------------------------------------------------------------------------------------

    def _serve_pending(self) -> None:
        while self._pending and self._waiting is None and self._next is None and self._transport is not None:
            request = self._pending.popleft()
            if request.body:
                self._release(len(request.body))
            if not self._trusted:
                self._send(_render(403, _error_body("AccessDenied",
                           "This Runtime API endpoint belongs to another environment."), close=True), True)
                return
            if request.is_next:
                self._next = request
                self._target.want_next(self._deliver)  # may answer at once, through _deliver_next
                return
            if request.path == _EXT_PREFIX + "event/next" and request.method == "GET":
                self._waiting = asyncio.get_running_loop().create_task(self._answer_extension_next(request))
                return
            response = request.answer if request.answer is not None else self._answer_post(request)
            if request.keep_alive and request.path.endswith(("/response", "/error")) \
                    and request.path.startswith(_PREFIX + "invocation/"):
                # The runtime's answer completed an invocation: its caller's response goes out first (it is a
                # loop iteration away). If the runtime pipelined GET /next behind it (lambdad's Python runtime
                # does), this 202 waits for the next event and goes out with it, one write and one wake-up of
                # the runtime instead of two; otherwise it follows right after the caller's response.
                self._later = response
                loop = asyncio.get_running_loop()
                if not (self._pending and self._pending[0].is_next):
                    loop.call_soon(self._send_later)
                else:
                    # what the runtime sent behind its answer (its next GET /next) is served after the caller
                    # has had that answer: it is not on anybody's critical path, the caller's response is
                    loop.call_soon(self._serve_later)
                    return
            else:
                self._send(response, not request.keep_alive)

    def _deliver_next(self, nxt: NextInvocation | RuntimeApiError) -> None:
        request = self._next
        if request is None:
            return  # withdrawn
        self._next = None
        close = not request.keep_alive
        if isinstance(nxt, RuntimeApiError):
            self._send(_render(nxt.status, _error_body(nxt.error_type, nxt.message), close=close), close)
        else:
            self._send(_render(200, nxt.payload, nxt.headers, close=close), close)
        if self._pending:
            self._serve_pending()

    async def _answer_extension_next(self, request: _Request) -> None:
        try:
            event = await self._target.extension_next(request.extension_id)
        except RuntimeApiError as exc:
            response = _render(exc.status, _error_body(exc.error_type, exc.message), close=not request.keep_alive)
        else:
            response = _render(200, event, {"Lambda-Extension-Event-Identifier": str(uuid.uuid4())},
                               close=not request.keep_alive)
        self._waiting = None
        self._send(response, not request.keep_alive)
        self._serve_pending()

    def _answer_extension_post(self, request: _Request) -> bytes:
        close = not request.keep_alive
        rest = request.path[len(_EXT_PREFIX):]
        if request.method != "POST":
            return _render(405, _error_body("InvalidRequest", "Method not allowed"), close=close)
        try:
            if rest == "register":
                identifier, body = self._target.register_extension(request.extension_name, request.body)
                return _render(200, body, {"Lambda-Extension-Identifier": identifier}, close=close)
            if rest in ("init/error", "exit/error"):
                self._target.extension_error(request.extension_id, rest.split("/")[0], request.error_type,
                                             request.body)
                return _render(202, _ACCEPTED_BODY, close=close)
        except RuntimeApiError as exc:
            return _render(exc.status, _error_body(exc.error_type, exc.message), close=close)
        except RecursionError:  # JSON nested deeper than the parser goes
            return _render(400, _error_body("InvalidRequest", _TOO_DEEP), close=close)
        return _render(404, _error_body("InvalidRequest", f"Unknown Extensions API path: {request.path}"), close=close)

    def _answer_post(self, request: _Request) -> bytes:
        close = not request.keep_alive
        path = request.path
        if path.startswith(_EXT_PREFIX):
            return self._answer_extension_post(request)
        if path.rstrip("/") == _TELEMETRY_PATH:
            if request.method != "PUT":
                return _render(405, _error_body("InvalidRequest", "Method not allowed"), close=close)
            try:
                self._target.subscribe_telemetry(request.extension_id, request.body)
            except RuntimeApiError as exc:
                return _render(exc.status, _error_body(exc.error_type, exc.message), close=close)
            except RecursionError:
                return _render(400, _error_body("InvalidRequest", _TOO_DEEP), close=close)
            return _render(200, b"OK", close=close)
        if not path.startswith(_PREFIX):
            return _render(404, _error_body("InvalidRequest", f"Unknown Runtime API path: {path}"), close=close)
        rest = path[len(_PREFIX):]
        if request.method != "POST":
            return _render(405, _error_body("InvalidRequest", "Method not allowed"), close=close)
        try:
            if rest == "init/error":
                self._target.post_init_error(request.error_type, request.body)
                return _render(202, _ACCEPTED_BODY, close=close)
            if rest.startswith("invocation/"):
                request_id, _, action = rest[len("invocation/"):].rpartition("/")
                if action == "response":
                    self._target.post_response(request_id, request.body, request.too_large)
                    if request.too_large:
                        return _render(413, _error_body(
                            "RequestEntityTooLarge", f"Exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
                        ), close=close)
                    return _render(202, _ACCEPTED_BODY, close=close)
                if action == "error":
                    self._target.post_error(request_id, request.error_type, request.body)
                    return _render(202, _ACCEPTED_BODY, close=close)
        except RuntimeApiError as exc:
            return _render(exc.status, _error_body(exc.error_type, exc.message), close=close)
        return _render(404, _error_body("InvalidRequest", f"Unknown Runtime API path: {path}"), close=close)

    def _fail(self, status: int, message: str) -> None:
        self._send(_render(status, _error_body("InvalidRequest", message.rstrip(".")), close=True), True)

    def _serve_later(self) -> None:
        if self._waiting is None and self._next is None:
            self._serve_pending()

    def _send_later(self) -> None:
        if self._later is not None:
            self._send(b"", False)

    def _send(self, data: bytes, close: bool) -> None:
        if self._later is not None:
            data = self._later + data  # responses go out in the order of their requests, in one write
            self._later = None
        if self._transport is None or not data:
            return
        self._transport.write(data)
        if close:
            self._transport.close()
            self._transport = None
        elif not self._reading and len(self._pending) < _MAX_PENDING and self._sink is None:
            self._resume_reading()


class RuntimeApiServer:
    """The listener of one environment. Owner of its socket: ``aclose()`` closes it and its connections."""

    def __init__(self, target: RuntimeApiTarget) -> None:
        self._target = target
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[_Connection] = set()
        self._budget = BodyBudget(_MAX_HELD)
        self.port = 0

    def _protocol(self, trusted: bool = False) -> _Connection:
        return _Connection(self._target, trusted, self._connections, self._budget)  # joins (and leaves) the set

    async def adopt(self, sock: socket.socket) -> None:
        """Serve a connection the platform made for the environment's runtime (our end of a socketpair whose
        other end only the runtime has): trusted without a peer check, which a Unix socket could not pass."""
        sock.setblocking(False)
        await asyncio.get_running_loop().connect_accepted_socket(lambda: self._protocol(trusted=True), sock)

    async def start(self, host: str = "127.0.0.1") -> str:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, host, 0, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        return f"{host}:{self.port}"

    async def serve_listener(self, listener: socket.socket) -> None:
        """Serve a listening socket opened elsewhere (inside the environment's own network namespace)."""
        listener.setblocking(False)
        self._server = await asyncio.get_running_loop().create_server(self._protocol, sock=listener)
        self.port = listener.getsockname()[1]

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for connection in list(self._connections):
            if connection._transport is not None:
                connection._transport.abort()
            if connection._waiting is not None:
                connection._waiting.cancel()
            connection._next = None
        self._connections.clear()
