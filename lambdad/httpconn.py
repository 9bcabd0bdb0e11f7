"""What lambdad's two HTTP/1.1 servers share: the control API's (``api/server.py``) and each environment's Runtime
API (``runtime_api/server.py``). Both are asyncio protocols over httptools (llhttp) that serve clients they do not
trust, so both need the same plumbing under their different rules:

- the request line and headers counted as they arrive, before the parser gathers them (an endless header is
  refused, 431, at the server's ``max_head``), and the parser's errors answered (400);
- a budget of body bytes shared by all connections of one server (received, not yet answered): each connection
  holds part of it, gives it back as its requests are answered, and all of it when it goes;
- reading paused while too many pipelined requests wait, resumed as they are answered.

Each server's connection class derives from ``HttpConnection`` and says how it refuses a request (``_fail``:
its own error body, then close); what a request means, and how it is answered, stays with each server.
"""

from __future__ import annotations

import asyncio

import httptools

__all__ = ["HttpConnection", "BodyBudget"]


class BodyBudget:
    """The body bytes the connections of one server hold at once, and the most they may."""

    __slots__ = ("held", "most")

    def __init__(self, most: int) -> None:
        self.held = 0
        self.most = most


class HttpConnection(asyncio.Protocol):
    """One connection's parsing, head limit, body budget and read pausing (see the module's docstring)."""

    def __init__(self, budget: BodyBudget, max_head: int) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._budget = budget
        self._held = 0  # this connection's part of the budget
        self._max_head = max_head
        self._in_body = False  # between the head and the end of a request's body
        self._head_size = 0  # bytes received since the head began, while it is not complete
        self._reading = True

    def _fail(self, status: int, message: str) -> None:
        """Answer ``status`` with ``message`` in the server's own error format, and close."""
        raise NotImplementedError

    def _parse(self, data: bytes) -> bool:
        """Feed ``data`` to the parser (its callbacks run meanwhile); False when the request was refused."""
        if not self._in_body:
            self._head_size += len(data)  # counted before the parser gathers an endless header
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, "Protocol upgrades are not supported.")
            return False
        except httptools.HttpParserError:
            self._fail(400, "Malformed HTTP request.")
            return False
        if not self._in_body and self._head_size > self._max_head:
            self._fail(431, "Request header fields too large.")
            return False
        return True

    def _head_done(self) -> None:
        """The head of a request is complete (its body follows): from ``on_headers_complete``."""
        self._in_body = True
        self._head_size = 0

    def _hold(self, n: int) -> bool:
        """Count ``n`` body bytes against the server's budget; False (nothing counted) when they do not fit."""
        budget = self._budget
        if budget.held + n > budget.most:
            return False
        budget.held += n
        self._held += n
        return True

    def _release(self, n: int) -> None:
        """Give ``n`` held bytes back (their request was answered, or dropped)."""
        self._held -= n
        self._budget.held -= n

    def _release_all(self) -> None:
        """The connection is gone: everything it held goes back (``connection_lost``)."""
        self._budget.held -= self._held
        self._held = 0

    def _pause_reading(self) -> None:
        if self._reading and self._transport is not None:
            self._reading = False
            self._transport.pause_reading()

    def _resume_reading(self) -> None:
        if not self._reading and self._transport is not None:
            self._reading = True
            self._transport.resume_reading()
