"""STS: who is calling (GetCallerIdentity) and temporary credentials of a role (AssumeRole).

AssumeRole follows the rule AWS keeps for role trust policies (``Authorizer.check_trust``): the trust policy must
allow ``sts:AssumeRole`` to the caller itself, or to the caller's account and then the caller's identity policies
must allow it too — an identity Allow alone is not enough, even within the account; an explicit Deny in either
wins. A role that does not exist is refused the same way (AWS does not say whether it exists). The session's credentials — an ``ASIA`` access
key id, a secret and a session token — are stored (``iam_entities``, kind ``session``) so that every node of a
cluster accepts them, until they expire (``DurationSeconds``: 900 s up to the role's MaxSessionDuration, 3,600 s by
default). The session's principal is ``arn:aws:sts::<account>:assumed-role/<role>/<session name>``, holding its
role's policies. Expired sessions are deleted when next presented. Session policies (``Policy``,
``PolicyArns``), tags, MFA and source identity are not served.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import time
from typing import Any, Mapping

from lambdad.api.query_api import QueryContext, QueryHandler
from lambdad.auth.principals import Identity, session_principal
from lambdad.auth.sigv4 import Secret
from lambdad.iam.authorize import Authorizer
from lambdad.iam.errors import IamValidationError, StsAccessDenied
from lambdad.iam.service import IamService, unique_id
from lambdad.store.interfaces import IamStore

__all__ = ["sts_handlers", "Sessions"]

_ROLE_ARN = re.compile(r"arn:aws:iam::(\d{12}):role/(?:[^/]+/)*([\w+=,.@-]+)")


class Sessions:
    """The credentials AssumeRole hands out, in the store (so every node accepts them)."""

    def __init__(self, store: IamStore) -> None:
        self._store = store

    async def issue(self, role_arn: str, session_name: str, role_id: str, duration: int) -> dict[str, Any]:
        key_id, secret, token = unique_id("ASIA"), secrets.token_urlsafe(30), secrets.token_urlsafe(96)
        expires = time.time() + duration
        record = {"Secret": secret, "Token": token, "Expires": expires, "RoleArn": role_arn,
                  "SessionName": session_name, "RoleId": role_id}
        await self._store.put_iam("session", key_id, json.dumps(record), None)
        return {"AccessKeyId": key_id, "SecretAccessKey": secret, "SessionToken": token,
                "Expiration": dt.datetime.fromtimestamp(expires, dt.timezone.utc)}

    async def lookup(self, access_key_id: str) -> tuple[Identity, float] | None:
        """The session's identity and when it expires (epoch seconds), or None."""
        stored = await self._store.get_iam("session", access_key_id)
        if stored is None:
            return None
        record = json.loads(stored[0])
        if record["Expires"] < time.time():
            await self._store.delete_iam("session", access_key_id)
            return None
        return (Identity(Secret(record["Secret"], record["Token"]),
                         session_principal(record["RoleArn"], record["SessionName"])), float(record["Expires"]))


def sts_handlers(iam: IamService, authorizer: Authorizer, sessions: Sessions) -> dict[str, QueryHandler]:
    account = iam.account

    async def get_caller_identity(ctx: QueryContext, _params: dict[str, Any]) -> Mapping[str, Any]:
        principal = ctx.principal
        if principal.root:
            return {"UserId": account, "Account": account, "Arn": f"arn:aws:iam::{account}:root"}
        if principal.kind == "user":
            return {"UserId": iam.user_id(principal.name) or principal.name, "Account": principal.account,
                    "Arn": principal.caller_arn}
        role = iam.role(principal.name)
        role_id = role["RoleId"] if role else principal.name
        return {"UserId": f"{role_id}:{principal.session}", "Account": principal.account,
                "Arn": principal.caller_arn}

    async def assume_role(ctx: QueryContext, params: dict[str, Any]) -> Mapping[str, Any]:
        role_arn, session_name = str(params["RoleArn"]), str(params["RoleSessionName"])
        found = _ROLE_ARN.fullmatch(role_arn)
        role = iam.role(found.group(2)) if found and found.group(1) == account else None
        trust: list[Mapping[str, Any]] = []
        if role is not None and iam.arn("role", role) == role_arn:
            document = json.loads(role["AssumeRolePolicyDocument"])
            statements = document.get("Statement", [])
            trust = statements if isinstance(statements, list) else [statements]
        else:
            role = None
        authorizer.check_trust(ctx.principal, "sts:AssumeRole", role_arn, trust, source_ip=ctx.source_ip,
                               denied=StsAccessDenied, context={"sts:RoleSessionName": session_name})
        if role is None:  # root, but there is no such role to assume
            raise StsAccessDenied(f"User: {ctx.principal.caller_arn} is not authorized to perform: sts:AssumeRole "
                                  f"on resource: {role_arn}")
        duration = int(params.get("DurationSeconds", 3600))
        most = int(role.get("MaxSessionDuration", 3600))
        if duration > most:
            raise IamValidationError(f"The requested DurationSeconds exceeds the MaxSessionDuration set for this "
                                     f"role.")
        credentials = await sessions.issue(role_arn, session_name, role["RoleId"], duration)
        return {"Credentials": credentials,
                "AssumedRoleUser": {"AssumedRoleId": f"{role['RoleId']}:{session_name}",
                                    "Arn": session_principal(role_arn, session_name).caller_arn}}

    return {"GetCallerIdentity": get_caller_identity, "AssumeRole": assume_role}
