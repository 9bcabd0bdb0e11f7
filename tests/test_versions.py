"""Versions end to end through boto3: PublishVersion, ListVersionsByFunction, qualified reads and invokes,
deleting versions, Publish on create and update, and versions surviving a restart."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from botocore.exceptions import ClientError

from tests.server import create_python_function, make_zip

ARN = "arn:aws:lambda:us-east-1:000000000000:function"


def code(tag: str) -> str:
    """A handler that says which code it is and what the runtime told it."""
    return (
        "import os\n"
        f"TAG = {tag!r}\n"
        "def handler(event, context):\n"
        "    return {'tag': TAG, 'version': context.function_version, 'arn': context.invoked_function_arn,\n"
        "            'env_version': os.environ['AWS_LAMBDA_FUNCTION_VERSION'],\n"
        "            'stream': os.environ['AWS_LAMBDA_LOG_STREAM_NAME'], 'memory': context.memory_limit_in_mb}\n"
    )


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    err = excinfo.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Message"]


def invoke(lam, name: str, **kwargs) -> tuple[dict, dict]:
    resp = lam.invoke(FunctionName=name, Payload=b"{}", **kwargs)
    return resp, json.loads(resp["Payload"].read())


def versions_of(lam, name: str) -> list[str]:
    pages = lam.get_paginator("list_versions_by_function").paginate(FunctionName=name)
    return [v["Version"] for v in pages.build_full_result()["Versions"]]


def test_publish_snapshots_latest_and_dedupes(lam, fname):
    created = create_python_function(lam, fname, code("a"), Description="first")
    v1 = lam.publish_version(FunctionName=fname)
    assert v1["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert v1["Version"] == "1"
    assert v1["FunctionArn"] == f"{ARN}:{fname}:1"
    assert v1["CodeSha256"] == created["CodeSha256"] and v1["Description"] == "first"
    assert v1["RevisionId"] != created["RevisionId"]
    # publishing gives $LATEST a new revision id (as on Lambda), and nothing else changes
    latest = lam.get_function_configuration(FunctionName=fname)
    assert latest["RevisionId"] != created["RevisionId"] and latest["Version"] == "$LATEST"
    assert latest["FunctionArn"] == f"{ARN}:{fname}"

    # $LATEST unchanged since version 1: publishing again returns version 1, whatever the description
    again = lam.publish_version(FunctionName=fname, Description="ignored")
    assert (again["Version"], again["RevisionId"], again["Description"]) == ("1", v1["RevisionId"], "first")

    lam.update_function_configuration(FunctionName=fname, MemorySize=256)
    v2 = lam.publish_version(FunctionName=fname, Description="more memory")
    assert (v2["Version"], v2["MemorySize"], v2["Description"]) == ("2", 256, "more memory")
    lam.update_function_code(FunctionName=fname, ZipFile=make_zip({"app.py": code("b")}))
    v3 = lam.publish_version(FunctionName=fname)
    assert v3["Version"] == "3" and v3["CodeSha256"] != v1["CodeSha256"]

    listed = lam.list_versions_by_function(FunctionName=fname)["Versions"]
    assert [v["Version"] for v in listed] == ["$LATEST", "1", "2", "3"]
    assert [v["FunctionArn"] for v in listed] == [f"{ARN}:{fname}:{q}" for q in ("$LATEST", "1", "2", "3")]
    assert listed[1]["MemorySize"] == 128 and listed[2]["MemorySize"] == 256
    # pages of two, through boto3's paginator and by hand
    assert versions_of(lam, fname) == ["$LATEST", "1", "2", "3"]
    page = lam.list_versions_by_function(FunctionName=fname, MaxItems=3)
    assert [v["Version"] for v in page["Versions"]] == ["$LATEST", "1", "2"]
    rest = lam.list_versions_by_function(FunctionName=fname, MaxItems=3, Marker=page["NextMarker"])
    assert [v["Version"] for v in rest["Versions"]] == ["3"] and "NextMarker" not in rest

    # ListFunctions with FunctionVersion=ALL lists every version, qualified
    everything = lam.get_paginator("list_functions").paginate(FunctionVersion="ALL").build_full_result()["Functions"]
    mine = [f["FunctionArn"] for f in everything if f["FunctionName"] == fname]
    assert mine == [f"{ARN}:{fname}:{q}" for q in ("$LATEST", "1", "2", "3")]


def test_publish_preconditions(lam, fname):
    created = create_python_function(lam, fname, code("a"))
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    with pytest.raises(ClientError) as e:
        lam.publish_version(FunctionName=fname, CodeSha256=wrong)
    assert error_of(e) == (
        "InvalidParameterValueException", 400,
        f"CodeSHA256 ({wrong}) is different from current CodeSHA256 in $LATEST ({created['CodeSha256']}). "
        "Please try again with the CodeSHA256 in $LATEST.",
    )
    with pytest.raises(ClientError) as e:
        lam.publish_version(FunctionName=fname, RevisionId="stale")
    assert error_of(e) == (
        "PreconditionFailedException", 412,
        "The Revision Id provided does not match the latest Revision Id. "
        "Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
    )
    assert versions_of(lam, fname) == ["$LATEST"]
    ok = lam.publish_version(FunctionName=fname, CodeSha256=created["CodeSha256"], RevisionId=created["RevisionId"])
    assert ok["Version"] == "1"
    with pytest.raises(ClientError) as e:
        lam.publish_version(FunctionName="no-such-function")
    assert error_of(e) == ("ResourceNotFoundException", 404, f"Function not found: {ARN}:no-such-function")
    with pytest.raises(ClientError) as e:
        lam.list_versions_by_function(FunctionName="no-such-function")
    assert error_of(e) == ("ResourceNotFoundException", 404, f"Function not found: {ARN}:no-such-function")


def test_qualified_reads_and_invokes(lam, fname):
    create_python_function(lam, fname, code("a"))
    lam.publish_version(FunctionName=fname)
    lam.update_function_code(FunctionName=fname, ZipFile=make_zip({"app.py": code("b")}))
    lam.update_function_configuration(FunctionName=fname, MemorySize=512)

    got = lam.get_function(FunctionName=fname, Qualifier="1")["Configuration"]
    assert (got["Version"], got["MemorySize"], got["FunctionArn"]) == ("1", 128, f"{ARN}:{fname}:1")
    by_arn = lam.get_function_configuration(FunctionName=f"{ARN}:{fname}:1")
    assert by_arn["Version"] == "1" and by_arn["CodeSha256"] == got["CodeSha256"]
    latest = lam.get_function_configuration(FunctionName=fname, Qualifier="$LATEST")
    assert (latest["Version"], latest["MemorySize"], latest["FunctionArn"]) == ("$LATEST", 512, f"{ARN}:{fname}:$LATEST")

    resp, body = invoke(lam, fname, Qualifier="1")
    assert resp["ExecutedVersion"] == "1"
    assert body["tag"] == "a" and body["version"] == body["env_version"] == "1" and body["memory"] == "128"
    assert body["arn"] == f"{ARN}:{fname}:1"
    assert "/[1]" in body["stream"]
    resp, body = invoke(lam, f"{ARN}:{fname}:1")
    assert resp["ExecutedVersion"] == "1" and body["tag"] == "a"
    resp, body = invoke(lam, fname)
    assert resp["ExecutedVersion"] == "$LATEST" and body["tag"] == "b" and body["memory"] == "512"
    assert body["arn"] == f"{ARN}:{fname}" and "/[$LATEST]" in body["stream"]
    resp, body = invoke(lam, f"{fname}:$LATEST")
    assert resp["ExecutedVersion"] == "$LATEST" and body["arn"] == f"{ARN}:{fname}:$LATEST"
    assert lam.invoke(FunctionName=fname, Qualifier="1", InvocationType="DryRun")["StatusCode"] == 204

    for call in (
        lambda: lam.get_function(FunctionName=fname, Qualifier="9"),
        lambda: lam.get_function_configuration(FunctionName=f"{fname}:9"),
        lambda: lam.invoke(FunctionName=fname, Qualifier="9"),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e) == ("ResourceNotFoundException", 404, f"Function not found: {ARN}:{fname}:9")
    with pytest.raises(ClientError) as e:
        lam.get_function(FunctionName=f"{fname}:1", Qualifier="2")
    assert error_of(e) == (
        "InvalidParameterValueException", 400,
        "The derived qualifier from the function name does not match the specified qualifier.",
    )


def test_versions_keep_their_warm_environments(lam, fname):
    create_python_function(lam, fname, code("a"))
    lam.publish_version(FunctionName=fname)
    _, first = invoke(lam, fname, Qualifier="1")
    _, latest_before = invoke(lam, fname)
    lam.update_function_configuration(FunctionName=fname, Description="changed")
    _, latest_after = invoke(lam, fname)
    _, second = invoke(lam, fname, Qualifier="1")
    # $LATEST changed: its environment was retired; version 1's environment served again
    assert latest_after["stream"] != latest_before["stream"]
    assert second["stream"] == first["stream"]


def test_delete_versions(lam, fname):
    create_python_function(lam, fname, code("a"))
    for n in range(3):
        lam.update_function_configuration(FunctionName=fname, Description=f"d{n}")
        lam.publish_version(FunctionName=fname)
    invoke(lam, fname, Qualifier="2")  # a warm environment for version 2
    lam.delete_function(FunctionName=fname, Qualifier="2")
    assert versions_of(lam, fname) == ["$LATEST", "1", "3"]
    with pytest.raises(ClientError) as e:
        invoke(lam, fname, Qualifier="2")
    assert error_of(e) == ("ResourceNotFoundException", 404, f"Function not found: {ARN}:{fname}:2")
    # deleting the newest version does not free its number: numbers are never reused
    lam.delete_function(FunctionName=f"{fname}:3")
    lam.update_function_configuration(FunctionName=fname, Description="d3")
    assert lam.publish_version(FunctionName=fname)["Version"] == "4"
    # and $LATEST, unchanged since the deleted version 3, still publishes a version after 3 is gone
    lam.delete_function(FunctionName=fname, Qualifier="4")
    assert lam.publish_version(FunctionName=fname)["Version"] == "5"
    # a version that does not exist: nothing to do, as on Lambda
    lam.delete_function(FunctionName=fname, Qualifier="42")
    assert versions_of(lam, fname) == ["$LATEST", "1", "5"]

    with pytest.raises(ClientError) as e:
        lam.delete_function(FunctionName=fname, Qualifier="$LATEST")
    assert error_of(e) == (
        "InvalidParameterValueException", 400, "$LATEST version cannot be deleted without deleting the function."
    )
    with pytest.raises(ClientError) as e:
        lam.delete_function(FunctionName="no-such-function", Qualifier="1")
    assert error_of(e) == ("ResourceNotFoundException", 404, f"Function not found: {ARN}:no-such-function")

    # deleting the function deletes every version; a new function of that name starts again at 1
    lam.delete_function(FunctionName=fname)
    created = create_python_function(lam, fname, code("a"), Publish=True)
    assert created["Version"] == "1"


def test_publish_on_create_and_update_code(lam, fname):
    created = create_python_function(lam, fname, code("a"), Publish=True)
    # Lambda answers CreateFunction+Publish with version 1 and an unqualified ARN
    assert created["Version"] == "1" and created["FunctionArn"] == f"{ARN}:{fname}"
    assert versions_of(lam, fname) == ["$LATEST", "1"]
    assert lam.get_function(FunctionName=fname)["Configuration"]["Version"] == "$LATEST"
    # nothing changed since version 1
    assert lam.publish_version(FunctionName=fname)["Version"] == "1"

    updated = lam.update_function_code(FunctionName=fname, ZipFile=make_zip({"app.py": code("b")}), Publish=True)
    assert updated["Version"] == "2" and updated["FunctionArn"] == f"{ARN}:{fname}:2"
    assert invoke(lam, fname, Qualifier="2")[1]["tag"] == "b"
    # the same zip again and Publish: $LATEST equals version 2, so version 2 is the answer
    same = lam.update_function_code(FunctionName=fname, ZipFile=make_zip({"app.py": code("b")}), Publish=True)
    assert same["Version"] == "2"
    plain = lam.update_function_code(FunctionName=fname, ZipFile=make_zip({"app.py": code("c")}))
    assert plain["Version"] == "$LATEST"
    assert versions_of(lam, fname) == ["$LATEST", "1", "2"]
    assert [invoke(lam, fname, Qualifier=q)[1]["tag"] for q in ("1", "2", "$LATEST")] == ["a", "b", "c"]


def test_versions_survive_a_restart(fresh_server, tmp_path):
    data = tmp_path / "data"
    srv = fresh_server(data_dir=data)
    lam = srv.client()
    create_python_function(lam, "kept", code("a"), Publish=True)
    lam.update_function_code(FunctionName="kept", ZipFile=make_zip({"app.py": code("b")}), Publish=True)
    lam.update_function_configuration(FunctionName="kept", Description="three")
    lam.publish_version(FunctionName="kept", Description="v3")
    lam.delete_function(FunctionName="kept", Qualifier="3")
    before = lam.list_versions_by_function(FunctionName="kept")["Versions"]
    srv.stop()

    srv = fresh_server(data_dir=data)
    lam = srv.client()
    assert lam.list_versions_by_function(FunctionName="kept")["Versions"] == before
    assert [invoke(lam, "kept", Qualifier=q)[1]["tag"] for q in ("1", "2")] == ["a", "b"]
    # the counter survived too: 3 was used (and deleted), so the next version is 4
    assert lam.publish_version(FunctionName="kept")["Version"] == "4"
    assert lam.get_function(FunctionName="kept", Qualifier="4")["Configuration"]["Description"] == "three"
