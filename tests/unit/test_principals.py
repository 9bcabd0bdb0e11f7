"""Which resource-policy statements let a principal other than root invoke (functions/policies.py), and what
such a principal may call at all (auth/principals.py)."""

from __future__ import annotations

import pytest

from lambdad.auth.principals import ROOT, check_operation, function_principal, user_principal
from lambdad.errors import AccessDeniedException
from lambdad.functions.policies import _allows_invoke

ROLE = "arn:aws:iam::111122223333:role/service-role/caller"
FN = function_principal(ROLE, "fn")
USER = user_principal("111122223333", "alice")


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
    (stmt({"AWS": ROLE}, action=["lambda:GetFunction", "lambda:InvokeFunction"]), True),
    (stmt({"AWS": ROLE}, action="lambda:GetFunction"), False),
    (stmt({"AWS": "arn:aws:iam::111122223333:role/other"}), False),
    (stmt({"AWS": "arn:aws:iam::444455556666:root"}), False),
    (stmt({"Service": "s3.amazonaws.com"}), False),
    (stmt("*", Condition={"StringEquals": {"AWS:SourceAccount": "111122223333"}}), False),
    ({**stmt("*"), "Effect": "Deny"}, False),
])
def test_statement_matching(statement, allowed):
    assert _allows_invoke(statement, FN) is allowed


def test_non_root_may_read_and_invoke_only():
    for op in ("GetFunction", "ListFunctions", "GetPolicy", "Invoke"):
        check_operation(USER, op, "arn")
    check_operation(ROOT, "DeleteFunction", "arn")
    with pytest.raises(AccessDeniedException) as e:
        check_operation(FN, "AddPermission", "arn:aws:lambda:us-east-1:111122223333:function:fn")
    assert str(e.value) == (
        "User: arn:aws:sts::111122223333:assumed-role/caller/fn is not authorized to perform: lambda:AddPermission "
        "on resource: arn:aws:lambda:us-east-1:111122223333:function:fn because no identity-based policy allows "
        "the lambda:AddPermission action"
    )
