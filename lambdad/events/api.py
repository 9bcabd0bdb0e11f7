"""The EventBridge API (``events``, JSON 1.1, ``X-Amz-Target: AWSEvents.<Operation>``) over ``EventBridge``.

Handlers parse and check a request, ask the authorizer, call the service and shape its answer. Authorization for a
caller other than root: action ``events:<Operation>`` on the ARN AWS's service authorization reference gives it —
a rule's (``arn:aws:events:<region>:<account>:rule/[<bus>/]<name>``) for the rule and target operations, a bus's
(``...:event-bus/<name>``) for the bus operations and PutEvents, ``rule/[<bus>/]*`` / ``event-bus/*`` for the
lists, ``*`` for TestEventPattern. PutEvents is checked for each entry on its bus, with the condition keys
``events:source`` and ``events:detail-type`` of the entry: a refusal of any refuses the request.

Paging (ListRules, ListTargetsByRule, ListEventBuses, ListRuleNamesByTarget): ``Limit`` up to 100 a page
(100 when absent), ``NextToken`` an opaque token naming the last item of the page before.

Parameters lambdad does not apply are refused rather than ignored: tags (PutRule, CreateEventBus), a bus's KMS key,
dead-letter and log configuration, partner event sources, and PutEvents' global ``EndpointId``.
"""

from __future__ import annotations

import base64
import time
from typing import Any, Mapping, Sequence

from lambdad.api.json_api import JsonContext, JsonError, JsonHandler
from lambdad.esm.filtering import InvalidFilterCriteria, compile_event_pattern, parse_event_json
from lambdad.events.model import Rule, validation
from lambdad.events.service import MAX_ENTRIES_BYTES, EventBridge, entry_size, invalid_pattern
from lambdad.iam.authorize import Authorizer

__all__ = ["events_handlers"]

_PAGE = 100
_RULE_FIELDS = ("EventPattern", "ScheduleExpression", "State", "Description", "RoleArn")
_TEST_EVENT_FIELDS = ("id", "account", "source", "time", "region", "resources", "detail-type")


def _token(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode()


def _after(params: Mapping[str, Any]) -> str | None:
    token = params.get("NextToken")
    if not token:
        return None
    try:
        return base64.urlsafe_b64decode(str(token).encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise validation("The NextToken provided is invalid.") from None


def _page(items: Sequence[tuple[str, Any]], params: Mapping[str, Any]) -> tuple[list[Any], str | None]:
    """A page of (key, item) pairs sorted by key, after the token's key."""
    limit = int(params.get("Limit") or _PAGE)
    if not 1 <= limit <= 100:
        raise validation(f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: "
                         "Member must have value between 1 and 100")
    after = _after(params)
    rest = [(k, v) for k, v in items if after is None or k > after]
    page = rest[:limit]
    return [v for _, v in page], (_token(page[-1][0]) if len(rest) > limit else None)


def _refuse(params: Mapping[str, Any], *names: str) -> None:
    for name in names:
        if params.get(name):
            raise validation(f"lambdad does not support {name} here yet.")


def events_handlers(events: EventBridge, authorizer: Authorizer) -> dict[str, JsonHandler]:
    names = events.names

    def allow(ctx: JsonContext, operation: str, resource: str) -> None:
        authorizer.check(ctx.principal, f"events:{operation}", resource, source_ip=ctx.source_ip)

    def rule_arn(bus: str, name: str) -> str:
        return names.rule_arn(bus, name)

    def described(rule: Rule) -> dict[str, Any]:
        out: dict[str, Any] = {"Name": rule.name, "Arn": rule_arn(rule.bus, rule.name), "EventBusName": rule.bus}
        out.update({k: rule.config[k] for k in _RULE_FIELDS if rule.config.get(k) is not None})
        out.setdefault("State", "ENABLED")
        return out

    # -- buses ----------------------------------------------------------------------------------------------

    async def create_event_bus(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        name = str(params["Name"])
        allow(ctx, "CreateEventBus", names.bus_arn(name))
        _refuse(params, "EventSourceName", "KmsKeyIdentifier", "DeadLetterConfig", "LogConfig", "Tags")
        config = {"Description": params["Description"]} if params.get("Description") else {}
        arn = await events.create_bus(name, config)
        return {"EventBusArn": arn, **config}

    async def delete_event_bus(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        name = str(params["Name"])
        allow(ctx, "DeleteEventBus", names.bus_arn(name))
        await events.known(name)
        await events.delete_bus(name)
        return {}

    async def describe_event_bus(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        name = names.bus_name(params.get("Name"))
        allow(ctx, "DescribeEventBus", names.bus_arn(name))
        await events.known(name)
        bus = events.bus(name)
        out: dict[str, Any] = {"Name": bus.name, "Arn": names.bus_arn(bus.name), "CreationTime": bus.created,
                               "LastModifiedTime": bus.created}
        if bus.config.get("Description"):
            out["Description"] = bus.config["Description"]
        return out

    async def list_event_buses(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        allow(ctx, "ListEventBuses", names.bus_arn("*"))
        prefix = str(params.get("NamePrefix") or "")
        items = [(b.name, {"Name": b.name, "Arn": names.bus_arn(b.name), "CreationTime": b.created,
                           "LastModifiedTime": b.created,
                           **({"Description": b.config["Description"]} if b.config.get("Description") else {})})
                 for b in events.buses() if b.name.startswith(prefix)]
        page, token = _page(items, params)
        return {"EventBuses": page, "NextToken": token}

    # -- rules ----------------------------------------------------------------------------------------------

    async def put_rule(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        bus, name = names.bus_name(params.get("EventBusName")), str(params["Name"])
        allow(ctx, "PutRule", rule_arn(bus, name))
        _refuse(params, "Tags")
        config = {k: params[k] for k in _RULE_FIELDS if params.get(k) is not None}
        config.setdefault("State", "ENABLED")
        await events.known(bus)
        return {"RuleArn": await events.put_rule(bus, name, config)}

    async def describe_rule(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        bus, name = names.bus_name(params.get("EventBusName")), str(params["Name"])
        allow(ctx, "DescribeRule", rule_arn(bus, name))
        await events.known(bus, name)
        return {**described(events.rule(bus, name)), "CreatedBy": names.account}

    async def list_rules(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        bus = names.bus_name(params.get("EventBusName"))
        allow(ctx, "ListRules", rule_arn(bus, "*"))
        await events.known(bus)
        prefix = str(params.get("NamePrefix") or "")
        page, token = _page([(r.name, described(r)) for r in events.rules(bus) if r.name.startswith(prefix)], params)
        return {"Rules": page, "NextToken": token}

    def set_state(operation: str, state: str) -> JsonHandler:
        async def handler(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
            bus, name = names.bus_name(params.get("EventBusName")), str(params["Name"])
            allow(ctx, operation, rule_arn(bus, name))
            await events.known(bus, name)
            await events.set_state(bus, name, state)
            return {}
        return handler

    async def delete_rule(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        bus, name = names.bus_name(params.get("EventBusName")), str(params["Name"])
        allow(ctx, "DeleteRule", rule_arn(bus, name))
        await events.known(bus, name)
        await events.delete_rule(bus, name)
        return {}

    # -- targets --------------------------------------------------------------------------------------------

    async def put_targets(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        bus, name = names.bus_name(params.get("EventBusName")), str(params["Rule"])
        allow(ctx, "PutTargets", rule_arn(bus, name))
        targets = list(params["Targets"])
        if len(targets) > 10:
            raise validation("1 validation error detected: Value at 'targets' failed to satisfy constraint: Member "
                             "must have length less than or equal to 10")
        await events.known(bus, name)
        failed = await events.put_targets(bus, name, targets)
        return {"FailedEntryCount": len(failed), "FailedEntries": failed}

    async def remove_targets(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        bus, name = names.bus_name(params.get("EventBusName")), str(params["Rule"])
        allow(ctx, "RemoveTargets", rule_arn(bus, name))
        await events.known(bus, name)
        failed = await events.remove_targets(bus, name, [str(i) for i in params["Ids"]])
        return {"FailedEntryCount": len(failed), "FailedEntries": failed}

    async def list_targets_by_rule(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        bus, name = names.bus_name(params.get("EventBusName")), str(params["Rule"])
        allow(ctx, "ListTargetsByRule", rule_arn(bus, name))
        await events.known(bus, name)
        rule = events.rule(bus, name)
        page, token = _page(sorted((t.id, t.config) for t in rule.targets.values()), params)
        return {"Targets": page, "NextToken": token}

    async def list_rule_names_by_target(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        bus = names.bus_name(params.get("EventBusName"))
        allow(ctx, "ListRuleNamesByTarget", rule_arn(bus, "*"))
        await events.known(bus)
        found = events.rule_names_by_target(bus, str(params["TargetArn"]))
        page, token = _page([(n, n) for n in found], params)
        return {"RuleNames": page, "NextToken": token}

    # -- events ---------------------------------------------------------------------------------------------

    async def put_events(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        _refuse(params, "EndpointId")
        entries = list(params["Entries"])
        if len(entries) > 10:
            raise validation("1 validation error detected: Value at 'entries' failed to satisfy constraint: Member "
                             "must have length less than or equal to 10")
        if sum(entry_size(e) for e in entries) > MAX_ENTRIES_BYTES:
            raise validation("Total size of the entries in the request is over the limit.")
        buses = [names.bus_name(e.get("EventBusName")) for e in entries]
        for entry, bus in zip(entries, buses):  # each entry, with EventBridge's condition keys of PutEvents
            authorizer.check(ctx.principal, "events:PutEvents", names.bus_arn(bus), source_ip=ctx.source_ip,
                             context={k: str(entry[f]) for k, f in (("events:source", "Source"),
                                                                    ("events:detail-type", "DetailType"))
                                      if entry.get(f)})
        for bus in sorted(set(buses)):
            await events.known(bus)
        received = time.time()
        results: list[dict[str, Any]] = []
        for entry, bus in zip(entries, buses):
            problem = events.entry_problem(entry)
            if problem is None:
                try:
                    events.bus(bus)
                except JsonError as exc:
                    problem = (exc.name, exc.message)
            if problem is not None:
                results.append({"ErrorCode": problem[0], "ErrorMessage": problem[1]})
                continue
            event = events.build_event(entry, received)
            await events.route(bus, event, received, str(entry["Detail"]))
            results.append({"EventId": event["id"]})
        return {"FailedEntryCount": sum(1 for r in results if "ErrorCode" in r), "Entries": results}

    async def test_event_pattern(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        allow(ctx, "TestEventPattern", "*")
        try:
            matcher = compile_event_pattern(str(params["EventPattern"]))
        except InvalidFilterCriteria as exc:
            raise invalid_pattern(exc) from None
        try:
            event = parse_event_json(str(params["Event"]))
        except ValueError:
            raise validation("Parameter Event is not valid.") from None
        if not isinstance(event, dict):
            raise validation("Parameter Event is not valid.")
        missing = [k for k in _TEST_EVENT_FIELDS if k not in event]
        if missing:
            raise validation(f"Parameter Event is not valid: it has no {', '.join(missing)}.")
        return {"Result": matcher(event)}

    return {
        "CreateEventBus": create_event_bus, "DeleteEventBus": delete_event_bus,
        "DescribeEventBus": describe_event_bus, "ListEventBuses": list_event_buses,
        "PutRule": put_rule, "DescribeRule": describe_rule, "ListRules": list_rules,
        "EnableRule": set_state("EnableRule", "ENABLED"), "DisableRule": set_state("DisableRule", "DISABLED"),
        "DeleteRule": delete_rule, "PutTargets": put_targets, "RemoveTargets": remove_targets,
        "ListTargetsByRule": list_targets_by_rule, "ListRuleNamesByTarget": list_rule_names_by_target,
        "PutEvents": put_events, "TestEventPattern": test_event_pattern,
    }
