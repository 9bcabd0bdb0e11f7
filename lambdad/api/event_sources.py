"""Handlers for event source mappings: Create/Get/Update/Delete/ListEventSourceMappings. The rules live in
``esm/mappings.py``; the pollers in ``esm/pollers.py``."""

from __future__ import annotations

from typing import Any, Mapping

from lambdad.api.http import Handler, RequestContext
from lambdad.esm.mappings import EventSourceMappings

__all__ = ["event_source_handlers"]


def event_source_handlers(mappings: EventSourceMappings) -> dict[str, Handler]:
    async def create(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        return await mappings.create(params)

    async def get(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        await mappings.known(params["UUID"])
        return mappings.get(params["UUID"])

    async def update(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        await mappings.known(params["UUID"])
        return await mappings.update(params["UUID"], params)

    async def delete(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        await mappings.known(params["UUID"])
        return await mappings.delete(params["UUID"])

    async def list_(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        return mappings.list(params.get("FunctionName"), params.get("EventSourceArn"), params.get("Marker"),
                             params.get("MaxItems"))

    return {
        "CreateEventSourceMapping": create,
        "GetEventSourceMapping": get,
        "UpdateEventSourceMapping": update,
        "DeleteEventSourceMapping": delete,
        "ListEventSourceMappings": list_,
    }
