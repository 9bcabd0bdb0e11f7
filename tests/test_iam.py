"""IAM and STS end to end (docs/iam.md): users, roles and policies made with boto3's `iam` client and the aws
CLI decide what each caller may do, evaluated as AWS evaluates them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.server import ACCESS_KEY, SECRET_KEY, create_python_function, wait_until

ACCOUNT = "000000000000"
REGION = "us-east-1"
FUNCTIONS = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function"
READ_ONLY = "arn:aws:iam::aws:policy/AWSLambda_ReadOnlyAccess"
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
LAMBDA_ROLE = "arn:aws:iam::aws:policy/service-role/AWSLambdaRole"
LAMBDA_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    err = excinfo.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Message"]


def clients_of(server, key: dict, *services: str) -> list:
    made = []
    for service in services:
        client = boto3.client(service, endpoint_url=server.endpoint, region_name=REGION,
                              aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                              aws_session_token=key.get("SessionToken"),
                              config=Config(retries={"max_attempts": 0}))
        server._clients.append(client)
        made.append(client)
    return made


def new_user(iam, name: str, *, attach: tuple[str, ...] = (), inline: dict | None = None) -> dict:
    iam.create_user(UserName=name)
    for arn in attach:
        iam.attach_user_policy(UserName=name, PolicyArn=arn)
    if inline is not None:
        iam.put_user_policy(UserName=name, PolicyName="inline", PolicyDocument=json.dumps(inline))
    return iam.create_access_key(UserName=name)["AccessKey"]


@pytest.fixture
def iam(server):
    return server.client("iam")


def test_a_read_only_user_reads_but_cannot_deploy(server, lam, iam, fname) -> None:
    create_python_function(lam, fname, "def handler(e, c):\n    return 1\n")
    key = new_user(iam, f"{fname[:50]}-ro", attach=(READ_ONLY,))
    user_lam, user_sts = clients_of(server, key, "lambda", "sts")
    me = user_sts.get_caller_identity()
    assert me["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/{fname[:50]}-ro" and me["Account"] == ACCOUNT
    assert me["UserId"].startswith("AIDA")
    assert user_lam.get_function(FunctionName=fname)["Configuration"]["FunctionName"] == fname
    assert fname in [f["FunctionName"] for f in user_lam.list_functions()["Functions"]]
    with pytest.raises(ClientError) as e:
        user_lam.update_function_configuration(FunctionName=fname, Description="mine")
    assert error_of(e) == ("AccessDeniedException", 403,
                           f"User: {me['Arn']} is not authorized to perform: lambda:UpdateFunctionConfiguration on "
                           f"resource: {FUNCTIONS}:{fname} because no identity-based policy allows the "
                           "lambda:UpdateFunctionConfiguration action")
    with pytest.raises(ClientError) as e:
        user_lam.invoke(FunctionName=fname)
    assert error_of(e)[:2] == ("AccessDeniedException", 403)
    with pytest.raises(ClientError) as e:
        create_python_function(user_lam, fname + "-new", "def handler(e, c):\n    return 1\n")
    assert error_of(e)[:2] == ("AccessDeniedException", 403)


def test_a_user_limited_to_its_team_prefix_cannot_touch_the_other_team(server, lam, iam, fname) -> None:
    team_a, team_b = f"team-a-{fname[:40]}", f"team-b-{fname[:40]}"
    for name in (team_a, team_b):
        create_python_function(lam, name, "def handler(e, c):\n    return 'ran'\n")
    key = new_user(iam, f"{fname[:50]}-a", inline={"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "lambda:*", "Resource": f"arn:aws:lambda:*:*:function:team-a-*"}]})
    (user_lam,) = clients_of(server, key, "lambda")
    assert json.loads(user_lam.invoke(FunctionName=team_a)["Payload"].read()) == "ran"
    user_lam.update_function_configuration(FunctionName=team_a, Description="ours")
    for call in (lambda: user_lam.invoke(FunctionName=team_b),
                 lambda: user_lam.update_function_configuration(FunctionName=team_b, Description="ours"),
                 lambda: user_lam.delete_function(FunctionName=team_b),
                 lambda: user_lam.list_functions()):
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e)[:2] == ("AccessDeniedException", 403)
    assert lam.get_function(FunctionName=team_b)["Configuration"].get("Description", "") == ""


def test_an_explicit_deny_wins_over_every_allow(server, lam, iam, fname) -> None:
    create_python_function(lam, fname, "def handler(e, c):\n    return 1\n")
    group = f"{fname[:50]}-g"
    iam.create_group(GroupName=group)
    iam.put_group_policy(GroupName=group, PolicyName="no-deletes", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "lambda:Delete*", "Resource": "*"}]}))
    key = new_user(iam, f"{fname[:50]}-admin", attach=(ADMIN,))
    (user_lam,) = clients_of(server, key, "lambda")
    user_lam.update_function_configuration(FunctionName=fname, Description="admin")  # allowed
    iam.add_user_to_group(GroupName=group, UserName=f"{fname[:50]}-admin")
    with pytest.raises(ClientError) as e:
        user_lam.delete_function(FunctionName=fname)
    code, status, message = error_of(e)
    assert (code, status) == ("AccessDeniedException", 403)
    assert message.endswith("with an explicit deny in an identity-based policy")
    # a resource policy's Allow does not undo it either
    lam.add_permission(FunctionName=fname, StatementId="all", Action="lambda:*",
                       Principal=f"arn:aws:iam::{ACCOUNT}:user/{fname[:50]}-admin")
    with pytest.raises(ClientError):
        user_lam.delete_function(FunctionName=fname)
    iam.remove_user_from_group(GroupName=group, UserName=f"{fname[:50]}-admin")
    user_lam.delete_function(FunctionName=fname)


CALLER = """
import boto3
def handler(event, context):
    try:
        out = boto3.client("lambda").invoke(FunctionName=event["target"])
        return {"ok": out["Payload"].read().decode()}
    except Exception as e:
        return {"error": type(e).__name__, "message": str(e)}
"""


def test_a_function_whose_role_has_AWSLambdaRole_invokes_another(server, lam, iam, fname) -> None:
    target = f"{fname[:50]}-target"
    create_python_function(lam, target, "def handler(e, c):\n    return 'hit'\n")
    role = iam.create_role(RoleName=f"{fname[:50]}-invoker", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]
    iam.attach_role_policy(RoleName=role["RoleName"], PolicyArn=LAMBDA_ROLE)
    plain = iam.create_role(RoleName=f"{fname[:50]}-plain", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]
    create_python_function(lam, f"{fname[:50]}-with", CALLER, Role=role["Arn"], Timeout=30)
    create_python_function(lam, f"{fname[:50]}-without", CALLER, Role=plain["Arn"], Timeout=30)
    out = json.loads(lam.invoke(FunctionName=f"{fname[:50]}-with",
                                Payload=json.dumps({"target": target}))["Payload"].read())
    assert out == {"ok": '"hit"'}
    out = json.loads(lam.invoke(FunctionName=f"{fname[:50]}-without",
                                Payload=json.dumps({"target": target}))["Payload"].read())
    assert out["error"] == "ClientError" and "AccessDeniedException" in out["message"]
    assert f"assumed-role/{plain['RoleName']}/{fname[:50]}-without" in out["message"]


def test_assume_role_honours_the_trust_policy(server, lam, iam, fname) -> None:
    alice, bob = f"{fname[:45]}-alice", f"{fname[:45]}-bob"
    alice_key = new_user(iam, alice)
    bob_key = new_user(iam, bob, attach=(ADMIN,))  # even an admin is refused by a trust policy that does not name
    role = iam.create_role(RoleName=f"{fname[:50]}-r", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{alice}"}}]}),
        MaxSessionDuration=3600)["Role"]
    iam.attach_role_policy(RoleName=role["RoleName"], PolicyArn=READ_ONLY)
    (alice_sts,) = clients_of(server, alice_key, "sts")
    assumed = alice_sts.assume_role(RoleArn=role["Arn"], RoleSessionName="work", DurationSeconds=900)
    creds = assumed["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and creds["SessionToken"]
    assert assumed["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role['RoleName']}/work"
    session_lam, session_sts = clients_of(server, creds, "lambda", "sts")
    assert session_sts.get_caller_identity()["Arn"] == assumed["AssumedRoleUser"]["Arn"]
    session_lam.list_functions()  # the role's AWSLambda_ReadOnlyAccess
    with pytest.raises(ClientError) as e:
        create_python_function(session_lam, fname, "def handler(e, c):\n    return 1\n")
    assert error_of(e)[:2] == ("AccessDeniedException", 403)
    with pytest.raises(ClientError) as e:
        alice_sts.assume_role(RoleArn=role["Arn"], RoleSessionName="long", DurationSeconds=7200)
    assert error_of(e)[:2] == ("ValidationError", 400)
    (bob_sts,) = clients_of(server, bob_key, "sts")
    with pytest.raises(ClientError) as e:  # a trust policy must allow the caller: an identity Allow is not enough
        bob_sts.assume_role(RoleArn=role["Arn"], RoleSessionName="bob")
    assert error_of(e) == ("AccessDenied", 403, f"User: arn:aws:iam::{ACCOUNT}:user/{bob} is not authorized to "
                                                f"perform: sts:AssumeRole on resource: {role['Arn']}")
    # trusting the account delegates to identity policies: bob (AdministratorAccess) may, alice (none) may not
    iam.update_assume_role_policy(RoleName=role["RoleName"], PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}]}))
    bob_sts.assume_role(RoleArn=role["Arn"], RoleSessionName="bob")
    with pytest.raises(ClientError) as e:
        alice_sts.assume_role(RoleArn=role["Arn"], RoleSessionName="work")
    assert error_of(e)[:2] == ("AccessDenied", 403)
    with pytest.raises(ClientError) as e:
        alice_sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/no-such-role", RoleSessionName="xx")
    assert error_of(e)[:2] == ("AccessDenied", 403)


def test_a_source_ip_condition_is_evaluated(server, lam, iam, fname) -> None:
    create_python_function(lam, fname, "def handler(e, c):\n    return 1\n")
    name = f"{fname[:50]}-ip"
    key = new_user(iam, name, inline={"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "lambda:GetFunction", "Resource": "*",
        "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]})
    (user_lam,) = clients_of(server, key, "lambda")
    with pytest.raises(ClientError) as e:
        user_lam.get_function(FunctionName=fname)
    assert error_of(e)[:2] == ("AccessDeniedException", 403)
    iam.put_user_policy(UserName=name, PolicyName="inline", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "lambda:GetFunction", "Resource": "*",
                                                "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}}]}))
    assert user_lam.get_function(FunctionName=fname)["Configuration"]["FunctionName"] == fname


def test_creating_a_function_with_a_role_needs_pass_role(server, iam, fname) -> None:
    key = new_user(iam, f"{fname[:50]}-dev", inline={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "lambda:*", "Resource": "*"}]})
    (user_lam,) = clients_of(server, key, "lambda")
    with pytest.raises(ClientError) as e:
        create_python_function(user_lam, fname, "def handler(e, c):\n    return 1\n")
    code, status, message = error_of(e)
    assert (code, status) == ("AccessDeniedException", 403) and "iam:PassRole" in message
    iam.put_user_policy(UserName=f"{fname[:50]}-dev", PolicyName="pass", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*",
                                                "Condition": {"StringEquals": {
                                                    "iam:PassedToService": "lambda.amazonaws.com"}}}]}))
    create_python_function(user_lam, fname, "def handler(e, c):\n    return 1\n")


def test_iam_errors_are_aws_shaped(server, iam, fname) -> None:
    name = f"{fname[:50]}-e"
    with pytest.raises(ClientError) as e:
        iam.get_user(UserName=name)
    assert error_of(e) == ("NoSuchEntity", 404, f"The user with name {name} cannot be found.")
    iam.create_user(UserName=name)
    with pytest.raises(ClientError) as e:
        iam.create_user(UserName=name)
    assert error_of(e) == ("EntityAlreadyExists", 409, f"User with name {name} already exists.")
    with pytest.raises(ClientError) as e:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument="{not json")
    assert error_of(e)[:2] == ("MalformedPolicyDocument", 400)
    with pytest.raises(ClientError) as e:
        iam.create_user(UserName="x" * 65)
    assert error_of(e)[:2] == ("ValidationError", 400)
    iam.create_access_key(UserName=name)
    with pytest.raises(ClientError) as e:
        iam.delete_user(UserName=name)
    assert error_of(e) == ("DeleteConflict", 409, "Cannot delete entity, must delete access keys first.")
    iam.create_access_key(UserName=name)
    with pytest.raises(ClientError) as e:
        iam.create_access_key(UserName=name)
    assert error_of(e)[:2] == ("LimitExceeded", 409)
    for key in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    iam.delete_user(UserName=name)
    with pytest.raises(ClientError) as e:
        iam.attach_user_policy(UserName=name, PolicyArn=READ_ONLY)
    assert error_of(e)[:2] == ("NoSuchEntity", 404)


def test_managed_policies_versions_and_documents(server, iam, fname) -> None:
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "lambda:Get*",
                                                        "Resource": "*"}]}
    policy = iam.create_policy(PolicyName=f"{fname[:50]}-p", PolicyDocument=json.dumps(document))["Policy"]
    assert policy["Arn"] == f"arn:aws:iam::{ACCOUNT}:policy/{fname[:50]}-p" and policy["DefaultVersionId"] == "v1"
    got = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId="v1")["PolicyVersion"]
    assert got["Document"] == document  # boto3 decodes IAM's URL-encoded documents
    document["Statement"][0]["Action"] = "lambda:List*"
    iam.create_policy_version(PolicyArn=policy["Arn"], PolicyDocument=json.dumps(document), SetAsDefault=True)
    assert iam.get_policy(PolicyArn=policy["Arn"])["Policy"]["DefaultVersionId"] == "v2"
    aws = iam.get_policy(PolicyArn=LAMBDA_ROLE)["Policy"]
    assert aws["PolicyName"] == "AWSLambdaRole" and aws["Path"] == "/service-role/"
    assert iam.get_policy_version(PolicyArn=LAMBDA_ROLE, VersionId="v1")["PolicyVersion"]["Document"][
        "Statement"][0]["Action"] == ["lambda:InvokeFunction"]
    names = {p["PolicyName"] for p in iam.list_policies(Scope="AWS")["Policies"]}
    assert {"AWSLambdaBasicExecutionRole", "AWSLambdaRole", "AWSLambda_ReadOnlyAccess", "AWSLambda_FullAccess",
            "AdministratorAccess", "ReadOnlyAccess"} <= names
    with pytest.raises(ClientError) as e:
        iam.delete_policy(PolicyArn=policy["Arn"])
    assert error_of(e)[:2] == ("DeleteConflict", 409)
    iam.delete_policy_version(PolicyArn=policy["Arn"], VersionId="v1")
    iam.delete_policy(PolicyArn=policy["Arn"])


def test_the_aws_cli_drives_iam_and_sts(server, tmp_path, fname) -> None:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
           "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL": server.endpoint, "HOME": str(tmp_path)}

    def aws(*args: str) -> dict:
        out = subprocess.run([sys.executable, "-m", "awscli", *args, "--output", "json"], env=env,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout) if out.stdout.strip() else {}

    assert aws("sts", "get-caller-identity")["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"
    user = aws("iam", "create-user", "--user-name", f"{fname[:50]}-cli")["User"]
    assert user["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/{fname[:50]}-cli"
    aws("iam", "attach-user-policy", "--user-name", f"{fname[:50]}-cli", "--policy-arn", READ_ONLY)
    attached = aws("iam", "list-attached-user-policies", "--user-name", f"{fname[:50]}-cli")["AttachedPolicies"]
    assert attached == [{"PolicyName": "AWSLambda_ReadOnlyAccess", "PolicyArn": READ_ONLY}]


def test_unknown_roles_are_refused_when_the_server_says_so(fresh_server, fname) -> None:
    server = fresh_server(env={"LAMBDAD_IAM_REFUSE_UNKNOWN_ROLES": "1"})
    lam, iam = server.client(), server.client("iam")
    with pytest.raises(ClientError) as e:
        create_python_function(lam, fname, "def handler(e, c):\n    return 1\n")
    assert error_of(e) == ("InvalidParameterValueException", 400,
                           "The role defined for the function cannot be assumed by Lambda.")
    role = iam.create_role(RoleName="lambda-role", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]
    create_python_function(lam, fname, "def handler(e, c):\n    return 1\n", Role=role["Arn"])


def test_iam_survives_a_restart(fresh_server, fname) -> None:
    server = fresh_server()
    iam = server.client("iam")
    iam.create_user(UserName="kept")
    iam.attach_user_policy(UserName="kept", PolicyArn=READ_ONLY)
    key = iam.create_access_key(UserName="kept")["AccessKey"]
    server.stop()
    server.start()
    (user_lam,) = clients_of(server, key, "lambda")
    user_lam.list_functions()
    assert server.client("iam").list_attached_user_policies(UserName="kept")["AttachedPolicies"][0][
        "PolicyArn"] == READ_ONLY


def test_a_lambdad_keys_user_is_an_iam_user(server, iam, fname) -> None:
    """`lambdad keys create NAME` (another process, the server running) makes the IAM user: the API finds it and
    attaches policies to it, and its key then holds them."""
    name = f"{fname[:50]}-k"
    out = subprocess.run([sys.executable, "-m", "lambdad", "keys", "create", name, "--data-dir", str(server.data_dir)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    fields = dict(line.split(": ", 1) for line in out.stdout.splitlines() if ": " in line)
    key = {"AccessKeyId": fields["aws_access_key_id"], "SecretAccessKey": fields["aws_secret_access_key"]}
    (user_lam,) = clients_of(server, key, "lambda")
    with pytest.raises(ClientError):
        user_lam.list_functions()
    assert name in [u["UserName"] for u in iam.list_users()["Users"]]
    iam.attach_user_policy(UserName=name, PolicyArn=READ_ONLY)
    user_lam.list_functions()
    listed = iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in listed] == [key["AccessKeyId"]] and listed[0]["Status"] == "Active"
    iam.update_access_key(UserName=name, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    with pytest.raises(ClientError) as e:
        user_lam.list_functions()
    assert error_of(e)[:2] == ("UnrecognizedClientException", 403)


def test_the_query_protocol_answers_bad_requests_as_iam_does(server) -> None:
    """An unknown Action, a missing one and a modelled operation lambdad does not serve get IAM's error format:
    InvalidAction and MissingAction (400), NotImplemented (501), parsed by botocore's own query parser."""
    import urllib.error
    import urllib.request

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from botocore.parsers import create_parser

    def post(body: str) -> tuple[int, dict]:
        request = AWSRequest("POST", server.endpoint + "/", data=body.encode(),
                             headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "iam", REGION).add_auth(request)
        try:
            with urllib.request.urlopen(urllib.request.Request(server.endpoint + "/", body.encode(),
                                                               dict(request.headers), method="POST")) as answer:
                status, data = answer.status, answer.read()
        except urllib.error.HTTPError as exc:
            with exc:  # closed here, not by the garbage collector in the middle of a later test
                status, data = exc.code, exc.read()
        parsed = create_parser("query").parse({"body": data, "headers": {}, "status_code": status}, None)
        return status, parsed.get("Error", {})

    status, error = post("Action=BogusAction&Version=2010-05-08")
    assert (status, error["Code"]) == (400, "InvalidAction")
    assert error["Message"] == "Could not find operation BogusAction for version 2010-05-08"
    status, error = post("Version=2010-05-08")
    assert (status, error["Code"]) == (400, "MissingAction")
    status, error = post("Action=CreateLoginProfile&Version=2010-05-08&UserName=nobody")
    assert (status, error["Code"]) == (501, "NotImplemented") and "CreateLoginProfile" in error["Message"]
