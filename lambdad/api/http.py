"""The HTTP front of the Lambda API: authenticate, route, parse, call the operation, render.

Every request gets a request id (``x-amzn-RequestId``). Unsigned or wrongly signed requests are refused before
routing. Operations are looked up by name in ``Operations``; a modelled operation that lambdad does not implement
yet answers 501 NotImplementedException, saying so.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping

from aiohttp import web
from botocore.model import ServiceModel
from multidict import CIMultiDict

from lambdad.api.protocol import Router, parse_request, serialize_error, serialize_response
from lambdad.auth.sigv4 import Secret, SignedRequest, verify
from lambdad.errors import LambdaError, NotImplementedException, ServiceException

__all__ = ["RequestContext", "Handler", "LambdaApi", "MAX_BODY_BYTES"]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 70 * 1024 * 1024  # a 50 MB zip, base64-encoded, in a JSON body


@dataclass(frozen=True)
class RequestContext:
    request_id: str
    access_key_id: str
    operation: str
    base_url: str  # scheme://host[:port] the client used, for URLs we hand out


Handler = Callable[[RequestContext, dict[str, Any]], Awaitable[Mapping[str, Any]]]


class LambdaApi:
    def __init__(self, model: ServiceModel, handlers: Mapping[str, Handler], lookup: Callable[[str], Secret | None],
                 region: str) -> None:
        self._router = Router(model)
        self._handlers = handlers
        self._lookup = lookup
        self._region = region

    async def handle(self, request: web.Request) -> web.StreamResponse:
        request_id = str(uuid.uuid4())
        op_name = "Unknown"
        try:
            body = await request.read()
            raw_path = request.raw_path
            path, _, raw_query = raw_path.partition("?")
            access_key = verify(
                SignedRequest(request.method, path, raw_query, [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers], body),
                self._lookup,
                region=self._region,
            )
            query = {k: request.query.getall(k) for k in request.query.keys()}
            op, uri_params = self._router.match(request.method, path, query)
            op_name = op.name
            handler = self._handlers.get(op.name)
            if handler is None:
                raise NotImplementedException(f"The operation {op.name} is not supported by this lambdad server yet.")
            params = parse_request(op, uri_params, query, request.headers, body)
            ctx = RequestContext(request_id, access_key, op.name, f"{request.scheme}://{request.host}")
            output = await handler(ctx, params)
            status, headers, out_body = serialize_response(op, output)
        except LambdaError as exc:
            status, headers, out_body = serialize_error(exc)
        except Exception as exc:  # the boundary: nothing escapes as a raw 500
            log.exception("%s failed", op_name)
            status, headers, out_body = serialize_error(ServiceException(f"Internal error in {op_name}: {type(exc).__name__}"))
        headers["x-amzn-RequestId"] = request_id
        return web.Response(status=status, headers=CIMultiDict(headers), body=out_body)
