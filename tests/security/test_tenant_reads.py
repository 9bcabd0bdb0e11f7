"""A hostile tenant reading what is not its own: a function's own credentials (and a ``lambdad keys`` user) try to
read another function's configuration (its environment variables: secrets), download its code, list every
function, and download a layer's content. Default deny: each read is refused with Lambda's AccessDenied shape
until a resource policy grants it (issue 10, item 1)."""

from __future__ import annotations

import json
import urllib.request

import pytest
from botocore.exceptions import ClientError

from tests.server import create_python_function, make_zip
from tests.test_access import error_of, user_client

ACCOUNT = "000000000000"
ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function"

THIEF = """
import json, urllib.request
import boto3

def attempt(fn):
    try:
        return ["ok", fn()]
    except Exception as e:
        r = getattr(e, "response", None)
        if r is None:
            return ["error", repr(e)]
        return ["refused", r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Message"]]

def handler(event, context):
    lam = boto3.client("lambda")
    victim, layer = event["victim"], event["layer"]
    def code():
        url = lam.get_function(FunctionName=victim)["Code"]["Location"]
        return len(urllib.request.urlopen(url).read())
    return {
        "config": attempt(lambda: lam.get_function_configuration(FunctionName=victim)["Environment"]),
        "code": attempt(code),
        "list": attempt(lambda: [f.get("Environment") for f in lam.list_functions()["Functions"]]),
        "versions": attempt(lambda: len(lam.list_versions_by_function(FunctionName=victim)["Versions"])),
        "policy": attempt(lambda: lam.get_policy(FunctionName=victim)["Policy"]),
        "tags": attempt(lambda: lam.list_tags(Resource=event["victim_arn"])["Tags"]),
        "layer": attempt(lambda: lam.get_layer_version(LayerName=layer, VersionNumber=1)["Content"]["Location"]),
        "layer_by_arn": attempt(lambda: lam.get_layer_version_by_arn(Arn=event["layer_arn"])["Content"]),
        "layers": attempt(lambda: lam.list_layers()["Layers"]),
    }
"""


def denied(caller: str, action: str, resource: str) -> list:
    kind = "resource" if action == "lambda:InvokeFunction" else "identity"
    return ["refused", "AccessDeniedException", 403,
            f"User: {caller} is not authorized to perform: {action} on resource: {resource} "
            f"because no {kind}-based policy allows the {action} action"]


def test_function_credentials_cannot_read_another_function(lam, fname):
    victim = fname + "-victim"
    create_python_function(lam, victim, "def handler(e, c):\n    return 1\n",
                           Environment={"Variables": {"DB_PASSWORD": "hunter2"}}, Tags={"team": "a"})
    layer = fname[:50] + "-layer"
    published = lam.publish_layer_version(LayerName=layer, Content={"ZipFile": make_zip({"python/x.py": "SECRET=1"})})
    create_python_function(lam, fname, THIEF, runtime="python3.12", Timeout=30)
    event = {"victim": victim, "victim_arn": f"{ARN}:{victim}", "layer": layer,
             "layer_arn": published["LayerVersionArn"]}

    out = json.loads(lam.invoke(FunctionName=fname, Payload=json.dumps(event))["Payload"].read())
    caller = f"arn:aws:sts::{ACCOUNT}:assumed-role/lambda-role/{fname}"
    any_function = f"arn:aws:lambda:us-east-1:{ACCOUNT}:*"
    assert out["config"] == denied(caller, "lambda:GetFunctionConfiguration", f"{ARN}:{victim}")
    assert out["code"] == denied(caller, "lambda:GetFunction", f"{ARN}:{victim}")
    assert out["list"] == denied(caller, "lambda:ListFunctions", any_function)
    assert out["versions"] == denied(caller, "lambda:ListVersionsByFunction", f"{ARN}:{victim}")
    assert out["policy"] == denied(caller, "lambda:GetPolicy", f"{ARN}:{victim}")
    assert out["tags"] == denied(caller, "lambda:ListTags", f"{ARN}:{victim}")
    assert out["layer"] == denied(caller, "lambda:GetLayerVersion", published["LayerVersionArn"])
    assert out["layer_by_arn"] == denied(caller, "lambda:GetLayerVersion", published["LayerVersionArn"])
    assert out["layers"] == denied(caller, "lambda:ListLayers", any_function)
    # its own configuration is no exception: an execution role has no identity policy here
    own = json.loads(lam.invoke(FunctionName=fname, Payload=json.dumps({**event, "victim": fname}))["Payload"].read())
    assert own["config"] == denied(caller, "lambda:GetFunctionConfiguration", f"{ARN}:{fname}")

    # what a resource policy grants is allowed, and no more
    lam.add_permission(FunctionName=victim, StatementId="read", Action="lambda:GetFunction",
                       Principal="arn:aws:iam::000000000000:role/lambda-role")
    lam.add_layer_version_permission(LayerName=layer, VersionNumber=1, StatementId="all",
                                     Action="lambda:GetLayerVersion", Principal="*")
    out = json.loads(lam.invoke(FunctionName=fname, Payload=json.dumps(event))["Payload"].read())
    assert out["code"][0] == "ok" and out["code"][1] > 0
    assert out["config"] == denied(caller, "lambda:GetFunctionConfiguration", f"{ARN}:{victim}")
    assert out["layer"][0] == "ok" and out["layer_by_arn"][0] == "ok"
    assert out["list"][0] == "refused"


def test_user_key_cannot_read_without_a_statement(server, lam, fname):
    create_python_function(lam, fname, "def handler(e, c):\n    return 1\n",
                           Environment={"Variables": {"API_TOKEN": "s3cr3t"}})
    version = lam.publish_version(FunctionName=fname)["Version"]
    user, user_arn = user_client(server, fname[:40])
    for call, action in (
        (lambda: user.get_function_configuration(FunctionName=fname), "lambda:GetFunctionConfiguration"),
        (lambda: user.get_function(FunctionName=fname), "lambda:GetFunction"),
        (lambda: user.list_aliases(FunctionName=fname), "lambda:ListAliases"),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e) == ("AccessDeniedException", 403,
                               f"User: {user_arn} is not authorized to perform: {action} on resource: {ARN}:{fname} "
                               f"because no identity-based policy allows the {action} action")
    with pytest.raises(ClientError) as e:
        user.list_functions()
    assert error_of(e)[:2] == ("AccessDeniedException", 403)
    # a function's statement covers the function, not its versions
    lam.add_permission(FunctionName=fname, StatementId="cfg", Action="lambda:GetFunctionConfiguration", Principal=user_arn)
    lam.add_permission(FunctionName=fname, StatementId="get", Action="lambda:GetFunction", Principal=user_arn)
    assert user.get_function_configuration(FunctionName=fname)["Environment"]["Variables"] == {"API_TOKEN": "s3cr3t"}
    with pytest.raises(ClientError) as e:
        user.get_function_configuration(FunctionName=fname, Qualifier=version)
    assert error_of(e)[:2] == ("AccessDeniedException", 403)
    # an unknown function is not found, as for root
    with pytest.raises(ClientError) as e:
        user.get_function(FunctionName=fname + "-nope")
    assert error_of(e)[:2] == ("ResourceNotFoundException", 404)
    # the code link a granted GetFunction hands out works
    location = user.get_function(FunctionName=fname)["Code"]["Location"]
    assert urllib.request.urlopen(location).read()[:2] == b"PK"
