"""Resource-based policies end to end through boto3: AddPermission, RemovePermission, GetPolicy per function,
version and alias, the policy document Lambda returns, revision ids, errors, and policies surviving a restart."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.server import create_python_function

ARN = "arn:aws:lambda:us-east-1:000000000000:function"
CODE = "def handler(event, context):\n    return event\n"
PRECONDITION = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
)


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    err = excinfo.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Message"]


def test_add_get_remove(lam, fname):
    created = create_python_function(lam, fname, CODE)
    resp = lam.add_permission(
        FunctionName=fname, StatementId="s3", Action="lambda:InvokeFunction", Principal="s3.amazonaws.com",
        SourceArn="arn:aws:s3:::my-bucket", SourceAccount="123456789012",
    )
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 201
    s3 = {
        "Sid": "s3", "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "lambda:InvokeFunction", "Resource": f"{ARN}:{fname}",
        "Condition": {"StringEquals": {"AWS:SourceAccount": "123456789012"},
                      "ArnLike": {"AWS:SourceArn": "arn:aws:s3:::my-bucket"}},
    }
    assert json.loads(resp["Statement"]) == s3
    lam.add_permission(FunctionName=fname, StatementId="acct", Action="lambda:GetFunction", Principal="210987654321")
    lam.add_permission(FunctionName=fname, StatementId="role", Action="lambda:*",
                       Principal="arn:aws:iam::210987654321:role/caller")
    lam.add_permission(FunctionName=fname, StatementId="url", Action="lambda:InvokeFunctionUrl", Principal="*",
                       FunctionUrlAuthType="NONE")

    got = lam.get_policy(FunctionName=fname)
    policy = json.loads(got["Policy"])
    assert policy["Version"] == "2012-10-17" and policy["Id"] == "default"
    assert [s["Sid"] for s in policy["Statement"]] == ["s3", "acct", "role", "url"]
    assert policy["Statement"][0] == s3
    assert policy["Statement"][1]["Principal"] == {"AWS": "arn:aws:iam::210987654321:root"}
    assert policy["Statement"][2]["Principal"] == {"AWS": "arn:aws:iam::210987654321:role/caller"}
    assert policy["Statement"][3]["Principal"] == "*"
    assert policy["Statement"][3]["Condition"] == {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}}
    # the policy's revision is the function's, and each change to the policy gives it a new one
    latest = lam.get_function_configuration(FunctionName=fname)
    assert got["RevisionId"] == latest["RevisionId"] != created["RevisionId"]

    with pytest.raises(ClientError) as e:
        lam.add_permission(FunctionName=fname, StatementId="s3", Action="lambda:InvokeFunction", Principal="*")
    assert error_of(e) == (
        "ResourceConflictException", 409,
        "The statement id (s3) provided already exists. Please provide a new statement id, or remove the existing "
        "statement.",
    )
    with pytest.raises(ClientError) as e:
        lam.add_permission(FunctionName=fname, StatementId="new", Action="lambda:InvokeFunction", Principal="*",
                           RevisionId=created["RevisionId"])
    assert error_of(e) == ("PreconditionFailedException", 412, PRECONDITION)
    with pytest.raises(ClientError) as e:
        lam.remove_permission(FunctionName=fname, StatementId="acct", RevisionId="stale")
    assert error_of(e) == ("PreconditionFailedException", 412, PRECONDITION)

    resp = lam.remove_permission(FunctionName=fname, StatementId="acct", RevisionId=got["RevisionId"])
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert [s["Sid"] for s in json.loads(lam.get_policy(FunctionName=fname)["Policy"])["Statement"]] == ["s3", "role", "url"]
    with pytest.raises(ClientError) as e:
        lam.remove_permission(FunctionName=fname, StatementId="acct")
    assert error_of(e) == ("ResourceNotFoundException", 404, "Statement acct is not found in resource policy.")
    for sid in ("s3", "role", "url"):
        lam.remove_permission(FunctionName=fname, StatementId=sid)
    with pytest.raises(ClientError) as e:
        lam.get_policy(FunctionName=fname)
    assert error_of(e) == ("ResourceNotFoundException", 404, "The resource you requested does not exist.")
    with pytest.raises(ClientError) as e:
        lam.remove_permission(FunctionName=fname, StatementId="s3")
    assert error_of(e) == ("ResourceNotFoundException", 404, "No policy is associated with the given resource.")


def test_policies_per_version_and_alias(lam, fname):
    create_python_function(lam, fname, CODE, Publish=True)
    lam.create_alias(FunctionName=fname, Name="live", FunctionVersion="1")
    warm = lam.invoke(FunctionName=fname, Qualifier="1")["StatusCode"]
    assert warm == 200
    # the same statement id may exist once per qualifier
    for qualifier in ("1", "live"):
        resp = lam.add_permission(FunctionName=fname, Qualifier=qualifier, StatementId="same",
                                  Action="lambda:InvokeFunction", Principal="events.amazonaws.com")
        assert json.loads(resp["Statement"])["Resource"] == f"{ARN}:{fname}:{qualifier}"
    lam.add_permission(FunctionName=f"{fname}:live", StatementId="by-arn", Action="lambda:InvokeFunction",
                       Principal="sns.amazonaws.com")
    lam.add_permission(FunctionName=fname, StatementId="same", Action="lambda:InvokeFunction", Principal="*")

    assert [s["Sid"] for s in json.loads(lam.get_policy(FunctionName=fname, Qualifier="live")["Policy"])["Statement"]] == [
        "same", "by-arn"]
    version_policy = lam.get_policy(FunctionName=f"{ARN}:{fname}:1")
    assert version_policy["RevisionId"] == lam.get_function_configuration(FunctionName=fname, Qualifier="1")["RevisionId"]
    alias_policy = lam.get_policy(FunctionName=fname, Qualifier="live")
    assert alias_policy["RevisionId"] == lam.get_alias(FunctionName=fname, Name="live")["RevisionId"]
    # a version whose revision id moved still runs, and its policy goes with it when it is deleted
    assert lam.invoke(FunctionName=fname, Qualifier="1")["ExecutedVersion"] == "1"

    with pytest.raises(ClientError) as e:
        lam.add_permission(FunctionName=fname, Qualifier="$LATEST", StatementId="x", Action="lambda:InvokeFunction",
                           Principal="*")
    assert error_of(e) == ("InvalidParameterValueException", 400, "We currently do not support adding policies for $LATEST.")
    with pytest.raises(ClientError) as e:
        lam.add_permission(FunctionName=fname, Qualifier="7", StatementId="x", Action="lambda:InvokeFunction", Principal="*")
    assert error_of(e) == ("ResourceNotFoundException", 404, f"Function not found: {ARN}:{fname}:7")
    with pytest.raises(ClientError) as e:
        lam.add_permission(FunctionName=fname, Qualifier="nope", StatementId="x", Action="lambda:InvokeFunction",
                           Principal="*")
    assert error_of(e) == ("ResourceNotFoundException", 404, f"Cannot find alias arn: {ARN}:{fname}:nope")
    with pytest.raises(ClientError) as e:
        lam.get_policy(FunctionName=fname, Qualifier="nope")
    assert error_of(e) == ("ResourceNotFoundException", 404, "The resource you requested does not exist.")

    lam.delete_alias(FunctionName=fname, Name="live")
    lam.create_alias(FunctionName=fname, Name="live", FunctionVersion="1")
    with pytest.raises(ClientError) as e:
        lam.get_policy(FunctionName=fname, Qualifier="live")  # the alias's policy went with it
    assert error_of(e)[:2] == ("ResourceNotFoundException", 404)
    lam.delete_alias(FunctionName=fname, Name="live")
    lam.delete_function(FunctionName=fname, Qualifier="1")
    with pytest.raises(ClientError) as e:
        lam.get_policy(FunctionName=fname, Qualifier="1")
    assert error_of(e)[:2] == ("ResourceNotFoundException", 404)
    assert len(json.loads(lam.get_policy(FunctionName=fname)["Policy"])["Statement"]) == 1


def test_permission_bad_input(server, fname):
    lam = server.client(parameter_validation=False)
    create_python_function(lam, fname, CODE)
    base = {"FunctionName": fname, "StatementId": "ok", "Action": "lambda:InvokeFunction", "Principal": "*"}
    cases = [
        ({"StatementId": "bad sid"}, "ValidationException",
         "1 validation error detected: Value 'bad sid' at 'statementId' failed to satisfy constraint: "
         "Member must satisfy regular expression pattern: ([a-zA-Z0-9-_]+)"),
        ({"Action": "s3:GetObject"}, "ValidationException",
         "1 validation error detected: Value 's3:GetObject' at 'action' failed to satisfy constraint: "
         "Member must satisfy regular expression pattern: (lambda:[*]|lambda:[a-zA-Z]+|[*])"),
        ({"Action": "nope", "SourceAccount": "12"}, "ValidationException", None),
        ({"FunctionUrlAuthType": "MAYBE"}, "ValidationException",
         "1 validation error detected: Value 'MAYBE' at 'functionUrlAuthType' failed to satisfy constraint: "
         "Member must satisfy enum value set: [NONE, AWS_IAM]"),
        ({"Principal": "somebody"}, "InvalidParameterValueException",
         "The provided principal was invalid. Please check the principal and try again."),
        ({"FunctionName": "no-such-function"}, "ResourceNotFoundException", f"Function not found: {ARN}:no-such-function"),
    ]
    for change, code, message in cases:
        with pytest.raises(ClientError) as e:
            lam.add_permission(**{**base, **change})
        got = error_of(e)
        assert got[0] == code, (change, got)
        if message is not None:
            assert got[2] == message
    with pytest.raises(ClientError) as e:
        lam.add_permission(**{**base, "Action": "nope", "SourceAccount": "12"})
    assert error_of(e)[2].startswith("2 validation errors detected: ")
    with pytest.raises(ClientError) as e:
        lam.get_policy(FunctionName=fname)
    assert error_of(e) == ("ResourceNotFoundException", 404, "The resource you requested does not exist.")
    with pytest.raises(ClientError) as e:
        lam.get_policy(FunctionName="no-such-function")
    assert error_of(e) == ("ResourceNotFoundException", 404, f"Function not found: {ARN}:no-such-function")
    with pytest.raises(ClientError) as e:
        lam.remove_permission(FunctionName="no-such-function", StatementId="x")
    assert error_of(e) == ("ResourceNotFoundException", 404, f"No policy found for: {ARN}:no-such-function")


def test_policies_survive_a_restart(fresh_server, tmp_path):
    data = tmp_path / "data"
    srv = fresh_server(data_dir=data)
    lam = srv.client()
    create_python_function(lam, "guarded", CODE, Publish=True)
    lam.add_permission(FunctionName="guarded", StatementId="a", Action="lambda:InvokeFunction", Principal="*")
    lam.add_permission(FunctionName="guarded", Qualifier="1", StatementId="b", Action="lambda:InvokeFunction",
                       Principal="s3.amazonaws.com")
    before = [lam.get_policy(FunctionName="guarded", **q) for q in ({}, {"Qualifier": "1"})]
    srv.stop()
    lam = fresh_server(data_dir=data).client()
    after = [lam.get_policy(FunctionName="guarded", **q) for q in ({}, {"Qualifier": "1"})]
    assert [(p["Policy"], p["RevisionId"]) for p in after] == [(p["Policy"], p["RevisionId"]) for p in before]
