"""s3events/records.py: S3's event-type wildcards and key filters, the webhook body's checks, and a store record
turned into the event S3 gives Lambda (one record, S3's key encoding, no store-only fields)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lambdad.s3events.records import (FilterError, KeyFilter, NotificationFilter, RecordError, lambda_event,
                                      parse_body, parse_events, parse_filter)

DATA = Path(__file__).parent.parent / "data" / "s3events"


@pytest.mark.parametrize("wanted, name, matches", [
    ("s3:ObjectCreated:*", "s3:ObjectCreated:Put", True),
    ("s3:ObjectCreated:*", "ObjectCreated:CompleteMultipartUpload", True),  # S3's and Ceph's names: no "s3:"
    ("s3:ObjectCreated:*", "s3:ObjectRemoved:Delete", False),
    ("s3:ObjectCreated:Put", "s3:ObjectCreated:Post", False),
    ("s3:ObjectRemoved:Delete", "s3:ObjectRemoved:Delete", True),
    ("s3:ObjectRemoved:*", "s3:ObjectRemoved:DeleteMarkerCreated", True),
    ("s3:ObjectAccessed:*", "s3:ObjectAccessed:Get", True),  # MinIO's own types
    ("s3:ObjectCreated:*", "s3:ObjectCreatedX:Put", False),
])
def test_event_types_match_as_s3s(wanted: str, name: str, matches: bool) -> None:
    assert NotificationFilter((wanted,), KeyFilter()).matches(name, "k") is matches


def test_key_filters_match_the_decoded_key() -> None:
    f = NotificationFilter(("s3:ObjectCreated:*",), parse_filter(
        {"Key": {"FilterRules": [{"Name": "Prefix", "Value": "images/"}, {"Name": "suffix", "Value": ".jpg"}]}}))
    assert f.matches("s3:ObjectCreated:Put", "images/a b.jpg")
    assert not f.matches("s3:ObjectCreated:Put", "images/a.png")
    assert not f.matches("s3:ObjectCreated:Put", "other/a.jpg")
    assert f.key.document() == {"Key": {"FilterRules": [{"Name": "Prefix", "Value": "images/"},
                                                        {"Name": "Suffix", "Value": ".jpg"}]}}
    assert parse_filter(None).document() is None


@pytest.mark.parametrize("events", [[], ["ObjectCreated:Put"], ["s3:ObjectCreated:Pu*"], ["s3:*"], [3]])
def test_bad_event_types_are_refused(events: list[object]) -> None:
    with pytest.raises(FilterError):
        parse_events(events)


def test_event_types_are_kept_once_in_order() -> None:
    assert parse_events(["s3:ObjectRemoved:*", "s3:ObjectCreated:Put", "s3:ObjectRemoved:*"]) == (
        "s3:ObjectRemoved:*", "s3:ObjectCreated:Put")


@pytest.mark.parametrize("document", [
    {"Key": {"FilterRules": [{"Name": "prefix", "Value": "a"}, {"Name": "prefix", "Value": "b"}]}},
    {"Key": {"FilterRules": [{"Name": "infix", "Value": "a"}]}},
    {"Key": {"FilterRules": [{"Name": "prefix", "Value": "x" * 1025}]}},
    {"Key": {"FilterRules": "prefix"}},
    {"Key": {"FilterRules": [{"Name": "prefix"}]}},
])
def test_bad_filters_are_refused(document: dict[str, object]) -> None:
    with pytest.raises(FilterError):
        parse_filter(document)


@pytest.mark.parametrize("body", [b"", b"[1]", b"{}", b'{"Records": []}', b'{"Records": [{}]}',
                                  b'{"Records": [{"eventName": "x", "s3": {"bucket": {"name": "b"}}}]}',
                                  b"\xff\xfe"])
def test_bodies_that_are_not_records_are_refused(body: bytes) -> None:
    with pytest.raises(RecordError):
        parse_body(body, 10)


def test_minio_bodies_parse_and_a_test_event_has_no_records() -> None:
    assert len(parse_body((DATA / "minio-put.json").read_bytes(), 10)) == 1
    assert parse_body(b'{"Service": "Amazon S3", "Event": "s3:TestEvent"}', 10) == []
    with pytest.raises(RecordError):
        parse_body(json.dumps({"Records": [json.loads((DATA / "minio-put.json").read_text())["Records"][0]] * 3})
                   .encode(), 2)


def test_a_removal_has_no_size_or_etag_and_a_version_when_there_is_one() -> None:
    record = json.loads((DATA / "minio-delete.json").read_text())["Records"][0]
    record["s3"]["object"]["versionId"] = "3f1b0c"
    record["awsRegion"] = "eu-west-1"
    (out,) = lambda_event(record, configuration_id="c", region="us-east-1")["Records"]
    assert out["eventName"] == "ObjectRemoved:Delete" and out["awsRegion"] == "eu-west-1"
    assert out["s3"]["object"] == {"key": "2026/old.png", "versionId": "3f1b0c", "sequencer": "187E3A2290B1A9C0"}
    assert "source" not in out


def test_keys_take_s3s_encoding() -> None:
    record = json.loads((DATA / "minio-put.json").read_text())["Records"][0]
    record["s3"]["object"]["key"] = "a%2Fb+c%26d%C3%A9.txt"  # Go's QueryEscape of "a/b c&dé.txt"
    (out,) = lambda_event(record, configuration_id="c", region="r")["Records"]
    assert out["s3"]["object"]["key"] == "a/b+c%26d%C3%A9.txt"
