"""Handlers for asynchronous invocation settings: Put/Update/Get/Delete/ListFunctionEventInvokeConfig(s). The
rules live in ``invoke/event_config.py``; the async queues apply them."""

from __future__ import annotations

from typing import Any, Mapping

from lambdad.api.http import Handler, RequestContext
from lambdad.arn import parse_function_name
from lambdad.invoke.event_config import EventInvokeConfigs

__all__ = ["event_invoke_handlers"]


def event_invoke_handlers(configs: EventInvokeConfigs, region: str, account: str) -> dict[str, Handler]:
    def target(params: Mapping[str, Any]) -> tuple[str, str | None]:
        ref = parse_function_name(params["FunctionName"], region=region, account_id=account,
                                  qualifier=params.get("Qualifier"))
        return ref.name, ref.qualifier

    async def put(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        return await configs.put(*target(params), params)

    async def update(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        return await configs.update(*target(params), params)

    async def get(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        return configs.get(*target(params))

    async def delete(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        await configs.delete(*target(params))
        return {}

    async def list_(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        name = parse_function_name(params["FunctionName"], region=region, account_id=account,
                                   allow_qualifier=False).name
        return configs.list(name, params.get("Marker"), params.get("MaxItems"))

    return {
        "PutFunctionEventInvokeConfig": put,
        "UpdateFunctionEventInvokeConfig": update,
        "GetFunctionEventInvokeConfig": get,
        "DeleteFunctionEventInvokeConfig": delete,
        "ListFunctionEventInvokeConfigs": list_,
    }
