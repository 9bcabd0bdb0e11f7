"""Principals other than root: a function's own credentials (its execution role) and `lambdad keys` users may do
exactly what a resource policy grants them (default deny), reads included."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.server import ROLE, buffered, create_python_function

ACCOUNT = "000000000000"
ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function"


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    err = excinfo.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Message"]


def keys(server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lambdad", "keys", *args, "--data-dir", str(server.data_dir)],
                          capture_output=True, text=True, timeout=30)


def user_client(server, name: str):
    out = keys(server, "create", name)
    assert out.returncode == 0, out.stderr
    fields = dict(re.findall(r"^(\S+): (\S+)$", out.stdout, re.M))
    assert fields["user"] == f"arn:aws:iam::{ACCOUNT}:user/{name}"
    client = boto3.client("lambda", endpoint_url=server.endpoint, region_name="us-east-1",
                          aws_access_key_id=fields["aws_access_key_id"],
                          aws_secret_access_key=fields["aws_secret_access_key"],
                          config=Config(retries={"max_attempts": 0}))
    server._clients.append(client)  # closed with the server's own
    return buffered(client), fields["user"]


def denied_invoke(user: str, resource: str) -> str:
    return (f"User: {user} is not authorized to perform: lambda:InvokeFunction on resource: {resource} "
            "because no resource-based policy allows the lambda:InvokeFunction action")


def test_function_credentials_need_a_statement(lam, fname):
    """A function invoking another with its own credentials: denied without a statement for its role, allowed
    with one, denied again once it is removed."""
    target = fname + "-target"
    create_python_function(lam, target, "def handler(e, c):\n    return 'hit'\n")
    code = f"""
import boto3
def handler(event, context):
    try:
        out = boto3.client("lambda").invoke(FunctionName={target!r}, InvocationType=event.get("type", "RequestResponse"))
        return {{"status": out["StatusCode"]}}
    except Exception as e:
        return {{"code": e.response["Error"]["Code"], "http": e.response["ResponseMetadata"]["HTTPStatusCode"],
                "message": e.response["Error"]["Message"]}}
"""
    create_python_function(lam, fname, code, runtime="python3.12", Timeout=30)

    def call(kind: str = "RequestResponse") -> dict:
        resp = lam.invoke(FunctionName=fname, Payload=json.dumps({"type": kind}))
        return json.loads(resp["Payload"].read())

    caller = f"arn:aws:sts::{ACCOUNT}:assumed-role/lambda-role/{fname}"
    denied = {"code": "AccessDeniedException", "http": 403, "message": denied_invoke(caller, f"{ARN}:{target}")}
    for kind in ("RequestResponse", "Event", "DryRun"):
        assert call(kind) == denied, kind
    # a statement for someone else, or for a service, does not help
    lam.add_permission(FunctionName=target, StatementId="other", Action="lambda:InvokeFunction",
                       Principal="arn:aws:iam::000000000000:role/other")
    lam.add_permission(FunctionName=target, StatementId="svc", Action="lambda:InvokeFunction",
                       Principal="s3.amazonaws.com")
    assert call() == denied
    lam.add_permission(FunctionName=target, StatementId="caller", Action="lambda:InvokeFunction", Principal=ROLE)
    assert call() == {"status": 200}
    assert call("Event") == {"status": 202}
    assert call("DryRun") == {"status": 204}
    lam.remove_permission(FunctionName=target, StatementId="caller")
    assert call() == denied
    # the account (stored as its root ARN) covers every principal in it
    lam.add_permission(FunctionName=target, StatementId="acct", Action="lambda:*", Principal=ACCOUNT)
    assert call() == {"status": 200}


def test_user_key_invokes_only_where_allowed(server, lam, fname):
    create_python_function(lam, fname, "def handler(e, c):\n    return e\n")
    version = lam.publish_version(FunctionName=fname)["Version"]
    user, user_arn = user_client(server, fname[:40])
    # reads need a statement too
    with pytest.raises(ClientError) as e:
        user.get_function(FunctionName=fname)
    assert error_of(e)[:2] == ("AccessDeniedException", 403)
    lam.add_permission(FunctionName=fname, StatementId="read", Action="lambda:GetFunction", Principal=user_arn)
    assert user.get_function(FunctionName=fname)["Configuration"]["FunctionName"] == fname
    # Invoke needs a statement
    with pytest.raises(ClientError) as e:
        user.invoke(FunctionName=fname, Payload=b'{"a": 1}')
    assert error_of(e) == ("AccessDeniedException", 403, denied_invoke(user_arn, f"{ARN}:{fname}"))
    lam.add_permission(FunctionName=fname, StatementId="user", Action="lambda:InvokeFunction", Principal=user_arn)
    assert json.loads(user.invoke(FunctionName=fname, Payload=b'{"a": 1}')["Payload"].read()) == {"a": 1}
    # the function's policy does not cover a version: that has its own
    with pytest.raises(ClientError) as e:
        user.invoke(FunctionName=fname, Qualifier=version)
    assert error_of(e) == ("AccessDeniedException", 403, denied_invoke(user_arn, f"{ARN}:{fname}:{version}"))
    lam.add_permission(FunctionName=fname, Qualifier=version, StatementId="v", Action="lambda:InvokeFunction",
                       Principal="*")
    assert user.invoke(FunctionName=fname, Qualifier=version)["StatusCode"] == 200
    # writes are refused
    with pytest.raises(ClientError) as e:
        user.update_function_configuration(FunctionName=fname, Description="mine")
    assert error_of(e) == (
        "AccessDeniedException", 403,
        f"User: {user_arn} is not authorized to perform: lambda:UpdateFunctionConfiguration on resource: "
        f"{ARN}:{fname} because no identity-based policy allows the lambda:UpdateFunctionConfiguration action",
    )
    with pytest.raises(ClientError) as e:
        user.add_permission(FunctionName=fname, StatementId="me", Action="lambda:*", Principal="*")
    assert error_of(e)[:2] == ("AccessDeniedException", 403)
    assert lam.get_function_configuration(FunctionName=fname).get("Description", "") == ""
    # listed without its secret; deleted, it is refused by the running server
    listed = keys(server, "list")
    assert fname[:40] in listed.stdout and "secret" not in listed.stdout
    assert keys(server, "delete", fname[:40]).returncode == 0
    with pytest.raises(ClientError) as e:
        user.get_function(FunctionName=fname)
    assert error_of(e)[:2] == ("UnrecognizedClientException", 403)
    again = keys(server, "delete", fname[:40])
    assert again.returncode == 1 and "no key of a user named" in again.stderr
