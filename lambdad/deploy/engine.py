"""A deploy, end to end: read and expand the template, plan against the recorded stack, show the change set,
apply it, record the stack; roll back on failure.

The steps, in order:
1. Claim the stack: PutStack at the generation read, status ``*_IN_PROGRESS`` (another deploy of the same stack
   now fails at its own claim, instead of both writing; one that finds the stack in progress refuses, unless it
   has made no progress for ``TAKEOVER_SECONDS``: then the deploy that left it died, and this one takes over).
2. Apply, dependencies first: Add creates; Modify updates in place (a function's code is uploaded only when its
   CodeSha256 differs); Replace creates the new resource and leaves the old one for step 4. Each step's undo is
   kept, and what is made so far is recorded after each step (``_checkpoint``), so a deploy that dies half-way
   leaves a stack the next one plans against.
3. On any failure: the undos run newest first (made resources deleted, changed ones put back as they were, code
   included), and the stack record is put back as it was (a stack that did not exist before is forgotten).
4. Clean up: replaced resources and removed ones (unless ``DeletionPolicy: Retain``) are deleted, dependents
   first. A failure here is reported; the resource stays recorded, so the next deploy tries again.
5. Record: resources with their physical ids, resolved properties and attributes; outputs; the template hash;
   status ``CREATE_COMPLETE`` / ``UPDATE_COMPLETE``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from botocore.exceptions import BotoCoreError, ClientError

from lambdad.deploy.connection import Connection
from lambdad.deploy.intrinsics import ResolveError
from lambdad.deploy.planner import KINDS, Plan, PlanError, Recorded, make_plan
from lambdad.deploy.resources import Context, Made, Undo
from lambdad.deploy.template import Builder, Template, TemplateError, expand, load_template

__all__ = ["DeployError", "Deployment", "Stack", "delete_stack", "error_text", "read_stack"]


TAKEOVER_SECONDS = 120.0  # a stack in progress with no progress for this long was left by a deploy that died


class DeployError(Exception):
    pass


@dataclass
class Stack:
    name: str
    generation: int
    status: str
    template_hash: str
    document: dict[str, Any]
    updated: float = 0.0

    @property
    def resources(self) -> dict[str, Recorded]:
        return {k: Recorded.from_json(k, v) for k, v in (self.document.get("Resources") or {}).items()}

    @property
    def order(self) -> list[str]:
        return list(self.document.get("Order") or self.resources)


def read_stack(connection: Connection, name: str) -> Stack | None:
    try:
        out = connection.stacks.get_stack(StackName=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise
    return Stack(out["StackName"], int(out["Generation"]), out["Status"], out["TemplateHash"],
                 json.loads(out["Document"]), float(out.get("LastUpdatedTime") or 0))


def error_text(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code')}: {error.get('Message')}"
    return str(exc) or type(exc).__name__


@dataclass
class Deployment:
    connection: Connection
    stack_name: str
    template_path: Path
    overrides: Mapping[str, str] = field(default_factory=dict)
    refuse_unsupported: bool = False
    build: Builder | None = None
    log: Callable[[str], None] = print

    template: Template | None = None
    plan: Plan | None = None
    previous: Stack | None = None

    def prepare(self) -> Plan:
        """Read, expand and plan (nothing is changed); the change set is ``plan.changes``."""
        try:
            self.template = load_template(self.template_path)
            iam = self.connection.client("iam")
            account = str(self.connection.client("sts").get_caller_identity()["Account"])
            self.previous = read_stack(self.connection, self.stack_name)
            if self.previous is not None and self.previous.status.endswith("_IN_PROGRESS"):
                idle = time.time() - self.previous.updated
                if idle < TAKEOVER_SECONDS:
                    raise DeployError(f"stack {self.stack_name} is {self.previous.status}: another deploy is "
                                      f"applying it (last progress {idle:.0f} s ago); retry when it is done")
                self.log(f"stack {self.stack_name} was left {self.previous.status} by a deploy that did not finish "
                         f"({idle:.0f} s ago): planning against what it recorded")
            region = self.connection.region
            stack_id = (self.previous.document.get("StackId") if self.previous else None) or \
                f"arn:aws:cloudformation:{region}:{account}:stack/{self.stack_name}/lambdad"
            pseudo: dict[str, Any] = {"AWS::Region": region, "AWS::AccountId": account, "AWS::StackName": self.stack_name,
                      "AWS::StackId": stack_id, "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com",
                      "AWS::NotificationARNs": []}
            sam_parameters = {**_defaults(self.template.raw), **self.overrides, **pseudo}
            expanded = expand(self.template, sam_parameters, iam, region, self.build)
            recorded = self.previous.resources if self.previous else {}
            self.plan = make_plan(expanded, self.overrides, pseudo, recorded, self._import, self.refuse_unsupported)
            self._account = account
        except (TemplateError, PlanError, ResolveError) as exc:
            raise DeployError(str(exc)) from None
        except (ClientError, BotoCoreError) as exc:
            raise DeployError(f"lambdad at {self.connection.endpoint}: {error_text(exc)}") from None
        return self.plan

    def _import(self, export: str) -> str:
        for summary in self.connection.stacks.list_stacks().get("Stacks", []):
            if summary["StackName"] == self.stack_name:
                continue
            for output in json.loads(summary["Document"]).get("Outputs", {}).values():
                if output.get("ExportName") == export:
                    return str(output["Value"])
        raise ResolveError(f"Fn::ImportValue: no stack on this server exports {export}")

    def apply(self) -> dict[str, Any]:
        """Apply the prepared plan (steps 1-5); the outputs."""
        assert self.plan is not None and self.template is not None
        plan, previous = self.plan, self.previous
        recorded = previous.resources if previous else {}
        generation = self._claim()
        ctx = Context(self.connection, self.stack_name, self.connection.region, self._account,
                      self.template.packages, self.log)
        made: dict[str, Recorded] = {}
        undos: list[tuple[str, Undo]] = []
        replaced: list[Recorded] = []

        def lookup(logical: str, attr: str | None) -> Any:
            found = made.get(logical) or recorded.get(logical)
            if found is None:
                skipped = plan.skipped.get(logical)
                raise ResolveError(f"{logical} is skipped ({skipped[0]})" if skipped else f"{logical} is not made yet")
            if attr is None:
                return found.made.ref
            if attr not in found.made.attributes:
                raise ResolveError(f"Fn::GetAtt {logical}.{attr}: not an attribute lambdad knows for "
                                   f"{found.type_name}")
            return found.made.attributes[attr]

        resolver = plan.resolver(lookup, self._import)
        try:
            for logical_id in plan.order:
                resource = plan.resource(logical_id)
                kind_name = str(resource["Type"])
                kind = KINDS[kind_name]
                props = resolver.resolve(resource.get("Properties") or {})
                old = recorded.get(logical_id)
                policy = resource.get("DeletionPolicy")
                if old is not None and old.type_name == kind_name and old.properties == props:
                    made[logical_id] = old
                    continue
                if old is None or old.type_name != kind_name or kind.replaces(old.properties, props) or (
                        kind_name == "AWS::Lambda::Version" and old.properties != props):
                    self.log(f"  creating {logical_id} [{kind_name}]")
                    new = kind.create(ctx, logical_id, props)
                    undos.append((logical_id, _deleter(kind, ctx, new, props)))
                    if old is not None:
                        replaced.append(old)
                else:
                    self.log(f"  updating {logical_id} [{kind_name}]")
                    new, undo = kind.update(ctx, logical_id, old.made, old.properties, props)
                    undos.append((logical_id, undo))
                made[logical_id] = Recorded(logical_id, kind_name, new, props, policy)
                generation = self._checkpoint(generation, recorded, made, replaced)
            outputs = self._outputs(resolver)
        except Exception as exc:
            self.log(f"deploy failed: {error_text(exc)}")
            self._roll_back(undos, generation)
            raise DeployError(f"stack {self.stack_name}: deploy failed and was rolled back: "
                              f"{error_text(exc)}") from exc
        failures = self._clean_up(ctx, replaced + [recorded[k] for k in reversed(previous.order if previous else [])
                                                   if k in plan.removed])
        for left in failures:
            made.setdefault(f"{left.logical_id}", left)
        document = {"StackId": plan.pseudo["AWS::StackId"], "Template": str(self.template_path.resolve()),
                    "Order": plan.order + [k for k in made if k not in plan.order],
                    "Resources": {k: v.to_json() for k, v in made.items()},
                    "Skipped": {k: {"Type": t, "Reason": r} for k, (t, r) in plan.skipped.items()},
                    "Parameters": _shown_parameters(plan), "Outputs": outputs,
                    "CodeDirs": {k: str(v) for k, v in self.template.code_dirs.items()}}
        first = previous is None or previous.status == "CREATE_IN_PROGRESS"
        status = "CREATE_COMPLETE" if first else "UPDATE_COMPLETE"
        self.connection.stacks.put_stack(StackName=self.stack_name, ExpectedGeneration=generation, Status=status,
                                         TemplateHash=self.template.hash, Document=json.dumps(document))
        return outputs

    def _claim(self) -> int:
        previous = self.previous
        status = "UPDATE_IN_PROGRESS" if previous else "CREATE_IN_PROGRESS"
        if previous is not None and previous.status == "CREATE_IN_PROGRESS":
            status = previous.status  # taking over a first deploy that died
        try:
            out = self.connection.stacks.put_stack(
                StackName=self.stack_name, ExpectedGeneration=previous.generation if previous else 0, Status=status,
                TemplateHash=previous.template_hash if previous else "",
                Document=json.dumps(previous.document if previous else {}))
        except ClientError as exc:
            raise DeployError(f"stack {self.stack_name}: {error_text(exc)}") from None
        return int(out["Generation"])

    def _checkpoint(self, generation: int, recorded: Mapping[str, Recorded], made: Mapping[str, Recorded],
                    replaced: list[Recorded]) -> int:
        """Record what is made so far (step 2's record, status still ``*_IN_PROGRESS``), so that a deploy that
        dies half-way (killed, the machine gone) leaves a stack the next deploy plans against instead of resources
        nothing knows of: replaced resources stay recorded under ``ID~replaced`` until deleted."""
        previous = self.previous
        resources = {k: v.to_json() for k, v in recorded.items()}
        for old in replaced:
            resources[f"{old.logical_id}~replaced"] = resources.pop(old.logical_id, old.to_json())
        resources.update({k: v.to_json() for k, v in made.items()})
        order = [k for k in (previous.order if previous else []) if k in resources]
        order = [k for k in resources if k.endswith("~replaced")] + order + [k for k in made if k not in order]
        document = dict(previous.document if previous else {}, Resources=resources, Order=order)
        out = self.connection.stacks.put_stack(
            StackName=self.stack_name, ExpectedGeneration=generation,
            Status=previous.status if previous and previous.status.endswith("_IN_PROGRESS") else (
                "UPDATE_IN_PROGRESS" if previous else "CREATE_IN_PROGRESS"),
            TemplateHash=previous.template_hash if previous else "", Document=json.dumps(document))
        return int(out["Generation"])

    def _roll_back(self, undos: list[tuple[str, Undo]], generation: int) -> None:
        for logical_id, undo in reversed(undos):
            try:
                undo()
                self.log(f"  rolled back {logical_id}")
            except Exception as exc:  # keep undoing the others
                self.log(f"  could not roll back {logical_id}: {error_text(exc)}")
        stacks = self.connection.stacks
        if self.previous is None:
            stacks.delete_stack(StackName=self.stack_name, ExpectedGeneration=generation)
        else:
            stacks.put_stack(StackName=self.stack_name, ExpectedGeneration=generation,
                             Status="UPDATE_ROLLBACK_COMPLETE", TemplateHash=self.previous.template_hash,
                             Document=json.dumps(self.previous.document))

    def _clean_up(self, ctx: Context, gone: list[Recorded]) -> list[Recorded]:
        failed = []
        for old in gone:
            if old.deletion_policy == "Retain":
                self.log(f"  kept {old.logical_id} ({old.made.physical_id}): DeletionPolicy Retain")
                continue
            try:
                self.log(f"  deleting {old.logical_id} [{old.type_name}]")
                KINDS[old.type_name].delete(ctx, old.made, old.properties)
            except Exception as exc:
                self.log(f"  could not delete {old.logical_id}: {error_text(exc)} (kept in the stack; the next "
                         "deploy tries again)")
                failed.append(old)
        return failed

    def _outputs(self, resolver: Any) -> dict[str, Any]:
        assert self.plan is not None
        outputs: dict[str, Any] = {}
        for name, spec in (self.plan.template.get("Outputs") or {}).items():
            condition = spec.get("Condition")
            if condition is not None and not resolver.condition(str(condition)):
                continue
            try:
                value = resolver.resolve(spec.get("Value"))
            except ResolveError as exc:
                value = f"(unavailable: {exc})"
            entry = {"Value": value if isinstance(value, str) else json.dumps(value),
                     "Description": spec.get("Description", "")}
            export = (spec.get("Export") or {}).get("Name")
            if export is not None:
                entry["ExportName"] = str(resolver.resolve(export))
            outputs[name] = entry
        return outputs


def _deleter(kind: Any, ctx: Context, made: Made, props: dict[str, Any]) -> Undo:
    return lambda: kind.delete(ctx, made, props)


def _defaults(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v["Default"] for k, v in (raw.get("Parameters") or {}).items() if isinstance(v, dict) and "Default" in v}


def _shown_parameters(plan: Plan) -> dict[str, Any]:
    declared = plan.template.get("Parameters") or {}
    return {k: ("****" if (declared.get(k) or {}).get("NoEcho") in (True, "true") else v)
            for k, v in plan.parameters.items()}


def delete_stack(connection: Connection, name: str, log: Callable[[str], None] = print) -> None:
    """Delete every resource of stack ``name``, dependents first (DeletionPolicy Retain ones are kept), then
    forget the stack. A resource that cannot be deleted stops it: the stack keeps what is left."""
    stack = read_stack(connection, name)
    if stack is None:
        raise DeployError(f"no stack {name}")
    account = str(connection.client("sts").get_caller_identity()["Account"])
    ctx = Context(connection, name, connection.region, account, {}, log)
    resources = stack.resources
    left = dict(resources)
    try:
        for logical_id in reversed(stack.order):
            old = resources.get(logical_id)
            if old is None:
                continue
            if old.deletion_policy == "Retain":
                log(f"  kept {logical_id} ({old.made.physical_id}): DeletionPolicy Retain")
            else:
                log(f"  deleting {logical_id} [{old.type_name}]")
                KINDS[old.type_name].delete(ctx, old.made, old.properties)
            del left[logical_id]
    except Exception as exc:
        document = dict(stack.document, Resources={k: v.to_json() for k, v in left.items()})
        connection.stacks.put_stack(StackName=name, ExpectedGeneration=stack.generation, Status="DELETE_FAILED",
                                    TemplateHash=stack.template_hash, Document=json.dumps(document))
        raise DeployError(f"stack {name}: could not delete {logical_id}: {error_text(exc)}") from exc
    connection.stacks.delete_stack(StackName=name, ExpectedGeneration=stack.generation)
