"""The server side of AWS's REST-JSON protocol for the Lambda API, driven by botocore's service model.

One router and four verbs, all taking botocore ``OperationModel``\\ s::

    Router(model).match(method, raw_path, query)  -> (operation, decoded uri labels)
    parse_request(op, labels, query, headers, body) -> the input parameters as the boto3 caller passed them
    serialize_response(op, output)                  -> (status, headers, body) exactly as boto3 parses them
    serialize_error(exc)                            -> (status, headers, body) for any LambdaError

The contract, in the order a request meets it:

1. **Routing.** Each operation's ``http.requestUri`` is compiled into a segment trie at construction. The raw
   path is split on ``/`` *before* percent-decoding, so an ARN label (``arn%3Aaws%3A...``) or an encoded ``/``
   stays inside its label. Literal segments win over labels; a greedy label ``{X+}`` takes one or more
   segments. Two requestUris carry a literal query (``GET /2018-10-31/layers?find=LayerVersion`` is
   GetLayerVersionByArn, ``GET .../provisioned-concurrency?List=ALL`` is ListProvisionedConcurrencyConfigs):
   they share path and method with ListLayers and GetProvisionedConcurrencyConfig, so ``match`` takes the
   query too, and a route with literal query parameters wins when they are all present. A path that matches
   no template, or matches one but not with this method, is an ``UnknownOperationException`` (404).
2. **Parsing.** Members come from their model location: ``uri``, ``querystring``, ``header``, ``headers``
   (a prefix map), a ``payload`` member (a blob/string payload is the raw body as bytes; a structure payload is
   the JSON body), or the JSON body. Body blobs are base64-decoded, timestamps become aware UTC datetimes.
   A body that is not JSON, or JSON of the wrong type for a member, is ``InvalidRequestContentException``
   (like Lambda, whose deserializer rejects it before validation); unknown JSON members are ignored.
3. **Validation**, as AWS's front end does it before an operation runs, all errors collected into one
   ``ValidationException``: ``N validation error(s) detected: Value '<v>' at '<path>' failed to satisfy
   constraint: <c>; ...``. Checked: required (``Value null ... Member must not be null``), string/blob/list/map
   length, number range. *Not* checked: ``pattern`` and ``enum``, which Lambda's operations check themselves
   with their own messages (``member_pattern`` looks a pattern up for them). Paths are the member names in
   lowerCamelCase joined by ``.`` (``code.s3Bucket``); a sensitive member's value is left out (``Value at``).
   A failing element of a scalar list is reported at the list, AWS-style:
   ``Member must satisfy constraint: [<every constraint of the element>]`` (maps: ``Map keys``/``Map value``).
4. **Rendering.** The status is ``http.responseCode`` (default 200) unless a ``statusCode`` member is given;
   ``header`` members become headers; a blob payload is the raw body; everything else is JSON with
   ``None`` left out, bytes base64-encoded and datetimes in the model's timestamp format (epoch seconds by
   default). An event-stream payload (InvokeWithResponseStream) is not rendered: the caller streams it.

Everything derived from the model is computed once per operation and cached; the Invoke path does no
shape walking per request.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import functools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

from botocore.model import OperationModel, ServiceModel, Shape
from botocore.utils import parse_to_aware_datetime

from lambdad.errors import (
    InvalidRequestContentException,
    LambdaError,
    UnknownOperationException,
    validation_error,
    violation,
)

__all__ = [
    "Router",
    "parse_request",
    "serialize_response",
    "serialize_error",
    "member_pattern",
]

_JSON_CONTENT_TYPE = "application/json"
_UNPARSABLE = "Could not parse request body into json: "
_LABEL = re.compile(r"^\{([^{}+]+)(\+?)\}$")


# ---------------------------------------------------------------------------------------------- routing


@dataclass(frozen=True, slots=True)
class _Route:
    operation: OperationModel
    labels: tuple[str, ...]
    query: tuple[tuple[str, str], ...]  # literal query parameters of the requestUri, e.g. (("find", "LayerVersion"),)

    def accepts(self, query: Mapping[str, Sequence[str]] | None) -> bool:
        for key, value in self.query:
            if query is None or key not in query:
                return False
            if value and value not in query[key]:
                return False
        return True


class _Node:
    __slots__ = ("literals", "label", "greedy", "routes")

    def __init__(self) -> None:
        self.literals: dict[str, _Node] = {}
        self.label: _Node | None = None
        self.greedy: _Node | None = None
        self.routes: dict[str, list[_Route]] = {}


class Router:
    """Finds the operation for a request line; built once from the service model."""

    def __init__(self, service_model: ServiceModel) -> None:
        self._root = _Node()
        for name in service_model.operation_names:
            self._add(service_model.operation_model(name))
        # A route with literal query parameters is more specific than its bare twin: try it first.
        self._sort(self._root)

    def _add(self, op: OperationModel) -> None:
        path, _, literal_query = op.http["requestUri"].partition("?")
        node = self._root
        labels: list[str] = []
        for segment in path.split("/")[1:]:
            label = _LABEL.match(segment)
            if label is None:
                node = node.literals.setdefault(segment, _Node())
            elif label.group(2):
                node.greedy = node.greedy or _Node()
                node, labels = node.greedy, [*labels, label.group(1)]
            else:
                node.label = node.label or _Node()
                node, labels = node.label, [*labels, label.group(1)]
        route = _Route(op, tuple(labels), tuple(parse_qsl(literal_query, keep_blank_values=True)))
        node.routes.setdefault(op.http["method"].upper(), []).append(route)

    def _sort(self, node: _Node) -> None:
        for routes in node.routes.values():
            routes.sort(key=lambda route: -len(route.query))
        for child in (*node.literals.values(), node.label, node.greedy):
            if child is not None:
                self._sort(child)

    def match(
        self, method: str, raw_path: str, query: Mapping[str, Sequence[str]] | None = None
    ) -> tuple[OperationModel, dict[str, str]]:
        """The operation for ``method raw_path`` and its percent-decoded uri labels.

        ``raw_path`` is the path as received (percent-encoded, without the query string); ``query`` the parsed
        query string, needed only to tell apart the routes whose requestUri has a literal query part.
        """
        if raw_path.startswith("/"):
            segments = raw_path.split("/")
            captured: list[str] = []
            route = self._walk(self._root, segments, 1, method.upper(), query, captured)
            if route is not None:
                return route.operation, {
                    name: _percent_decode(raw) if "%" in raw else raw for name, raw in zip(route.labels, captured)
                }
        raise UnknownOperationException(f"Unknown operation: {method} {raw_path}")

    def _walk(
        self,
        node: _Node,
        segments: list[str],
        index: int,
        method: str,
        query: Mapping[str, Sequence[str]] | None,
        captured: list[str],
    ) -> _Route | None:
        if index == len(segments):
            for route in node.routes.get(method, ()):
                if not route.query or route.accepts(query):
                    return route
            return None
        segment = segments[index]
        literal = node.literals.get(segment)
        if literal is None and node.literals and "%" in segment:
            literal = node.literals.get(_percent_decode(segment))
        if literal is not None:
            found = self._walk(literal, segments, index + 1, method, query, captured)
            if found is not None:
                return found
        if node.label is not None:
            captured.append(segment)
            found = self._walk(node.label, segments, index + 1, method, query, captured)
            if found is not None:
                return found
            captured.pop()
        if node.greedy is not None:
            for end in range(index + 1, len(segments) + 1):  # shortest first: a literal suffix wins
                captured.append("/".join(segments[index:end]))
                found = self._walk(node.greedy, segments, end, method, query, captured)
                if found is not None:
                    return found
                captured.pop()
        return None


_HEX_DIGITS = "0123456789abcdefABCDEF"
_ESCAPES = {f"{hi}{lo}": bytes((int(hi + lo, 16),)) for hi in _HEX_DIGITS for lo in _HEX_DIGITS}


def _percent_decode(raw: str) -> str:
    """``urllib.parse.unquote``, twice as fast: it runs on every ARN-addressed invoke."""
    parts = raw.split("%")
    out = [parts[0].encode()]
    for part in parts[1:]:
        byte = _ESCAPES.get(part[:2])
        if byte is None:  # not an escape: kept as it is, like unquote
            out.append(b"%")
            out.append(part.encode())
        else:
            out.append(byte)
            out.append(part[2:].encode())
    return b"".join(out).decode("utf-8", "replace")


# ----------------------------------------------------------------------------------------------- codecs


class _BadJson(Exception):
    """A JSON value of the wrong type: the request body cannot be read into the shape."""

    def __init__(self, path: str, expected: str, value: Any) -> None:
        super().__init__(
            f"{_UNPARSABLE}Cannot deserialize value of type `{expected}` from {_json_kind(value)} at '{path}'"
        )


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "Boolean value"
    if isinstance(value, (int, float)):
        return f"Number value ({value})"
    if isinstance(value, str):
        return f'String value ("{value[:64]}")'
    if isinstance(value, list):
        return "Array value"
    return "Object value"


def _java_str(value: Any) -> str:
    """How AWS's Java front end prints a value in a validation message."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (bytes, bytearray)):
        return f"java.nio.HeapByteBuffer[pos=0 lim={len(value)} cap={len(value)}]"
    if isinstance(value, list):
        return "[" + ", ".join(_java_str(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}={_java_str(item)}" for key, item in value.items()) + "}"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _violation(path: str, value: Any, sensitive: bool, constraint: str) -> str:
    if sensitive and value is not None:
        return violation(path, constraint)
    return violation(path, constraint, None if value is None else _java_str(value))


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _bound(noun: str, relation: str, bound: int | float) -> str:
    shown = int(bound) if float(bound).is_integer() else bound
    return f"Member must have {noun} {relation} than or equal to {shown}"


class _Codec:
    """Reads and writes the values of one shape; built once per shape of an operation."""

    scalar = True
    noun = "length"  # what min/max bound: "length" of strings, blobs and collections, "value" of numbers

    def __init__(self, shape: Shape) -> None:
        meta = shape.metadata
        self.sensitive = bool(meta.get("sensitive"))
        self.min: int | float | None = meta.get("min")
        self.max: int | float | None = meta.get("max")
        self.pattern: str | None = meta.get("pattern")
        self.enum: list[str] | None = meta.get("enum")

    # -- reading
    def decode(self, value: Any, path: str, errors: list[str]) -> Any:
        """A JSON value to the caller's value; constraint failures go to ``errors``."""
        raise NotImplementedError

    def parse_text(self, text: str, path: str, errors: list[str]) -> Any:
        """A uri label, query or header string to the caller's value."""
        return self.decode(text, path, errors)

    # -- writing
    def encode(self, value: Any) -> Any:
        return value

    def encode_text(self, value: Any) -> str:
        return str(value)

    # -- constraints
    def describe(self, not_null: bool) -> list[str]:
        """Every constraint of the shape, as AWS lists them for a failing list element or map entry."""
        found = []
        if self.max is not None:
            found.append(_bound(self.noun, "less", self.max))
        if self.min is not None:
            found.append(_bound(self.noun, "greater", self.min))
        if self.pattern is not None:
            found.append(f"Member must satisfy regular expression pattern: {self.pattern}")
        if self.enum:
            found.append(f"Member must satisfy enum value set: [{', '.join(self.enum)}]")
        if not_null:
            found.append("Member must not be null")
        return found

    def _check(self, size: int | float, value: Any, path: str, errors: list[str]) -> None:
        if self.min is not None and size < self.min:
            errors.append(_violation(path, value, self.sensitive, _bound(self.noun, "greater", self.min)))
        if self.max is not None and size > self.max:
            errors.append(_violation(path, value, self.sensitive, _bound(self.noun, "less", self.max)))


def _java_length(text: str) -> int:
    """String length as Java counts it (UTF-16 code units), which is what AWS's limits count."""
    return len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2


class _StringCodec(_Codec):
    def decode(self, value: Any, path: str, errors: list[str]) -> Any:
        if not isinstance(value, str):
            raise _BadJson(path, "java.lang.String", value)
        if self.min is not None or self.max is not None:
            self._check(_java_length(value), value, path, errors)
        return value


class _IntegerCodec(_Codec):
    noun = "value"

    def __init__(self, shape: Shape) -> None:
        super().__init__(shape)
        self.bits = 63 if shape.type_name == "long" else 31
        self.java = "java.lang.Long" if self.bits == 63 else "java.lang.Integer"

    def decode(self, value: Any, path: str, errors: list[str]) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or not -(2**self.bits) <= value < 2**self.bits:
            raise _BadJson(path, self.java, value)
        self._check(value, value, path, errors)
        return value

    def parse_text(self, text: str, path: str, errors: list[str]) -> Any:
        try:
            number = int(text)
        except ValueError:
            errors.append(_violation(path, text, self.sensitive, "Member must be a valid integer"))
            return text
        self._check(number, number, path, errors)
        return number


class _FloatCodec(_Codec):
    noun = "value"
    _SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

    def decode(self, value: Any, path: str, errors: list[str]) -> Any:
        if isinstance(value, str) and value in self._SPECIAL:
            return self._SPECIAL[value]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _BadJson(path, "java.lang.Double", value)
        self._check(value, value, path, errors)
        return float(value)

    def parse_text(self, text: str, path: str, errors: list[str]) -> Any:
        try:
            return self.decode(float(text), path, errors)
        except ValueError:
            errors.append(_violation(path, text, self.sensitive, "Member must be a valid number"))
            return text

    def encode(self, value: Any) -> Any:
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value


class _BooleanCodec(_Codec):
    def decode(self, value: Any, path: str, errors: list[str]) -> Any:
        if not isinstance(value, bool):
            raise _BadJson(path, "java.lang.Boolean", value)
        return value

    def parse_text(self, text: str, path: str, errors: list[str]) -> Any:
        lowered = text.lower()
        if lowered not in ("true", "false"):
            errors.append(_violation(path, text, self.sensitive, "Member must be a valid boolean"))
            return text
        return lowered == "true"

    def encode_text(self, value: Any) -> str:
        return "true" if value else "false"


class _BlobCodec(_Codec):
    def decode(self, value: Any, path: str, errors: list[str]) -> Any:
        if not isinstance(value, str):
            raise _BadJson(path, "java.nio.ByteBuffer", value)
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidRequestContentException(f"{_UNPARSABLE}Invalid base64 value at '{path}'") from exc
        return self.check_bytes(data, path, errors)

    def check_bytes(self, data: bytes, path: str, errors: list[str]) -> bytes:
        if self.min is not None or self.max is not None:
            self._check(len(data), data, path, errors)
        return data

    def encode(self, value: Any) -> Any:
        raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        return base64.b64encode(raw).decode("ascii")

    encode_text = encode


class _TimestampCodec(_Codec):
    def __init__(self, shape: Shape, default_format: str) -> None:
        super().__init__(shape)
        self.format = shape.serialization.get("timestampFormat", default_format).lower()

    def decode(self, value: Any, path: str, errors: list[str]) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise _BadJson(path, "java.util.Date", value)
        try:
            return parse_to_aware_datetime(value).astimezone(timezone.utc)
        except (ValueError, OverflowError, OSError) as exc:
            raise InvalidRequestContentException(f"{_UNPARSABLE}Invalid timestamp at '{path}'") from exc

    def parse_text(self, text: str, path: str, errors: list[str]) -> Any:
        try:
            return parse_to_aware_datetime(text).astimezone(timezone.utc)
        except (ValueError, OverflowError, OSError):
            errors.append(_violation(path, text, self.sensitive, "Member must be a valid timestamp"))
            return text

    def encode(self, value: Any) -> Any:
        if not isinstance(value, datetime):
            return value  # already in wire form
        moment = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
        if self.format == "unixtimestamp":
            seconds = moment.timestamp()
            return int(seconds) if seconds.is_integer() else seconds
        if self.format == "rfc822":
            return email.utils.format_datetime(moment.astimezone(timezone.utc), usegmt=True)
        text = moment.astimezone(timezone.utc).isoformat(timespec="milliseconds" if moment.microsecond else "seconds")
        return text.replace("+00:00", "Z")

    def encode_text(self, value: Any) -> str:
        return str(self.encode(value))


class _ListCodec(_Codec):
    scalar = False

    def __init__(self, shape: Shape, member: _Codec) -> None:
        super().__init__(shape)
        self.member = member

    def decode(self, value: Any, path: str, errors: list[str]) -> Any:
        if not isinstance(value, list):
            raise _BadJson(path, "java.util.List", value)
        self._check(len(value), value, path, errors)
        member = self.member
        if not member.scalar:
            return [member.decode(item, f"{path}.{index}.member", errors) for index, item in enumerate(value, 1)]
        failed: list[str] = []
        out = [None if item is None else member.decode(item, path, failed) for item in value]
        if failed or None in value:
            inner = ", ".join(member.describe(not_null=True))
            errors.append(_violation(path, value, self.sensitive, f"Member must satisfy constraint: [{inner}]"))
        return out

    def parse_text(self, text: str, path: str, errors: list[str]) -> Any:
        return self.parse_texts([part.strip() for part in text.split(",")], path, errors)

    def parse_texts(self, texts: Sequence[str], path: str, errors: list[str]) -> list[Any]:
        failed: list[str] = []
        out = [self.member.parse_text(text, path, failed) for text in texts]
        self._check(len(out), list(texts), path, errors)
        if failed:
            inner = ", ".join(self.member.describe(not_null=True))
            errors.append(_violation(path, list(texts), self.sensitive, f"Member must satisfy constraint: [{inner}]"))
        return out

    def encode(self, value: Any) -> Any:
        member = self.member
        return [member.encode(item) for item in value if item is not None]

    def encode_text(self, value: Any) -> str:
        return ",".join(self.member.encode_text(item) for item in value)


class _MapCodec(_Codec):
    scalar = False

    def __init__(self, shape: Shape, key: _Codec, value: _Codec) -> None:
        super().__init__(shape)
        self.key = key
        self.value = value

    def decode(self, value: Any, path: str, errors: list[str]) -> Any:
        if not isinstance(value, dict):
            raise _BadJson(path, "java.util.Map", value)
        self._check(len(value), value, path, errors)
        bad_keys: list[str] = []
        bad_values: list[str] = []
        out = {}
        for key, item in value.items():
            if item is not None:  # a JSON null entry is dropped
                out[self.key.decode(key, path, bad_keys)] = self._decode_value(item, key, path, errors, bad_values)
        if bad_keys:
            inner = ", ".join(self.key.describe(not_null=False))
            errors.append(_violation(path, value, self.sensitive, f"Map keys must satisfy constraint: [{inner}]"))
        if bad_values:
            inner = ", ".join(self.value.describe(not_null=False))
            errors.append(_violation(path, value, self.sensitive, f"Map value must satisfy constraint: [{inner}]"))
        return out

    def _decode_value(self, item: Any, key: str, path: str, errors: list[str], bad: list[str]) -> Any:
        if self.value.scalar:
            return self.value.decode(item, path, bad)
        return self.value.decode(item, f"{path}.{key}", errors)

    def encode(self, value: Any) -> Any:
        encode = self.value.encode
        return {key: encode(item) for key, item in value.items() if item is not None}


@dataclass(frozen=True, slots=True)
class _Member:
    name: str  # the member name the boto3 caller uses
    wire: str  # JSON key, uri label, query key, lower-cased header name or header prefix
    path: str  # the name in validation messages
    codec: _Codec
    required: bool


class _StructureCodec(_Codec):
    scalar = False

    def __init__(self, shape: Shape) -> None:
        super().__init__(shape)
        self.members: tuple[_Member, ...] = ()
        self.by_name: dict[str, _Member] = {}

    def fill(self, members: Sequence[_Member]) -> None:
        self.members = tuple(members)
        self.by_name = {member.name: member for member in members}

    def decode(self, value: Any, path: str, errors: list[str]) -> Any:
        if not isinstance(value, dict):
            raise _BadJson(path, "structure", value)
        out = {}
        for member in self.members:
            item = value.get(member.wire)
            if item is None:
                if member.required:
                    errors.append(_violation(_join(path, member.path), None, False, "Member must not be null"))
                continue
            out[member.name] = member.codec.decode(item, _join(path, member.path), errors)
        return out

    def encode(self, value: Any) -> Any:
        out = {}
        by_name = self.by_name
        for name, item in value.items():
            member = by_name.get(name)
            if member is not None and item is not None:
                out[member.wire] = member.codec.encode(item)
        return out


class _Codecs:
    """Builds the codec of each shape once. A recursive shape recurses through a structure, which is cached
    before its members are built."""

    def __init__(self) -> None:
        self._built: dict[tuple[str, str], _Codec] = {}

    def of(self, shape: Shape, default_timestamp: str = "unixtimestamp") -> _Codec:
        key = (shape.name, default_timestamp)
        built = self._built.get(key)
        if built is not None:
            return built
        kind = shape.type_name
        if kind == "structure":
            structure = _StructureCodec(shape)
            self._built[key] = structure
            structure.fill(self.body_members(shape))
            return structure
        codec: _Codec
        if kind == "list":
            codec = _ListCodec(shape, self.of(shape.member, default_timestamp))
        elif kind == "map":
            codec = _MapCodec(shape, self.of(shape.key), self.of(shape.value))
        else:
            codec = self._scalar(shape, default_timestamp)
        self._built[key] = codec
        return codec

    @staticmethod
    def _scalar(shape: Shape, default_timestamp: str) -> _Codec:
        kind = shape.type_name
        if kind in ("integer", "long", "short", "byte"):
            return _IntegerCodec(shape)
        if kind in ("float", "double"):
            return _FloatCodec(shape)
        if kind == "boolean":
            return _BooleanCodec(shape)
        if kind == "blob":
            return _BlobCodec(shape)
        if kind == "timestamp":
            return _TimestampCodec(shape, default_timestamp)
        return _StringCodec(shape)

    def body_members(self, shape: Shape) -> list[_Member]:
        required = set(shape.required_members)
        return [
            _Member(name, member.serialization.get("name", name), _lower_first(name), self.of(member), name in required)
            for name, member in shape.members.items()
            if "location" not in member.serialization
        ]


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


def _load_json(body: bytes) -> Any:
    if not body or body.isspace():
        return {}
    try:
        document = json.loads(body)
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
