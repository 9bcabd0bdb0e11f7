"""The Runtime API's HTTP side: one listener per execution environment, on 127.0.0.1 and a port of its own.

This module only speaks HTTP. It parses each request into a call on the environment it serves (a
``RuntimeApiTarget``) and renders what comes back; the environment holds every rule about invocations.

    GET  /2018-06-01/runtime/invocation/next            -> target.next_invocation()  (long poll)
    POST /2018-06-01/runtime/invocation/{id}/response   -> target.post_response(id, body)
    POST /2018-06-01/runtime/invocation/{id}/error      -> target.post_error(id, error_type, body)
    POST /2018-06-01/runtime/init/error                 -> target.post_init_error(error_type, body)

A connection is served only when ``target.accepts_peer`` says its peer is one of the environment's own processes
(other processes on the machine can reach the port too). Errors the target raises (``RuntimeApiError``) become the API's own JSON errors, ``{"errorMessage", "errorType"}``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import weakref
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

__all__ = ["RuntimeApiServer", "RuntimeApiTarget", "RuntimeApiError", "NextInvocation", "MAX_RESPONSE_BYTES"]

_PREFIX = "/2018-06-01/runtime/"
MAX_RESPONSE_BYTES = 6 * 1024 * 1024 + 100  # Lambda's 6 MB response limit, as it reports it: 6291556 bytes


class RuntimeApiError(Exception):
    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message


@dataclass(frozen=True)
class NextInvocation:
    request_id: str
    payload: bytes
    headers: dict[str, str]


class RuntimeApiTarget(Protocol):
    def accepts_peer(self, host: str, port: int) -> bool: ...
    async def next_invocation(self) -> NextInvocation: ...
    def post_response(self, request_id: str, body: bytes, too_large: bool) -> None: ...
    def post_error(self, request_id: str, error_type: str | None, body: bytes) -> None: ...
    def post_init_error(self, error_type: str | None, body: bytes) -> None: ...


def _accepted() -> web.Response:
    return web.Response(status=202, body=b'{"status":"OK"}', content_type="application/json")


def _error(status: int, error_type: str, message: str) -> web.Response:
    body = json.dumps({"errorMessage": message, "errorType": error_type}).encode()
    return web.Response(status=status, body=body, content_type="application/json")


async def _read_body(request: web.BaseRequest, limit: int) -> tuple[bytes, bool]:
    """Read up to ``limit`` bytes; report whether the body was larger (the rest is read and dropped)."""
    chunks: list[bytes] = []
    size = 0
    too_large = False
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            too_large = True
            continue
        chunks.append(chunk)
    return b"".join(chunks), too_large


class RuntimeApiServer:
    """The listener of one environment. Owner of its socket: ``aclose()`` closes it and its connections."""

    def __init__(self, target: RuntimeApiTarget) -> None:
        self._target = target
        self._server: asyncio.AbstractServer | None = None
        self._trusted: weakref.WeakSet[object] = weakref.WeakSet()  # connections whose peer was checked
        # handler_cancellation: a runtime that drops its connection while long-polling /next must not leave a
        # waiter behind that would take (and lose) the next invocation.
        self._web = web.Server(self._handle, access_log=None, handler_cancellation=True)
        self.port = 0

    async def start(self, host: str = "127.0.0.1") -> str:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._web, host, 0, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        return f"{host}:{self.port}"

    async def serve_listener(self, listener: socket.socket) -> None:
        """Serve a listening socket opened elsewhere (inside the environment's own network namespace)."""
        listener.setblocking(False)
        self._server = await asyncio.get_running_loop().create_server(self._web, sock=listener)
        self.port = listener.getsockname()[1]

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._web.shutdown(0.1)
            self._server = None

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        connection = request.transport
        if connection is None or connection not in self._trusted:
            peer = connection.get_extra_info("peername") if connection is not None else None
            if not peer or not self._target.accepts_peer(peer[0], peer[1]):
                return _error(403, "AccessDenied", "This Runtime API endpoint belongs to another environment.")
            self._trusted.add(connection)
        path = request.path
        if not path.startswith(_PREFIX):
            return _error(404, "InvalidRequest", f"Unknown Runtime API path: {path}")
        rest = path[len(_PREFIX):]
        try:
            if rest == "invocation/next":
                if request.method != "GET":
                    return _error(405, "InvalidRequest", "Method not allowed")
                nxt = await self._target.next_invocation()
                return web.Response(status=200, body=nxt.payload, headers=nxt.headers, content_type="application/json")
            if request.method != "POST":
                return _error(405, "InvalidRequest", "Method not allowed")
            error_type = request.headers.get("Lambda-Runtime-Function-Error-Type")
            if rest == "init/error":
                body, _ = await _read_body(request, MAX_RESPONSE_BYTES)
                self._target.post_init_error(error_type, body)
                return _accepted()
            if rest.startswith("invocation/"):
                request_id, _, action = rest[len("invocation/"):].rpartition("/")
                if action == "response":
                    body, too_large = await _read_body(request, MAX_RESPONSE_BYTES)
                    self._target.post_response(request_id, body, too_large)
                    if too_large:
                        return _error(
                            413, "RequestEntityTooLarge",
                            f"Exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
                        )
                    return _accepted()
                if action == "error":
                    body, _ = await _read_body(request, MAX_RESPONSE_BYTES)
                    self._target.post_error(request_id, error_type, body)
                    return _accepted()
            return _error(404, "InvalidRequest", f"Unknown Runtime API path: {path}")
        except RuntimeApiError as exc:
            return _error(exc.status, exc.error_type, exc.message)
