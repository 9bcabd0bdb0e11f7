"""The policy evaluator (lambdad/iam/policy.py), table-driven: each row a policy from AWS's documented examples (the
IAM User Guide's policy examples, condition operators and evaluation logic; Lambda's identity-based policy
examples), a request and the decision AWS documents for it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from lambdad.iam.policy import Caller, Decision, Request, evaluate, validate_policy

ACCT = "123456789012"
ALICE = Caller(f"arn:aws:iam::{ACCT}:user/alice", ACCT, (f"arn:aws:iam::{ACCT}:user/alice",), "alice", "AIDAALICE")
SESSION = Caller(f"arn:aws:sts::{ACCT}:assumed-role/app/fn", ACCT,
                 (f"arn:aws:sts::{ACCT}:assumed-role/app/fn", f"arn:aws:iam::{ACCT}:role/app"))
FN = f"arn:aws:lambda:us-east-1:{ACCT}:function"
A, D, I = Decision.ALLOW, Decision.EXPLICIT_DENY, Decision.IMPLICIT_DENY


def doc(*statements: dict[str, Any], version: str = "2012-10-17") -> dict[str, Any]:
    return {"Version": version, "Statement": list(statements)}


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


NOON = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.timezone.utc)

# (name, identity policies, resource policy, caller, action, resource, context, expected)
ROWS: list[tuple[str, list[dict[str, Any]], Any, Caller, str, str, dict[str, Any], Decision]] = [
    ("no policy: implicit deny", [], None, ALICE, "lambda:GetFunction", f"{FN}:f", {}, I),
    ("exact action and resource", [doc(allow("lambda:GetFunction", f"{FN}:f"))], None, ALICE,
     "lambda:GetFunction", f"{FN}:f", {}, A),
    ("actions match case-insensitively", [doc(allow("Lambda:getfunction", f"{FN}:f"))], None, ALICE,
     "lambda:GetFunction", f"{FN}:f", {}, A),
    ("action wildcard lambda:Get*", [doc(allow("lambda:Get*"))], None, ALICE, "lambda:GetFunction", f"{FN}:f", {}, A),
    ("action wildcard does not match List", [doc(allow("lambda:Get*"))], None, ALICE, "lambda:ListFunctions",
     "*", {}, I),
    ("action ? wildcard", [doc(allow("lambda:Get?unction"))], None, ALICE, "lambda:GetFunction", f"{FN}:f", {}, A),
    ("star action", [doc(allow("*"))], None, ALICE, "iam:CreateUser", f"arn:aws:iam::{ACCT}:user/x", {}, A),
    ("other service's action", [doc(allow("s3:*"))], None, ALICE, "lambda:GetFunction", f"{FN}:f", {}, I),
    ("list of actions", [doc(allow(["lambda:Invoke*", "lambda:GetFunction"], f"{FN}:*"))], None, ALICE,
     "lambda:InvokeFunction", f"{FN}:f", {}, A),
    ("resource prefix wildcard", [doc(allow("lambda:*", f"arn:aws:lambda:*:*:function:team-a-*"))], None, ALICE,
     "lambda:UpdateFunctionCode", f"{FN}:team-a-api", {}, A),
    ("resource prefix does not match another team", [doc(allow("lambda:*", "arn:aws:lambda:*:*:function:team-a-*"))],
     None, ALICE, "lambda:UpdateFunctionCode", f"{FN}:team-b-api", {}, I),
    ("resource wildcard covers a qualified ARN", [doc(allow("lambda:InvokeFunction", f"{FN}:f:*"))], None, ALICE,
     "lambda:InvokeFunction", f"{FN}:f:prod", {}, A),
    ("unqualified ARN does not cover an alias", [doc(allow("lambda:InvokeFunction", f"{FN}:f"))], None, ALICE,
     "lambda:InvokeFunction", f"{FN}:f:prod", {}, I),
    ("resources match case-sensitively", [doc(allow("lambda:*", f"{FN}:F"))], None, ALICE, "lambda:GetFunction",
     f"{FN}:f", {}, I),
    ("a region wildcard stays in its segment", [doc(allow("lambda:*", f"arn:aws:lambda:us-*:{ACCT}:function:f"))],
     None, ALICE, "lambda:GetFunction", f"{FN}:f", {}, A),
    ("another account's ARN", [doc(allow("lambda:*", "arn:aws:lambda:*:999999999999:function:*"))], None, ALICE,
     "lambda:GetFunction", f"{FN}:f", {}, I),
    ("star resource covers a request on no resource", [doc(allow("lambda:ListFunctions"))], None, ALICE,
     "lambda:ListFunctions", "*", {}, A),
    ("an ARN resource does not cover a request on no resource", [doc(allow("lambda:ListFunctions", f"{FN}:*"))],
     None, ALICE, "lambda:ListFunctions", "*", {}, I),
    ("explicit deny wins over allow", [doc(allow("lambda:*"), deny("lambda:DeleteFunction"))], None, ALICE,
     "lambda:DeleteFunction", f"{FN}:f", {}, D),
    ("deny in another policy wins", [doc(allow("*")), doc(deny("lambda:*", f"{FN}:prod-*"))], None, ALICE,
     "lambda:UpdateFunctionCode", f"{FN}:prod-api", {}, D),
    ("deny elsewhere does not touch this", [doc(allow("*")), doc(deny("lambda:*", f"{FN}:prod-*"))], None, ALICE,
     "lambda:UpdateFunctionCode", f"{FN}:dev-api", {}, A),
    ("deny in the resource policy wins", [doc(allow("lambda:*"))],
     doc({"Effect": "Deny", "Principal": "*", "Action": "lambda:InvokeFunction", "Resource": f"{FN}:f"}), ALICE,
     "lambda:InvokeFunction", f"{FN}:f", {}, D),
    ("NotAction allow: everything but IAM", [doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})],
     None, ALICE, "lambda:CreateFunction", f"{FN}:f", {}, A),
    ("NotAction allow: not IAM", [doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})], None, ALICE,
     "iam:CreateUser", f"arn:aws:iam::{ACCT}:user/x", {}, I),
    ("NotAction deny: deny all but listed", [doc(allow("*"), {"Effect": "Deny", "NotAction": ["lambda:Get*"],
                                                              "Resource": "*"})],
     None, ALICE, "lambda:DeleteFunction", f"{FN}:f", {}, D),
    ("NotAction deny lets the listed through", [doc(allow("*"), {"Effect": "Deny", "NotAction": ["lambda:Get*"],
                                                                 "Resource": "*"})],
     None, ALICE, "lambda:GetFunction", f"{FN}:f", {}, A),
    ("NotResource allow", [doc({"Effect": "Allow", "Action": "lambda:*", "NotResource": f"{FN}:secret"})], None,
     ALICE, "lambda:GetFunction", f"{FN}:public", {}, A),
    ("NotResource excludes", [doc({"Effect": "Allow", "Action": "lambda:*", "NotResource": f"{FN}:secret"})], None,
     ALICE, "lambda:GetFunction", f"{FN}:secret", {}, I),
    ("resource policy naming the user", [], doc({"Effect": "Allow", "Principal": {"AWS": ALICE.arn},
                                                 "Action": "lambda:InvokeFunction", "Resource": f"{FN}:f"}),
     ALICE, "lambda:InvokeFunction", f"{FN}:f", {}, A),
    ("resource policy naming another user", [], doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:user/bob"},
                                                     "Action": "lambda:InvokeFunction", "Resource": f"{FN}:f"}),
     ALICE, "lambda:InvokeFunction", f"{FN}:f", {}, I),
    ("resource policy naming a session's role", [], doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:role/app"},
                                                         "Action": "lambda:InvokeFunction", "Resource": f"{FN}:f"}),
     SESSION, "lambda:InvokeFunction", f"{FN}:f", {}, A),
    ("resource policy naming the account", [], doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"},
                                                    "Action": "lambda:*", "Resource": f"{FN}:f"}),
     ALICE, "lambda:GetFunction", f"{FN}:f", {}, A),
    ("resource policy with Principal *", [], doc({"Effect": "Allow", "Principal": "*", "Action": "lambda:InvokeFunction",
                                                  "Resource": f"{FN}:f"}), ALICE, "lambda:InvokeFunction",
     f"{FN}:f", {}, A),
    ("a service principal never matches a user", [], doc({"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                                                          "Action": "lambda:InvokeFunction", "Resource": f"{FN}:f"}),
     ALICE, "lambda:InvokeFunction", f"{FN}:f", {}, I),
    ("NotPrincipal deny spares the named", [doc(allow("*"))],
     doc({"Effect": "Deny", "NotPrincipal": {"AWS": ALICE.arn}, "Action": "lambda:*", "Resource": f"{FN}:f"}),
     ALICE, "lambda:GetFunction", f"{FN}:f", {}, A),
    ("NotPrincipal deny hits the others", [doc(allow("*"))],
     doc({"Effect": "Deny", "NotPrincipal": {"AWS": ALICE.arn}, "Action": "lambda:*", "Resource": f"{FN}:f"}),
     SESSION, "lambda:GetFunction", f"{FN}:f", {}, D),
    # conditions
    ("IpAddress inside the range", [doc(allow("lambda:*", Condition={"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}))],
     None, ALICE, "lambda:GetFunction", f"{FN}:f", {"aws:SourceIp": "203.0.113.7"}, A),
    ("IpAddress outside the range", [doc(allow("lambda:*", Condition={"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}))],
     None, ALICE, "lambda:GetFunction", f"{FN}:f", {"aws:SourceIp": "198.51.100.1"}, I),
    ("IpAddress with a list: any", [doc(allow("lambda:*", Condition={"IpAddress": {
        "aws:SourceIp": ["192.0.2.0/24", "203.0.113.0/24"]}}))], None, ALICE, "lambda:GetFunction", f"{FN}:f",
     {"aws:SourceIp": "203.0.113.7"}, A),
    ("deny unless from the range (NotIpAddress)", [doc(allow("*"), deny("*", Condition={"NotIpAddress": {
        "aws:SourceIp": ["192.0.2.0/24"]}}))], None, ALICE, "lambda:GetFunction", f"{FN}:f",
     {"aws:SourceIp": "198.51.100.1"}, D),
    ("NotIpAddress lets the range through", [doc(allow("*"), deny("*", Condition={"NotIpAddress": {
        "aws:SourceIp": ["192.0.2.0/24"]}}))], None, ALICE, "lambda:GetFunction", f"{FN}:f",
     {"aws:SourceIp": "192.0.2.10"}, A),
    ("IPv6 range", [doc(allow("*", Condition={"IpAddress": {"aws:SourceIp": "2001:db8::/32"}}))], None, ALICE,
     "lambda:GetFunction", f"{FN}:f", {"aws:SourceIp": "2001:db8::5"}, A),
    ("DateLessThan before the time", [doc(allow("*", Condition={"DateLessThan": {"aws:CurrentTime": "2026-12-31T00:00:00Z"}}))],
     None, ALICE, "lambda:GetFunction", f"{FN}:f", {"aws:CurrentTime": NOON}, A),
    ("DateGreaterThan not yet", [doc(allow("*", Condition={"DateGreaterThan": {"aws:CurrentTime": "2027-01-01T00:00:00Z"}}))],
     None, ALICE, "lambda:GetFunction", f"{FN}:f", {"aws:CurrentTime": NOON}, I),
    ("a time window", [doc(allow("*", Condition={"DateGreaterThan": {"aws:CurrentTime": "2026-12-05T08:00:00Z"},
                                                 "DateLessThan": {"aws:CurrentTime": "2026-12-05T18:00:00Z"}}))],
     None, ALICE, "lambda:GetFunction", f"{FN}:f", {"aws:CurrentTime": NOON}, A),
    ("epoch seconds", [doc(allow("*", Condition={"NumericLessThan": {"aws:EpochTime": "2000000000"}}))], None,
     ALICE, "lambda:GetFunction", f"{FN}:f", {"aws:EpochTime": 1_800_000_000}, A),
    ("Bool SecureTransport false denies", [doc(allow("*"), deny("*", Condition={"Bool": {"aws:SecureTransport": "false"}}))],
     None, ALICE, "lambda:GetFunction", f"{FN}:f", {"aws:SecureTransport": False}, D),
    ("Bool SecureTransport true", [doc(allow("*", Condition={"Bool": {"aws:SecureTransport": "true"}}))], None,
     ALICE, "lambda:GetFunction", f"{FN}:f", {"aws:SecureTransport": False}, I),
    ("StringEquals on a key", [doc(allow("iam:PassRole", Condition={"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}))],
     None, ALICE, "iam:PassRole", f"arn:aws:iam::{ACCT}:role/app", {"iam:PassedToService": "lambda.amazonaws.com"}, A),
    ("StringEquals, another value", [doc(allow("iam:PassRole", Condition={"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}))],
     None, ALICE, "iam:PassRole", f"arn:aws:iam::{ACCT}:role/app", {"iam:PassedToService": "ec2.amazonaws.com"}, I),
    ("condition keys are case-insensitive", [doc(allow("*", Condition={"StringEquals": {"AWS:UserName": "alice"}}))],
     None, ALICE, "lambda:GetFunction", f"{FN}:f", {}, A),
    ("StringEquals is case-sensitive in values", [doc(allow("*", Condition={"StringEquals": {"aws:username": "Alice"}}))],
     None, ALICE, "lambda:GetFunction", f"{FN}:f", {}, I),
    ("StringEqualsIgnoreCase", [doc(allow("*", Condition={"StringEqualsIgnoreCase": {"aws:username": "ALICE"}}))],
     None, ALICE, "lambda:GetFunction", f"{FN}:f", {}, A),
    ("StringLike with a wildcard", [doc(allow("*", Condition={"StringLike": {"lambda:Principal": "*.amazonaws.com"}}))],
     None, ALICE, "lambda:AddPermission", f"{FN}:f", {"lambda:Principal": "events.amazonaws.com"}, A),
    ("StringNotEquals on a missing key is true", [doc(allow("*", Condition={"StringNotEquals": {"lambda:Principal": "*"}}))],
     None, ALICE, "lambda:GetFunction", f"{FN}:f", {}, A),
    ("StringEquals on a missing key is false", [doc(allow("*", Condition={"StringEquals": {"lambda:Principal": "x"}}))],
     None, ALICE, "lambda:GetFunction", f"{FN}:f", {}, I),
    ("...IfExists on a missing key is true", [doc(allow("*", Condition={"StringEqualsIfExists": {"lambda:Principal": "x"}}))],
     None, ALICE, "lambda:GetFunction", f"{FN}:f", {}, A),
    ("...IfExists on a present key compares", [doc(allow("*", Condition={"StringEqualsIfExists": {"lambda:Principal": "x"}}))],
     None, ALICE, "lambda:AddPermission", f"{FN}:f", {"lambda:Principal": "y"}, I),
    ("Null true: the key is absent", [doc(allow("*", Condition={"Null": {"aws:SourceArn": "true"}}))], None, ALICE,
     "lambda:GetFunction", f"{FN}:f", {}, A),
    ("Null false: the key must be present", [doc(allow("*", Condition={"Null": {"aws:SourceArn": "false"}}))], None,
     ALICE, "lambda:GetFunction", f"{FN}:f", {}, I),
    ("ArnLike on SourceArn matches", [], doc({"Effect": "Allow", "Principal": "*", "Action": "lambda:InvokeFunction",
                                              "Resource": f"{FN}:f", "Condition": {"ArnLike": {
                                                  "AWS:SourceArn": f"arn:aws:events:us-east-1:{ACCT}:rule/nightly-*"}}}),
     ALICE, "lambda:InvokeFunction", f"{FN}:f", {"aws:SourceArn": f"arn:aws:events:us-east-1:{ACCT}:rule/nightly-1"}, A),
    ("ArnLike on SourceArn: another rule", [], doc({"Effect": "Allow", "Principal": "*", "Action": "lambda:InvokeFunction",
                                                    "Resource": f"{FN}:f", "Condition": {"ArnLike": {
                                                        "AWS:SourceArn": f"arn:aws:events:us-east-1:{ACCT}:rule/nightly-*"}}}),
     ALICE, "lambda:InvokeFunction", f"{FN}:f", {"aws:SourceArn": f"arn:aws:events:us-east-1:{ACCT}:rule/hourly"}, I),
    ("a SourceArn condition never matches a direct call", [], doc({"Effect": "Allow", "Principal": "*",
                                                                   "Action": "lambda:InvokeFunction", "Resource": f"{FN}:f",
                                                                   "Condition": {"ArnLike": {"AWS:SourceArn": "*"}}}),
     ALICE, "lambda:InvokeFunction", f"{FN}:f", {}, I),
    ("ForAllValues: every layer allowed", [doc(allow("lambda:CreateFunction", Condition={"ForAllValues:StringLike": {
        "lambda:Layer": [f"arn:aws:lambda:*:{ACCT}:layer:approved-*:*"]}}))], None, ALICE, "lambda:CreateFunction",
     f"{FN}:f", {"lambda:Layer": [f"arn:aws:lambda:us-east-1:{ACCT}:layer:approved-a:1"]}, A),
    ("ForAllValues: one layer not allowed", [doc(allow("lambda:CreateFunction", Condition={"ForAllValues:StringLike": {
        "lambda:Layer": [f"arn:aws:lambda:*:{ACCT}:layer:approved-*:*"]}}))], None, ALICE, "lambda:CreateFunction",
     f"{FN}:f", {"lambda:Layer": [f"arn:aws:lambda:us-east-1:{ACCT}:layer:approved-a:1",
                                  f"arn:aws:lambda:us-east-1:{ACCT}:layer:other:1"]}, I),
    ("ForAllValues: no layers at all is true", [doc(allow("lambda:CreateFunction", Condition={"ForAllValues:StringLike": {
        "lambda:Layer": [f"arn:aws:lambda:*:{ACCT}:layer:approved-*:*"]}}))], None, ALICE, "lambda:CreateFunction",
     f"{FN}:f", {}, A),
    ("ForAnyValue: one matches", [doc(allow("lambda:CreateFunction", Condition={"ForAnyValue:StringEquals": {
        "lambda:Layer": ["arn:x:1", "arn:y:1"]}}))], None, ALICE, "lambda:CreateFunction", f"{FN}:f",
     {"lambda:Layer": ["arn:z:1", "arn:y:1"]}, A),
    ("ForAnyValue: missing key is false", [doc(allow("lambda:CreateFunction", Condition={"ForAnyValue:StringEquals": {
        "lambda:Layer": ["arn:x:1"]}}))], None, ALICE, "lambda:CreateFunction", f"{FN}:f", {}, I),
    ("several operators are ANDed", [doc(allow("*", Condition={"StringEquals": {"aws:username": "alice"},
                                                               "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}))],
     None, ALICE, "lambda:GetFunction", f"{FN}:f", {"aws:SourceIp": "192.168.1.1"}, I),
    ("an unknown operator matches nothing", [doc(allow("*", Condition={"StringSortOf": {"aws:username": "alice"}}))],
     None, ALICE, "lambda:GetFunction", f"{FN}:f", {}, I),
    # policy variables
    ("${aws:username} in a resource", [doc(allow("lambda:*", f"{FN}:${{aws:username}}-*"))], None, ALICE,
     "lambda:GetFunction", f"{FN}:alice-api", {}, A),
    ("${aws:username} is the caller's own", [doc(allow("lambda:*", f"{FN}:${{aws:username}}-*"))], None, ALICE,
     "lambda:GetFunction", f"{FN}:bob-api", {}, I),
    ("a variable without a value matches nothing", [doc(allow("lambda:*", f"{FN}:${{aws:username}}-*"))], None,
     SESSION, "lambda:GetFunction", f"{FN}:-api", {}, I),
    ("2008-10-17 takes variables literally", [doc(allow("lambda:*", f"{FN}:${{aws:username}}-*"), version="2008-10-17")],
     None, ALICE, "lambda:GetFunction", f"{FN}:alice-api", {}, I),
    ("a variable in a condition value", [doc(allow("iam:*", Condition={"StringEquals": {"iam:ResourceTag/owner": "${aws:username}"}}))],
     None, ALICE, "iam:GetUser", "*", {"iam:ResourceTag/owner": "alice"}, A),
    ("statement without a resource applies to nothing", [doc({"Effect": "Allow", "Action": "*"})], None, ALICE,
     "lambda:GetFunction", f"{FN}:f", {}, I),
]


@pytest.mark.parametrize(("identity", "resource_policy", "caller", "action", "resource", "context", "expected"),
                         [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_decision(identity, resource_policy, caller, action, resource, context, expected) -> None:
    assert evaluate(identity, resource_policy, Request(caller, action, resource, context)).decision is expected


def test_what_was_missing_is_said() -> None:
    request = Request(ALICE, "lambda:InvokeFunction", f"{FN}:f", {})
    assert evaluate([], doc({"Effect": "Allow", "Principal": {"AWS": "x"}, "Action": "*"}), request).missing \
        == "resource"
    assert evaluate([doc(allow("s3:*"))], None, request).missing == "identity"


@pytest.mark.parametrize(("document", "resource_based", "message"), [
    ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "lambda:*", "Resource": "*"}]}', False,
     None),
    ("{not json", False, "Syntax errors in policy."),
    ('{"Version": "2012-10-17", "Statement": [{"Effect": "Maybe", "Action": "lambda:*", "Resource": "*"}]}', False,
     "Syntax errors in policy."),
    ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*"}]}', False,
     "Policy statement must contain actions."),
    ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "lambda:*"}]}', False,
     "Policy statement must contain resources."),
    ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "GetFunction", "Resource": "*"}]}', False,
     "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."),
    ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "lambda:*", '
     '"Resource": "*"}]}', False, "Policy document should not specify a principal."),
    ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, '
     '"Action": "sts:AssumeRole"}]}', True, None),
    ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, '
     '"Action": "sts:AssumeRole", "Resource": "*"}]}', True, "Has prohibited field Resource"),
    ('{"Version": "2013-01-01", "Statement": []}', False, "The policy failed legacy parsing"),
])
def test_validation(document: str, resource_based: bool, message: str | None) -> None:
    assert validate_policy(document, resource_based=resource_based) == message
