"""The server side of AWS's REST-JSON protocol for the Lambda API, driven by botocore's service model.

One router and four verbs, all taking botocore ``OperationModel``\\ s::

    Router(model).match(method, raw_path, query)  -> (operation, decoded uri labels)
    parse_request(op, labels, query, headers, body) -> the input parameters as the boto3 caller passed them
    serialize_response(op, output)                  -> (status, headers, body) exactly as boto3 parses them
    serialize_error(exc)                            -> (status, headers, body) for any LambdaError

The contract, in the order a request meets it:

1. **Routing** (``api/router.py``): the operation of a method and raw path (and, for two operations, a literal
   query parameter); ``UnknownOperationException`` (404) for none.
2. **Parsing.** Members come from their model location: ``uri``, ``querystring``, ``header``, ``headers``
   (a prefix map), a ``payload`` member (a blob/string payload is the raw body as bytes; a structure payload is
   the JSON body), or the JSON body. Body blobs are base64-decoded, timestamps become aware UTC datetimes.
   A body that is not JSON, or JSON of the wrong type for a member, is ``InvalidRequestContentException``
   (like Lambda, whose deserializer rejects it before validation); unknown JSON members are ignored.
3. **Validation**, as AWS's front end does it before an operation runs, all errors collected into one
   ``ValidationException``: ``N validation error(s) detected: Value '<v>' at '<path>' failed to satisfy
   constraint: <c>; ...``. Checked: required (``Value null ... Member must not be null``), string/blob/list/map
   length, number range (NaN, sent as ``"NaN"`` or a bare token, is within no range). *Not* checked: ``pattern``
   and ``enum``, which Lambda's operations check themselves with their own messages (``member_pattern`` looks a
   pattern up for them). Paths are the member names in
   lowerCamelCase joined by ``.`` (``code.s3Bucket``); a sensitive member's value is left out (``Value at``).
   A failing element of a scalar list is reported at the list, AWS-style:
   ``Member must satisfy constraint: [<every constraint of the element>]`` (maps: ``Map keys``/``Map value``).
4. **Rendering.** The status is ``http.responseCode`` (default 200) unless a ``statusCode`` member is given;
   ``header`` members become headers; a blob payload is the raw body; everything else is JSON with
   ``None`` left out, bytes base64-encoded and datetimes in the model's timestamp format (epoch seconds by
   default). An event-stream payload (InvokeWithResponseStream) is not rendered: the caller streams it.

Everything derived from the model is computed once per operation and cached; the Invoke path does no
shape walking per request. The shapes' codecs (steps 2 to 4, value by value) are ``api/codecs.py``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.model import OperationModel, Shape

from lambdad.api.codecs import (
    _UNPARSABLE, _BadJson, _BlobCodec, _Codecs, _ListCodec, _lower_first, _Member, _StructureCodec, _violation)
from lambdad.errors import InvalidRequestContentException, LambdaError, validation_error

__all__ = ["parse_request", "serialize_response", "serialize_error", "member_pattern"]

_JSON_CONTENT_TYPE = "application/json"


# ---------------------------------------------------------------------------------------- per-operation plans


@dataclass(frozen=True, slots=True)
class _InputPlan:
    uri: tuple[_Member, ...]
    query: tuple[_Member, ...]
    header: tuple[_Member, ...]
    header_maps: tuple[_Member, ...]
    payload: _Member | None
    raw_payload: bool  # the payload is a blob or string: the body itself
    body: _StructureCodec | None  # the JSON body's members, when there is no payload member


@dataclass(frozen=True, slots=True)
class _OutputPlan:
    status: int
    status_member: str | None
    header: tuple[_Member, ...]
    header_maps: tuple[_Member, ...]
    payload: _Member | None
    payload_kind: str  # "raw", "json", "eventstream" or "" when there is no payload member
    body: _StructureCodec | None


def _located(
    shape: Shape, location: str, codecs: _Codecs, default_timestamp: str, lower: bool = False
) -> tuple[_Member, ...]:
    """The members of ``shape`` at ``location``; ``lower`` lower-cases their wire names (request headers)."""
    required = set(shape.required_members)
    found = []
    for name, member in shape.members.items():
        if member.serialization.get("location") != location:
            continue
        wire = member.serialization.get("name", name)
        if lower:
            wire = wire.lower()
        found.append(_Member(name, wire, _lower_first(name), codecs.of(member, default_timestamp), name in required))
    return tuple(found)


def _body(shape: Shape, codecs: _Codecs) -> _StructureCodec | None:
    members = codecs.body_members(shape)
    if not members:
        return None
    body = _StructureCodec(shape)
    body.fill(members)
    return body


@functools.lru_cache(maxsize=1024)
def _input_plan(op: OperationModel) -> _InputPlan:
    shape = op.input_shape
    if shape is None:
        return _InputPlan((), (), (), (), None, False, None)
    codecs = _Codecs()
    payload_name = shape.serialization.get("payload")
    payload: _Member | None = None
    raw_payload = False
    if payload_name is not None:
        target = shape.members[payload_name]
        raw_payload = target.type_name in ("blob", "string")
        payload = _Member(
            payload_name, "", _lower_first(payload_name), codecs.of(target), payload_name in shape.required_members
        )
    return _InputPlan(
        uri=_located(shape, "uri", codecs, "iso8601"),
        query=_located(shape, "querystring", codecs, "iso8601"),
        header=_located(shape, "header", codecs, "rfc822", lower=True),
        header_maps=_located(shape, "headers", codecs, "rfc822", lower=True),
        payload=payload,
        raw_payload=raw_payload,
        body=None if payload is not None else _body(shape, codecs),
    )


@functools.lru_cache(maxsize=1024)
def _output_plan(op: OperationModel) -> _OutputPlan:
    status = int(op.http.get("responseCode", 200))
    shape = op.output_shape
    if shape is None:
        return _OutputPlan(status, None, (), (), None, "", None)
    codecs = _Codecs()
    status_member = next(
        (name for name, member in shape.members.items() if member.serialization.get("location") == "statusCode"),
        None,
    )
    payload_name = shape.serialization.get("payload")
    payload: _Member | None = None
    kind = ""
    if payload_name is not None:
        target = shape.members[payload_name]
        if target.serialization.get("eventstream"):
            kind = "eventstream"
        else:
            kind = "raw" if target.type_name in ("blob", "string") else "json"
            payload = _Member(payload_name, "", payload_name, codecs.of(target), False)
    return _OutputPlan(
        status=status,
        status_member=status_member,
        header=_located(shape, "header", codecs, "rfc822"),
        header_maps=_located(shape, "headers", codecs, "rfc822"),
        payload=payload,
        payload_kind=kind,
        body=None if payload_name is not None else _body(shape, codecs),
    )


# ------------------------------------------------------------------------------------------------ parsing


def parse_request(
    op: OperationModel,
    uri_params: Mapping[str, str],
    query: Mapping[str, Sequence[str]],
    headers: Mapping[str, str],
    body: bytes,
) -> dict[str, Any]:
    """The input parameters of ``op`` as the boto3 caller passed them, validated as AWS validates them.

    ``uri_params`` are the decoded labels from ``Router.match``; ``query`` maps each query key to all its values;
    ``headers`` must be case-insensitive or keyed by lower-case names. A raw (blob) payload is absent when the
    body is empty, as when the caller passed none.
    """
    plan = _input_plan(op)
    params: dict[str, Any] = {}
    errors: list[str] = []
    for member in plan.uri:
        value = uri_params.get(member.wire)
        if value is None:
            if member.required:
                errors.append(_violation(member.path, None, False, "Member must not be null"))
            continue
        params[member.name] = member.codec.parse_text(value, member.path, errors)
    for member in plan.query:
        values = query.get(member.wire)
        if not values:
            if member.required:
                errors.append(_violation(member.path, None, False, "Member must not be null"))
            continue
        codec = member.codec
        if isinstance(codec, _ListCodec):
            params[member.name] = codec.parse_texts(values, member.path, errors)
        else:
            params[member.name] = codec.parse_text(values[0], member.path, errors)
    for member in plan.header:
        text = headers.get(member.wire)
        if text is None:
            if member.required:
                errors.append(_violation(member.path, None, False, "Member must not be null"))
            continue
        params[member.name] = member.codec.parse_text(text, member.path, errors)
    for member in plan.header_maps:
        prefixed = {
            key[len(member.wire) :]: value for key, value in headers.items() if key.lower().startswith(member.wire)
        }
        if prefixed:
            params[member.name] = prefixed
    if plan.payload is not None:
        _parse_payload(plan.payload, plan.raw_payload, body, params, errors)
    elif plan.body is not None:
        params.update(_decode_body(plan.body, body, errors))
    if errors:
        raise validation_error(*errors)
    return params


def _not_json(constant: str) -> Any:
    """NaN and Infinity are not JSON: Python's parser takes them, AWS's refuses them (a weight of NaN would
    pass every range check)."""
    raise ValueError(f"Non-standard token '{constant}'")


def _load_json(body: bytes) -> Any:
    if not body or body.isspace():
        return {}
    try:
        document = json.loads(body, parse_constant=_not_json)
    except ValueError as exc:  # also UnicodeDecodeError
        raise InvalidRequestContentException(f"{_UNPARSABLE}{exc}") from exc
    except RecursionError as exc:  # nested deeper than the parser goes
        raise InvalidRequestContentException(f"{_UNPARSABLE}the body is nested too deeply") from exc
    if not isinstance(document, dict):
        raise InvalidRequestContentException(f"{_UNPARSABLE}the body must be a JSON object")
    return document


def _parse_payload(member: _Member, raw: bool, body: bytes, params: dict[str, Any], errors: list[str]) -> None:
    codec = member.codec
    if not body:
        if member.required:
            errors.append(_violation(member.path, None, False, "Member must not be null"))
        return
    if not raw:
        document = _load_json(body)
        if document:  # botocore sends ``{}`` when the caller passed no structure payload
            try:
                params[member.name] = codec.decode(document, member.path, errors)
            except _BadJson as exc:
                raise InvalidRequestContentException(str(exc)) from exc
        elif member.required:
            errors.append(_violation(member.path, None, False, "Member must not be null"))
        return
    if isinstance(codec, _BlobCodec):
        params[member.name] = codec.check_bytes(bytes(body), member.path, errors)
        return
    try:
        params[member.name] = codec.decode(bytes(body).decode("utf-8"), member.path, errors)
    except UnicodeDecodeError as exc:
        raise InvalidRequestContentException(f"{_UNPARSABLE}the body is not UTF-8") from exc


def _decode_body(codec: _StructureCodec, body: bytes, errors: list[str]) -> dict[str, Any]:
    try:
        decoded: dict[str, Any] = codec.decode(_load_json(body), "", errors)
    except _BadJson as exc:
        raise InvalidRequestContentException(str(exc)) from exc
    return decoded


# ---------------------------------------------------------------------------------------------- rendering


def serialize_response(op: OperationModel, output: Mapping[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """The HTTP status, headers and body for ``output`` (the operation's output members) as boto3 parses them.

    Members set to None are left out; output keys the model does not know are ignored. An event-stream
    payload is not rendered: the body is empty and the caller streams it.
    """
    plan = _output_plan(op)
    status = plan.status
    if plan.status_member is not None and output.get(plan.status_member) is not None:
        status = int(output[plan.status_member])
    headers: dict[str, str] = {}
    body = b""
    if plan.payload is not None:
        value = output.get(plan.payload.name)
        if value is not None:
            headers["Content-Type"] = _JSON_CONTENT_TYPE
            if plan.payload_kind == "raw":
                body = value.encode("utf-8") if isinstance(value, str) else bytes(value)
            else:
                body = _dump(plan.payload.codec.encode(value))
    elif plan.body is not None:
        headers["Content-Type"] = _JSON_CONTENT_TYPE
        body = _dump(plan.body.encode(output))
    for member in plan.header:
        value = output.get(member.name)
        if value is not None:
            headers[member.wire] = member.codec.encode_text(value)
    for member in plan.header_maps:
        for key, value in (output.get(member.name) or {}).items():
            headers[member.wire + key] = str(value)
    return status, headers, body


def serialize_error(exc: LambdaError) -> tuple[int, dict[str, str], bytes]:
    """The HTTP status, headers and JSON body of an error, with the name where botocore reads the code."""
    headers = {**exc.headers(), "Content-Type": _JSON_CONTENT_TYPE}
    return exc.status, headers, _dump(exc.body())


def _dump(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


# ------------------------------------------------------------------------------------------------ lookups


def member_pattern(op: OperationModel, member_path: str) -> str | None:
    """The model's regular expression for an input member (``"FunctionName"``, ``"Code.S3Bucket"``), if any.

    The pattern is AWS's (Java syntax) and is not enforced by ``parse_request``; a list's or map's pattern
    is its element's (``"Layers"``: the pattern of each layer ARN).
    """
    shape = op.input_shape
    for name in member_path.split("."):
        if shape is None or shape.type_name != "structure" or name not in shape.members:
            raise KeyError(f"{op.name} has no input member {member_path!r}")
        shape = shape.members[name]
    while shape.type_name in ("list", "map"):
        shape = shape.member if shape.type_name == "list" else shape.value
    pattern: str | None = shape.metadata.get("pattern")
    return pattern
