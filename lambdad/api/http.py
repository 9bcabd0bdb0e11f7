"""The HTTP front of the endpoint: authenticate, route, parse, authorize, call the operation, render.

Every request gets a request id (``x-amzn-RequestId``). Unsigned or wrongly signed requests are refused before
routing. The service is told by the SigV4 credential scope: Lambda's requests are served here; those of the other
services on this endpoint (IAM and STS, on the query protocol) go to their own front (``api/query_api.py``), in
their own error format. The signing key's principal is carried in the ``RequestContext``, and an operation that
principal may not call is refused once its parameters are parsed (``api/access.py``), before it runs. Operations
are looked up by name in the handler table the app passes in; a modelled operation that lambdad does not
implement yet answers 501 NotImplementedException, saying so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping, Protocol

from urllib.parse import parse_qsl

from botocore.model import OperationModel, ServiceModel

from lambdad.api.protocol import parse_request, serialize_error, serialize_response
from lambdad.api.router import Router
from lambdad.auth.principals import Identity, Principal
from lambdad.api.server import HttpRequest, HttpResponse, StreamedResponse
from lambdad.auth.sigv4 import SignedRequest, check_claim, check_preamble, read_claim
from lambdad.errors import (LambdaError, NotImplementedException, RequestTooLargeException, ServiceException,
                            TooManyRequestsException)
from lambdad.ids import CURRENT_REQUEST_ID, lineage_of, request_id

__all__ = ["RequestContext", "Handler", "LambdaApi", "MAX_BODY_BYTES", "request_too_large", "request_too_busy",
           "body_limit"]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 70 * 1024 * 1024  # a 50 MB zip, base64-encoded, in a JSON body
MAX_JSON_SERVICE_BODY = 4 * 1024 * 1024
MAX_SYNC_PAYLOAD = 6 * 1024 * 1024  # Invoke, RequestResponse and DryRun
MAX_ASYNC_PAYLOAD = 1024 * 1024  # Invoke, Event
MAX_CONTROL_BODY = 1024 * 1024  # every operation that carries no code and no payload
_INVOKE_LIMITS = (MAX_SYNC_PAYLOAD, MAX_ASYNC_PAYLOAD)


def body_limit(method: str, target: str, headers: list[tuple[str, str]]) -> int:
    """The largest body a request may carry, told from its method and path before the body is read: an Invoke's
    (or InvokeWithResponseStream's) payload limit; a code upload's (CreateFunction, UpdateFunctionCode, PublishLayerVersion); a JSON-protocol
    service's (X-Amz-Target: CloudWatch Logs) 4 MB; else 1 MB."""
    path = target.partition("?")[0]
    if method == "POST" and path.endswith("/invocations") and path.startswith("/2015-03-31/functions/"):
        for name, value in headers:
            if len(name) == 21 and name.lower() == "x-amz-invocation-type":
                return MAX_ASYNC_PAYLOAD if value == "Event" else MAX_SYNC_PAYLOAD
        return MAX_SYNC_PAYLOAD
    if method == "POST" and path.endswith("/response-streaming-invocations"):
        return MAX_SYNC_PAYLOAD  # InvokeWithResponseStream: RequestResponse and DryRun only
    if (method == "POST" and path.rstrip("/") == "/2015-03-31/functions") \
            or (method == "PUT" and path.startswith("/2015-03-31/functions/") and path.endswith("/code")) \
            or (method == "POST" and path.startswith("/2018-10-31/layers/") and path.endswith("/versions")):
        return MAX_BODY_BYTES
    if method == "POST" and path == "/" and any(len(name) == 12 and name.lower() == "x-amz-target"
                                                for name, _ in headers):
        return MAX_JSON_SERVICE_BODY  # a JSON-protocol service's (PutLogEvents: 1 MB of events, JSON-escaped)
    return MAX_CONTROL_BODY


_ROUTES_REMEMBERED = 4096


def request_too_large(limit: int) -> HttpResponse:
    """The answer to a request body over its ``limit`` (``body_limit``), refused before it is read (by its
    Content-Length) or as it streams in: Lambda's error for an oversized request."""
    operation = "the InvokeFunction operation" if limit in _INVOKE_LIMITS else "this operation"
    status, headers, body = serialize_error(
        RequestTooLargeException(f"Request must be smaller than {limit} bytes for {operation}"))
    headers["x-amzn-RequestId"] = request_id()
    return HttpResponse(status, body, tuple(headers.items()))


def request_too_busy() -> HttpResponse:
    """The answer to a request whose body does not fit in what the server may hold of all bodies at once
    (``http_buffer_mb``): Lambda's throttling error, which SDKs retry after ``Retry-After``."""
    status, headers, body = serialize_error(TooManyRequestsException("Rate Exceeded.", "CallerRateLimitExceeded"))
    headers["x-amzn-RequestId"] = request_id()
    return HttpResponse(status, body, tuple(headers.items()))


@dataclass(slots=True)  # built per request: not frozen, which costs ~1 µs more per instance
class RequestContext:
    request_id: str
    access_key_id: str
    operation: str
    base_url: str  # scheme://host[:port] the client used, for URLs we hand out
    principal: Principal  # who signed the request
    lineage: int = 0  # the X-Amzn-Trace-Id's Lineage count: a function's call in a chain of async invocations
    trace: str | None = None  # the caller's X-Amzn-Trace-Id: an invocation continues its trace (traces.py)


Handler = Callable[[RequestContext, dict[str, Any]], Awaitable[Mapping[str, Any]]]
# may the principal call the operation (its name, path labels, query, parsed parameters, the client's address)?
# (raises when not)
Authorize = Callable[[Principal, str, Mapping[str, str], Mapping[str, list[str]], Mapping[str, Any], str | None],
                     None]


class OtherService(Protocol):
    """A service beside Lambda's on this endpoint (``api/query_api.py``)."""

    regions: tuple[str, ...]  # the regions its requests may be signed for

    async def handle(self, request: HttpRequest, principal: Principal, access_key: str, rid: str) -> HttpResponse:
        ...

    def error(self, exc: LambdaError, rid: str) -> HttpResponse: ...


class LambdaApi:
    def __init__(self, model: ServiceModel, handlers: Mapping[str, Handler],
                 lookup: Callable[[str], Awaitable[Identity | None]], authorize: Authorize, region: str,
                 services: Mapping[str, OtherService] | None = None) -> None:
        self._services = dict(services or {})
        self._router = Router(model)
        self._routes: dict[tuple[str, str], tuple[OperationModel, dict[str, str]]] = {}
        self._handlers = handlers
        self._lookup = lookup  # may read the store: looked up before check_claim, which is synchronous
        self._authorize = authorize
        self._region = region

    async def precheck(self, method: str, target: str, headers: list[tuple[str, str]]) -> HttpResponse | None:
        """Before a large body is read: refuse a request that is not signed, is signed for another scope or at
        another time, or by an access key the server does not know (the signature itself needs the body)."""
        try:
            path, _, raw_query = target.partition("?")
            claim = read_claim(SignedRequest(method, path, raw_query, headers, b""))
            known = await self._lookup(claim.access_key) is not None
            service = self._services.get(claim.auth.scope[2])
            if service is not None:  # a large body for another service: its region and name
                region = claim.auth.scope[1] if claim.auth.scope[1] in service.regions else self._region
                check_preamble(claim, known, region=region, service=claim.auth.scope[2])
                return None
            check_preamble(claim, known, region=self._region)
        except LambdaError as exc:
            status, out_headers, out_body = serialize_error(exc)
            out_headers["x-amzn-RequestId"] = request_id()
            return HttpResponse(status, out_body, tuple(out_headers.items()))
        return None

    async def handle(self, request: HttpRequest) -> HttpResponse | StreamedResponse:
        rid = request_id()
        CURRENT_REQUEST_ID.set(rid)  # this request's task: its log lines (and its tasks') carry the id
        service: OtherService | None = None
        try:
            path, _, raw_query = request.target.partition("?")
            claim = read_claim(SignedRequest(request.method, path, raw_query, request.headers, request.body))
            claimed_key = claim.access_key
            scope_region, scope_service = claim.auth.scope[1], claim.auth.scope[2]
            service = self._services.get(scope_service)
            identity = await self._lookup(claimed_key)
            access_key = check_claim(
                claim,
                lambda key: identity.secret if identity is not None and key == claimed_key else None,
                region=scope_region if service is not None and scope_region in service.regions else self._region,
                service=scope_service if service is not None else "lambda",
            )
            assert identity is not None  # check_claim refuses an unknown key
        except Exception as exc:  # the boundary: nothing escapes as a raw 500
            if not isinstance(exc, LambdaError):
                log.exception("authentication failed")
                exc = ServiceException(f"Internal error: {type(exc).__name__}")
            if service is not None:
                return service.error(exc, rid)
            status, out_headers, out_body = serialize_error(exc)
            out_headers["x-amzn-RequestId"] = rid
            return HttpResponse(status, out_body, tuple(out_headers.items()))
        if service is not None:
            return await service.handle(request, identity.principal, access_key, rid)
        headers = {name: values[0] for name, values in claim.headers.items()}  # lower-cased names
        return await self._operate(request, rid, identity.principal, access_key, path, raw_query, headers)

    async def handle_as(self, request: HttpRequest, principal: Principal, access_key: str,
                        service_name: str) -> HttpResponse | StreamedResponse:
        """``handle`` for a request whose caller is already known (the console's session, console/calls.py): not
        signed, but routed, parsed, authorized for ``principal`` and answered exactly as a signed one."""
        rid = request_id()
        CURRENT_REQUEST_ID.set(rid)
        service = self._services.get(service_name)
        if service is not None:
            return await service.handle(request, principal, access_key, rid)
        path, _, raw_query = request.target.partition("?")
        headers: dict[str, str] = {}
        for name, value in request.headers:
            headers.setdefault(name.lower(), value)
        return await self._operate(request, rid, principal, access_key, path, raw_query, headers)

    async def _operate(self, request: HttpRequest, rid: str, principal: Principal, access_key: str, path: str,
                       raw_query: str, headers: dict[str, str]) -> HttpResponse | StreamedResponse:
        """Route, parse, authorize and run a Lambda API request whose caller is known; render its answer."""
        op_name = "Unknown"
        try:
            query: dict[str, list[str]] = {}
            if raw_query:
                for key, value in parse_qsl(raw_query, keep_blank_values=True):
                    query.setdefault(key, []).append(value)
            op, uri_params = self._route(request.method, path, query)
            op_name = op.name
            handler = self._handlers.get(op.name)
            if handler is None:
                raise NotImplementedException(f"The operation {op.name} is not supported by this lambdad server yet.")
            params = parse_request(op, uri_params, query, headers, request.body)
            if not principal.root:
                self._authorize(principal, op.name, uri_params, query, params, request.peer or None)
            trace = headers.get("x-amzn-trace-id")
            ctx = RequestContext(rid, access_key, op.name, f"http://{request.host}", principal,
                                 lineage_of(trace), trace)
            output = await handler(ctx, params)
            status, out_headers, out_body = serialize_response(op, output)
            if op.has_event_stream_output and output.get("EventStream") is not None:
                out_headers["x-amzn-RequestId"] = rid
                return StreamedResponse(status, tuple(out_headers.items()), output["EventStream"])
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
