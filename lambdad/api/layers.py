"""Handlers for layers: PublishLayerVersion, GetLayerVersion, GetLayerVersionByArn, ListLayers,
ListLayerVersions, DeleteLayerVersion, AddLayerVersionPermission, RemoveLayerVersionPermission and
GetLayerVersionPolicy. Each checks what the model's patterns and enums say (as Lambda words it), calls the layer
service, renders. ``LayerName`` may be a name or a layer ARN; Content.Location is a signed download URL."""

from __future__ import annotations

import json
from typing import Any, Mapping

import botocore.session

from lambdad.errors import violation
from lambdad.api import commands
from lambdad.api.patterns import pattern_violations, raise_violations
from lambdad.api.code_urls import CodeUrlSigner
from lambdad.api.http import Handler, RequestContext

from lambdad.functions.layers import LayerListing, LayerService, layer_arn

__all__ = ["layer_handlers"]

_MODEL = botocore.session.get_session().get_service_model("lambda")
_RUNTIMES = tuple(_MODEL.shape_for("Runtime").enum)
_ARCHITECTURES = tuple(_MODEL.shape_for("Architecture").enum)


def _enum_errors(values: list[str] | None, allowed: tuple[str, ...], path: str, single: bool = False) -> list[str]:
    if not values or all(v in allowed for v in values):
        return []
    enum = f"Member must satisfy enum value set: [{', '.join(allowed)}]"
    if single:
        return [violation(path, enum, values[0])]
    return [violation(path, f"Member must satisfy constraint: [{enum}]", f"[{', '.join(values)}]")]


def layer_handlers(service: LayerService, code_urls: CodeUrlSigner) -> dict[str, Handler]:
    region, account = service.region, service.account_id

    def name_of(operation: str, params: Mapping[str, Any]) -> str:
        raise_violations(pattern_violations(operation, params, (("LayerName", "layerName"),)))
        name: str = params["LayerName"]
        return name.rsplit(":", 1)[1] if name.startswith("arn:") else name

    def listing(out_key: str, result: LayerListing, render: Any) -> dict[str, Any]:
        return {out_key: [render(r) for r in result.items], "NextMarker": result.next_marker}

    def filters(params: Mapping[str, Any]) -> tuple[str | None, str | None]:
        runtime, arch = params.get("CompatibleRuntime"), params.get("CompatibleArchitecture")
        raise_violations(_enum_errors([runtime] if runtime else None, _RUNTIMES, "compatibleRuntime", single=True)
               + _enum_errors([arch] if arch else None, _ARCHITECTURES, "compatibleArchitecture", single=True))
        return runtime, arch

    async def publish_layer_version(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        name = name_of("PublishLayerVersion", params)
        raise_violations(_enum_errors(params.get("CompatibleRuntimes"), _RUNTIMES, "compatibleRuntimes")
               + _enum_errors(params.get("CompatibleArchitectures"), _ARCHITECTURES, "compatibleArchitectures"))
        record = await service.publish(commands.publish_layer_version(params, name))
        return record.to_api(region, account, code_urls.url(ctx.base_url, record.code_hash))

    async def get_layer_version(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        record = service.get(name_of("GetLayerVersion", params), params["VersionNumber"])
        return record.to_api(region, account, code_urls.url(ctx.base_url, record.code_hash))

    async def get_layer_version_by_arn(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        raise_violations(pattern_violations("GetLayerVersionByArn", params, (("Arn", "arn"),)))
        record = service.get_by_arn(params["Arn"])
        return record.to_api(region, account, code_urls.url(ctx.base_url, record.code_hash))

    async def list_layers(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        runtime, arch = filters(params)
        result = service.list_layers(runtime, arch, params.get("Marker"), params.get("MaxItems"))
        return listing("Layers", result, lambda r: {
            "LayerName": r.name, "LayerArn": layer_arn(region, account, r.name),
            "LatestMatchingVersion": r.summary(region, account),
        })

    async def list_layer_versions(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        name = name_of("ListLayerVersions", params)
        runtime, arch = filters(params)
        result = service.list_versions(name, runtime, arch, params.get("Marker"), params.get("MaxItems"))
        return listing("LayerVersions", result, lambda r: r.summary(region, account))

    async def delete_layer_version(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        await service.delete(name_of("DeleteLayerVersion", params), params["VersionNumber"])
        return {}

    async def add_layer_version_permission(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        name = name_of("AddLayerVersionPermission", params)
        raise_violations(pattern_violations("AddLayerVersionPermission", params, (
            ("StatementId", "statementId"), ("Action", "action"), ("Principal", "principal"),
            ("OrganizationId", "organizationId"),
        )))
        statement, revision_id = await service.add_permission(
            commands.add_layer_permission(params, name, params["VersionNumber"]))
        return {"Statement": json.dumps(statement, separators=(",", ":")), "RevisionId": revision_id}

    async def remove_layer_version_permission(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        name = name_of("RemoveLayerVersionPermission", params)
        raise_violations(pattern_violations("RemoveLayerVersionPermission", params, (("StatementId", "statementId"),)))
        await service.remove_permission(name, params["VersionNumber"], params["StatementId"], params.get("RevisionId"))
        return {}

    async def get_layer_version_policy(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        policy, revision_id = service.policy(name_of("GetLayerVersionPolicy", params), params["VersionNumber"])
        return {"Policy": policy, "RevisionId": revision_id}

    return {
        "PublishLayerVersion": publish_layer_version,
        "GetLayerVersion": get_layer_version,
        "GetLayerVersionByArn": get_layer_version_by_arn,
        "ListLayers": list_layers,
        "ListLayerVersions": list_layer_versions,
        "DeleteLayerVersion": delete_layer_version,
        "AddLayerVersionPermission": add_layer_version_permission,
        "RemoveLayerVersionPermission": remove_layer_version_permission,
        "GetLayerVersionPolicy": get_layer_version_policy,
    }
