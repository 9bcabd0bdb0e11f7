"""Attacks on the S3 event webhook (``/s3-events/<id>``, docs/security.md#s3-event-webhook): one endpoint's token
used on another's id, tokens that differ only at the end or in case, a token looked for in the store's files, and
a flood of records that the limits cut off before they are queued."""

from __future__ import annotations

import hashlib
import json
import time

from tests.server import create_python_function
from tests.test_s3_events import PRINTING, announce, fixture, notifications, post, records


def test_a_token_opens_only_its_own_endpoint_and_is_not_in_the_store(server, lam, fname) -> None:
    api = notifications(server)
    create_python_function(lam, fname, PRINTING)
    create_python_function(lam, fname + "-b", PRINTING)
    a = api.put_s3_notification_configuration(FunctionName=fname, Events=["s3:ObjectCreated:*"])
    b = api.put_s3_notification_configuration(FunctionName=fname + "-b", Events=["s3:ObjectCreated:*"])
    body = fixture("minio-put.json")
    assert post(server, b["EndpointPath"], body, token=a["Token"])[0] == 403
    assert post(server, a["EndpointPath"], body, token=a["Token"].swapcase())[0] == 403
    assert post(server, a["EndpointPath"], body, token=a["Token"] + " ")[0] == 200  # header whitespace is not part
    # the stored form is the token's SHA-256, never the token (SQLite's file and its write-ahead log)
    stored = b"".join(p.read_bytes() for p in server.data_dir.glob("lambdad.db*") if p.is_file())
    assert hashlib.sha256(a["Token"].encode()).hexdigest().encode() in stored
    assert a["Token"].encode() not in stored
    # nor does any answer of the API show it again
    assert a["Token"] not in json.dumps(api.get_s3_notification_configuration(FunctionName=fname))
    assert a["Token"] not in json.dumps(api.list_s3_notification_configurations())


def test_a_flood_of_records_is_refused_before_any_is_queued(server, lam, fname) -> None:
    create_python_function(lam, fname, PRINTING)
    out = notifications(server).put_s3_notification_configuration(FunctionName=fname, Events=["s3:ObjectCreated:*"])
    record = fixture("minio-put.json")["Records"][0]
    status, answer = post(server, out["EndpointPath"], {"Records": [record] * 101}, token=out["Token"])
    assert status == 400 and b"at most 100" in answer
    assert announce(server, out["EndpointPath"], 50 * 1024 * 1024, out["Token"]) == 413  # by its announced size
    time.sleep(1.5)
    assert records(server, fname) == []
