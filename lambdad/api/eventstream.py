"""The writer of AWS's event-stream framing (``application/vnd.amazon.eventstream``), which InvokeWithResponseStream
answers in and botocore's ``EventStream`` reads (``botocore.eventstream`` is its parser; it ships no writer, and
no well-kept Python library offers one apart from the AWS CRT's native bindings, far too much for 30 lines).

One message on the wire, all integers big-endian::

    total length (u32) | headers length (u32) | CRC32 of the 8 bytes before (u32)
    headers: name length (u8), name (UTF-8), value type (u8; 7 = string), value length (u16), value
    payload
    CRC32 of everything before (u32)

An event carries ``:message-type: event``, ``:event-type: <member name>`` and ``:content-type``. A member whose
shape is the ``eventpayload`` blob (``PayloadChunk.Payload``) is the raw payload; otherwise the event's members
are a JSON object (``InvokeComplete``), as the rest-json protocol reads them.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Mapping

__all__ = ["event_message", "payload_chunk", "CONTENT_TYPE"]

CONTENT_TYPE = "application/vnd.amazon.eventstream"
_STRING = 7


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode("utf-8"), value.encode("utf-8")
    return struct.pack(">B", len(raw_name)) + raw_name + struct.pack(">BH", _STRING, len(raw_value)) + raw_value


# the headers of the two events lambdad sends, built once
_CHUNK_HEADERS = b"".join((_header(":event-type", "PayloadChunk"), _header(":content-type", "application/octet-stream"),
                           _header(":message-type", "event")))
_JSON_HEADERS: dict[str, bytes] = {}


def _message(headers: bytes, payload: bytes) -> bytes:
    total = 12 + len(headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(headers))
    head = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers
    crc = zlib.crc32(payload, zlib.crc32(head))
    return head + payload + struct.pack(">I", crc)


def payload_chunk(data: bytes) -> bytes:
    """A ``PayloadChunk`` event carrying ``data``."""
    return _message(_CHUNK_HEADERS, data)


def event_message(event_type: str, members: Mapping[str, str | None]) -> bytes:
    """An event whose members go in a JSON payload (``InvokeComplete``); members set to None are left out."""
    headers = _JSON_HEADERS.get(event_type)
    if headers is None:
        headers = b"".join((_header(":event-type", event_type), _header(":content-type", "application/json"),
                            _header(":message-type", "event")))
        _JSON_HEADERS[event_type] = headers
    body = json.dumps({k: v for k, v in members.items() if v is not None}, separators=(",", ":")).encode("utf-8")
    return _message(headers, body)
