"""Aliases end to end through boto3: create, get, list, update, delete, invoking through an alias (name or
ARN), weighted routing between two versions, the rules Lambda enforces, and aliases surviving a restart."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from botocore.exceptions import ClientError

from tests.server import create_python_function, make_zip, wait_until
from tests.test_server import _Recorder

ARN = "arn:aws:lambda:us-east-1:000000000000:function"
PRECONDITION = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
)


def code(tag: str) -> str:
    return (
        f"TAG = {tag!r}\n"
        "def handler(event, context):\n"
        "    return {'tag': TAG, 'version': context.function_version, 'arn': context.invoked_function_arn}\n"
    )


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    err = excinfo.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Message"]


def strip(response: dict) -> dict:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def two_versions(lam, name: str) -> None:
    """A function with version 1 (tag 'a') and version 2 (tag 'b'); $LATEST is 'b'."""
    create_python_function(lam, name, code("a"), Publish=True)
    lam.update_function_code(FunctionName=name, ZipFile=make_zip({"app.py": code("b")}), Publish=True)


def invoke(lam, name: str, **kwargs) -> tuple[dict, dict]:
    resp = lam.invoke(FunctionName=name, Payload=b"{}", **kwargs)
    return resp, json.loads(resp["Payload"].read())


def test_alias_lifecycle(lam, fname):
    two_versions(lam, fname)
    created = lam.create_alias(FunctionName=fname, Name="live", FunctionVersion="1", Description="prod")
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert strip(created) == {
        "AliasArn": f"{ARN}:{fname}:live", "Name": "live", "FunctionVersion": "1", "Description": "prod",
        "RevisionId": created["RevisionId"],
    }
    assert strip(lam.get_alias(FunctionName=fname, Name="live")) == strip(created)
    lam.create_alias(FunctionName=f"{ARN}:{fname}", Name="edge", FunctionVersion="$LATEST")
    lam.create_alias(FunctionName=fname, Name="old", FunctionVersion="1")

    listed = lam.list_aliases(FunctionName=fname)["Aliases"]
    assert [a["Name"] for a in listed] == ["edge", "live", "old"]
    assert [a["Name"] for a in lam.list_aliases(FunctionName=fname, FunctionVersion="1")["Aliases"]] == ["live", "old"]
    page = lam.list_aliases(FunctionName=fname, MaxItems=2)
    assert [a["Name"] for a in page["Aliases"]] == ["edge", "live"]
    rest = lam.list_aliases(FunctionName=fname, MaxItems=2, Marker=page["NextMarker"])
    assert [a["Name"] for a in rest["Aliases"]] == ["old"] and "NextMarker" not in rest

    # reads and invokes through the alias: the version it points to, with the alias in the ARN
    config = lam.get_function(FunctionName=fname, Qualifier="live")["Configuration"]
    assert (config["Version"], config["FunctionArn"]) == ("1", f"{ARN}:{fname}:live")
    resp, body = invoke(lam, fname, Qualifier="live")
    assert resp["ExecutedVersion"] == "1" and body == {"tag": "a", "version": "1", "arn": f"{ARN}:{fname}:live"}
    resp, body = invoke(lam, f"{ARN}:{fname}:live")
    assert resp["ExecutedVersion"] == "1" and body["tag"] == "a"
    resp, body = invoke(lam, f"{fname}:edge")
    assert resp["ExecutedVersion"] == "$LATEST" and body["tag"] == "b"

    # update: repoint, with and without RevisionId
    with pytest.raises(ClientError) as e:
        lam.update_alias(FunctionName=fname, Name="live", FunctionVersion="2", RevisionId="stale")
    assert error_of(e) == ("PreconditionFailedException", 412, PRECONDITION)
    updated = lam.update_alias(FunctionName=fname, Name="live", FunctionVersion="2", RevisionId=created["RevisionId"])
    assert (updated["FunctionVersion"], updated["Description"]) == ("2", "prod")
    assert updated["RevisionId"] != created["RevisionId"]
    assert invoke(lam, fname, Qualifier="live")[0]["ExecutedVersion"] == "2"
    described = lam.update_alias(FunctionName=fname, Name="live", Description="")
    assert (described["FunctionVersion"], described["Description"]) == ("2", "")

    # a version an alias points to cannot be deleted
    with pytest.raises(ClientError) as e:
        lam.delete_function(FunctionName=fname, Qualifier="1")
    assert error_of(e) == (
        "ResourceConflictException", 409, "Unable to delete version because the following aliases reference it: [old]"
    )
    lam.delete_alias(FunctionName=fname, Name="old")
    lam.delete_function(FunctionName=fname, Qualifier="1")
    lam.delete_alias(FunctionName=fname, Name="old")  # already gone: not an error
    with pytest.raises(ClientError) as e:
        lam.get_alias(FunctionName=fname, Name="old")
    assert error_of(e) == ("ResourceNotFoundException", 404, f"Cannot find alias arn: {ARN}:{fname}:old")
    with pytest.raises(ClientError) as e:
        invoke(lam, fname, Qualifier="old")
    assert error_of(e) == ("ResourceNotFoundException", 404, f"Function not found: {ARN}:{fname}:old")

    # deleting the function deletes its aliases
    lam.delete_function(FunctionName=fname)
    create_python_function(lam, fname, code("c"))
    assert lam.list_aliases(FunctionName=fname)["Aliases"] == []


def test_weighted_alias_splits_traffic(lam, fname):
    two_versions(lam, fname)
    alias = lam.create_alias(FunctionName=fname, Name="canary", FunctionVersion="1",
                             RoutingConfig={"AdditionalVersionWeights": {"2": 0.3}})
    assert alias["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.3}}
    assert lam.get_alias(FunctionName=fname, Name="canary")["RoutingConfig"] == alias["RoutingConfig"]
    # GetFunction through a weighted alias reads its primary version
    assert lam.get_function_configuration(FunctionName=fname, Qualifier="canary")["Version"] == "1"

    ran: Counter[str] = Counter()
    for _ in range(300):
        resp, body = invoke(lam, fname, Qualifier="canary")
        assert resp["ExecutedVersion"] == body["version"]
        assert body["tag"] == {"1": "a", "2": "b"}[body["version"]]
        ran[resp["ExecutedVersion"]] += 1
    assert set(ran) == {"1", "2"}
    assert 0.2 <= ran["2"] / 300 <= 0.4, ran

    # weight 0 and weight 1 are allowed; an empty map removes the routing
    lam.update_alias(FunctionName=fname, Name="canary", RoutingConfig={"AdditionalVersionWeights": {"2": 1.0}})
    assert {invoke(lam, fname, Qualifier="canary")[0]["ExecutedVersion"] for _ in range(10)} == {"2"}
    lam.update_alias(FunctionName=fname, Name="canary", RoutingConfig={"AdditionalVersionWeights": {"2": 0.0}})
    assert {invoke(lam, fname, Qualifier="canary")[0]["ExecutedVersion"] for _ in range(10)} == {"1"}
    cleared = lam.update_alias(FunctionName=fname, Name="canary", RoutingConfig={"AdditionalVersionWeights": {}})
    assert "RoutingConfig" not in cleared
    # the additional version is referenced too: it cannot be deleted while the alias routes to it
    lam.update_alias(FunctionName=fname, Name="canary", RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
    with pytest.raises(ClientError) as e:
        lam.delete_function(FunctionName=fname, Qualifier="2")
    assert error_of(e)[:2] == ("ResourceConflictException", 409) and "[canary]" in error_of(e)[2]


def test_alias_rules(server, fname):
    lam = server.client(parameter_validation=False)
    two_versions(lam, fname)
    lam.create_alias(FunctionName=fname, Name="live", FunctionVersion="1")
    cases = [
        (dict(Name="12", FunctionVersion="1"), "ValidationException", 400,
         "1 validation error detected: Value '12' at 'name' failed to satisfy constraint: Member must satisfy "
         "regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)"),
        (dict(Name="$LATEST", FunctionVersion="1"), "ValidationException", 400,
         "1 validation error detected: Value '$LATEST' at 'name' failed to satisfy constraint: Member must satisfy "
         "regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)"),
        (dict(Name="x" * 129, FunctionVersion="1"), "ValidationException", 400, None),
        (dict(Name="ok", FunctionVersion="latest"), "ValidationException", 400,
         "1 validation error detected: Value 'latest' at 'functionVersion' failed to satisfy constraint: Member "
         "must satisfy regular expression pattern: (\\$LATEST|[0-9]+)"),
        (dict(Name="ok", FunctionVersion="7"), "ResourceNotFoundException", 404, f"Function not found: {ARN}:{fname}:7"),
        (dict(Name="live", FunctionVersion="2"), "ResourceConflictException", 409,
         f"Alias already exists: {ARN}:{fname}:live"),
        (dict(Name="ok", FunctionVersion="1", RoutingConfig={"AdditionalVersionWeights": {"2": 0.5, "3": 0.1}}),
         "InvalidParameterValueException", 400, "Number of items in AdditionalVersionWeights cannot be greater than 1"),
        (dict(Name="ok", FunctionVersion="$LATEST", RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}}),
         "InvalidParameterValueException", 400, "$LATEST is not supported for an alias pointing to more than 1 version"),
        (dict(Name="ok", FunctionVersion="1", RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}}),
         "InvalidParameterValueException", 400,
         "Invalid function version 1. Function version 1 is already included in routing configuration."),
        (dict(Name="ok", FunctionVersion="1", RoutingConfig={"AdditionalVersionWeights": {"9": 0.5}}),
         "ResourceNotFoundException", 404, f"Function not found: {ARN}:{fname}:9"),
        (dict(Name="ok", FunctionVersion="1", RoutingConfig={"AdditionalVersionWeights": {"2": 1.5}}),
         "ValidationException", 400, None),
        (dict(Name="ok", FunctionVersion="1", RoutingConfig={"AdditionalVersionWeights": {"two": 0.5}}),
         "ValidationException", 400, None),
        (dict(Name="ok", FunctionVersion="1", FunctionName="no-such-function"), "ResourceNotFoundException", 404,
         f"Function not found: {ARN}:no-such-function"),
    ]
    for kwargs, code_, status, message in cases:
        params = {"FunctionName": fname, **kwargs}
        with pytest.raises(ClientError) as e:
            lam.create_alias(**params)
        got = error_of(e)
        assert got[:2] == (code_, status), (kwargs, got)
        if message is not None:
            assert got[2] == message, kwargs
    assert [a["Name"] for a in lam.list_aliases(FunctionName=fname)["Aliases"]] == ["live"]

    with pytest.raises(ClientError) as e:
        lam.update_alias(FunctionName=fname, Name="nope", FunctionVersion="1")
    assert error_of(e) == ("ResourceNotFoundException", 404, f"Alias not found: {ARN}:{fname}:nope")
    with pytest.raises(ClientError) as e:
        lam.update_alias(FunctionName=fname, Name="live", RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}})
    assert error_of(e)[:2] == ("InvalidParameterValueException", 400)
    with pytest.raises(ClientError) as e:
        lam.update_alias(FunctionName=fname, Name="live", FunctionVersion="8")
    assert error_of(e) == ("ResourceNotFoundException", 404, f"Function not found: {ARN}:{fname}:8")
    assert lam.get_alias(FunctionName=fname, Name="live")["FunctionVersion"] == "1"
    with pytest.raises(ClientError) as e:
        lam.get_alias(FunctionName="no-such-function", Name="live")
    assert error_of(e) == ("ResourceNotFoundException", 404, f"Function not found: {ARN}:no-such-function")
    with pytest.raises(ClientError) as e:
        lam.create_alias(FunctionName=f"{fname}:1", Name="q", FunctionVersion="1")
    assert error_of(e)[:2] == ("InvalidParameterValueException", 400)


def test_async_invoke_through_an_alias(lam, fname):
    recorder = _Recorder()
    report = (
        "import json, urllib.request\n"
        "def handler(event, context):\n"
        "    body = {'arn': context.invoked_function_arn, 'version': context.function_version}\n"
        f"    urllib.request.urlopen(urllib.request.Request({recorder.url!r}, data=json.dumps(body).encode(),"
        " method='POST')).read()\n"
    )
    try:
        create_python_function(lam, fname, report, Publish=True)
        lam.update_function_configuration(FunctionName=fname, Description="later")
        lam.create_alias(FunctionName=fname, Name="live", FunctionVersion="1")
        resp = lam.invoke(FunctionName=fname, Qualifier="live", InvocationType="Event", Payload=b"{}")
        assert resp["StatusCode"] == 202
        assert wait_until(lambda: len(recorder.events) == 1)
        assert recorder.events == [{"arn": f"{ARN}:{fname}:live", "version": "1"}]
        assert lam.invoke(FunctionName=fname, Qualifier="live", InvocationType="DryRun")["StatusCode"] == 204
    finally:
        recorder.close()


def test_aliases_survive_a_restart(fresh_server, tmp_path):
    data = tmp_path / "data"
    srv = fresh_server(data_dir=data)
    lam = srv.client()
    two_versions(lam, "keep")
    lam.create_alias(FunctionName="keep", Name="live", FunctionVersion="1", Description="d",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.25}})
    lam.create_alias(FunctionName="keep", Name="gone", FunctionVersion="2")
    lam.delete_alias(FunctionName="keep", Name="gone")
    before = lam.list_aliases(FunctionName="keep")["Aliases"]
    srv.stop()

    srv = fresh_server(data_dir=data)
    lam = srv.client()
    assert lam.list_aliases(FunctionName="keep")["Aliases"] == before
    resp, body = invoke(lam, "keep", Qualifier="live")
    assert resp["ExecutedVersion"] in ("1", "2") and body["arn"] == f"{ARN}:keep:live"
    with pytest.raises(ClientError) as e:
        lam.delete_function(FunctionName="keep", Qualifier="2")
    assert error_of(e)[:2] == ("ResourceConflictException", 409)
