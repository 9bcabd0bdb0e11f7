"""The front of a service on the RPC protocols (CloudWatch): AWS JSON 1.0, Smithy RPC v2 CBOR, and query.

CloudWatch's model names three protocols (``smithy-rpc-v2-cbor``, ``json``, ``query``); an SDK uses the first it
supports in its own order — botocore 1.43 picks ``json`` (``POST /`` with ``X-Amz-Target:
<targetPrefix>.<Operation>``, a JSON body of the input shape, timestamps as epoch seconds), newer SDKs may pick
CBOR, and old ones the query protocol. All three are served here, with the same handlers.

Smithy RPC v2 CBOR: ``POST
/service/<targetPrefix>/operation/<Operation>`` with the header ``smithy-protocol: rpc-v2-cbor``, a CBOR map of the
input shape as the body (timestamps as tag 1, epoch seconds), and a CBOR answer (``Content-Type:
application/cbor``, ``smithy-protocol: rpc-v2-cbor``). An error answers its HTTP status with a CBOR map of
``__type`` (the modelled shape's id, ``<namespace>#<Shape>``) and ``message``; CloudWatch being
``awsQueryCompatible``, the header ``x-amzn-query-error: <Code>;<Sender|Receiver>`` carries the query protocol's
code, which is what botocore reports as ``Error.Code`` (``client.exceptions.<Shape>`` matches it).

AWS JSON 1.0 answers JSON (``Content-Type: application/x-amz-json-1.0``), and its errors the same ``__type``,
``message`` and ``x-amzn-query-error`` as a JSON body. A request with neither the RPC v2 path nor an
``X-Amz-Target`` (the ``query`` protocol: a form with ``Action``) goes to ``QueryApi``. ``api/http.py`` hands each
over once the caller is authenticated.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any, Mapping

import cbor2
from botocore.model import ServiceModel

from lambdad.api.query_api import QUERY_CODES, QueryApi, QueryContext, QueryHandler
from lambdad.api.server import HttpRequest, HttpResponse
from lambdad.auth.principals import Principal
from lambdad.errors import LambdaError, ServiceException

__all__ = ["RpcApi"]

log = logging.getLogger(__name__)

_SHAPE_NAMESPACE = "com.amazonaws.cloudwatch"


class _ProtocolError(LambdaError):
    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.name = code
        self.status = status


class RpcApi:
    def __init__(self, model: ServiceModel, handlers: Mapping[str, QueryHandler], regions: tuple[str, ...],
                 error_shapes: Mapping[str, str]) -> None:
        self._model = model
        self._handlers = handlers
        self.regions = regions
        self._prefix = f"/service/{model.metadata['targetPrefix']}/operation/"
        self._target = f"{model.metadata['targetPrefix']}."
        self._error_shapes = error_shapes  # query code -> modelled shape name (``__type``)
        self._query = QueryApi(model, handlers, regions)

    async def handle(self, request: HttpRequest, principal: Principal, access_key: str, rid: str) -> HttpResponse:
        path = request.target.partition("?")[0]
        target = _header(request, "x-amz-target")
        if path.startswith("/service/"):
            return await self._call(request, principal, access_key, rid, "cbor", path)
        if target is not None:
            return await self._call(request, principal, access_key, rid, "json", target)
        return await self._query.handle(request, principal, access_key, rid)

    async def _call(self, request: HttpRequest, principal: Principal, access_key: str, rid: str, protocol: str,
                    where: str) -> HttpResponse:
        try:
            if request.method != "POST":
                raise _ProtocolError("UnknownOperationException", "RPC requests are POSTs", 404)
            if protocol == "cbor":
                if not where.startswith(self._prefix):
                    raise _ProtocolError("UnknownOperationException", f"No service is served at {where}", 404)
                if _header(request, "smithy-protocol") != "rpc-v2-cbor":
                    raise _ProtocolError("MissingSmithyProtocolHeader",  # what the spec asks servers to refuse
                                         "The smithy-protocol header must be rpc-v2-cbor", 400)
                name = where[len(self._prefix):]
            else:
                if not where.startswith(self._target):
                    raise _ProtocolError("UnknownOperationException", f"The target {where} is not known", 400)
                name = where[len(self._target):]
            if name not in self._model.operation_names:
                raise _ProtocolError("UnknownOperationException", f"The operation {name} is not known", 400)
            params = self._decode(request.body) if protocol == "cbor" else _decode_json(request.body)
            handler = self._handlers.get(name)
            if handler is None:
                raise _ProtocolError("NotImplemented",
                                     f"The operation {name} is not supported by this lambdad server yet.", 501)
            result = await handler(QueryContext(principal, access_key, rid, request.peer or None), params)
            if protocol == "cbor":
                body = cbor2.dumps(dict(result), datetime_as_timestamp=True, timezone=dt.timezone.utc)
                return HttpResponse(200, body, (("Content-Type", "application/cbor"),
                                                ("smithy-protocol", "rpc-v2-cbor"), ("x-amzn-RequestId", rid)))
            return HttpResponse(200, json.dumps(result, default=_epoch).encode(),
                                (("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-RequestId", rid)))
        except LambdaError as exc:
            return self._error(exc, rid, protocol)
        except Exception as exc:  # the boundary: nothing escapes unanswered
            log.exception("%s request failed", self._model.service_name)
            return self._error(ServiceException(f"Internal error: {type(exc).__name__}"), rid, protocol)

    def _decode(self, body: bytes) -> dict[str, Any]:
        if not body:
            return {}
        try:
            params = cbor2.loads(body)
        except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError) as exc:
            raise _ProtocolError("SerializationException", f"The body is not valid CBOR: {exc}", 400) from exc
        if not isinstance(params, dict):
            raise _ProtocolError("SerializationException", "The body must be a CBOR map of the operation's input",
                                 400)
        return params

    def error(self, exc: LambdaError, rid: str) -> HttpResponse:
        """A request refused before it reached this front (its signature): answered in JSON, which botocore
        reads whatever protocol it spoke (an error body's ``__type`` and ``x-amzn-query-error``)."""
        return self._error(exc, rid, "json")

    def _error(self, exc: LambdaError, rid: str, protocol: str) -> HttpResponse:
        code = "InternalServiceError" if exc.name == "ServiceException" else QUERY_CODES.get(exc.name, exc.name)
        shape = self._error_shapes.get(code, code)
        document = {"__type": f"{_SHAPE_NAMESPACE}#{shape}", "message": exc.message}
        fault = "Sender" if exc.status < 500 else "Receiver"
        headers: tuple[tuple[str, str], ...] = (("x-amzn-query-error", f"{code};{fault}"), ("x-amzn-RequestId", rid))
        if protocol == "cbor":
            return HttpResponse(exc.status, cbor2.dumps(document),
                                (("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")) + headers)
        return HttpResponse(exc.status, json.dumps(document).encode(),
                            (("Content-Type", "application/x-amz-json-1.0"),) + headers)


def _decode_json(body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    try:
        params = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _ProtocolError("SerializationException", f"The body is not valid JSON: {exc}", 400) from exc
    if not isinstance(params, dict):
        raise _ProtocolError("SerializationException", "The body must be a JSON object of the operation's input", 400)
    return params


def _epoch(value: Any) -> float:
    if isinstance(value, dt.datetime):
        return value.timestamp()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _header(request: HttpRequest, name: str) -> str | None:
    for key, value in request.headers:
        if key.lower() == name:
            return value
    return None
