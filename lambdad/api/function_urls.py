"""Handlers for function URLs: Create/Get/Update/Delete/ListFunctionUrlConfig(s). The rules live in
``urls/configs.py``; the URLs are served by ``urls/front.py``."""

from __future__ import annotations

from typing import Any, Mapping

from lambdad.api.http import Handler, RequestContext
from lambdad.arn import parse_function_name
from lambdad.urls.configs import FunctionUrls

__all__ = ["function_url_handlers"]


def function_url_handlers(urls: FunctionUrls, region: str, account: str) -> dict[str, Handler]:
    def target(params: Mapping[str, Any]) -> tuple[str, str | None]:
        ref = parse_function_name(params["FunctionName"], region=region, account_id=account,
                                  qualifier=params.get("Qualifier"))
        return ref.name, ref.qualifier

    async def create(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        return await urls.create(*target(params), params)

    async def update(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        return await urls.update(*target(params), params)

    async def get(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        return urls.get(*target(params))

    async def delete(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        await urls.delete(*target(params))
        return {}

    async def list_(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        name = parse_function_name(params["FunctionName"], region=region, account_id=account,
                                   allow_qualifier=False).name
        return urls.list(name, params.get("Marker"), params.get("MaxItems"))

    return {
        "CreateFunctionUrlConfig": create,
        "UpdateFunctionUrlConfig": update,
        "GetFunctionUrlConfig": get,
        "DeleteFunctionUrlConfig": delete,
        "ListFunctionUrlConfigs": list_,
    }
