"""Every decision of whether a caller may do something, for every API lambdad serves: one place, one evaluator.

``Authorizer.check(principal, action, resource, ...)`` returns when the request is allowed and raises the
service's access-denied error otherwise. Root is never evaluated. For anyone else the policies that apply are
weighed as AWS weighs them within one account (``iam/policy.py``): the identity policies of the caller (a user's
and its groups', or an assumed-role session's role's, from ``IamService``) and the resource policy of what the
request names (a function's or a layer version's, passed by the caller of ``check``); an explicit Deny in either
wins, else an Allow in either suffices.

The request context carries the global condition keys AWS sets on a direct call (``aws:PrincipalArn``,
``aws:PrincipalAccount``, ``aws:PrincipalType``, ``aws:userid``, ``aws:username``, ``aws:SourceIp``,
``aws:CurrentTime``, ``aws:EpochTime``, ``aws:SecureTransport``, ``aws:RequestedRegion``) and the service's own
keys, which the caller adds (``lambda:FunctionArn``, ``lambda:Layer``, ``lambda:Principal``,
``iam:PassedToService``, ...).

Speed: the identity half's decision is cached per (caller, action, resource) while no policy that applies to the
caller has a Condition (a decision that depends on the context, such as the time or the source address, is
worked out each time); the cache is emptied on any change to IAM. The resource policy (a few statements) is
evaluated on every call.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any, Mapping, Sequence

from lambdad.auth.principals import Principal
from lambdad.errors import AccessDeniedException, LambdaError
from lambdad.iam.policy import Caller, Decision, Request, evaluate
from lambdad.iam.service import IamService

__all__ = ["Authorizer"]

_CACHE_MOST = 4096


def _conditional(documents: Sequence[Mapping[str, Any]]) -> bool:
    for document in documents:
        statements = document.get("Statement", [])
        for statement in statements if isinstance(statements, list) else [statements]:
            if isinstance(statement, Mapping) and "Condition" in statement:
                return True
    return False


class Authorizer:
    def __init__(self, iam: IamService, region: str) -> None:
        self._iam = iam
        self._region = region
        self._cache: dict[tuple[str, str, str], Decision] = {}
        self._cached_at = -1  # the IAM generation the cache was filled at

    def caller(self, principal: Principal) -> Caller:
        arns: tuple[str, ...] = (principal.caller_arn,)
        if principal.kind == "role" and principal.arn != principal.caller_arn:
            arns = (principal.caller_arn, principal.arn)
        user_id = self._iam.user_id(principal.name) if principal.kind == "user" else None
        return Caller(arn=principal.caller_arn, account=principal.account, principal_arns=arns,
                      username=principal.name if principal.kind == "user" else None, userid=user_id)

    def context(self, principal: Principal, source_ip: str | None,
                extra: Mapping[str, object] | None = None) -> dict[str, object]:
        now = time.time()
        keys: dict[str, object] = {
            "aws:PrincipalArn": principal.arn, "aws:PrincipalAccount": principal.account,
            "aws:PrincipalType": "User" if principal.kind == "user" else "AssumedRole",
            "aws:CurrentTime": dt.datetime.fromtimestamp(now, dt.timezone.utc), "aws:EpochTime": int(now),
            "aws:SecureTransport": False, "aws:RequestedRegion": self._region,
        }
        if principal.kind == "user":
            keys["aws:username"] = principal.name
            user_id = self._iam.user_id(principal.name)
            if user_id:
                keys["aws:userid"] = user_id
        elif principal.kind == "role":
            role = self._iam.role(principal.name)
            if role is not None:
                keys["aws:userid"] = f"{role['RoleId']}:{principal.session}"
        if source_ip:
            keys["aws:SourceIp"] = source_ip
        if extra:
            keys.update(extra)
        return keys

    def check(self, principal: Principal, action: str, resource: str, *, source_ip: str | None = None,
              context: Mapping[str, object] | None = None,
              resource_policy: Sequence[Mapping[str, Any]] | None = None,
              denied: type[LambdaError] = AccessDeniedException, shown_resource: str | None = None) -> None:
        """Return if ``principal`` may take ``action`` on ``resource``; raise ``denied`` naming what is missing."""
        if principal.root:
            return
        if self._cached_at == self._iam.generation and not resource_policy:  # the warm path: no context needed
            cached = self._cache.get((principal.caller_arn, action, resource))
            if cached is Decision.ALLOW:
                return
        request = Request(self.caller(principal), action, resource, self.context(principal, source_ip, context))
        identity = self._identity_decision(principal, request)
        by_resource = Decision.IMPLICIT_DENY
        if resource_policy:
            by_resource = evaluate([], {"Version": "2012-10-17", "Statement": list(resource_policy)},
                                   request).decision
        if Decision.EXPLICIT_DENY in (identity, by_resource):
            kind = "identity" if identity is Decision.EXPLICIT_DENY else "resource"
            raise denied(f"User: {principal.caller_arn} is not authorized to perform: {action} on resource: "
                         f"{shown_resource or resource} with an explicit deny in an {kind}-based policy")
        if Decision.ALLOW in (identity, by_resource):
            return
        # Lambda's wording: an invoke is refused for want of a resource-based policy (what grants it to other
        # principals), any other action for want of an identity-based one
        kind = "resource" if action == "lambda:InvokeFunction" and not self._iam.identity_policies(
            principal.kind, principal.name) else "identity"
        raise denied(f"User: {principal.caller_arn} is not authorized to perform: {action} on resource: "
                     f"{shown_resource or resource} because no {kind}-based policy allows the {action} action")

    def check_trust(self, principal: Principal, action: str, resource: str, trust: Sequence[Mapping[str, Any]], *,
                    source_ip: str | None = None, context: Mapping[str, object] | None = None,
                    denied: type[LambdaError] = AccessDeniedException) -> None:
        """The rule of a role's trust policy (AssumeRole), stricter than other resource policies: it must allow
        the caller itself, or the caller's account — and then the caller's identity policies must allow it too;
        an identity Allow alone is not enough, even within the account. An explicit Deny in either wins."""
        if principal.root:
            return
        request = Request(self.caller(principal), action, resource, self.context(principal, source_ip, context))
        document = {"Version": "2012-10-17", "Statement": list(trust)}
        by_trust = evaluate([], document, request).decision if trust else Decision.IMPLICIT_DENY
        identity = self._identity_decision(principal, request)
        outcome = "explicit deny" if Decision.EXPLICIT_DENY in (identity, by_trust) else None
        if outcome is None and by_trust is Decision.ALLOW:
            # by the caller itself (its ARNs, or "*"), or only by its account: then identity must allow too
            named = {"Version": "2012-10-17", "Statement": [_without_accounts(st, principal.account) for st in trust]}
            if evaluate([], named, request).decision is Decision.ALLOW or identity is Decision.ALLOW:
                return
        raise denied(f"User: {principal.caller_arn} is not authorized to perform: {action} on resource: {resource}")

    def allowed(self, principal: Principal, action: str, resource: str, **kwargs: Any) -> bool:
        try:
            self.check(principal, action, resource, **kwargs)
        except LambdaError:
            return False
        return True

    def _identity_decision(self, principal: Principal, request: Request) -> Decision:
        if self._cached_at != self._iam.generation:
            self._cache.clear()
            self._cached_at = self._iam.generation
        key = (principal.caller_arn, request.action, request.resource)
        decision = self._cache.get(key)
        if decision is not None:
            return decision
        documents = self._iam.identity_policies(principal.kind, principal.name)
        decision = evaluate(documents, None, request).decision
        if not _conditional(documents):
            if len(self._cache) >= _CACHE_MOST:
                self._cache.clear()
            self._cache[key] = decision
        return decision


def _without_accounts(statement: Mapping[str, Any], account: str) -> Mapping[str, Any]:
    """``statement`` with the account-level AWS principals (the account id, its root) taken out."""
    named = statement.get("Principal")
    if not isinstance(named, Mapping) or "AWS" not in named:
        return statement
    listed = named["AWS"] if isinstance(named["AWS"], list) else [named["AWS"]]
    kept = [p for p in listed if p not in (account, f"arn:aws:iam::{account}:root")]
    return {**statement, "Principal": {**named, "AWS": kept}}
