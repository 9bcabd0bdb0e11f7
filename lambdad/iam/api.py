"""The IAM and STS operations lambdad serves, as query-protocol handlers (``api/query_api.py``).

Each IAM handler asks the authorizer first — action ``iam:<Operation>``, resource the ARN of the user, group, role
or policy it names (``arn:aws:iam::<account>:user/`` and the like for the List operations), as the service
authorization reference gives them — then calls ``IamService``. Operations on access keys and GetUser without a
``UserName`` act on the calling user, as on AWS.

STS: GetCallerIdentity (always allowed, as on AWS) and AssumeRole (``iam/sts.py``).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Mapping

from lambdad.api.query_api import QueryContext, QueryHandler
from lambdad.iam.authorize import Authorizer
from lambdad.iam.errors import IamValidationError, StsAccessDenied
from lambdad.iam.service import IamService

__all__ = ["iam_handlers"]

Call = Callable[..., Any]


def iam_handlers(iam: IamService, authorizer: Authorizer) -> dict[str, QueryHandler]:
    account = iam.account

    def arn(kind: str, name: str) -> str:
        return f"arn:aws:iam::{account}:{kind}{iam.path_of(kind, name)}{name}"

    def own_user(ctx: QueryContext, params: dict[str, Any]) -> str:
        name = params.get("UserName")
        if name:
            return str(name)
        if ctx.principal.kind == "user":
            return ctx.principal.name
        raise IamValidationError("Must specify userName when calling with non-User credentials")

    def allow(ctx: QueryContext, operation: str, resource: str, context: Mapping[str, object] | None = None) -> None:
        authorizer.check(ctx.principal, f"iam:{operation}", resource, source_ip=ctx.source_ip, context=context,
                         denied=StsAccessDenied)

    def handler(operation: str, resource: Callable[[QueryContext, dict[str, Any]], str], call: Call,
                context: Callable[[dict[str, Any]], Mapping[str, object]] | None = None) -> QueryHandler:
        async def handle(ctx: QueryContext, params: dict[str, Any]) -> Mapping[str, Any]:
            if operation.startswith("List"):
                await iam.load()  # users ``lambdad keys`` made meanwhile, from another process
            else:
                await iam.ensure(params)
            allow(ctx, operation, resource(ctx, params), context(params) if context else None)
            result = call(ctx, params)
            if isinstance(result, Awaitable):
                result = await result
            return result  # type: ignore[no-any-return]
        return handle

    def by(kind: str, key: str) -> Callable[[QueryContext, dict[str, Any]], str]:
        return lambda _ctx, p: arn(kind, str(p[key]))

    def new(kind: str, key: str) -> Callable[[QueryContext, dict[str, Any]], str]:
        return lambda _ctx, p: f"arn:aws:iam::{account}:{kind}{p.get('Path', '/')}{p[key]}"

    def listing(kind: str) -> Callable[[QueryContext, dict[str, Any]], str]:
        return lambda _ctx, _p: f"arn:aws:iam::{account}:{kind}/"

    def user_of(ctx: QueryContext, p: dict[str, Any]) -> str:
        return arn("user", own_user(ctx, p))

    def policy_arn(_ctx: QueryContext, p: dict[str, Any]) -> str:
        return str(p["PolicyArn"])

    def attached(p: dict[str, Any]) -> Mapping[str, object]:
        return {"iam:PolicyARN": str(p["PolicyArn"])}

    handlers: dict[str, QueryHandler] = {
        "CreateUser": handler("CreateUser", new("user", "UserName"), lambda c, p: iam.create_user(**p)),
        "GetUser": handler("GetUser", user_of, lambda c, p: iam.get_user(own_user(c, p))),
        "ListUsers": handler("ListUsers", listing("user"), lambda c, p: iam.list_users(**p)),
        "DeleteUser": handler("DeleteUser", by("user", "UserName"), lambda c, p: iam.delete_user(p["UserName"])),
        "CreateAccessKey": handler("CreateAccessKey", user_of, lambda c, p: iam.create_access_key(own_user(c, p))),
        "ListAccessKeys": handler("ListAccessKeys", user_of, lambda c, p: iam.list_access_keys(
            own_user(c, p), **{k: v for k, v in p.items() if k != "UserName"})),
        "UpdateAccessKey": handler("UpdateAccessKey", user_of, lambda c, p: iam.update_access_key(
            own_user(c, p), p["AccessKeyId"], p["Status"])),
        "DeleteAccessKey": handler("DeleteAccessKey", user_of, lambda c, p: iam.delete_access_key(
            own_user(c, p), p["AccessKeyId"])),
        "CreateGroup": handler("CreateGroup", new("group", "GroupName"), lambda c, p: iam.create_group(**p)),
        "GetGroup": handler("GetGroup", by("group", "GroupName"), lambda c, p: iam.get_group(**p)),
        "ListGroups": handler("ListGroups", listing("group"), lambda c, p: iam.list_groups(**p)),
        "ListGroupsForUser": handler("ListGroupsForUser", by("user", "UserName"),
                                     lambda c, p: iam.list_groups_for_user(**p)),
        "DeleteGroup": handler("DeleteGroup", by("group", "GroupName"), lambda c, p: iam.delete_group(**p)),
        "AddUserToGroup": handler("AddUserToGroup", by("group", "GroupName"),
                                  lambda c, p: iam.add_user_to_group(**p)),
        "RemoveUserFromGroup": handler("RemoveUserFromGroup", by("group", "GroupName"),
                                       lambda c, p: iam.remove_user_from_group(**p)),
        "CreateRole": handler("CreateRole", new("role", "RoleName"), lambda c, p: iam.create_role(**p)),
        "GetRole": handler("GetRole", by("role", "RoleName"), lambda c, p: iam.get_role(**p)),
        "ListRoles": handler("ListRoles", listing("role"), lambda c, p: iam.list_roles(**p)),
        "DeleteRole": handler("DeleteRole", by("role", "RoleName"), lambda c, p: iam.delete_role(**p)),
        "UpdateAssumeRolePolicy": handler("UpdateAssumeRolePolicy", by("role", "RoleName"),
                                          lambda c, p: iam.update_assume_role_policy(**p)),
        "CreatePolicy": handler("CreatePolicy", new("policy", "PolicyName"), lambda c, p: iam.create_policy(**p)),
        "GetPolicy": handler("GetPolicy", policy_arn, lambda c, p: iam.get_policy(**p)),
        "ListPolicies": handler("ListPolicies", listing("policy"), lambda c, p: iam.list_policies(**p)),
        "DeletePolicy": handler("DeletePolicy", policy_arn, lambda c, p: iam.delete_policy(**p)),
        "CreatePolicyVersion": handler("CreatePolicyVersion", policy_arn,
                                       lambda c, p: iam.create_policy_version(**p)),
        "GetPolicyVersion": handler("GetPolicyVersion", policy_arn, lambda c, p: iam.get_policy_version(**p)),
        "ListPolicyVersions": handler("ListPolicyVersions", policy_arn, lambda c, p: iam.list_policy_versions(**p)),
        "DeletePolicyVersion": handler("DeletePolicyVersion", policy_arn,
                                       lambda c, p: iam.delete_policy_version(**p)),
        "SetDefaultPolicyVersion": handler("SetDefaultPolicyVersion", policy_arn,
                                           lambda c, p: iam.set_default_policy_version(**p)),
    }
    for kind, key in (("user", "UserName"), ("group", "GroupName"), ("role", "RoleName")):
        noun = kind.capitalize()
        handlers[f"Put{noun}Policy"] = handler(f"Put{noun}Policy", by(kind, key), _inline(iam.put_inline, kind, key))
        handlers[f"Get{noun}Policy"] = handler(f"Get{noun}Policy", by(kind, key), _inline(iam.get_inline, kind, key))
        handlers[f"Delete{noun}Policy"] = handler(f"Delete{noun}Policy", by(kind, key),
                                                  _inline(iam.delete_inline, kind, key))
        handlers[f"List{noun}Policies"] = handler(f"List{noun}Policies", by(kind, key),
                                                  _inline(iam.list_inline, kind, key))
        handlers[f"Attach{noun}Policy"] = handler(f"Attach{noun}Policy", by(kind, key),
                                                  _inline(iam.attach, kind, key), attached)
        handlers[f"Detach{noun}Policy"] = handler(f"Detach{noun}Policy", by(kind, key),
                                                  _inline(iam.detach, kind, key), attached)
        handlers[f"ListAttached{noun}Policies"] = handler(f"ListAttached{noun}Policies", by(kind, key),
                                                         _inline(iam.list_attached, kind, key))
    return handlers


def _inline(method: Call, kind: str, key: str) -> Call:
    """A call of ``method(kind, name, **rest)`` with the owner's name taken out of the parameters."""
    return lambda _ctx, p: method(kind, p[key], **{k: v for k, v in p.items() if k != key})

