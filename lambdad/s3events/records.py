"""The pure half of S3 object events: a notification's filters, as S3's LambdaFunctionConfigurations have them,
and the records a store sends, turned into the event Lambda gets from S3.

**Filters.** ``Events`` is a list of S3 event types (``s3:ObjectCreated:Put``, ``s3:ObjectRemoved:*``: a ``*``
stands for the last part only, as in S3). A name is any ``s3:Word[:Word|*]``: S3-compatible stores add their own
(MinIO's ``s3:ObjectAccessed:Get``), so they are not held to S3's list. ``Filter.Key.FilterRules`` holds at most
one ``prefix`` and one ``suffix`` rule (names case-insensitive, values up to 1,024 characters), matched against
the object key as it is (decoded), as S3 matches them.

**Records in.** A body is a JSON object with ``Records``: a list of S3 event records. MinIO's webhook target
wraps one record as ``{"EventName", "Key", "Records": [record]}``; Ceph RGW and others send ``{"Records": [...]}``.
Each record needs ``eventName``, ``s3.bucket.name`` and ``s3.object.key`` (URL-encoded, as S3 and MinIO send it:
MinIO uses Go's ``url.QueryEscape``, a space is ``+``); the rest is taken when present. ``eventName`` may come with
or without the ``s3:`` prefix (MinIO puts it, S3 and Ceph do not).

**Records out.** One Lambda event per record (S3 invokes a function once per record): ``{"Records": [record]}``
with ``eventVersion`` 2.1, ``eventSource`` ``aws:s3``, ``awsRegion`` (the store's, else the server's),
``eventTime``, ``eventName`` without ``s3:``, ``userIdentity``, ``requestParameters`` {sourceIPAddress},
``responseElements`` {x-amz-request-id, x-amz-id-2}, and ``s3`` {s3SchemaVersion, configurationId (the
notification's), bucket {name, ownerIdentity, arn}, object {key (S3's encoding: ``+`` for a space, ``/`` kept),
size, eTag, versionId, sequencer}} — size and eTag only where the store gave them (S3 gives none for a removal),
versionId only when the object has one. What only the store sends (MinIO's ``source``, ``userMetadata``) is
dropped: the function sees what S3 would send it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence
from urllib.parse import quote_plus, unquote_plus

__all__ = ["EVENT_VERSION", "FilterError", "KeyFilter", "MAX_FILTER_VALUE", "NotificationFilter", "RecordError",
           "lambda_event", "object_key", "parse_body", "parse_events", "parse_filter"]

MAX_FILTER_VALUE = 1024
MAX_EVENTS = 64
_EVENT = re.compile(r"s3:[A-Za-z]+(:([A-Za-z]+|\*))?")
EVENT_VERSION = "2.1"


class FilterError(ValueError):
    """A notification's Events or Filter that S3 would refuse (the message says what)."""


class RecordError(ValueError):
    """A webhook body that is not S3 event records (the message says what, without echoing the body)."""


@dataclass(frozen=True)
class KeyFilter:
    prefix: str = ""
    suffix: str = ""

    def matches(self, key: str) -> bool:
        return key.startswith(self.prefix) and key.endswith(self.suffix)

    def document(self) -> dict[str, Any] | None:
        """The ``Filter`` member as S3 shows it, or None when there are no rules."""
        rules = [{"Name": name, "Value": value} for name, value in (("Prefix", self.prefix), ("Suffix", self.suffix))
                 if value]
        return {"Key": {"FilterRules": rules}} if rules else None


@dataclass(frozen=True)
class NotificationFilter:
    """What a notification lets through: the event types and the key filter."""

    events: tuple[str, ...]
    key: KeyFilter

    def matches(self, event_name: str, key: str) -> bool:
        name = event_name if event_name.startswith("s3:") else "s3:" + event_name
        return self.key.matches(key) and any(
            name == wanted or (wanted.endswith(":*") and name.startswith(wanted[:-1])) for wanted in self.events)


def parse_events(events: Sequence[Any]) -> tuple[str, ...]:
    """``Events`` checked: 1 to 64 S3 event type names, each once."""
    if not events:
        raise FilterError("Events must name at least one event type, such as s3:ObjectCreated:*")
    if len(events) > MAX_EVENTS:
        raise FilterError(f"Events may name at most {MAX_EVENTS} event types")
    out: list[str] = []
    for name in events:
        if not isinstance(name, str) or _EVENT.fullmatch(name) is None:
            raise FilterError(f"The event is not supported for notifications: {str(name)[:100]} (expected "
                              "s3:Type:Detail or s3:Type:*, such as s3:ObjectCreated:Put)")
        if name not in out:
            out.append(name)
    return tuple(out)


def parse_filter(document: Mapping[str, Any] | None) -> KeyFilter:
    """``Filter`` ({"Key": {"FilterRules": [{"Name": "prefix"|"suffix", "Value": ...}]}}) checked as S3 checks it."""
    if not document:
        return KeyFilter()
    key = document.get("Key")
    rules = key.get("FilterRules") if isinstance(key, Mapping) else None
    if not isinstance(rules, list):
        raise FilterError('Filter must be {"Key": {"FilterRules": [{"Name": "prefix"|"suffix", "Value": ...}]}}')
    found: dict[str, str] = {}
    for rule in rules:
        if not isinstance(rule, Mapping) or not isinstance(rule.get("Name"), str) \
                or not isinstance(rule.get("Value"), str):
            raise FilterError("Each filter rule has a Name (prefix or suffix) and a Value")
        name = rule["Name"].lower()
        if name not in ("prefix", "suffix"):
            raise FilterError(f"filter rule name must be either prefix or suffix, not {rule['Name'][:20]!r}")
        if name in found:
            raise FilterError(f"Cannot specify more than one {name} rule in a filter.")
        if len(rule["Value"]) > MAX_FILTER_VALUE:
            raise FilterError(f"A filter rule's value is at most {MAX_FILTER_VALUE} characters")
        found[name] = rule["Value"]
    return KeyFilter(found.get("prefix", ""), found.get("suffix", ""))


def parse_body(body: bytes, max_records: int) -> list[dict[str, Any]]:
    """The records of a webhook body; an S3 test event (``{"Event": "s3:TestEvent"}``) has none."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise RecordError("The body is not JSON") from None
    if not isinstance(document, dict):
        raise RecordError("The body must be a JSON object with Records")
    if document.get("Event") == "s3:TestEvent" and "Records" not in document:
        return []
    records = document.get("Records")
    if not isinstance(records, list) or not records:
        raise RecordError("The body has no Records")
    if len(records) > max_records:
        raise RecordError(f"The body has {len(records)} records; at most {max_records} are taken at once")
    for i, record in enumerate(records):
        s3 = record.get("s3") if isinstance(record, dict) else None
        bucket = s3.get("bucket") if isinstance(s3, dict) else None
        obj = s3.get("object") if isinstance(s3, dict) else None
        if not (isinstance(record, dict) and isinstance(record.get("eventName"), str)
                and isinstance(bucket, dict) and isinstance(bucket.get("name"), str)
                and isinstance(obj, dict) and isinstance(obj.get("key"), str)):
            raise RecordError(f"Record {i} lacks eventName, s3.bucket.name or s3.object.key")
    return records


def object_key(record: Mapping[str, Any]) -> str:
    """The record's object key, decoded (what filters match)."""
    return unquote_plus(str(record["s3"]["object"]["key"]))


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _principal(value: Any) -> dict[str, str]:
    principal = value.get("principalId") if isinstance(value, dict) else None
    return {"principalId": str(principal) if principal is not None else ""}


def _event_time(value: Any) -> str:
    if isinstance(value, str) and value:
        return value
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def lambda_event(record: Mapping[str, Any], *, configuration_id: str, region: str) -> dict[str, Any]:
    """The event S3 would invoke a function with for ``record`` (one record; see the module's docstring)."""
    s3 = record["s3"]
    bucket, obj = s3["bucket"], s3["object"]
    name = str(record["eventName"])
    request = _mapping(record.get("requestParameters"))
    response = _mapping(record.get("responseElements"))
    out_object: dict[str, Any] = {"key": quote_plus(object_key(record), safe="/")}
    size = obj.get("size")
    if isinstance(size, int) and not isinstance(size, bool):
        out_object["size"] = size
    if obj.get("eTag"):
        out_object["eTag"] = str(obj["eTag"])
    if obj.get("versionId") and obj["versionId"] != "null":
        out_object["versionId"] = str(obj["versionId"])
    out_object["sequencer"] = str(obj.get("sequencer") or "")
    bucket_name = str(bucket["name"])
    return {"Records": [{
        "eventVersion": EVENT_VERSION,
        "eventSource": "aws:s3",
        "awsRegion": str(record.get("awsRegion") or region),
        "eventTime": _event_time(record.get("eventTime")),
        "eventName": name[3:] if name.startswith("s3:") else name,
        "userIdentity": _principal(record.get("userIdentity")),
        "requestParameters": {"sourceIPAddress": str(request.get("sourceIPAddress") or "")},
        "responseElements": {"x-amz-request-id": str(response.get("x-amz-request-id") or ""),
                             "x-amz-id-2": str(response.get("x-amz-id-2") or "")},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": configuration_id,
            "bucket": {"name": bucket_name, "ownerIdentity": _principal(bucket.get("ownerIdentity")),
                       "arn": f"arn:aws:s3:::{bucket_name}"},
            "object": out_object,
        },
    }]}
