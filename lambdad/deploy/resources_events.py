"""IAM roles, EventBridge rules and EventBridge Scheduler schedules (resources.py says what a ``Kind`` does).

Roles go through the server's IAM API (the roles SAM makes for each function, with their managed and inline
policies). Rules and schedules go through the EventBridge (``events``) and Scheduler (``scheduler``) APIs, written
against AWS's shapes of those APIs: a server that does not serve them answers their operations with an error that
fails the deploy, and the deploy rolls back.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from lambdad.deploy.resources import Context, Made, Undo, physical_name, shaped

__all__ = ["EVENT_KINDS"]


_AWS_MANAGED = "arn:aws:iam::aws:policy/"


def _gone(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in ("NoSuchEntity", "ResourceNotFoundException")


def _json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


class RoleKind:
    type_name = "AWS::IAM::Role"

    def create(self, ctx: Context, logical_id: str, props: dict[str, Any]) -> Made:
        iam = ctx.connection.client("iam")
        name = str(props.get("RoleName") or physical_name(ctx.stack, logical_id))
        params = {**props, "RoleName": name, "AssumeRolePolicyDocument": _json(props["AssumeRolePolicyDocument"])}
        out = iam.create_role(**shaped("iam", "CreateRole", params))["Role"]
        made = Made(name, name, {"Arn": out["Arn"], "RoleId": out["RoleId"]})
        try:
            self._policies(ctx, name, {}, props)
        except Exception:
            self.delete(ctx, made, props)
            raise
        return made

    def update(self, ctx: Context, logical_id: str, made: Made, old: dict[str, Any], new: dict[str, Any]
               ) -> tuple[Made, Undo]:
        iam = ctx.connection.client("iam")

        def put(props: dict[str, Any], before: dict[str, Any]) -> None:
            iam.update_assume_role_policy(RoleName=made.physical_id,
                                          PolicyDocument=_json(props["AssumeRolePolicyDocument"]))
            self._policies(ctx, made.physical_id, before, props)
        put(new, old)
        return made, lambda: put(old, new)

    def replaces(self, old: dict[str, Any], new: dict[str, Any]) -> bool:
        return any(old.get(k) != new.get(k) for k in ("RoleName", "Path"))

    def delete(self, ctx: Context, made: Made, props: dict[str, Any]) -> None:
        iam = ctx.connection.client("iam")
        try:
            self._policies(ctx, made.physical_id, props, {})
            iam.delete_role(RoleName=made.physical_id)
        except ClientError as exc:
            if not _gone(exc):
                raise

    @staticmethod
    def _policies(ctx: Context, name: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        iam = ctx.connection.client("iam")
        old_managed, new_managed = set(old.get("ManagedPolicyArns") or []), set(new.get("ManagedPolicyArns") or [])
        for arn in sorted(new_managed - old_managed):
            try:
                iam.attach_role_policy(RoleName=name, PolicyArn=arn)
            except ClientError as exc:
                if not (_gone(exc) and arn.startswith(_AWS_MANAGED)):
                    raise
                # SAM attaches AWS's policies for event sources (AWSLambdaSQSQueueExecutionRole...) that this
                # server's IAM may not carry: said, not silently dropped
                ctx.log(f"  warning: role {name}: AWS managed policy {arn} is not one this lambdad knows; not "
                        "attached (the role lacks its permissions)")
        for arn in sorted(old_managed - new_managed):
            try:
                iam.detach_role_policy(RoleName=name, PolicyArn=arn)
            except ClientError as exc:
                if not _gone(exc):
                    raise
        old_inline = {p["PolicyName"]: p["PolicyDocument"] for p in old.get("Policies") or []}
        new_inline = {p["PolicyName"]: p["PolicyDocument"] for p in new.get("Policies") or []}
        for policy, document in new_inline.items():
            if old_inline.get(policy) != document:
                iam.put_role_policy(RoleName=name, PolicyName=policy, PolicyDocument=_json(document))
        for policy in old_inline.keys() - new_inline.keys():
            try:
                iam.delete_role_policy(RoleName=name, PolicyName=policy)
            except ClientError as exc:
                if not _gone(exc):
                    raise


class RuleKind:
    type_name = "AWS::Events::Rule"

    def create(self, ctx: Context, logical_id: str, props: dict[str, Any]) -> Made:
        name = str(props.get("Name") or physical_name(ctx.stack, logical_id))
        arn = self._put(ctx, name, props, [])
        return Made(name, name, {"Arn": arn})

    def update(self, ctx: Context, logical_id: str, made: Made, old: dict[str, Any], new: dict[str, Any]
               ) -> tuple[Made, Undo]:
        arn = self._put(ctx, made.physical_id, new, old.get("Targets") or [])

        def undo() -> None:
            self._put(ctx, made.physical_id, old, new.get("Targets") or [])
        return Made(made.physical_id, made.physical_id, {"Arn": arn}), undo

    def replaces(self, old: dict[str, Any], new: dict[str, Any]) -> bool:
        return any(old.get(k) != new.get(k) for k in ("Name", "EventBusName"))

    def delete(self, ctx: Context, made: Made, props: dict[str, Any]) -> None:
        events = ctx.connection.client("events")
        bus = {"EventBusName": props["EventBusName"]} if props.get("EventBusName") else {}
        try:
            ids = [str(t["Id"]) for t in props.get("Targets") or []]
            if ids:
                events.remove_targets(Rule=made.physical_id, Ids=ids, **bus)
            events.delete_rule(Name=made.physical_id, **bus)
        except ClientError as exc:
            if not _gone(exc):
                raise

    @staticmethod
    def _put(ctx: Context, name: str, props: dict[str, Any], old_targets: list[dict[str, Any]]) -> str:
        events = ctx.connection.client("events")
        params = dict(props, Name=name)
        if "EventPattern" in params:
            params["EventPattern"] = _json(params["EventPattern"])
        arn = str(events.put_rule(**shaped("events", "PutRule", params))["RuleArn"])
        bus = {"EventBusName": props["EventBusName"]} if props.get("EventBusName") else {}
        targets = props.get("Targets") or []
        gone = [str(t["Id"]) for t in old_targets if t["Id"] not in {t2["Id"] for t2 in targets}]
        if gone:
            events.remove_targets(Rule=name, Ids=gone, **bus)
        if targets:
            out = events.put_targets(**shaped("events", "PutTargets", {"Rule": name, "Targets": targets, **bus}))
            if out.get("FailedEntryCount"):
                raise RuntimeError(f"rule {name}: targets refused: {out.get('FailedEntries')}")
        return arn


class ScheduleKind:
    type_name = "AWS::Scheduler::Schedule"

    def create(self, ctx: Context, logical_id: str, props: dict[str, Any]) -> Made:
        name = str(props.get("Name") or physical_name(ctx.stack, logical_id))
        out = ctx.connection.client("scheduler").create_schedule(
            **shaped("scheduler", "CreateSchedule", {**props, "Name": name}))
        return Made(name, name, {"Arn": out["ScheduleArn"]})

    def update(self, ctx: Context, logical_id: str, made: Made, old: dict[str, Any], new: dict[str, Any]
               ) -> tuple[Made, Undo]:
        scheduler = ctx.connection.client("scheduler")

        def put(props: dict[str, Any]) -> None:
            scheduler.update_schedule(**shaped("scheduler", "UpdateSchedule", {**props, "Name": made.physical_id}))
        put(new)
        return made, lambda: put(old)

    def replaces(self, old: dict[str, Any], new: dict[str, Any]) -> bool:
        return any(old.get(k) != new.get(k) for k in ("Name", "GroupName"))

    def delete(self, ctx: Context, made: Made, props: dict[str, Any]) -> None:
        try:
            ctx.connection.client("scheduler").delete_schedule(
                **shaped("scheduler", "DeleteSchedule", {**props, "Name": made.physical_id}))
        except ClientError as exc:
            if not _gone(exc):
                raise


EVENT_KINDS = (RoleKind(), RuleKind(), ScheduleKind())
