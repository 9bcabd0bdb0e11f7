"""Handlers for the functions API: CreateFunction, GetFunction, GetFunctionConfiguration, ListFunctions,
UpdateFunctionCode, UpdateFunctionConfiguration, DeleteFunction. Each parses (a write into its typed command:
``api/commands.py``), calls the service, renders.

A qualified read (``Qualifier`` or a qualified ARN) answers with FunctionArn qualified as the caller qualified
it: a version number, ``$LATEST`` or an alias name (whose configuration is that of the version it points to)."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from lambdad.api import commands
from lambdad.api.code_urls import CodeUrlSigner
from lambdad.api.http import Handler, RequestContext
from lambdad.arn import FunctionRef, function_arn, parse_function_name
from lambdad.errors import validation_error, violation
from lambdad.functions.service import FunctionService

__all__ = ["function_handlers"]


def function_handlers(
    service: FunctionService, code_urls: CodeUrlSigner, reserved: Callable[[str], int | None] = lambda name: None
) -> dict[str, Handler]:
    region, account = service.region, service.account_id

    def ref(params: Mapping[str, Any], allow_qualifier: bool = True) -> FunctionRef:
        return parse_function_name(
            params["FunctionName"], region=region, account_id=account,
            qualifier=params.get("Qualifier"), allow_qualifier=allow_qualifier,
        )

    async def create_function(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        name = ref(params, allow_qualifier=False).name
        config = await service.create(commands.create_function(params, name))
        out = config.to_api(region, account)
        # With Publish, Lambda answers with version 1 but an unqualified FunctionArn.
        out["FunctionArn"] = function_arn(region, account, name)
        return out

    async def get_function(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        r = ref(params)
        config = service.resolve(r)
        function = service.function(r.name)
        out: dict[str, Any] = {
            "Configuration": config.to_api(region, account, r.qualifier),
            "Code": {"RepositoryType": "S3", "Location": code_urls.url(ctx.base_url, config.code_hash)},
        }
        if function.tags:
            out["Tags"] = dict(function.tags)
        concurrency = reserved(r.name)
        if concurrency is not None:
            out["Concurrency"] = {"ReservedConcurrentExecutions": concurrency}
        return out

    async def get_function_configuration(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        r = ref(params)
        return service.resolve(r).to_api(region, account, r.qualifier)

    async def list_functions(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        which = params.get("FunctionVersion")
        if which is not None and which != "ALL":
            raise validation_error(violation("functionVersion", "Member must satisfy enum value set: [ALL]", which))
        listing = service.list(params.get("Marker"), params.get("MaxItems"), all_versions=which == "ALL")
        return {"Functions": [c.to_api(region, account, c.version if which else None) for c in listing.configs],
                "NextMarker": listing.next_marker}

    async def update_function_code(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        config = await service.update_code(commands.update_function_code(params, ref(params, False).name))
        return config.to_api(region, account)

    async def update_function_configuration(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        config = await service.update_configuration(
            commands.update_function_configuration(params, ref(params, False).name))
        return config.to_api(region, account)

    async def delete_function(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        r = ref(params)
        await service.delete(r.name, r.qualifier)
        return {}

    return {
        "CreateFunction": create_function,
        "GetFunction": get_function,
        "GetFunctionConfiguration": get_function_configuration,
        "ListFunctions": list_functions,
        "UpdateFunctionCode": update_function_code,
        "UpdateFunctionConfiguration": update_function_configuration,
        "DeleteFunction": delete_function,
    }
