"""From an expanded template and the stack recorded before, the plan of a deploy: what each resource becomes,
in which order, and the change set shown before anything is applied.

1. Parameters take their overrides or defaults; Conditions are evaluated; a resource whose Condition is false is
   not part of the stack.
2. Each resource is of a kind lambdad deploys (resources.py), of a kind SAM makes for a feature lambdad gives its
   own way (CodeDeploy and its service role for DeploymentPreference: skipped, saying why), or unsupported (S3 buckets, DynamoDB tables,
   API Gateway...): listed as skipped, or the deploy refused with ``--refuse-unsupported``. A permission that
   lets a skipped resource invoke a function (SAM's for an Api event) is skipped with it; any other deployed
   resource that refers to a skipped one refuses the deploy before anything is applied: never half-applied.
3. Order: every resource after those it names (Ref, Fn::GetAtt, Fn::Sub, DependsOn); a cycle is refused.
4. Change set: each resource resolved with what is known before applying (the recorded attributes of resources
   that stay; ``PENDING`` for those still to be made): Add, Modify (properties or code differ), Replace (a
   property that cannot change in place differs), Remove (gone from the template, or its Condition now false).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from lambdad.deploy.intrinsics import PENDING, Resolver, ResolveError, parameter_values, references
from lambdad.deploy.resources import SKIPPED_WITH_REASON, Kind, Made
from lambdad.deploy.resources_events import EVENT_KINDS
from lambdad.deploy.resources_lambda import LAMBDA_KINDS

__all__ = ["Change", "Plan", "PlanError", "KINDS", "make_plan", "Recorded"]

KINDS: dict[str, Kind] = {k.type_name: k for k in (*LAMBDA_KINDS, *EVENT_KINDS)}


_UNSUPPORTED = "not a resource type lambdad serves"


class PlanError(Exception):
    pass


@dataclass
class Recorded:
    """A resource as the stack recorded it."""
    logical_id: str
    type_name: str
    made: Made
    properties: dict[str, Any]
    deletion_policy: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"Type": self.type_name, "PhysicalId": self.made.physical_id, "Ref": self.made.ref,
                "Attributes": self.made.attributes, "CodeSha256": self.made.code_sha256,
                "Properties": self.properties, "DeletionPolicy": self.deletion_policy}

    @classmethod
    def from_json(cls, logical_id: str, data: Mapping[str, Any]) -> "Recorded":
        made = Made(str(data["PhysicalId"]), data.get("Ref"), dict(data.get("Attributes") or {}),
                    data.get("CodeSha256"))
        return cls(logical_id, str(data["Type"]), made, dict(data.get("Properties") or {}), data.get("DeletionPolicy"))


@dataclass(frozen=True)
class Change:
    action: str  # Add | Modify | Replace | Remove
    logical_id: str
    type_name: str
    physical_id: str = ""
    details: tuple[str, ...] = ()

    def line(self) -> str:
        where = f" ({self.physical_id})" if self.physical_id else ""
        more = f": {', '.join(self.details)}" if self.details else ""
        return f"  {self.action:<8} {self.logical_id} [{self.type_name}]{where}{more}"


@dataclass
class Plan:
    template: dict[str, Any]
    parameters: dict[str, Any]
    pseudo: dict[str, Any]
    order: list[str]  # the resources deployed, dependencies first
    skipped: dict[str, tuple[str, str]]  # logical id -> (type, why)
    changes: list[Change] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # recorded resources no longer in the stack

    def resolver(self, lookup: Callable[[str, str | None], Any], imports: Callable[[str], str]) -> Resolver:
        t = self.template
        return Resolver(self.parameters, self.pseudo, t.get("Mappings") or {}, t.get("Conditions") or {}, lookup,
                        imports)

    def resource(self, logical_id: str) -> dict[str, Any]:
        return dict(self.template["Resources"][logical_id])


def make_plan(template: dict[str, Any], overrides: Mapping[str, str], pseudo: dict[str, Any],
              recorded: Mapping[str, Recorded], imports: Callable[[str], str], refuse_unsupported: bool) -> Plan:
    try:
        parameters = parameter_values(template.get("Parameters") or {}, overrides)
    except ResolveError as exc:
        raise PlanError(str(exc)) from None
    resources: dict[str, Any] = template["Resources"]
    plan = Plan(template, parameters, pseudo, [], {})
    conditions = plan.resolver(lambda logical, attr: _no_lookup(logical), imports)
    active: dict[str, dict[str, Any]] = {}
    for logical_id, resource in resources.items():
        condition = resource.get("Condition")
        try:
            if condition is not None and not conditions.condition(str(condition)):
                continue
        except ResolveError as exc:
            raise PlanError(f"resource {logical_id}: {exc}") from None
        kind = str(resource.get("Type"))
        if kind == "AWS::IAM::Role" and "codedeploy.amazonaws.com" in json.dumps(
                (resource.get("Properties") or {}).get("AssumeRolePolicyDocument")):
            plan.skipped[logical_id] = (kind, SKIPPED_WITH_REASON["AWS::CodeDeploy::Application"])
        elif kind in KINDS:
            active[logical_id] = resource
        elif kind in SKIPPED_WITH_REASON:
            plan.skipped[logical_id] = (kind, SKIPPED_WITH_REASON[kind])
        else:
            plan.skipped[logical_id] = (kind, _UNSUPPORTED)
    unsupported = {k: v for k, v in plan.skipped.items() if v[1] == _UNSUPPORTED}
    if unsupported and refuse_unsupported:
        listed = ", ".join(f"{k} ({t})" for k, (t, _) in sorted(unsupported.items()))
        raise PlanError(f"--refuse-unsupported: the template has resources lambdad does not serve: {listed}")
    for logical_id, resource in list(active.items()):  # a permission for a skipped resource goes with it
        glue = [n for n in sorted(references(resource.get("Properties") or {})) if n in plan.skipped]
        if resource.get("Type") == "AWS::Lambda::Permission" and glue:
            del active[logical_id]
            plan.skipped[logical_id] = ("AWS::Lambda::Permission", f"lets skipped {glue[0]} invoke the function")
    plan.order = _order(active, parameters, pseudo, plan.skipped)
    plan.removed = [k for k in recorded if k not in active]
    _changes(plan, recorded, imports)
    return plan


def _no_lookup(logical: str) -> Any:
    raise ResolveError(f"Conditions may not refer to resources ({logical})")


def _order(active: Mapping[str, dict[str, Any]], parameters: Mapping[str, Any], pseudo: Mapping[str, Any],
           skipped: Mapping[str, tuple[str, str]]) -> list[str]:
    needs: dict[str, set[str]] = {}
    for logical_id, resource in active.items():
        named = references(resource.get("Properties") or {})
        depends = resource.get("DependsOn") or []
        named |= set([depends] if isinstance(depends, str) else depends)
        for name in sorted(named):
            if name in skipped:
                if name in references(resource.get("Properties") or {}):
                    raise PlanError(f"resource {logical_id} refers to {name} ({skipped[name][0]}), which lambdad "
                                    "does not deploy: give its ARN or name as a parameter instead")
            elif name not in active and name not in parameters and name not in pseudo:
                raise PlanError(f"resource {logical_id} refers to {name}, which is not a resource or parameter of "
                                "the template")
        needs[logical_id] = {n for n in named if n in active}
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(node: str, path: tuple[str, ...]) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            raise PlanError(f"circular dependency between resources: {' -> '.join((*path, node))}")
        state[node] = 1
        for other in sorted(needs[node]):
            visit(other, (*path, node))
        state[node] = 2
        order.append(node)

    for node in active:
        visit(node, ())
    return order


def _changes(plan: Plan, recorded: Mapping[str, Recorded], imports: Callable[[str], str]) -> None:
    """The change set: each resource resolved with the attributes known before applying."""
    changing: set[str] = set()

    def lookup(logical: str, attr: str | None) -> Any:
        old = recorded.get(logical)
        if logical in changing or old is None:
            return f"{PENDING}{logical}.{attr or 'Ref'}}}}}"
        if attr is None:
            return old.made.ref
        if attr not in old.made.attributes:
            raise ResolveError(f"Fn::GetAtt {logical}.{attr}: not an attribute lambdad knows")
        return old.made.attributes[attr]

    resolver = plan.resolver(lookup, imports)
    for logical_id in plan.order:
        resource = plan.resource(logical_id)
        kind = str(resource["Type"])
        try:
            props = resolver.resolve(resource.get("Properties") or {})
        except ResolveError as exc:
            raise PlanError(f"resource {logical_id}: {exc}") from None
        old = recorded.get(logical_id)
        if old is None or old.type_name != kind:
            if old is not None:
                plan.changes.append(Change("Remove", logical_id, old.type_name, old.made.physical_id))
            plan.changes.append(Change("Add", logical_id, kind))
            changing.add(logical_id)
            continue
        differing = _differing(old.properties, props)
        if not differing:
            continue
        action = "Replace" if KINDS[kind].replaces(old.properties, props) or (
            kind == "AWS::Lambda::Version") else "Modify"
        if action == "Replace":
            changing.add(logical_id)  # a new physical id: who names it changes too
        plan.changes.append(Change(action, logical_id, kind, old.made.physical_id, tuple(differing)))
    for logical_id in plan.removed:
        old = recorded[logical_id]
        note = ("kept: DeletionPolicy Retain",) if old.deletion_policy == "Retain" else ()
        plan.changes.append(Change("Remove", logical_id, old.type_name, old.made.physical_id, note))


def _differing(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The properties that differ (a value still PENDING differs)."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if json.dumps(a, sort_keys=True) != json.dumps(b, sort_keys=True) or PENDING in json.dumps(b):
            out.append(key)
    return out
