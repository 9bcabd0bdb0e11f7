"""An operation of the endpoint's APIs (Lambda, CloudWatch Logs, CloudWatch, EventBridge Scheduler) called in-process as a known
principal: what the console does for each action of its user.

The browser sends an operation's name and its parameters as JSON. They are serialized into the very HTTP request an
SDK would send (botocore's own serializer for that service's protocol), handed to ``LambdaApi.handle_as`` with the
session's principal in place of a signature, and the answer is parsed back by botocore's own parser. So the
console's user can do exactly what the API lets the same key do: the same routing, the same validation (and its
messages), the same authorization (``iam/authorize.py``), the same errors.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from dataclasses import dataclass
from typing import Any, Mapping

import botocore.session
from botocore.awsrequest import HeadersDict
from botocore.model import OperationModel, OperationNotFoundError, ServiceModel, Shape, StructureShape, ListShape, MapShape
from botocore.parsers import create_parser
from botocore.serialize import create_serializer
from botocore.utils import percent_encode_sequence

from lambdad.api.http import LambdaApi
from lambdad.api.server import HttpRequest, HttpResponse
from lambdad.auth.principals import Principal

__all__ = ["ApiCaller", "CallResult", "SERVICES"]

# the SigV4 service name the console may call -> (botocore's model name, the protocol it speaks to us)
SERVICES = {"lambda": ("lambda", "rest-json"), "logs": ("logs", "json"), "monitoring": ("cloudwatch", "json"),
            "scheduler": ("scheduler", "rest-json")}


@dataclass(frozen=True)
class CallResult:
    status: int  # the API's HTTP status
    output: dict[str, Any]  # the parsed output, or {"Error": {"Code", "Message"}}

    @property
    def ok(self) -> bool:
        return self.status < 300


class ApiCaller:
    """Calls operations of ``api`` as a principal (see the module's docstring)."""

    def __init__(self, api: LambdaApi, services: tuple[str, ...]) -> None:
        self._api = api
        session = botocore.session.get_session()
        self._models: dict[str, ServiceModel] = {
            name: session.get_service_model(SERVICES[name][0]) for name in services}

    def operation(self, service: str, name: str) -> OperationModel | None:
        model = self._models.get(service)
        if model is None:
            return None
        try:
            return model.operation_model(name)
        except OperationNotFoundError:
            return None

    async def call(self, principal: Principal, access_key: str, service: str, operation: str,
                   params: Mapping[str, Any], host: str, peer: str) -> CallResult:
        """Call ``service``'s ``operation`` with ``params`` (JSON: blobs in base64) as ``principal``, for a browser
        at ``peer`` that reached us as ``host``."""
        op = self.operation(service, operation)
        if op is None:
            return CallResult(400, {"Error": {"Code": "UnknownOperationException",
                                              "Message": f"The console does not call {service}:{operation}"}})
        protocol = SERVICES[service][1]
        try:
            decoded = _decode_blobs(dict(params), op.input_shape) if op.input_shape is not None else {}
            serialized = create_serializer(protocol, include_validation=False).serialize_to_request(decoded, op)
        except Exception as exc:  # a value of the wrong type for its shape: botocore's serializer says which
            return CallResult(400, {"Error": {"Code": "SerializationException",
                                              "Message": f"{type(exc).__name__}: {exc}"}})
        target = serialized["url_path"]
        query = serialized["query_string"]
        if query:
            target += "?" + (query if isinstance(query, str) else percent_encode_sequence(query))
        body = serialized["body"]
        if isinstance(body, str):
            body = body.encode()
        headers = [(k, str(v)) for k, v in serialized["headers"].items()]
        request = HttpRequest(serialized["method"], target, headers + [("Host", host)], body or b"", True, host, peer)
        response = await self._api.handle_as(request, principal, access_key, service)
        if not isinstance(response, HttpResponse):  # a streamed answer: the console asks for none
            return CallResult(400, {"Error": {"Code": "UnsupportedOperation",
                                              "Message": f"The console does not stream {operation}"}})
        parsed = create_parser(protocol).parse(
            {"status_code": response.status, "headers": HeadersDict(dict(response.headers)), "body": response.body},
            op.output_shape)
        parsed.pop("ResponseMetadata", None)
        return CallResult(response.status, _jsonable(parsed))


def _decode_blobs(value: Any, shape: Shape) -> Any:
    """``value`` with each (non-streaming) blob that came from JSON as base64 turned into its bytes."""
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        return {k: _decode_blobs(v, shape.members[k]) if k in shape.members else v for k, v in value.items()}
    if isinstance(shape, ListShape) and isinstance(value, list):
        return [_decode_blobs(v, shape.member) for v in value]
    if isinstance(shape, MapShape) and isinstance(value, dict):
        return {k: _decode_blobs(v, shape.value) for k, v in value.items()}
    if shape.type_name == "blob" and not shape.serialization.get("streaming") and isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"{shape.name} must be base64") from None
    return value


def _jsonable(value: Any) -> Any:
    """A parsed output as JSON can carry it: times in ISO 8601, bytes as text (a payload, a log)."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return value
