"""The IAM policy language, evaluated as AWS documents it for a request within one account.

``evaluate(identity_policies, resource_policy, request)``:

1. An explicit ``Deny`` in any statement that applies (identity or resource policy) decides: denied.
2. Otherwise an ``Allow`` in an identity policy or in the resource policy suffices (same-account requests).
3. Otherwise the request is implicitly denied.

A statement applies when its Action (or NotAction), its Resource (or NotResource), in a resource policy its
Principal (or NotPrincipal), and every condition of its Condition block match the request.

- **Actions** match case-insensitively, with ``*`` and ``?`` wildcards (``lambda:Get*``, ``*``).
- **Resources** match case-sensitively, with ``*`` and ``?``: the ARN's partition, service, region and account
  segments one by one (a wildcard does not reach across them), the resource part as a whole (``function:team-a-*``
  covers ``function:team-a-x:prod``; ``function:f`` covers neither versions nor aliases, as on Lambda).
- **Principals** (resource policies): ``"*"`` or ``{"AWS": "*"}`` match anyone; ``{"AWS": ...}`` the caller's
  ARNs (``Caller.principal_arns``: a session's ARN and its role's), its account id or the account's root ARN;
  ``Service``, ``Federated`` and ``CanonicalUser`` principals never match a caller of lambdad's APIs; a ``Service``
  principal matches lambdad acting as that service (``Caller.service``: EventBridge delivering to a function).
- **Conditions**: every operator AWS lists — ``String{Equals,NotEquals,EqualsIgnoreCase,NotEqualsIgnoreCase,Like,
  NotLike}``, ``Numeric{Equals,NotEquals,LessThan,LessThanEquals,GreaterThan,GreaterThanEquals}``, ``Date…`` (the
  same six; ISO 8601 or epoch seconds), ``Bool``, ``BinaryEquals``, ``IpAddress``/``NotIpAddress`` (CIDR, v4 and
  v6), ``Arn{Equals,Like,NotEquals,NotLike}``, ``Null`` — each with ``…IfExists``, and the set qualifiers
  ``ForAnyValue:`` and ``ForAllValues:``. Keys are case-insensitive; several values of one key match if any does
  (for the negated operators: if none does); several keys and operators must all match. A key missing from the
  request fails the condition, except for the negated operators, ``…IfExists``, ``Null: true`` and
  ``ForAllValues`` (true on a missing or empty key, as AWS documents). A multi-valued key under an operator
  without a set qualifier matches when any of its values does.
- **Policy variables** (``${aws:username}``, any context key, ``${*}``, ``${?}``, ``${$}``) are replaced in
  Resource and in the values of the String and Arn conditions of ``2012-10-17`` policies; a variable the request
  has no value for makes that value match nothing. ``2008-10-17`` policies take them literally.

Not evaluated, because lambdad has none of them: cross-account access, permissions boundaries, service control and
resource control policies, session policies.

``validate_policy`` checks a document as IAM does when it is stored, answering MalformedPolicyDocument's message.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import fnmatch
import functools
import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

__all__ = ["Decision", "Caller", "Request", "Evaluation", "evaluate", "statement_matches", "validate_policy"]


class Decision(enum.Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit-deny"
    IMPLICIT_DENY = "implicit-deny"


@dataclass(frozen=True)
class Caller:
    arn: str  # how the caller is named: a user's ARN, or a session's arn:aws:sts::ACCT:assumed-role/ROLE/SESSION
    account: str
    principal_arns: tuple[str, ...]  # what a resource policy's AWS principal may name to match it
    username: str | None = None
    userid: str | None = None
    service: str | None = None  # an AWS service acting for the account (events.amazonaws.com delivering an event)


@dataclass(frozen=True)
class Request:
    caller: Caller
    action: str  # "lambda:InvokeFunction"
    resource: str  # an ARN, or "*"
    context: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Evaluation:
    decision: Decision
    missing: str | None = None  # implicit deny: "identity" or "resource", the kind of policy that lacked an Allow


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@functools.lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern), re.IGNORECASE if ignore_case else 0)


def _like(pattern: str, value: str, ignore_case: bool = False) -> bool:
    if "*" not in pattern and "?" not in pattern:
        return pattern.lower() == value.lower() if ignore_case else pattern == value
    # fnmatch's [...] classes are not IAM's: escape them so only * and ? are wildcards
    return _glob(pattern.replace("[", "[[]"), ignore_case).match(value) is not None


def _arn_like(pattern: str, arn: str) -> bool:
    if pattern == "*":
        return True
    want, have = pattern.split(":", 5), arn.split(":", 5)
    if len(want) != 6 or len(have) != 6:
        return _like(pattern, arn)
    return all(_like(w, h) for w, h in zip(want, have))


# -- policy variables ----------------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_SPECIAL = {"*": "*", "?": "?", "$": "$"}


class _NoValue(Exception):
    pass


def _substitute(text: str, request: Request, version: str) -> str:
    if version != "2012-10-17" or "${" not in text:
        return text

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in _SPECIAL:
            return _SPECIAL[name]
        name, _, default = name.partition(", '")
        value = _context_value(request, name.strip())
        if value is None or isinstance(value, list):
            if default.endswith("'"):
                return default[:-1]
            raise _NoValue(name)
        return str(value).lower() if isinstance(value, bool) else str(value)

    return _VARIABLE.sub(one, text)


def _context_value(request: Request, key: str) -> Any:
    wanted = key.lower()
    caller = request.caller
    builtin = {"aws:username": caller.username, "aws:userid": caller.userid, "aws:principalaccount": caller.account}
    for name, value in request.context.items():
        if name.lower() == wanted:
            return value
    return builtin.get(wanted)


# -- conditions ----------------------------------------------------------------------------------------------

def _as_date(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    text = str(value)
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return dt.datetime.fromtimestamp(float(text), dt.timezone.utc)
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _ip_in(value: Any, network: str) -> bool:
    try:
        return ipaddress.ip_address(str(value)) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


Compare = Callable[[Any, str], bool]
_POSITIVE: dict[str, Compare] = {
    "stringequals": lambda v, p: _text(v) == p,
    "stringequalsignorecase": lambda v, p: _text(v).lower() == p.lower(),
    "stringlike": lambda v, p: _like(p, _text(v)),
    "numericequals": lambda v, p: float(v) == float(p),
    "numericlessthan": lambda v, p: float(v) < float(p),
    "numericlessthanequals": lambda v, p: float(v) <= float(p),
    "numericgreaterthan": lambda v, p: float(v) > float(p),
    "numericgreaterthanequals": lambda v, p: float(v) >= float(p),
    "dateequals": lambda v, p: _as_date(v) == _as_date(p),
    "datelessthan": lambda v, p: _as_date(v) < _as_date(p),
    "datelessthanequals": lambda v, p: _as_date(v) <= _as_date(p),
    "dategreaterthan": lambda v, p: _as_date(v) > _as_date(p),
    "dategreaterthanequals": lambda v, p: _as_date(v) >= _as_date(p),
    "bool": lambda v, p: _text(v).lower() == p.lower(),
    "binaryequals": lambda v, p: (v if isinstance(v, bytes) else str(v).encode()) == base64.b64decode(p),
    "ipaddress": _ip_in,
    "arnequals": lambda v, p: _arn_like(p, str(v)),
    "arnlike": lambda v, p: _arn_like(p, str(v)),
}
_NEGATED = {"stringnotequals": "stringequals", "stringnotequalsignorecase": "stringequalsignorecase",
            "stringnotlike": "stringlike", "numericnotequals": "numericequals", "datenotequals": "dateequals",
            "notipaddress": "ipaddress", "arnnotequals": "arnequals", "arnnotlike": "arnlike"}
_SUBSTITUTED = ("string", "arn")  # operators whose values take policy variables


def _operator_known(name: str) -> bool:
    base = name.lower()
    if ":" in base:
        qualifier, _, base = base.partition(":")
        if qualifier not in ("foranyvalue", "forallvalues"):
            return False
    base = base[:-8] if base.endswith("ifexists") else base
    return base in _POSITIVE or base in _NEGATED or base == "null"


def _condition(operator: str, key: str, wanted: Any, request: Request, version: str) -> bool:
    op = operator.lower()
    qualifier = ""
    if ":" in op:
        qualifier, _, op = op.partition(":")
    if_exists = op.endswith("ifexists") and op != "ifexists"
    if if_exists:
        op = op[:-8]
    value = _context_value(request, key)
    values: list[Any] = [] if value is None else value if isinstance(value, list) else [value]
    if op == "null":
        absent = not values
        return any(str(w).lower() == ("true" if absent else "false") for w in _listed(wanted))
    negated = op in _NEGATED
    compare = _POSITIVE[_NEGATED.get(op, op)]
    patterns: list[str] = []
    for w in _listed(wanted):
        text = _text(w)
        if op.startswith(_SUBSTITUTED) or op.startswith(("stringnot", "arnnot")):
            try:
                text = _substitute(text, request, version)
            except _NoValue:
                continue  # a variable without a value: this value matches nothing
        patterns.append(text)

    def matches(v: Any) -> bool:
        try:
            hit = any(compare(v, p) for p in patterns)
        except (ValueError, TypeError):
            hit = False
        return not hit if negated else hit

    if not values:
        if qualifier == "forallvalues":
            return True
        return if_exists or negated
    if qualifier == "forallvalues":
        return all(matches(v) for v in values)
    return any(matches(v) for v in values)


def _conditions_match(block: Any, request: Request, version: str) -> bool:
    if not isinstance(block, Mapping):
        return False
    for operator, keys in block.items():
        if not isinstance(keys, Mapping) or not _operator_known(str(operator)):
            return False
        for key, wanted in keys.items():
            if not _condition(str(operator), str(key), wanted, request, version):
                return False
    return True


# -- statements ----------------------------------------------------------------------------------------------

def _action_matches(patterns: Any, action: str) -> bool:
    return any(isinstance(p, str) and _like(p, action, ignore_case=True) for p in _listed(patterns))


def _resource_matches(patterns: Any, request: Request, version: str) -> bool:
    for pattern in _listed(patterns):
        if not isinstance(pattern, str):
            continue
        try:
            pattern = _substitute(pattern, request, version)
        except _NoValue:
            continue
        if pattern == "*" or request.resource == "*" and pattern == "*":
            return True
        if request.resource != "*" and _arn_like(pattern, request.resource):
            return True
    return False


def _principal_matches(named: Any, caller: Caller) -> bool:
    if named == "*":
        return True
    if not isinstance(named, Mapping):
        return False
    if caller.service is not None:  # a service principal: named by {"Service": ...} (or "*"), never by an account
        return any(p == "*" or p == caller.service for p in _listed(named.get("Service", [])))
    accepted = {*caller.principal_arns, caller.account, f"arn:aws:iam::{caller.account}:root"}
    return any(p == "*" or p in accepted for p in _listed(named.get("AWS", [])))


def statement_matches(statement: Mapping[str, Any], request: Request, *, resource_based: bool,
                      version: str = "2012-10-17") -> bool:
    """Whether ``statement`` applies to ``request`` (whatever its Effect)."""
    if "Action" in statement:
        if not _action_matches(statement["Action"], request.action):
            return False
    elif "NotAction" in statement:
        if _action_matches(statement["NotAction"], request.action):
            return False
    else:
        return False
    if "Resource" in statement:
        if not _resource_matches(statement["Resource"], request, version):
            return False
    elif "NotResource" in statement:
        if _resource_matches(statement["NotResource"], request, version):
            return False
    elif not resource_based:  # an identity policy's statement without a resource applies to nothing
        return False
    if resource_based:
        if "Principal" in statement:
            if not _principal_matches(statement["Principal"], request.caller):
                return False
        elif "NotPrincipal" in statement:
            if _principal_matches(statement["NotPrincipal"], request.caller):
                return False
        else:
            return False
    if "Condition" in statement and not _conditions_match(statement["Condition"], request, version):
        return False
    return True


def _statements(policy: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> tuple[str, list[Mapping[str, Any]]]:
    if isinstance(policy, Mapping):
        version = str(policy.get("Version", "2008-10-17"))
        statements = policy.get("Statement", [])
        return version, [s for s in _listed(statements) if isinstance(s, Mapping)]
    return "2012-10-17", [s for s in policy if isinstance(s, Mapping)]


def _weigh(policies: Sequence[Mapping[str, Any] | Sequence[Mapping[str, Any]]], request: Request,
           resource_based: bool) -> Decision:
    allowed = False
    for policy in policies:
        version, statements = _statements(policy)
        for statement in statements:
            if statement_matches(statement, request, resource_based=resource_based, version=version):
                if statement.get("Effect") == "Deny":
                    return Decision.EXPLICIT_DENY
                if statement.get("Effect") == "Allow":
                    allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


def evaluate(identity_policies: Sequence[Mapping[str, Any]],
             resource_policy: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None,
             request: Request) -> Evaluation:
    """Allowed, explicitly denied or implicitly denied (see the module's rules)."""
    identity = _weigh(identity_policies, request, resource_based=False)
    by_resource = _weigh([resource_policy], request, resource_based=True) if resource_policy else \
        Decision.IMPLICIT_DENY
    if Decision.EXPLICIT_DENY in (identity, by_resource):
        return Evaluation(Decision.EXPLICIT_DENY)
    if Decision.ALLOW in (identity, by_resource):
        return Evaluation(Decision.ALLOW)
    # what would have had to allow it: the identity policies, unless the caller has none and a resource policy
    # is what such a request is normally granted by
    missing = "resource" if resource_policy and not identity_policies else "identity"
    return Evaluation(Decision.IMPLICIT_DENY, missing)


# -- validation ----------------------------------------------------------------------------------------------

_ACTION = re.compile(r"\*|[a-zA-Z0-9-]+:[a-zA-Z0-9*?]+")
_ELEMENTS = {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource",
             "Condition"}


def validate_policy(document: str, *, resource_based: bool = False) -> str | None:
    """None when ``document`` is a policy IAM would store (an identity policy, or with ``resource_based`` a
    role's trust policy), else MalformedPolicyDocument's message."""
    try:
        policy = json.loads(document)
    except ValueError:
        return "Syntax errors in policy."
    if not isinstance(policy, dict) or "Statement" not in policy:
        return "Syntax errors in policy."
    if set(policy) - {"Version", "Id", "Statement"}:
        return "Syntax errors in policy."
    if policy.get("Version", "2008-10-17") not in ("2008-10-17", "2012-10-17"):
        return "The policy failed legacy parsing"
    statements = policy["Statement"]
    for statement in statements if isinstance(statements, list) else [statements]:
        if not isinstance(statement, dict) or set(statement) - _ELEMENTS:
            return "Syntax errors in policy."
        if statement.get("Effect") not in ("Allow", "Deny"):
            return "Syntax errors in policy."
        if "Action" not in statement and "NotAction" not in statement:
            return "Policy statement must contain actions."
        for action in _listed(statement.get("Action", statement.get("NotAction"))):
            if not isinstance(action, str) or not _ACTION.fullmatch(action):
                return "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
        has_principal = "Principal" in statement or "NotPrincipal" in statement
        if resource_based:
            if not has_principal:
                return "Syntax errors in policy."
            if "Resource" in statement or "NotResource" in statement:
                return "Has prohibited field Resource"
        else:
            if has_principal:
                return "Policy document should not specify a principal."
            if "Resource" not in statement and "NotResource" not in statement:
                return "Policy statement must contain resources."
        condition = statement.get("Condition")
        if condition is not None:
            if not isinstance(condition, dict):
                return "Syntax errors in policy."
            for operator, keys in condition.items():
                if not _operator_known(operator) or not isinstance(keys, dict):
                    return f"Invalid Condition type : {operator}."
    return None
