"""Handlers for concurrency: PutFunctionConcurrency, GetFunctionConcurrency, DeleteFunctionConcurrency (reserved
concurrency), GetAccountSettings, and Put/Get/Delete/ListProvisionedConcurrencyConfig(s). The rules live in
``functions.concurrency`` and ``invoke.provisioned``; the pool enforces them."""

from __future__ import annotations

from typing import Any, Mapping

from lambdad.api.http import Handler, RequestContext
from lambdad.arn import parse_function_name
from lambdad.functions.concurrency import ConcurrencyService
from lambdad.invoke.provisioned import ProvisionedConcurrency

__all__ = ["concurrency_handlers"]


def concurrency_handlers(service: ConcurrencyService, provisioned: ProvisionedConcurrency, region: str,
                         account: str) -> dict[str, Handler]:
    def name_of(params: Mapping[str, Any]) -> str:
        return parse_function_name(params["FunctionName"], region=region, account_id=account, allow_qualifier=False).name

    def qualified(params: Mapping[str, Any]) -> tuple[str, str]:
        ref = parse_function_name(params["FunctionName"], region=region, account_id=account,
                                  qualifier=params.get("Qualifier"))
        return ref.name, ref.qualifier or ""

    async def put_function_concurrency(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        reserved = await service.put(name_of(params), params["ReservedConcurrentExecutions"])
        return {"ReservedConcurrentExecutions": reserved}

    async def get_function_concurrency(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        reserved = service.get(name_of(params))
        return {} if reserved is None else {"ReservedConcurrentExecutions": reserved}

    async def delete_function_concurrency(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        await service.delete(name_of(params))
        return {}

    async def get_account_settings(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        return service.account_settings()

    async def put_provisioned_concurrency_config(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        name, qualifier = qualified(params)
        return await provisioned.put(name, qualifier, params["ProvisionedConcurrentExecutions"])

    async def get_provisioned_concurrency_config(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        return provisioned.get(*qualified(params))

    async def delete_provisioned_concurrency_config(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        await provisioned.delete(*qualified(params))
        return {}

    async def list_provisioned_concurrency_configs(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        listing = provisioned.list(name_of(params), params.get("Marker"), params.get("MaxItems"))
        return {"ProvisionedConcurrencyConfigs": listing.configs, "NextMarker": listing.next_marker}

    return {
        "PutProvisionedConcurrencyConfig": put_provisioned_concurrency_config,
        "GetProvisionedConcurrencyConfig": get_provisioned_concurrency_config,
        "DeleteProvisionedConcurrencyConfig": delete_provisioned_concurrency_config,
        "ListProvisionedConcurrencyConfigs": list_provisioned_concurrency_configs,
        "PutFunctionConcurrency": put_function_concurrency,
        "GetFunctionConcurrency": get_function_concurrency,
        "DeleteFunctionConcurrency": delete_function_concurrency,
        "GetAccountSettings": get_account_settings,
    }
