"""Handlers for aliases: CreateAlias, GetAlias, ListAliases, UpdateAlias, DeleteAlias. (Invoking and reading a
function through an alias lives with Invoke and GetFunction.)"""

from __future__ import annotations

from typing import Any, Mapping

from lambdad.api.http import Handler, RequestContext
from lambdad.arn import parse_function_name
from lambdad.functions.aliases import AliasService

__all__ = ["alias_handlers"]


def alias_handlers(service: AliasService, region: str, account: str) -> dict[str, Handler]:
    def name_of(params: Mapping[str, Any]) -> str:
        return parse_function_name(params["FunctionName"], region=region, account_id=account, allow_qualifier=False).name

    async def create_alias(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        alias = await service.create(
            name_of(params), params["Name"], params["FunctionVersion"], params.get("Description"),
            params.get("RoutingConfig"),
        )
        return alias.to_api(region, account)

    async def get_alias(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        return service.get(name_of(params), params["Name"]).to_api(region, account)

    async def list_aliases(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        listing = service.list(
            name_of(params), params.get("FunctionVersion"), params.get("Marker"), params.get("MaxItems")
        )
        return {"Aliases": [a.to_api(region, account) for a in listing.aliases], "NextMarker": listing.next_marker}

    async def update_alias(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        alias = await service.update(
            name_of(params), params["Name"], function_version=params.get("FunctionVersion"),
            description=params.get("Description"), routing=params.get("RoutingConfig"),
            revision_id=params.get("RevisionId"),
        )
        return alias.to_api(region, account)

    async def delete_alias(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        await service.delete(name_of(params), params["Name"])
        return {}

    return {
        "CreateAlias": create_alias,
        "GetAlias": get_alias,
        "ListAliases": list_aliases,
        "UpdateAlias": update_alias,
        "DeleteAlias": delete_alias,
    }
