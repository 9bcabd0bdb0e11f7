"""How each resource type lambdad serves is made, changed and removed through the AWS APIs.

Every kind is a ``Kind``: ``create`` makes the resource from its resolved properties and returns a ``Made`` (its
physical id, its ``Ref`` value and its ``Fn::GetAtt`` attributes); ``update`` changes an existing one in place and
also returns how to undo that (the engine runs the undos, newest first, when a later step fails); ``replaces``
says which property changes need a new resource instead (made before the old one is removed, as CloudFormation
does); ``delete`` removes it. Parameters are shaped for the API by botocore's own model of the operation
(``shaped``): members the operation does not take are left out, and numbers and booleans written as strings (as
parameters give them) are converted, as CloudFormation converts them.

The kinds themselves are in resources_lambda.py (functions, versions, aliases, layers, permissions, event source
mappings, URLs, event invoke configs) and resources_events.py (IAM roles, EventBridge rules, Scheduler schedules).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

import botocore.session

from lambdad.deploy.code import Package
from lambdad.deploy.connection import Connection

__all__ = ["Context", "Kind", "Made", "Undo", "physical_name", "shaped", "SKIPPED_WITH_REASON"]

Undo = Callable[[], None]

# types SAM's transform makes for features lambdad gives in its own way: skipped, and said why
SKIPPED_WITH_REASON = {
    "AWS::CodeDeploy::Application": "DeploymentPreference: lambdad moves the alias to the new version in one step",
    "AWS::CodeDeploy::DeploymentGroup": "DeploymentPreference: lambdad moves the alias to the new version in one step",
}


@dataclass
class Context:
    connection: Connection
    stack: str
    region: str
    account: str
    packages: Mapping[str, Package]
    log: Callable[[str], None] = print


@dataclass
class Made:
    physical_id: str
    ref: Any
    attributes: dict[str, Any] = field(default_factory=dict)
    code_sha256: str | None = None


class Kind(Protocol):
    type_name: str

    def create(self, ctx: Context, logical_id: str, props: dict[str, Any]) -> Made: ...

    def update(self, ctx: Context, logical_id: str, made: Made, old: dict[str, Any], new: dict[str, Any]
               ) -> tuple[Made, Undo]: ...

    def replaces(self, old: dict[str, Any], new: dict[str, Any]) -> bool: ...

    def delete(self, ctx: Context, made: Made, props: dict[str, Any]) -> None: ...


def physical_name(stack: str, logical_id: str, limit: int = 64) -> str:
    """``STACK-LogicalId``, the name CloudFormation would start with; cut to ``limit`` with a hash to stay unique."""
    name = f"{stack}-{logical_id}"
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:limit - 9]}-{digest}"


def shaped(service: str, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` as ``operation``'s input: only its members, strings converted to the numbers and booleans its
    shape wants, and CloudFormation's Tags lists turned into maps where the API wants a map."""
    model = _models.get(service)
    if model is None:
        model = _models[service] = botocore.session.get_session().get_service_model(service)
    shape = model.operation_model(operation).input_shape
    return {k: _coerce(v, shape.members[k]) for k, v in params.items() if k in shape.members and v is not None}


_models: dict[str, Any] = {}


def _coerce(value: Any, shape: Any) -> Any:
    kind = shape.type_name
    if kind in ("integer", "long") and isinstance(value, str):
        return int(value)
    if kind in ("float", "double") and isinstance(value, str):
        return float(value)
    if kind == "boolean" and isinstance(value, str):
        return value.lower() == "true"
    if kind == "string" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if kind == "map" and isinstance(value, list):  # CloudFormation's [{Key, Value}] as the API's {key: value}
        return {str(item["Key"]): _coerce(item.get("Value", ""), shape.value) for item in value}
    if kind == "structure" and isinstance(value, dict):
        return {k: _coerce(v, shape.members[k]) for k, v in value.items() if k in shape.members}
    if kind == "list" and isinstance(value, list):
        return [_coerce(v, shape.member) for v in value]
    return value
