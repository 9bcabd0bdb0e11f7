"""Reading, checking and writing the values of botocore shapes (steps 2 to 4 of ``api/protocol.py``).

A codec per shape, built once per operation: it decodes a JSON value (or a uri label, query or header string) to
the value a boto3 caller passed, collecting AWS's validation messages (``Value '<v>' at '<path>' failed to
satisfy constraint: <c>``) for required members, lengths and ranges, and encodes a value back to JSON. How AWS's
Java front end prints values in those messages (``_java_str``) and how it measures a string's length (UTF-16
code units) are here too.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from botocore.model import Shape
from botocore.utils import parse_to_aware_datetime

from lambdad.errors import InvalidRequestContentException, violation

_UNPARSABLE = "Could not parse request body into json: "


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
    if isinstance(value, float):
        return _java_double(value)
    if isinstance(value, (bytes, bytearray)):
        return f"java.nio.HeapByteBuffer[pos=0 lim={len(value)} cap={len(value)}]"
    if isinstance(value, list):
        return "[" + ", ".join(_java_str(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}={_java_str(item)}" for key, item in value.items()) + "}"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _java_double(value: float) -> str:
    """A double as Java prints it: ``1.0``, ``NaN``, ``Infinity`` (not Python's ``1``, ``nan``, ``inf``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def _violation(path: str, value: Any, sensitive: bool, constraint: str) -> str:
    if sensitive and value is not None:
        return violation(path, constraint)
    return violation(path, constraint, None if value is None else _java_str(value))


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _bound(noun: str, relation: str, bound: int | float) -> str:
    shown = _java_double(bound) if isinstance(bound, float) else bound  # a double shape's bound reads 1.0
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
            number = self._SPECIAL[value]  # as botocore sends them; checked against the range like any other
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _BadJson(path, "java.lang.Double", value)
        else:
            number = float(value)  # a bare NaN or Infinity token too (Python's JSON reader takes them)
        self._check(number, value, path, errors)
        return number

    def _check(self, size: int | float, value: Any, path: str, errors: list[str]) -> None:
        if math.isnan(size):  # NaN compares false with everything: it is within no range
            if self.min is not None:
                errors.append(_violation(path, value, self.sensitive, _bound(self.noun, "greater", self.min)))
            if self.max is not None:
                errors.append(_violation(path, value, self.sensitive, _bound(self.noun, "less", self.max)))
            return
        super()._check(size, value, path, errors)

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
