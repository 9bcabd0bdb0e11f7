"""Tags end to end through boto3: TagResource, UntagResource, ListTags on a function ARN, and their errors."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.server import create_python_function

ARN = "arn:aws:lambda:us-east-1:000000000000:function"
CODE = "def handler(event, context):\n    return event\n"


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    err = excinfo.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Message"]


def test_tag_untag_list(lam, fname):
    created = create_python_function(lam, fname, CODE, Tags={"team": "x"})
    arn = created["FunctionArn"]
    assert lam.list_tags(Resource=arn)["Tags"] == {"team": "x"}

    resp = lam.tag_resource(Resource=arn, Tags={"team": "y", "cost": "42", "empty": ""})
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lam.list_tags(Resource=arn)["Tags"] == {"team": "y", "cost": "42", "empty": ""}
    assert lam.get_function(FunctionName=fname)["Tags"] == {"team": "y", "cost": "42", "empty": ""}
    # a tag change gives $LATEST a new revision id, and nothing else
    after = lam.get_function_configuration(FunctionName=fname)
    assert after["RevisionId"] != created["RevisionId"] and after["CodeSha256"] == created["CodeSha256"]

    resp = lam.untag_resource(Resource=arn, TagKeys=["team", "not-there"])
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lam.list_tags(Resource=arn)["Tags"] == {"cost": "42", "empty": ""}
    lam.untag_resource(Resource=arn, TagKeys=["cost", "empty"])
    assert lam.list_tags(Resource=arn)["Tags"] == {}
    assert "Tags" not in lam.get_function(FunctionName=fname)

    # tags belong to the function, not to a version: a published version sees the same tags
    lam.tag_resource(Resource=arn, Tags={"a": "1"})
    lam.publish_version(FunctionName=fname)
    assert lam.get_function(FunctionName=fname, Qualifier="1")["Tags"] == {"a": "1"}


def test_tags_limit(lam, fname):
    arn = create_python_function(lam, fname, CODE, Tags={f"k{i}": "v" for i in range(49)})["FunctionArn"]
    lam.tag_resource(Resource=arn, Tags={"k0": "replaced", "k49": "v"})  # 50: the limit
    with pytest.raises(ClientError) as e:
        lam.tag_resource(Resource=arn, Tags={"k50": "v"})
    assert error_of(e) == ("InvalidParameterValueException", 400, "Number of tags exceeds resource tag limit.")
    assert len(lam.list_tags(Resource=arn)["Tags"]) == 50
    with pytest.raises(ClientError) as e:
        create_python_function(lam, f"{fname}-many", CODE, Tags={f"k{i}": "v" for i in range(51)})
    assert error_of(e) == ("InvalidParameterValueException", 400, "Number of tags exceeds resource tag limit.")


def test_tag_errors(server, fname):
    lam = server.client(parameter_validation=False)
    create_python_function(lam, fname, CODE)
    lam.publish_version(FunctionName=fname)
    missing = f"{ARN}:no-such-function"
    for call in (
        lambda: lam.tag_resource(Resource=missing, Tags={"a": "b"}),
        lambda: lam.untag_resource(Resource=missing, TagKeys=["a"]),
        lambda: lam.list_tags(Resource=missing),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e) == ("ResourceNotFoundException", 404, f"Function not found: {missing}")

    for resource in (f"{ARN}:{fname}:1", f"{ARN}:{fname}:live"):
        for call in (
            lambda: lam.tag_resource(Resource=resource, Tags={"a": "b"}),
            lambda: lam.untag_resource(Resource=resource, TagKeys=["a"]),
            lambda: lam.list_tags(Resource=resource),
        ):
            with pytest.raises(ClientError) as e:
                call()
            assert error_of(e) == (
                "InvalidParameterValueException", 400,
                "Tags on function aliases and versions are not supported. Please specify a function ARN.",
            )

    with pytest.raises(ClientError) as e:
        lam.list_tags(Resource=fname)  # a name is not an ARN
    code, status, message = error_of(e)
    assert (code, status) == ("ValidationException", 400)
    assert message.startswith(f"1 validation error detected: Value '{fname}' at 'resource' failed to satisfy constraint: "
                              "Member must satisfy regular expression pattern: arn:")
    other_region = f"arn:aws:lambda:eu-west-1:000000000000:function:{fname}"
    with pytest.raises(ClientError) as e:
        lam.list_tags(Resource=other_region)
    assert error_of(e) == ("ResourceNotFoundException", 404, f"Function not found: {other_region}")
    with pytest.raises(ClientError) as e:
        lam.tag_resource(Resource=f"{ARN}:{fname}", Tags={})
    assert error_of(e) == ("InvalidParameterValueException", 400, "An error occurred and the request cannot be processed.")


def test_tags_survive_a_restart(fresh_server, tmp_path):
    data = tmp_path / "data"
    srv = fresh_server(data_dir=data)
    lam = srv.client()
    arn = create_python_function(lam, "tagged", CODE, Tags={"a": "1"})["FunctionArn"]
    lam.tag_resource(Resource=arn, Tags={"b": "2"})
    lam.untag_resource(Resource=arn, TagKeys=["a"])
    srv.stop()
    lam = fresh_server(data_dir=data).client()
    assert lam.list_tags(Resource=arn)["Tags"] == {"b": "2"}
