"""Handlers for tags: TagResource, UntagResource, ListTags on a function ARN (``/2017-03-31/tags/{ARN}``).

Only unqualified function ARNs are taggable here: a version or alias ARN is refused as on Lambda, and the other
taggable resources of the model (code signing configs, event source mappings, capacity providers) do not exist
in lambdad, so their ARNs name nothing."""

from __future__ import annotations

import re
from typing import Any, Mapping

import botocore.session

from lambdad.api.http import Handler, RequestContext
from lambdad.arn import parse_function_arn
from lambdad.errors import (
    InvalidParameterValueException,
    ResourceNotFoundException,
    validation_error,
    violation,
)
from lambdad.functions.service import FunctionService

__all__ = ["tag_handlers"]

# The model's pattern is Java syntax, but uses nothing that Python reads differently.
_RESOURCE_PATTERN: str = (
    botocore.session.get_session().get_service_model("lambda").shape_for("TaggableResource").metadata["pattern"]
)
_RESOURCE = re.compile(_RESOURCE_PATTERN)


def tag_handlers(service: FunctionService) -> dict[str, Handler]:
    region, account = service.region, service.account_id

    def function_name(resource: str) -> str:
        ref = parse_function_arn(resource, region=region, account_id=account)
        if ref is None:
            if _RESOURCE.fullmatch(resource) is None:
                raise validation_error(violation(
                    "resource", f"Member must satisfy regular expression pattern: {_RESOURCE_PATTERN}", resource))
            raise ResourceNotFoundException(f"The resource you requested does not exist: {resource}")
        if ref.qualifier is not None:
            raise InvalidParameterValueException(
                "Tags on function aliases and versions are not supported. Please specify a function ARN."
            )
        service.function(ref.name)  # exists, or ResourceNotFoundException
        return ref.name

    async def tag_resource(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        name = function_name(params["Resource"])
        if not params["Tags"]:
            raise InvalidParameterValueException("An error occurred and the request cannot be processed.")
        await service.tag(name, params["Tags"])
        return {}

    async def untag_resource(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        await service.untag(function_name(params["Resource"]), list(params["TagKeys"]))
        return {}

    async def list_tags(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        return {"Tags": dict(service.function(function_name(params["Resource"])).tags)}

    return {
        "TagResource": tag_resource,
        "UntagResource": untag_resource,
        "ListTags": list_tags,
    }

