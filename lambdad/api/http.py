"""The HTTP front of the Lambda API: authenticate, route, parse, call the operation, render.

Every request gets a request id (``x-amzn-RequestId``). Unsigned or wrongly signed requests are refused before
routing; the signing key's principal is carried in the ``RequestContext``, and an operation that principal may
not call is refused before its body is parsed (``api/access.py``). Operations are looked up by name in ``Operations``; a modelled operation that lambdad does not implement
yet answers 501 NotImplementedException, saying so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping

from urllib.parse import parse_qsl

from botocore.model import OperationModel, ServiceModel

from lambdad.api.protocol import Router, parse_request, serialize_error, serialize_response
from lambdad.auth.principals import Identity, Principal
from lambdad.api.server import HttpRequest, HttpResponse
from lambdad.auth.sigv4 import SignedRequest, check_claim, read_claim
from lambdad.errors import LambdaError, NotImplementedException, RequestTooLargeException, ServiceException
from lambdad.ids import request_id

__all__ = ["RequestContext", "Handler", "LambdaApi", "MAX_BODY_BYTES", "request_too_large"]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 70 * 1024 * 1024  # a 50 MB zip, base64-encoded, in a JSON body
_ROUTES_REMEMBERED = 4096


def request_too_large() -> HttpResponse:
    """The answer to a request body over MAX_BODY_BYTES, refused before it is read (by its Content-Length) or
    as it streams in: Lambda's error for an oversized request."""
    status, headers, body = serialize_error(
        RequestTooLargeException(f"Request must be smaller than {MAX_BODY_BYTES} bytes for this operation"))
    headers["x-amzn-RequestId"] = request_id()
    return HttpResponse(status, body, tuple(headers.items()))


@dataclass(slots=True)  # built per request: not frozen, which costs ~1 µs more per instance
class RequestContext:
    request_id: str
    access_key_id: str
    operation: str
    base_url: str  # scheme://host[:port] the client used, for URLs we hand out
    principal: Principal  # who signed the request


Handler = Callable[[RequestContext, dict[str, Any]], Awaitable[Mapping[str, Any]]]
# may the principal call the operation on what its path labels and query name? (raises when not)
Authorize = Callable[[Principal, str, Mapping[str, str], Mapping[str, list[str]]], None]


class LambdaApi:
    def __init__(self, model: ServiceModel, handlers: Mapping[str, Handler],
                 lookup: Callable[[str], Awaitable[Identity | None]], authorize: Authorize, region: str) -> None:
        self._router = Router(model)
        self._routes: dict[tuple[str, str], tuple[OperationModel, dict[str, str]]] = {}
        self._handlers = handlers
        self._lookup = lookup  # may read the store: looked up before verify, which is synchronous
        self._authorize = authorize
        self._region = region

    async def handle(self, request: HttpRequest) -> HttpResponse:
        rid = request_id()
        op_name = "Unknown"
        try:
            path, _, raw_query = request.target.partition("?")
            claim = read_claim(SignedRequest(request.method, path, raw_query, request.headers, request.body))
            claimed_key = claim.access_key
            identity = await self._lookup(claimed_key)
            access_key = check_claim(
                claim,
                lambda key: identity.secret if identity is not None and key == claimed_key else None,
                region=self._region,
            )
            assert identity is not None  # verify refuses an unknown key
            query: dict[str, list[str]] = {}
            if raw_query:
                for key, value in parse_qsl(raw_query, keep_blank_values=True):
                    query.setdefault(key, []).append(value)
            op, uri_params = self._route(request.method, path, query)
            op_name = op.name
            handler = self._handlers.get(op.name)
            if handler is None:
                raise NotImplementedException(f"The operation {op.name} is not supported by this lambdad server yet.")
            if not identity.principal.root:
                self._authorize(identity.principal, op.name, uri_params, query)
            headers = {name: values[0] for name, values in claim.headers.items()}  # lower-cased names
            params = parse_request(op, uri_params, query, headers, request.body)
            ctx = RequestContext(rid, access_key, op.name, f"http://{request.host}", identity.principal)
            output = await handler(ctx, params)
            status, out_headers, out_body = serialize_response(op, output)
        except LambdaError as exc:
            status, out_headers, out_body = serialize_error(exc)
        except Exception as exc:  # the boundary: nothing escapes as a raw 500
            log.exception("%s failed", op_name)
            status, out_headers, out_body = serialize_error(ServiceException(f"Internal error in {op_name}: {type(exc).__name__}"))
        out_headers["x-amzn-RequestId"] = rid
        return HttpResponse(status, out_body, tuple(out_headers.items()))

    def _route(self, method: str, path: str, query: dict[str, list[str]]) -> tuple[OperationModel, dict[str, str]]:
        """``Router.match``, remembered for requests without a query string (a function invoked again and again
        is routed once). Bounded: cleared when full. The labels it returns are shared: read-only."""
        if query:
            return self._router.match(method, path, query)
        key = (method, path)
        found = self._routes.get(key)
        if found is None:
            found = self._router.match(method, path, query)
            if len(self._routes) >= _ROUTES_REMEMBERED:
                self._routes.clear()
            self._routes[key] = found
        return found
