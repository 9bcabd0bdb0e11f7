"""The stacks API: where ``lambdad deploy`` records what it made of a template, served beside Lambda's.

Why on the server and not in tags: a stack is a name, a template hash, the resources' physical ids and the
properties they were given, outputs and exports. Only some of its resources can be tagged (functions and event
source mappings; not layer versions, permissions, URLs or event invoke configs), tags are limited to 256
characters, and outputs belong to no resource. Recorded in the store, one row per stack, every client of the
server (any machine, any node of a cluster) sees the same stacks, and a put names the generation it read, so two
deploys of one stack cannot overwrite each other's record.

The API is a JSON 1.1 service of lambdad's own, ``lambdad-stacks`` (its botocore model is
deploy/models/lambdad-stacks/2026-12-05/service-2.json, which the client loads too), signed with SigV4 like every
other service here: PutStack, GetStack, ListStacks, DeleteStack. Access is checked with CloudFormation's action
names on the stack's ARN (``cloudformation:CreateStack`` / ``UpdateStack`` / ``DescribeStacks`` / ``ListStacks``
/ ``DeleteStack``, ``arn:aws:cloudformation:REGION:ACCOUNT:stack/NAME/ID``), so IAM policies written for
CloudFormation stacks read the same way. The server keeps the record; the resources themselves are made by the
client through the Lambda, IAM, EventBridge and Scheduler APIs, each checked as such.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any, Mapping

from botocore.model import ServiceModel

from lambdad.api.json_api import JsonContext, JsonError, JsonHandler
from lambdad.iam.authorize import Authorizer
from lambdad.store.sql_stacks import StackRecord, StackTables

__all__ = ["MODELS", "SERVICE", "stacks_handlers", "stacks_model"]

SERVICE = "lambdad-stacks"
MODELS = Path(__file__).parent / "models"  # a botocore data path: models/<service>/<api version>/service-2.json


def stacks_model() -> ServiceModel:
    path = MODELS / SERVICE / "2026-12-05" / "service-2.json"
    return ServiceModel(json.loads(path.read_text()), service_name=SERVICE)


def _shown(record: StackRecord) -> dict[str, Any]:
    return {"StackName": record.name, "StackId": record.stack_id, "Generation": record.generation,
            "TemplateHash": record.template_hash, "Status": record.status, "Document": record.document,
            "CreationTime": record.created, "LastUpdatedTime": record.updated}


def stacks_handlers(store: StackTables, authorizer: Authorizer, region: str, account: str) -> dict[str, JsonHandler]:
    def new_id(name: str) -> str:
        return f"arn:aws:cloudformation:{region}:{account}:stack/{name}/{uuid.uuid4()}"

    def allow(ctx: JsonContext, action: str, resource: str) -> None:
        authorizer.check(ctx.principal, f"cloudformation:{action}", resource, source_ip=ctx.source_ip)

    def missing(name: str) -> JsonError:
        return JsonError("ResourceNotFoundException", f"Stack with id {name} does not exist", 404)

    async def put(ctx: JsonContext, p: dict[str, Any]) -> Mapping[str, Any]:
        name = str(p["StackName"])
        try:
            json.loads(p["Document"])
        except ValueError:
            raise JsonError("ValidationException", "Document must be a JSON text") from None
        found = await store.get_stack(name)
        stack_id = found.stack_id if found is not None else new_id(name)
        allow(ctx, "UpdateStack" if found is not None else "CreateStack", stack_id)
        now = time.time()
        record = StackRecord(name, stack_id, int(p["ExpectedGeneration"]) + 1, str(p["TemplateHash"]),
                             str(p["Status"]), str(p["Document"]), found.created if found else now, now)
        if not await store.put_stack(record, int(p["ExpectedGeneration"])):
            raise JsonError("ResourceConflictException",
                            f"Stack {name} was changed by another deploy (it is not at generation "
                            f"{p['ExpectedGeneration']}); read it again and retry", 409)
        return _shown(record)

    async def get(ctx: JsonContext, p: dict[str, Any]) -> Mapping[str, Any]:
        name = str(p["StackName"])
        found = await store.get_stack(name)
        allow(ctx, "DescribeStacks", found.stack_id if found else f"arn:aws:cloudformation:{region}:{account}:"
                                                                   f"stack/{name}/*")
        if found is None:
            raise missing(name)
        return _shown(found)

    async def listing(ctx: JsonContext, p: dict[str, Any]) -> Mapping[str, Any]:
        allow(ctx, "ListStacks", "*")
        return {"Stacks": [_shown(r) for r in await store.list_stacks()]}

    async def delete(ctx: JsonContext, p: dict[str, Any]) -> Mapping[str, Any]:
        name = str(p["StackName"])
        found = await store.get_stack(name)
        if found is None:
            allow(ctx, "DeleteStack", f"arn:aws:cloudformation:{region}:{account}:stack/{name}/*")
            raise missing(name)
        allow(ctx, "DeleteStack", found.stack_id)
        expected = p.get("ExpectedGeneration")
        if not await store.delete_stack(name, None if expected is None else int(expected)):
            raise JsonError("ResourceConflictException", f"Stack {name} was changed by another deploy", 409)
        return {}

    return {"PutStack": put, "GetStack": get, "ListStacks": listing, "DeleteStack": delete}
