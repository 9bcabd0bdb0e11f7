"""The resource-policy service: AddPermission, RemovePermission and GetPolicy, with Lambda's rules.

Each function has one policy per qualifier: the unqualified function (stored under ``$LATEST``), a published
version, or an alias. A policy is a list of statements, each with a statement id unique within that policy. The
policy's revision id is the revision id of what it belongs to ($LATEST, the version or the alias), and every
change to a policy gives that owner a new revision id, as on Lambda.

Enforced by ``api/access.py`` for every caller other than root: a statement grants its action to its principal
on what the policy belongs to (``iam/policy.py`` evaluates them).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from lambdad.arn import LATEST, is_alias_name
from lambdad.errors import (
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lambdad.functions.model import POLICY_VERSION, Alias, Function, FunctionConfig
from lambdad.store.interfaces import FunctionStore
from lambdad.functions.service import FunctionService

__all__ = ["PolicyService", "Permission"]

_PRECONDITION = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
)
_NO_SUCH_RESOURCE = "The resource you requested does not exist."

Owner = FunctionConfig | Alias


@dataclass(frozen=True, slots=True)
class Permission:
    """What AddPermission asks for (parsed from the request by ``api/commands.py``)."""

    statement_id: str
    action: str
    principal: str
    source_arn: str | None = None
    source_account: str | None = None
    event_source_token: str | None = None
    principal_org_id: str | None = None
    function_url_auth_type: str | None = None
    invoked_via_function_url: bool = False

    def statement(self, resource: str, partition: str = "aws") -> dict[str, Any]:
        """The policy statement, in the shape and key order Lambda renders."""
        statement: dict[str, Any] = {
            "Sid": self.statement_id,
            "Effect": "Allow",
            "Principal": _principal(self.principal, partition),
            "Action": self.action,
            "Resource": resource,
        }
        condition: dict[str, dict[str, str]] = {}

        def add(operator: str, key: str, value: str) -> None:
            condition.setdefault(operator, {})[key] = value

        if self.function_url_auth_type:
            add("StringEquals", "lambda:FunctionUrlAuthType", self.function_url_auth_type)
        if self.invoked_via_function_url:
            add("Bool", "lambda:InvokedViaFunctionUrl", "true")
        if self.principal_org_id:
            add("StringEquals", "aws:PrincipalOrgID", self.principal_org_id)
        if self.source_account:
            add("StringEquals", "AWS:SourceAccount", self.source_account)
        if self.event_source_token:
            add("StringEquals", "lambda:EventSourceToken", self.event_source_token)
        if self.source_arn:
            add("ArnLike", "AWS:SourceArn", self.source_arn)
        if condition:
            statement["Condition"] = condition
        return statement


def _principal(principal: str, partition: str) -> Any:
    """The Principal element for AddPermission's Principal: a service, an account, an IAM ARN or ``*``."""
    if principal == "*":
        return "*"
    if principal.endswith(".amazonaws.com") or principal.endswith(".amazon.com"):
        return {"Service": principal}
    if len(principal) == 12 and principal.isdigit():
        return {"AWS": f"arn:{partition}:iam::{principal}:root"}
    if principal.startswith("arn:") and ":iam::" in principal:
        return {"AWS": principal}
    raise InvalidParameterValueException("The provided principal was invalid. Please check the principal and try again.")


class PolicyService:
    def __init__(self, functions: FunctionService, store: FunctionStore) -> None:
        self._functions = functions
        self._store = store

    # -- reads -----------------------------------------------------------------------------------------------

    def get(self, name: str, qualifier: str | None) -> tuple[str, str]:
        """GetPolicy: the policy document (JSON text) and its revision id."""
        function = self._functions.function(name)
        key = qualifier or LATEST
        statements = function.policies.get(key)
        owner = self._owner_or_none(function, key)
        if not statements or owner is None:
            raise ResourceNotFoundException(_NO_SUCH_RESOURCE)
        return _document(statements), owner.revision_id

    # -- writes ----------------------------------------------------------------------------------------------

    async def add(self, name: str, qualifier: str | None, permission: Permission, revision_id: str | None) -> dict[str, Any]:
        """AddPermission: returns the statement added."""
        if qualifier == LATEST:
            raise InvalidParameterValueException("We currently do not support adding policies for $LATEST.")
        async with self._functions.lock(name):
            function = self._functions.function(name)
            key = qualifier or LATEST
            owner = self._owner(function, key)
            _check_revision(owner, revision_id)
            statements = list(function.policies.get(key, []))
            if any(s["Sid"] == permission.statement_id for s in statements):
                raise ResourceConflictException(
                    f"The statement id ({permission.statement_id}) provided already exists. Please provide a new "
                    "statement id, or remove the existing statement."
                )
            statement = permission.statement(self._functions.arn(name, qualifier))
            statements.append(statement)
            await self._save(function, key, owner, statements)
        await self._owner_changed(name, owner)
        return statement

    async def remove(self, name: str, qualifier: str | None, statement_id: str, revision_id: str | None) -> None:
        """RemovePermission."""
        async with self._functions.lock(name):
            try:
                function = self._functions.function(name)
            except ResourceNotFoundException as exc:
                raise ResourceNotFoundException(f"No policy found for: {self._functions.arn(name)}") from exc
            key = qualifier or LATEST
            owner = self._owner(function, key)
            statements = function.policies.get(key)
            if not statements:
                raise ResourceNotFoundException("No policy is associated with the given resource.")
            if not any(s["Sid"] == statement_id for s in statements):
                raise ResourceNotFoundException(f"Statement {statement_id} is not found in resource policy.")
            _check_revision(owner, revision_id)
            await self._save(function, key, owner, [s for s in statements if s["Sid"] != statement_id])
        await self._owner_changed(name, owner)

    # -- helpers ---------------------------------------------------------------------------------------------

    def _owner_or_none(self, function: Function, key: str) -> Owner | None:
        if key == LATEST:
            return function.latest
        return function.versions.get(key) or function.aliases.get(key)

    def _owner(self, function: Function, key: str) -> Owner:
        """What the policy of ``key`` belongs to; ResourceNotFoundException when that does not exist."""
        owner = self._owner_or_none(function, key)
        if owner is not None:
            return owner
        arn = self._functions.arn(function.name, key)
        if is_alias_name(key):
            raise ResourceNotFoundException(f"Cannot find alias arn: {arn}")
        raise ResourceNotFoundException(f"Function not found: {arn}")

    async def _save(self, function: Function, key: str, owner: Owner, statements: list[dict[str, Any]]) -> None:
        """Store the policy and its owner with a new revision id, then update memory."""
        owner = stored = owner.replace(revision_id=str(uuid.uuid4()))
        await self._functions.commit(function, lambda expect: self._store.put_policy(function.name, key, statements,
                                                                                     stored, expect=expect))
        if statements:
            function.policies[key] = statements
        else:
            function.policies.pop(key, None)
        if isinstance(owner, Alias):
            function.aliases[owner.name] = owner
        elif owner.version == LATEST:
            function.latest = owner
        else:
            function.versions[owner.version] = owner

    async def _owner_changed(self, name: str, owner: Owner) -> None:
        # A version's revision id is part of its environments' identity: they are retired (an alias has none).
        if isinstance(owner, FunctionConfig):
            await self._functions.changed(name, owner.version)


def _check_revision(owner: Owner, revision_id: str | None) -> None:
    if revision_id is not None and revision_id != owner.revision_id:
        raise PreconditionFailedException(_PRECONDITION)


def _document(statements: list[dict[str, Any]]) -> str:
    return json.dumps(
        {"Version": POLICY_VERSION, "Id": "default", "Statement": statements}, separators=(",", ":")
    )

