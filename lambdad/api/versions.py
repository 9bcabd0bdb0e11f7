"""Handlers for versions: PublishVersion and ListVersionsByFunction. (Publishing with CreateFunction or
UpdateFunctionCode, qualified reads and DeleteFunction of a version live with the functions API.)"""

from __future__ import annotations

from typing import Any, Mapping

from lambdad.api.http import Handler, RequestContext
from lambdad.arn import parse_function_name
from lambdad.functions.service import FunctionService

__all__ = ["version_handlers"]


def version_handlers(service: FunctionService) -> dict[str, Handler]:
    region, account = service.region, service.account_id

    def name_of(params: Mapping[str, Any]) -> str:
        return parse_function_name(params["FunctionName"], region=region, account_id=account, allow_qualifier=False).name

    async def publish_version(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        config = await service.publish(
            name_of(params),
            code_sha256=params.get("CodeSha256"),
            description=params.get("Description"),
            revision_id=params.get("RevisionId"),
        )
        return config.to_api(region, account)

    async def list_versions_by_function(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        listing = service.list_versions(name_of(params), params.get("Marker"), params.get("MaxItems"))
        return {"Versions": [c.to_api(region, account, c.version) for c in listing.configs],
                "NextMarker": listing.next_marker}

    return {
        "PublishVersion": publish_version,
        "ListVersionsByFunction": list_versions_by_function,
    }
