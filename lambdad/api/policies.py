"""Handlers for resource-based policies: AddPermission, RemovePermission, GetPolicy.

The members whose model pattern Lambda checks before anything else (statement id, action, principal, source ARN
and account, event source token, organization id, function URL auth type) are checked here, all errors in one
ValidationException as AWS words it; the rest is the policy service's."""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

import botocore.session

from lambdad.api.http import Handler, RequestContext
from lambdad.api.protocol import member_pattern
from lambdad.arn import parse_function_name
from lambdad.errors import ValidationException
from lambdad.functions.policies import Permission, PolicyService

__all__ = ["policy_handlers"]

_MODEL = botocore.session.get_session().get_service_model("lambda")
# (member, name in messages): the patterns are the model's (Java syntax, nothing Python reads differently)
_ADD_CHECKED = (
    ("StatementId", "statementId"), ("Action", "action"), ("Principal", "principal"), ("SourceArn", "sourceArn"),
    ("SourceAccount", "sourceAccount"), ("EventSourceToken", "eventSourceToken"), ("PrincipalOrgID", "principalOrgID"),
)
_REMOVE_CHECKED = (("StatementId", "statementId"),)
_AUTH_TYPES = tuple(_MODEL.shape_for("FunctionUrlAuthType").enum)


def _check_patterns(operation: str, params: Mapping[str, Any], members: tuple[tuple[str, str], ...]) -> list[str]:
    op = _MODEL.operation_model(operation)
    errors = []
    for member, path in members:
        value = params.get(member)
        pattern = member_pattern(op, member)
        if value is not None and pattern is not None and re.fullmatch(pattern, value) is None:
            errors.append(
                f"Value '{value}' at '{path}' failed to satisfy constraint: "
                f"Member must satisfy regular expression pattern: {pattern}"
            )
    return errors


def _raise(errors: list[str]) -> None:
    if errors:
        n = len(errors)
        raise ValidationException(f"{n} validation error{'s' if n > 1 else ''} detected: {'; '.join(errors)}")


def policy_handlers(service: PolicyService, region: str, account: str) -> dict[str, Handler]:
    def ref(params: Mapping[str, Any]):
        return parse_function_name(
            params["FunctionName"], region=region, account_id=account, qualifier=params.get("Qualifier")
        )

    async def add_permission(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        errors = _check_patterns("AddPermission", params, _ADD_CHECKED)
        auth_type = params.get("FunctionUrlAuthType")
        if auth_type is not None and auth_type not in _AUTH_TYPES:
            errors.append(
                f"Value '{auth_type}' at 'functionUrlAuthType' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(_AUTH_TYPES)}]"
            )
        _raise(errors)
        r = ref(params)
        statement = await service.add(r.name, r.qualifier, Permission(params), params.get("RevisionId"))
        return {"Statement": json.dumps(statement, separators=(",", ":"))}

    async def remove_permission(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        _raise(_check_patterns("RemovePermission", params, _REMOVE_CHECKED))
        r = ref(params)
        await service.remove(r.name, r.qualifier, params["StatementId"], params.get("RevisionId"))
        return {}

    async def get_policy(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        r = ref(params)
        policy, revision_id = service.get(r.name, r.qualifier)
        return {"Policy": policy, "RevisionId": revision_id}

    return {
        "AddPermission": add_permission,
        "RemovePermission": remove_permission,
        "GetPolicy": get_policy,
    }
