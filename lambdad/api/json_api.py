"""The front of a service on the AWS JSON protocol (CloudWatch Logs: JSON 1.1) beside Lambda's on the one endpoint.

``api/http.py`` hands it a request signed for its service (the SigV4 scope names it) with the caller already
authenticated. The ``X-Amz-Target`` header names the operation (``<targetPrefix>.<Operation>``, the prefix from
botocore's model of the service); the body is the operation's input as a JSON object, checked against the model by
botocore's own parameter validator (missing members, wrong types, values under their minimum), so bad input is
answered as the service answers it (``InvalidParameterException``, "1 validation error detected: …") before a
handler sees it. A handler gets a ``JsonContext`` and the parameters and returns the output shape, which is written
as JSON; a ``LambdaError`` is answered as ``{"__type": <name>, "message": …}`` with its status. A modelled
operation without a handler answers 501 ``NotImplemented``, naming it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping

from botocore.model import OperationModel, ServiceModel, Shape
from botocore.validate import ParamValidator

from lambdad.api.server import HttpRequest, HttpResponse
from lambdad.auth.principals import Principal
from lambdad.errors import LambdaError, ServiceException

__all__ = ["JsonApi", "JsonContext", "JsonHandler", "JsonError"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JsonContext:
    principal: Principal
    access_key_id: str
    request_id: str
    source_ip: str | None


JsonHandler = Callable[[JsonContext, dict[str, Any]], Awaitable[Mapping[str, Any]]]


class JsonError(LambdaError):
    """An error of a JSON-protocol service, by the name its model gives it."""

    def __init__(self, name: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.name = name
        self.status = status


class JsonApi:
    def __init__(self, model: ServiceModel, handlers: Mapping[str, JsonHandler], regions: tuple[str, ...],
                 validation_error: str = "ValidationException") -> None:
        self._model = model
        self._handlers = handlers
        self.regions = regions
        self._prefix = str(model.metadata.get("targetPrefix", ""))
        self._content_type = f"application/x-amz-json-{model.metadata.get('jsonVersion', '1.1')}"
        self._validation_error = validation_error  # what the service calls a request its model refuses
        self._validator = ParamValidator()

    async def handle(self, request: HttpRequest, principal: Principal, access_key: str, rid: str) -> HttpResponse:
        try:
            operation = self._operation(request)
            params = self._params(operation, request.body)
            handler = self._handlers.get(operation.name)
            if handler is None:
                raise JsonError("NotImplemented",
                                f"The operation {operation.name} is not supported by this lambdad server yet.", 501)
            result = await handler(JsonContext(principal, access_key, rid, request.peer or None), params)
            body = json.dumps(_output(operation.output_shape, result), separators=(",", ":")).encode()
            return HttpResponse(200, body, (("Content-Type", self._content_type), ("x-amzn-RequestId", rid)))
        except LambdaError as exc:
            return self.error(exc, rid)
        except Exception as exc:  # the boundary: nothing escapes unanswered
            log.exception("%s request failed", self._model.service_name)
            return self.error(ServiceException(f"Internal error: {type(exc).__name__}"), rid)

    def error(self, exc: LambdaError, rid: str) -> HttpResponse:
        body = json.dumps({"__type": exc.name, "message": exc.message}).encode()
        return HttpResponse(exc.status, body, (("Content-Type", self._content_type), ("x-amzn-RequestId", rid),
                                               ("x-amzn-ErrorType", exc.name)))

    def _operation(self, request: HttpRequest) -> OperationModel:
        target = next((value for name, value in request.headers if name.lower() == "x-amz-target"), "")
        prefix, _, name = target.rpartition(".")
        if request.method != "POST" or prefix != self._prefix or name not in self._model.operation_names:
            raise JsonError("UnknownOperationException", f"Unknown operation {target or '(no X-Amz-Target)'}")
        return self._model.operation_model(name)

    def _params(self, operation: OperationModel, body: bytes) -> dict[str, Any]:
        try:
            params = json.loads(body) if body.strip() else {}
        except (ValueError, UnicodeDecodeError):
            raise JsonError("SerializationException", "The request body is not valid JSON") from None
        if not isinstance(params, dict):
            raise JsonError("SerializationException", "The request body must be a JSON object")
        shape = operation.input_shape
        if shape is None:
            return {}
        problems = _problems(params, shape, "")
        if problems:
            count = len(problems)
            raise JsonError(self._validation_error, f"{count} validation error{'s' if count > 1 else ''} "
                            f"detected: " + "; ".join(problems[:10]))
        report = self._validator.validate(params, shape)
        if report.has_errors():  # what _problems does not word (lengths and ranges under their minimum)
            raise JsonError(self._validation_error, report.generate_report().replace("\n", " ").strip())
        return params


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "boolean": (bool,), "integer": (int,), "long": (int,), "float": (int, float),
    "double": (int, float), "timestamp": (int, float, str), "blob": (str,), "structure": (dict,), "list": (list,),
    "map": (dict,),
}


def _problems(value: Any, shape: Shape, path: str) -> list[str]:
    """What is wrong with ``value`` as ``shape``, in the words AWS's JSON services use ("Value null at 'x' failed
    to satisfy constraint: Member must not be null"). Members the model does not know are ignored, as AWS does."""
    if value is None:
        return []
    kinds = _JSON_TYPES.get(shape.type_name, (object,))
    if not isinstance(value, kinds) or (shape.type_name in ("integer", "long") and isinstance(value, bool)):
        return [f"Value at '{path or shape.name}' failed to satisfy constraint: Member must be of type "
                f"{shape.type_name}"]
    value = _any(value)  # (isinstance with a tuple of types narrowed it to object)
    out: list[str] = []
    if shape.type_name == "structure":
        for name in getattr(shape, "required_members", ()):
            if value.get(name) is None:
                out.append(f"Value null at '{_join(path, name)}' failed to satisfy constraint: Member must not be "
                           "null")
        members = getattr(shape, "members", {})
        for name, member_value in value.items():
            if name in members:
                out.extend(_problems(member_value, members[name], _join(path, name)))
    elif shape.type_name == "list":
        for i, item in enumerate(value):
            out.extend(_problems(item, shape.member, f"{path}.{i + 1}.member" if path else f"{i + 1}"))
    elif shape.type_name == "string":
        maximum = shape.metadata.get("max")
        if maximum is not None and len(value) > maximum:
            out.append(f"Value '{value[:64]}' at '{path}' failed to satisfy constraint: Member must have length "
                       f"less than or equal to {maximum}")
        enum = shape.metadata.get("enum")
        if enum and value not in enum:
            out.append(f"Value '{value[:64]}' at '{path}' failed to satisfy constraint: Member must satisfy enum "
                       f"value set: [{', '.join(enum)}]")
    elif shape.type_name in ("integer", "long"):
        maximum = shape.metadata.get("max")
        if maximum is not None and value > maximum:
            out.append(f"Value '{value}' at '{path}' failed to satisfy constraint: Member must have value less "
                       f"than or equal to {maximum}")
    return out


def _any(value: Any) -> Any:
    return value


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _output(shape: Shape | None, value: Any) -> Any:
    """``value`` as the JSON protocol writes ``shape``: blobs base64, timestamps as epoch seconds, None dropped."""
    if shape is None or value is None:
        return value if shape is not None else {}
    kind = shape.type_name
    if kind == "structure":
        members = getattr(shape, "members", {})
        return {name: _output(members.get(name), v) if name in members else v
                for name, v in value.items() if v is not None}
    if kind == "list":
        return [_output(shape.member, v) for v in value]
    if kind == "map":
        return {k: _output(shape.value, v) for k, v in value.items()}
    if kind == "blob" and isinstance(value, (bytes, bytearray)):
        import base64

        return base64.b64encode(value).decode()
    if kind == "timestamp" and hasattr(value, "timestamp"):
        return value.timestamp()
    return value
