"""The AWS query protocol (IAM, STS): form fields in, XML out, by botocore's model of the service.

``decode(operation, form)`` reads the parameters of a request from its form fields the way botocore's
``QuerySerializer`` writes them: a structure's members by name (``Parent.Member``), a list's members as
``Name.member.N`` (or ``Name.N`` where the model flattens it), a map's as ``Name.entry.N.key`` / ``.value``, scalars
as text (integers, ``true``/``false``, ISO 8601 timestamps, base64 blobs). What the model constrains is checked
(required members, lengths, patterns, ranges, enums) and every violation reported at once in AWS's words, with
the code these services use, ``ValidationError`` (400).

``encode(operation, result, request_id)`` writes ``<{Op}Response xmlns=…><{Op}Result>…</{Op}Result>
<ResponseMetadata><RequestId>…</RequestId></ResponseMetadata></{Op}Response>`` with the output shape's members in
model order (lists as ``<member>`` elements, maps as ``<entry><key/><value/></entry>``, timestamps ISO 8601 UTC),
and ``encode_error`` the ``<ErrorResponse>`` botocore's ``QueryParser`` reads into a ``ClientError``.

Not served: request compression, the EC2 flavour of the protocol.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any, Mapping
from xml.etree import ElementTree as ET

import regex
from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape

from lambdad.errors import LambdaError

__all__ = ["decode", "encode", "encode_error", "QueryValidationError"]


class QueryValidationError(LambdaError):
    name, status, error_type = "ValidationError", 400, "Sender"


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


# -- decoding ------------------------------------------------------------------------------------------------

def decode(operation: OperationModel, form: Mapping[str, list[str]]) -> dict[str, Any]:
    """The parameters of ``operation`` in ``form`` (field -> values; the first value counts)."""
    fields = {key: values[0] for key, values in form.items() if values and key not in ("Action", "Version")}
    shape = operation.input_shape
    if shape is None:
        return {}
    problems: list[str] = []
    params = _structure(shape, fields, "", "", problems) or {}
    if problems:
        n = len(problems)
        raise QueryValidationError(f"{n} validation error{'s' if n != 1 else ''} detected: {'; '.join(problems)}")
    return params


def _name(shape: Shape, member: str) -> str:
    return str(shape.serialization.get("name", member))


def _structure(shape: StructureShape, fields: Mapping[str, str], prefix: str, path: str,
               problems: list[str]) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    for member, member_shape in shape.members.items():
        key = f"{prefix}{_name(member_shape, member)}"
        member_path = f"{path}.{_lower_first(member)}" if path else _lower_first(member)
        value = _value(member_shape, fields, key, member_path, problems)
        if value is not None:
            out[member] = value
        elif member in shape.required_members:
            problems.append(f"Value null at '{member_path}' failed to satisfy constraint: Member must not be null")
    return out if out or not prefix else None


def _value(shape: Shape, fields: Mapping[str, str], key: str, path: str, problems: list[str]) -> Any:
    if isinstance(shape, StructureShape):
        if not any(k.startswith(key + ".") for k in fields):
            return None
        return _structure(shape, fields, key + ".", path, problems) or {}
    if isinstance(shape, ListShape):
        return _list(shape, fields, key, path, problems)
    if isinstance(shape, MapShape):
        return _map(shape, fields, key, path, problems)
    text = fields.get(key)
    if text is None:
        return None
    return _scalar(shape, text, path, problems)


def _list(shape: ListShape, fields: Mapping[str, str], key: str, path: str, problems: list[str]) -> Any:
    if shape.serialization.get("flattened"):
        base = f"{key}."
    else:
        base = f"{key}.{shape.member.serialization.get('name', 'member')}."
    if fields.get(key) == "":  # an empty list is sent as the bare name
        return []
    indexes = sorted({int(k[len(base):].split(".", 1)[0]) for k in fields
                      if k.startswith(base) and k[len(base):].split(".", 1)[0].isdigit()})
    if not indexes:
        return None
    items = [_value(shape.member, fields, f"{base}{i}", f"{path}.{i}", problems) for i in indexes]
    _check_size(shape, len(items), path, problems, "length")
    return items


def _map(shape: MapShape, fields: Mapping[str, str], key: str, path: str, problems: list[str]) -> Any:
    base = key + "." if shape.serialization.get("flattened") else key + ".entry."
    key_name = shape.key.serialization.get("name", "key")
    value_name = shape.value.serialization.get("name", "value")
    indexes = sorted({int(k[len(base):].split(".", 1)[0]) for k in fields
                      if k.startswith(base) and k[len(base):].split(".", 1)[0].isdigit()})
    if not indexes:
        return None
    out = {}
    for i in indexes:
        k = fields.get(f"{base}{i}.{key_name}")
        if k is not None:
            out[k] = _value(shape.value, fields, f"{base}{i}.{value_name}", f"{path}.{k}", problems)
    return out


def _scalar(shape: Shape, text: str, path: str, problems: list[str]) -> Any:
    kind = shape.type_name
    try:
        if kind in ("integer", "long"):
            value: Any = int(text)
            _check_size(shape, value, path, problems, "value")
            return value
        if kind in ("float", "double"):
            return float(text)
        if kind == "boolean":
            if text.lower() not in ("true", "false"):
                raise ValueError(text)
            return text.lower() == "true"
        if kind == "timestamp":
            return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        if kind == "blob":
            return base64.b64decode(text, validate=True)
    except ValueError:
        problems.append(f"Value '{text}' at '{path}' failed to satisfy constraint: Member must be a valid {kind}")
        return None
    enum = shape.metadata.get("enum")
    if enum and text not in enum:
        problems.append(f"Value '{text}' at '{path}' failed to satisfy constraint: Member must satisfy enum value "
                        f"set: [{', '.join(enum)}]")
    _check_size(shape, len(text), path, problems, "length")
    pattern = shape.metadata.get("pattern")
    if pattern and not _pattern(pattern).fullmatch(text):
        problems.append(f"Value '{text}' at '{path}' failed to satisfy constraint: Member must satisfy regular "
                        f"expression pattern: {pattern}")
    return text


_PATTERNS: dict[str, "regex.Pattern[str]"] = {}


def _pattern(pattern: str) -> "regex.Pattern[str]":
    found = _PATTERNS.get(pattern)
    if found is None:  # the models' patterns are Java's (\p{L}, \u escapes): the regex module reads them
        found = _PATTERNS[pattern] = regex.compile(pattern, regex.DOTALL)
    return found


def _check_size(shape: Shape, size: int, path: str, problems: list[str], what: str) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and size < low:
        problems.append(f"Value at '{path}' failed to satisfy constraint: Member must have {what} greater than or "
                        f"equal to {low}")
    elif high is not None and size > high:
        problems.append(f"Value at '{path}' failed to satisfy constraint: Member must have {what} less than or "
                        f"equal to {high}")


# -- encoding ------------------------------------------------------------------------------------------------

def encode(operation: OperationModel, result: Mapping[str, Any], request_id: str) -> bytes:
    xmlns = str(operation.service_model.metadata.get("xmlNamespace", ""))
    root = ET.Element(f"{operation.name}Response", xmlns=xmlns)
    shape = operation.output_shape
    if shape is not None:
        wrapper = shape.serialization.get("resultWrapper", f"{operation.name}Result")
        _write_structure(ET.SubElement(root, wrapper), shape, result)
    metadata = ET.SubElement(root, "ResponseMetadata")
    ET.SubElement(metadata, "RequestId").text = request_id
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def _write_structure(parent: ET.Element, shape: StructureShape, value: Mapping[str, Any]) -> None:
    for member, member_shape in shape.members.items():
        if value.get(member) is not None:
            _write(ET.SubElement(parent, _name(member_shape, member)), member_shape, value[member])


def _write(element: ET.Element, shape: Shape, value: Any) -> None:
    if isinstance(shape, StructureShape):
        _write_structure(element, shape, value)
    elif isinstance(shape, ListShape):
        name = shape.member.serialization.get("name", "member")
        for item in value:
            _write(ET.SubElement(element, name), shape.member, item)
    elif isinstance(shape, MapShape):
        for k, v in value.items():
            entry = ET.SubElement(element, "entry")
            ET.SubElement(entry, shape.key.serialization.get("name", "key")).text = str(k)
            _write(ET.SubElement(entry, shape.value.serialization.get("name", "value")), shape.value, v)
    elif shape.type_name == "boolean":
        element.text = "true" if value else "false"
    elif shape.type_name == "timestamp":
        when = value if isinstance(value, dt.datetime) else dt.datetime.fromtimestamp(float(value), dt.timezone.utc)
        element.text = when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    elif shape.type_name == "blob":
        element.text = base64.b64encode(value).decode()
    else:
        element.text = str(value)


def encode_error(code: str, message: str, status: int, request_id: str, sender_fault: bool = True,
                 xmlns: str = "") -> bytes:
    root = ET.Element("ErrorResponse", xmlns=xmlns) if xmlns else ET.Element("ErrorResponse")
    error = ET.SubElement(root, "Error")
    ET.SubElement(error, "Type").text = "Sender" if sender_fault else "Receiver"
    ET.SubElement(error, "Code").text = code
    ET.SubElement(error, "Message").text = message
    ET.SubElement(root, "RequestId").text = request_id
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))
