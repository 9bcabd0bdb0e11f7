"""The front of a service on AWS's REST-JSON protocol (EventBridge Scheduler) beside Lambda's on the one endpoint.

``api/http.py`` hands it a request signed for its service (the SigV4 scope names it) with the caller already
authenticated. It is Lambda's own protocol, so the same machinery serves it, driven by that service's botocore
model: ``api/router.py`` finds the operation from the method and path, ``api/protocol.py`` parses the input
(uri labels, query string, headers, JSON body) and validates it as AWS's front end does (``ValidationException``,
"N validation error(s) detected: ..."), and renders the output shape. A handler gets a ``JsonContext`` and the
parameters and returns the output shape; a ``LambdaError`` is answered with its name in ``x-amzn-ErrorType`` and a
``Message`` in the body, which is where botocore reads them. A modelled operation without a handler answers 501
``NotImplemented``, naming it.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Mapping
from urllib.parse import parse_qsl

from botocore.model import ServiceModel, Shape

from lambdad.api.json_api import JsonContext, JsonError, JsonHandler
from lambdad.api.protocol import parse_request, serialize_error, serialize_response
from lambdad.api.router import Router
from lambdad.api.server import HttpRequest, HttpResponse
from lambdad.auth.principals import Principal
from lambdad.errors import (InvalidRequestContentException, LambdaError, ServiceException, ValidationException,
                            validation_error)

__all__ = ["RestJsonApi"]

log = logging.getLogger(__name__)


class RestJsonApi:
    def __init__(self, model: ServiceModel, handlers: Mapping[str, JsonHandler], regions: tuple[str, ...]) -> None:
        self._model = model
        self._router = Router(model)
        self._handlers = handlers
        self.regions = regions

    async def handle(self, request: HttpRequest, principal: Principal, access_key: str, rid: str) -> HttpResponse:
        try:
            path, _, raw_query = request.target.partition("?")
            query: dict[str, list[str]] = {}
            for key, value in parse_qsl(raw_query, keep_blank_values=True):
                query.setdefault(key, []).append(value)
            operation, labels = self._router.match(request.method, path, query)
            handler = self._handlers.get(operation.name)
            if handler is None:
                raise JsonError("NotImplemented",
                                f"The operation {operation.name} is not supported by this lambdad server yet.", 501)
            headers = {name.lower(): value for name, value in request.headers}
            try:
                params = parse_request(operation, labels, query, headers, request.body)
            except InvalidRequestContentException as exc:  # Lambda's name for it; other services say this
                raise ValidationException(exc.message) from None
            if operation.input_shape is not None:  # what Lambda's operations check themselves, these' front end
                problems = _constraints(params, operation.input_shape, "")
                if problems:
                    raise validation_error(*problems[:10])
            output = await handler(JsonContext(principal, access_key, rid, request.peer or None), params)
            status, out_headers, body = serialize_response(operation, output)
            out_headers["x-amzn-RequestId"] = rid
            return HttpResponse(status, body, tuple(out_headers.items()))
        except LambdaError as exc:
            return self.error(exc, rid)
        except Exception as exc:  # the boundary: nothing escapes unanswered
            log.exception("%s request failed", self._model.service_name)
            return self.error(ServiceException(f"Internal error: {type(exc).__name__}"), rid)

    def error(self, exc: LambdaError, rid: str) -> HttpResponse:
        if type(exc) is ServiceException:  # this protocol's services call it so
            exc = JsonError("InternalServerException", exc.message, 500)
        status, headers, body = serialize_error(exc)
        headers["x-amzn-RequestId"] = rid
        return HttpResponse(status, body, tuple(headers.items()))


def _constraints(value: Any, shape: Shape, path: str) -> list[str]:
    """The ``pattern`` and ``enum`` constraints ``parse_request`` leaves to the operation, in AWS's words."""
    out: list[str] = []
    if shape.type_name == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value and value[name] is not None:
                out.extend(_constraints(value[name], member, f"{path}.{_lower(name)}" if path else _lower(name)))
    elif shape.type_name == "list" and isinstance(value, list):
        for i, item in enumerate(value):
            out.extend(_constraints(item, shape.member, f"{path}.{i + 1}.member"))
    elif shape.type_name == "string" and isinstance(value, str):
        pattern = shape.metadata.get("pattern")
        if pattern and re.search(pattern, value) is None:
            shown = "" if shape.metadata.get("sensitive") else f"'{value}' "
            out.append(f"Value {shown}at '{path}' failed to satisfy constraint: Member must satisfy regular "
                       f"expression pattern: {pattern}")
        enum = shape.metadata.get("enum")
        if enum and value not in enum:
            out.append(f"Value '{value}' at '{path}' failed to satisfy constraint: Member must satisfy enum value "
                       f"set: [{', '.join(enum)}]")
    return out


def _lower(name: str) -> str:
    return name[:1].lower() + name[1:]
