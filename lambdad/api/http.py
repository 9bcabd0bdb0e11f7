"""The HTTP front of the Lambda API: authenticate, route, parse, call the operation, render.

Every request gets a request id (``x-amzn-RequestId``). Unsigned or wrongly signed requests are refused before
routing; the signing key's principal is carried in the ``RequestContext``, and an operation that principal may
never call is refused before it is parsed (``auth/principals.py``). Operations are looked up by name in ``Operations``; a modelled operation that lambdad does not implement
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
from lambdad.arn import function_arn, parse_function_name
from lambdad.auth.principals import Identity, Principal, check_operation
from lambdad.auth.sigv4 import SignedRequest, signing_access_key, verify
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
    principal: Principal  # who signed the request


Handler = Callable[[RequestContext, dict[str, Any]], Awaitable[Mapping[str, Any]]]


class LambdaApi:
    def __init__(self, model: ServiceModel, handlers: Mapping[str, Handler],
                 lookup: Callable[[str], Awaitable[Identity | None]], region: str, account_id: str) -> None:
        self._router = Router(model)
        self._handlers = handlers
        self._lookup = lookup  # may read the store: looked up before verify, which is synchronous
        self._region = region
        self._account_id = account_id

    async def handle(self, request: web.Request) -> web.StreamResponse:
        request_id = str(uuid.uuid4())
        op_name = "Unknown"
        try:
            body = await request.read()
            raw_path = request.raw_path
            path, _, raw_query = raw_path.partition("?")
            signed = SignedRequest(request.method, path, raw_query, [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers], body)
            claimed_key = signing_access_key(signed)
            identity = await self._lookup(claimed_key)
            access_key = verify(
                signed,
                lambda key: identity.secret if identity is not None and key == claimed_key else None,
                region=self._region,
            )
            assert identity is not None  # verify refuses an unknown key
            query = {k: request.query.getall(k) for k in request.query.keys()}
            op, uri_params = self._router.match(request.method, path, query)
            op_name = op.name
            handler = self._handlers.get(op.name)
            if handler is None:
                raise NotImplementedException(f"The operation {op.name} is not supported by this lambdad server yet.")
            if not identity.principal.root:
                check_operation(identity.principal, op.name, self._resource(uri_params))
            params = parse_request(op, uri_params, query, request.headers, body)
            ctx = RequestContext(request_id, access_key, op.name, f"{request.scheme}://{request.host}", identity.principal)
            output = await handler(ctx, params)
            status, headers, out_body = serialize_response(op, output)
        except LambdaError as exc:
            status, headers, out_body = serialize_error(exc)
        except Exception as exc:  # the boundary: nothing escapes as a raw 500
            log.exception("%s failed", op_name)
            status, headers, out_body = serialize_error(ServiceException(f"Internal error in {op_name}: {type(exc).__name__}"))
        headers["x-amzn-RequestId"] = request_id
        return web.Response(status=status, headers=CIMultiDict(headers), body=out_body)

    def _resource(self, uri_params: Mapping[str, str]) -> str:
        """The ARN an operation acts on, for an access-denied message: the function's, else every resource."""
        name = uri_params.get("FunctionName")
        if name:
            try:
                ref = parse_function_name(name, region=self._region, account_id=self._account_id)
                return function_arn(self._region, self._account_id, ref.name, ref.qualifier)
            except LambdaError:
                return name
        return f"arn:aws:lambda:{self._region}:{self._account_id}:*"
