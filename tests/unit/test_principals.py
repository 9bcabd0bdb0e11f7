"""Which resource-policy statements (AddPermission's) grant an action to a principal other than root, through the
evaluator every API asks (iam/authorize.py, iam/policy.py), and the principals themselves (auth/principals.py)."""

from __future__ import annotations

import pytest

from lambdad.auth.principals import action_of, function_principal, user_principal
from lambdad.iam.policy import Caller, Decision, Request, evaluate

ROLE = "arn:aws:iam::111122223333:role/service-role/caller"
FN = function_principal(ROLE, "fn")
USER = user_principal("111122223333", "alice")


def allows(statements, principal, action) -> bool:
    arns = (principal.caller_arn, principal.arn) if principal.kind == "role" else (principal.arn,)
    caller = Caller(principal.caller_arn, principal.account, arns)
    policy = {"Version": "2012-10-17", "Statement": statements} if statements else None
    return evaluate([], policy, Request(caller, action, "r")).decision is Decision.ALLOW


def stmt(principal, action="lambda:InvokeFunction", **extra):
    return {"Sid": "s", "Effect": "Allow", "Principal": principal, "Action": action, "Resource": "r", **extra}


def test_function_principal_is_its_role():
    assert FN.arn == ROLE and FN.account == "111122223333" and not FN.root
    assert FN.caller_arn == "arn:aws:sts::111122223333:assumed-role/caller/fn"
    assert USER.arn == USER.caller_arn == "arn:aws:iam::111122223333:user/alice"


@pytest.mark.parametrize("statement, allowed", [
    (stmt("*"), True),
    (stmt({"AWS": ROLE}), True),
    (stmt({"AWS": [ROLE, "arn:aws:iam::111122223333:role/x"]}), True),
    (stmt({"AWS": "arn:aws:iam::111122223333:root"}), True),
    (stmt({"AWS": "111122223333"}), True),
    (stmt({"AWS": ROLE}, action="lambda:*"), True),
    (stmt({"AWS": ROLE}, action="*"), True),
    (stmt({"AWS": ROLE}, action="Lambda:invokefunction"), True),
    (stmt({"AWS": ROLE}, action="lambda:Invoke*"), True),
    (stmt({"AWS": ROLE}, action=["lambda:GetFunction", "lambda:InvokeFunction"]), True),
    (stmt({"AWS": ROLE}, action="lambda:GetFunction"), False),
    (stmt({"AWS": ROLE}, action="lambda:InvokeFunctionUrl"), False),
    (stmt({"AWS": ROLE}, action="lambda:Get*"), False),
    (stmt({"AWS": "arn:aws:iam::111122223333:role/other"}), False),
    (stmt({"AWS": "arn:aws:iam::444455556666:root"}), False),
    (stmt({"Service": "s3.amazonaws.com"}), False),
    (stmt("*", Condition={"StringEquals": {"AWS:SourceAccount": "111122223333"}}), False),
    ({**stmt("*"), "Effect": "Deny"}, False),
])
def test_statement_matching(statement, allowed):
    assert allows([statement], FN, "lambda:InvokeFunction") is allowed


def test_reads_are_granted_like_any_action():
    assert allows([stmt({"AWS": ROLE}, action="lambda:Get*")], FN, "lambda:GetFunction")
    assert allows([stmt({"AWS": ROLE}, action="lambda:GetFunction")], FN, "lambda:GetFunction")
    assert not allows([stmt({"AWS": ROLE}, action="lambda:GetFunction")], FN, "lambda:GetFunctionConfiguration")
    assert not allows([], FN, "lambda:GetFunction")


def test_actions_of_operations():
    assert action_of("Invoke") == "lambda:InvokeFunction"
    assert action_of("GetLayerVersionByArn") == "lambda:GetLayerVersion"
    assert action_of("ListVersionsByFunction") == "lambda:ListVersionsByFunction"
