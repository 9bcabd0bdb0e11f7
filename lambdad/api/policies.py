"""Handlers for resource-based policies: AddPermission, RemovePermission, GetPolicy.

The members whose model pattern Lambda checks before anything else (statement id, action, principal, source ARN
and account, event source token, organization id, function URL auth type) are checked here, all errors in one
ValidationException as AWS words it; the rest is the policy service's."""

from __future__ import annotations

import json
from typing import Any, Mapping

import botocore.session

from lambdad.api import commands
from lambdad.api.patterns import pattern_violations, raise_violations
from lambdad.api.http import Handler, RequestContext
from lambdad.arn import FunctionRef, parse_function_name

from lambdad.functions.policies import PolicyService

__all__ = ["policy_handlers"]

_MODEL = botocore.session.get_session().get_service_model("lambda")
# (member, name in messages): the patterns are the model's (Java syntax, nothing Python reads differently)
_ADD_CHECKED = (
    ("StatementId", "statementId"), ("Action", "action"), ("Principal", "principal"), ("SourceArn", "sourceArn"),
    ("SourceAccount", "sourceAccount"), ("EventSourceToken", "eventSourceToken"), ("PrincipalOrgID", "principalOrgID"),
)
_REMOVE_CHECKED = (("StatementId", "statementId"),)
_AUTH_TYPES = tuple(_MODEL.shape_for("FunctionUrlAuthType").enum)


def policy_handlers(service: PolicyService, region: str, account: str) -> dict[str, Handler]:
    def ref(params: Mapping[str, Any]) -> FunctionRef:
        return parse_function_name(
            params["FunctionName"], region=region, account_id=account, qualifier=params.get("Qualifier")
        )

    async def add_permission(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        errors = pattern_violations("AddPermission", params, _ADD_CHECKED)
        auth_type = params.get("FunctionUrlAuthType")
        if auth_type is not None and auth_type not in _AUTH_TYPES:
            errors.append(
                f"Value '{auth_type}' at 'functionUrlAuthType' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(_AUTH_TYPES)}]"
            )
        raise_violations(errors)
        r = ref(params)
        statement = await service.add(r.name, r.qualifier, commands.permission(params), params.get("RevisionId"))
        return {"Statement": json.dumps(statement, separators=(",", ":"))}

    async def remove_permission(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        raise_violations(pattern_violations("RemovePermission", params, _REMOVE_CHECKED))
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
