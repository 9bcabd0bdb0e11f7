"""EventBridge's buses, rules and targets, and the routing of events to them.

Contract:
- Buses, rules and targets live in memory on every node and in the store (``EventsStore``); a write is stored
  before the call returns, and tells the other nodes of a cluster (``events`` change notices), which read everything
  again (``reload``).
- A rule has an ``EventPattern`` (compiled once by ``esm/filtering.py``'s ``compile_event_pattern``), a
  ``ScheduleExpression`` (default bus only, as AWS requires), or both. PutRule replaces the rule: what it omits is
  gone, as on AWS; its targets stay.
- ``put_events`` builds each entry's event (EventBridge's shape: version "0", id, detail-type, source, account,
  time, region, resources, detail), matches it against the enabled rules of its bus that have a pattern, and hands
  each matching rule's targets to ``Deliveries`` — which has written the event to the async queue (or refused it,
  counted and logged) before ``put_events`` returns. The ``default`` bus always exists (recorded at the first
  start, for its creation time) and cannot be deleted.
- Scheduled rules fire through ``schedules/timer.py`` (durable, cluster-safe, one node fires each occurrence): an
  enabled scheduled rule has a timer (kind ``rule``, key ``<bus>/<name>``) in UTC, put when the rule is made, its
  expression changes or it is enabled, deleted when it is disabled or deleted, by the node that made the change;
  ``reconcile_timers`` (at start) mends any difference a crash left. A ``rate`` fires first one period after
  that, then every period; a ``cron`` at its times. Each fire delivers the "Scheduled Event" (detail-type
  "Scheduled Event", source "aws.events", detail {}, resources [the rule's ARN], time the occurrence's) to the
  rule's targets.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
import uuid
from typing import Any, Mapping, Sequence

from lambdad.api.json_api import JsonError
from lambdad.esm.filtering import InvalidFilterCriteria, compile_event_pattern, parse_event_json
from lambdad.events.delivery import Deliveries
from lambdad.events.model import (DEFAULT_BUS, MAX_TARGETS, RULE_NAME, Bus, Names, Rule, Target, not_found,
                                  pattern_error, validation)
from lambdad.events.store import EventsStore
from lambdad.events.transform import PREDEFINED, check_path
from lambdad.schedules.expressions import Rate, Schedule, ScheduleError, parse
from lambdad.schedules.timer import Fire, Timer

__all__ = ["EventBridge", "event_time", "check_schedule"]

log = logging.getLogger(__name__)

TIMER_KIND = "rule"  # schedules/timer.py's kind of scheduled rules' timers
_MISS_RELOAD = 0.2  # seconds between reads of the store for a bus or rule this node does not know
MAX_ENTRIES_BYTES = 256 * 1024  # PutEvents: the entries of one request together
_TIME_BYTES = 14  # what an entry's Time counts for in its size


def event_time(when: float) -> str:
    return dt.datetime.fromtimestamp(when, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def invalid_pattern(exc: InvalidFilterCriteria) -> JsonError:
    return JsonError("InvalidEventPatternException", f"Event pattern is not valid. Reason: {exc.detail}")


def check_schedule(expression: str) -> Schedule:
    """A ScheduleExpression a rule takes (``rate(...)`` with a singular unit for 1, or AWS's six-field
    ``cron(...)``; not Scheduler's ``at(...)``), else ValidationException as EventBridge words it."""
    try:
        schedule = parse(expression, rule_units=True)
    except ScheduleError:
        raise validation("Parameter ScheduleExpression is not valid.") from None
    if schedule.kind == "at":
        raise validation("Parameter ScheduleExpression is not valid.")
    return schedule


def _first_start(schedule: Schedule, now: float) -> dt.datetime | None:
    """Where a rule's occurrences start: a rate's first fire is one period after the rule is made (or enabled);
    a cron's are its times."""
    if isinstance(schedule, Rate):
        return dt.datetime.fromtimestamp(now + schedule.seconds, dt.timezone.utc)
    return None


def entry_size(entry: Mapping[str, Any]) -> int:
    """An entry's size as AWS counts it ("Calculating PutEvents event entry size"): Time (14 bytes when given),
    Source, DetailType and Detail in UTF-8, and each Resources item."""
    size = _TIME_BYTES if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail"):
        if entry.get(key):
            size += len(str(entry[key]).encode())
    for resource in entry.get("Resources") or ():
        size += len(str(resource).encode())
    return size


class EventBridge:
    def __init__(self, store: EventsStore, deliveries: Deliveries, names: Names) -> None:
        self._store = store
        self._deliveries = deliveries
        self.names = names
        self._buses: dict[str, Bus] = {DEFAULT_BUS: Bus(DEFAULT_BUS, time.time())}
        self._rules: dict[tuple[str, str], Rule] = {}
        self._lock = asyncio.Lock()
        self._timer: Timer | None = None
        self._missed_at = -_MISS_RELOAD

    # -- loading ------------------------------------------------------------------------------------------------

    async def load(self) -> None:
        """Read every bus, rule and target from the store. Under the write lock: a reload that read the store
        before a write of this node committed must not replace the memory that write has just updated."""
        async with self._lock:
            await self._load()

    async def _load(self) -> None:
        stored = await self._store.load_event_buses()
        if not any(name == DEFAULT_BUS for name, _, _ in stored):  # its creation time, kept from the first start
            await self._store.add_event_bus(DEFAULT_BUS, "{}", time.time())
            stored = await self._store.load_event_buses()
        buses: dict[str, Bus] = {}
        for name, config, created in stored:
            buses[name] = Bus(name, created, json.loads(config))
        rules: dict[tuple[str, str], Rule] = {}
        for bus, name, config, created in await self._store.load_event_rules():
            rule = Rule(bus, name, json.loads(config), created)
            pattern = rule.config.get("EventPattern")
            if pattern:
                try:
                    rule.matcher = compile_event_pattern(str(pattern))
                except InvalidFilterCriteria as exc:
                    log.warning("EventBridge rule %s: its pattern cannot be applied (%s); it matches nothing",
                                self.names.rule_arn(bus, name), exc.detail)
            rules[(bus, name)] = rule
        for bus, rule_name, target_id, config in await self._store.load_event_targets():
            found = rules.get((bus, rule_name))
            if found is not None:
                found.targets[target_id] = Target(target_id, json.loads(config))
        self._buses, self._rules = buses, rules

    async def known(self, bus: str, rule: str | None = None) -> None:
        """Read everything again when ``bus`` (or its ``rule``) is not known here: it may have been made a moment
        ago on another node of a cluster, whose change notice is still on its way (a read after a write is
        consistent on any node). At most once per ``_MISS_RELOAD`` seconds, so asking again and again for what
        does not exist does not read the store each time."""
        if bus in self._buses and (rule is None or (bus, rule) in self._rules):
            return
        now = time.monotonic()
        if now - self._missed_at < _MISS_RELOAD:
            return
        self._missed_at = now
        await self.load()

    async def reload(self, _bus: str) -> None:
        """Another node changed something of bus ``_bus`` (cluster change notices): read everything again."""
        await self.load()

    # -- schedules ----------------------------------------------------------------------------------------------

    async def attach_timer(self, timer: Timer) -> None:
        """Fire scheduled rules with ``timer`` (kind ``rule``, key ``<bus>/<rule>``), and bring its timers in line
        with the rules."""
        self._timer = timer
        timer.register(TIMER_KIND, self._on_fire)
        await self.reconcile_timers()

    async def reconcile_timers(self) -> None:
        """A timer for each enabled scheduled rule, with its expression, and none for anything else: mends what a
        crash between a rule's write and its timer's left (at start; otherwise the node that changes a rule puts
        or deletes its timer). The rules are read from the store just before, not taken from memory, so a rule
        another node made a moment ago keeps its timer. A timer that is already right is left alone: its next
        fire is not moved."""
        if self._timer is None:
            return
        wanted: dict[str, Rule] = {}
        for bus, name, config, created in await self._store.load_event_rules():
            rule = Rule(bus, name, json.loads(config), created)
            if rule.schedule and rule.enabled:
                wanted[f"{bus}/{name}"] = rule
        for key in await self._timer.keys(TIMER_KIND):
            if key not in wanted:
                await self._timer.delete(TIMER_KIND, key)
        for key, rule in wanted.items():
            state = await self._timer.get(TIMER_KIND, key)
            if state is None or state.expression != rule.schedule:
                await self._set_timer(rule)

    async def _set_timer(self, rule: Rule) -> None:
        if self._timer is None:
            return
        key = f"{rule.bus}/{rule.name}"
        if not rule.schedule or not rule.enabled:
            await self._timer.delete(TIMER_KIND, key)
            return
        schedule = check_schedule(rule.schedule)
        await self._timer.put(TIMER_KIND, key, rule.schedule, "UTC", start=_first_start(schedule, time.time()))

    async def _on_fire(self, fire: Fire) -> None:
        bus, _, name = fire.key.rpartition("/")
        if fire.missed:
            log.warning("EventBridge rule %s: %d scheduled events were missed while no node could fire them; "
                        "this one is late", self.names.rule_arn(bus, name), fire.missed)
        await self.fire(bus, name, fire.scheduled.timestamp())

    # -- buses --------------------------------------------------------------------------------------------------

    def bus(self, name: str) -> Bus:
        found = self._buses.get(name)
        if found is None:
            raise not_found(f"Event bus {name} does not exist.")
        return found

    async def create_bus(self, name: str, config: dict[str, Any]) -> str:
        if "/" in name or not name or len(name) > 256:
            raise validation(f"Event bus name {name} is not valid: custom event bus names are 1 to 256 of "
                             "[.-_A-Za-z0-9] (names with '/' belong to partner event sources).")
        if not name.replace(".", "").replace("-", "").replace("_", "").isalnum() or not name.isascii():
            raise pattern_error("name", name, "[/\\.\\-_A-Za-z0-9]+")
        async with self._lock:
            if name in self._buses:
                raise JsonError("ResourceAlreadyExistsException", f"Event bus {name} already exists.")
            bus = Bus(name, time.time(), config)
            await self._store.put_event_bus(name, bus.to_json(), bus.created)
            self._buses[name] = bus
        return self.names.bus_arn(name)

    async def delete_bus(self, name: str) -> None:
        if name == DEFAULT_BUS:
            raise validation("Cannot delete event bus default.")
        async with self._lock:
            if name not in self._buses:
                return  # as AWS: deleting a bus that is not there succeeds
            await self._store.delete_event_bus(name)
            self._buses.pop(name, None)
            for key in [k for k in self._rules if k[0] == name]:
                del self._rules[key]

    def buses(self) -> list[Bus]:
        return sorted(self._buses.values(), key=lambda b: b.name)

    # -- rules --------------------------------------------------------------------------------------------------

    def rule(self, bus: str, name: str) -> Rule:
        self.bus(bus)
        found = self._rules.get((bus, name))
        if found is None:
            raise not_found(f"Rule {name} does not exist on EventBus {bus}.")
        return found

    def rules(self, bus: str) -> list[Rule]:
        self.bus(bus)
        return sorted((r for (b, _), r in self._rules.items() if b == bus), key=lambda r: r.name)

    async def put_rule(self, bus: str, name: str, config: dict[str, Any]) -> str:
        if not RULE_NAME.fullmatch(name):
            raise pattern_error("name", name, "[\\.\\-_A-Za-z0-9]+")
        pattern, schedule = config.get("EventPattern"), config.get("ScheduleExpression")
        if not pattern and not schedule:
            raise validation("Parameter(s) EventPattern or ScheduleExpression must be specified.")
        matcher = None
        if pattern:
            try:
                matcher = compile_event_pattern(str(pattern))
            except InvalidFilterCriteria as exc:
                raise invalid_pattern(exc) from None
        if schedule:
            if bus != DEFAULT_BUS:
                raise validation("ScheduleExpression is supported only on the default event bus.")
            check_schedule(str(schedule))
        async with self._lock:
            self.bus(bus)
            current = self._rules.get((bus, name))
            rule = Rule(bus, name, config, current.created if current else time.time(),
                        dict(current.targets) if current else {}, matcher)
            await self._store.put_event_rule(bus, name, rule.to_json(), rule.created)
            self._rules[(bus, name)] = rule
        if (schedule, rule.enabled) != ((current.schedule, current.enabled) if current else (None, False)):
            await self._set_timer(rule)
        return self.names.rule_arn(bus, name)

    async def set_state(self, bus: str, name: str, state: str) -> None:
        async with self._lock:
            rule = self.rule(bus, name)
            config = {**rule.config, "State": state}
            was = rule.enabled
            await self._store.put_event_rule(bus, name, json.dumps(config, sort_keys=True), rule.created)
            rule.config = config
        if rule.schedule and rule.enabled != was:
            await self._set_timer(rule)

    async def delete_rule(self, bus: str, name: str) -> None:
        async with self._lock:
            self.bus(bus)
            rule = self._rules.get((bus, name))
            if rule is None:
                return  # as AWS: deleting a rule that is not there succeeds
            if rule.targets:
                raise validation("Rule can't be deleted since it has targets.")
            await self._store.delete_event_rule(bus, name)
            del self._rules[(bus, name)]
        if rule.schedule and self._timer is not None:
            await self._timer.delete(TIMER_KIND, f"{bus}/{name}")

    # -- targets ------------------------------------------------------------------------------------------------

    async def put_targets(self, bus: str, name: str, targets: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
        """PutTargets: adds or replaces each target; returns the FailedEntries."""
        failed: list[dict[str, str]] = []
        good: list[Target] = []
        for target in targets:
            self._check_target(target)
            problem = self._target_problem(target)
            if problem is not None:
                failed.append({"TargetId": str(target["Id"]), "ErrorCode": problem[0], "ErrorMessage": problem[1]})
            else:
                good.append(Target(str(target["Id"]), dict(target)))
        async with self._lock:
            rule = self.rule(bus, name)
            ids = set(rule.targets) | {t.id for t in good}
            if len(ids) > MAX_TARGETS:
                raise JsonError("LimitExceededException", f"The requested resource exceeds the maximum number "
                                f"allowed: a rule has at most {MAX_TARGETS} targets.")
            if good:
                await self._store.put_event_targets(bus, name, [(t.id, t.to_json()) for t in good])
            for t in good:
                rule.targets[t.id] = t
        return failed

    @staticmethod
    def _check_target(target: Mapping[str, Any]) -> None:
        """What AWS refuses the whole request for."""
        given = [k for k in ("Input", "InputPath", "InputTransformer") if target.get(k) is not None]
        if len(given) > 1:
            raise validation("Only one of Input, InputPath, or InputTransformer must be provided.")
        if target.get("Input") is not None:
            try:
                json.loads(str(target["Input"]))
            except ValueError:
                raise validation(f"Input for target {target['Id']} is not valid JSON text.") from None
        path = target.get("InputPath")
        if path is not None and not check_path(str(path)):
            raise validation(f"InputPath for target {target['Id']} is invalid.")
        transformer = target.get("InputTransformer")
        if transformer is not None:
            paths = transformer.get("InputPathsMap") or {}
            if len(paths) > 100:
                raise validation("InputPathsMap has more than 100 entries.")
            for key, value in paths.items():
                if key in PREDEFINED or key.startswith("aws."):
                    raise validation(f"InputTransformer for target {target['Id']} uses the reserved key {key} in "
                                     "InputPathsMap.")
                if not check_path(str(value)):
                    raise validation(f"{value} is an invalid JSON path in InputPathsMap for target "
                                     f"{target['Id']}.")

    def _target_problem(self, target: Mapping[str, Any]) -> tuple[str, str] | None:
        """Why one entry is refused (its FailedEntries item), or None."""
        arn = str(target.get("Arn", ""))
        parts = arn.split(":", 6)
        if len(parts) < 7 or parts[0] != "arn" or parts[2] != "lambda" or parts[5] != "function":
            return ("ValidationException", f"lambdad delivers to Lambda function targets only: {arn} is not a "
                    "function ARN.")
        if parts[3] != self.names.region or parts[4] != self.names.account:
            return ("ValidationException", f"The function {arn} is not in this region and account.")
        dead_letter = (target.get("DeadLetterConfig") or {}).get("Arn")
        if dead_letter and not str(dead_letter).startswith("arn:aws:sqs:"):
            return ("ValidationException", "DeadLetterConfig.Arn must be an Amazon SQS queue ARN.")
        return None

    async def remove_targets(self, bus: str, name: str, ids: Sequence[str]) -> list[dict[str, str]]:
        async with self._lock:
            rule = self.rule(bus, name)
            present = [i for i in ids if i in rule.targets]
            if present:
                await self._store.delete_event_targets(bus, name, present)
            for i in present:
                rule.targets.pop(i, None)
        return []  # AWS does not fail an id the rule does not have

    def rule_names_by_target(self, bus: str, arn: str) -> list[str]:
        return [r.name for r in self.rules(bus) if any(t.arn == arn for t in r.targets.values())]

    # -- events -------------------------------------------------------------------------------------------------

    def entry_problem(self, entry: Mapping[str, Any]) -> tuple[str, str] | None:
        """Why PutEvents refuses one entry (ErrorCode, ErrorMessage), or None."""
        for key in ("Source", "DetailType", "Detail"):
            if not entry.get(key):
                return ("InvalidArgument", f"Parameter {key} is not valid. Reason: {key} is a required argument.")
        try:
            detail = json.loads(str(entry["Detail"]))
        except ValueError:
            detail = None
        if not isinstance(detail, dict):
            return ("MalformedDetail", "Detail is malformed.")
        if str(entry["Source"]).startswith("aws."):
            return ("NotAuthorizedForSourceException", "Not authorized for the source.")
        return None

    def build_event(self, entry: Mapping[str, Any], received: float) -> dict[str, Any]:
        when: Any = entry.get("Time")
        if when is None:
            stamp = received
        elif isinstance(when, (int, float)):
            stamp = float(when)
        else:
            try:
                stamp = dt.datetime.fromisoformat(str(when).replace("Z", "+00:00")).timestamp()
            except ValueError:
                stamp = received
        return {"version": "0", "id": str(uuid.uuid4()), "detail-type": str(entry["DetailType"]),
                "source": str(entry["Source"]), "account": self.names.account, "time": event_time(stamp),
                "region": self.names.region, "resources": [str(r) for r in entry.get("Resources") or ()],
                "detail": json.loads(str(entry["Detail"]))}

    async def route(self, bus: str, event: dict[str, Any], received: float, detail_text: str | None = None,
                    hops: int = 0) -> int:
        """Deliver ``event`` to the targets of every enabled rule of ``bus`` whose pattern it matches; returns how
        many rules matched. Patterns see numbers by their JSON text: the detail as it was sent (``detail_text``)
        when given."""
        view = parse_event_json(json.dumps(event))
        if detail_text is not None:
            view["detail"] = parse_event_json(detail_text)
        matched = 0
        for rule in self.rules(bus):
            if rule.matcher is None or not rule.enabled or not rule.matcher(view):
                continue
            matched += 1
            await self._deliveries.deliver(self.names.rule_arn(bus, rule.name), rule, event, received, hops)
        if matched:
            self._deliveries.matched(bus)
        return matched

    async def put_local(self, bus_arn: str, entry: dict[str, Any], hops: int = 0) -> bool:
        """PutEvents of one entry on ``bus_arn`` from within the server (a Lambda destination naming a bus):
        False when the bus is not this server's (another region or account: sent through botocore instead).
        Raises when the entry cannot be put (the caller keeps it and tries again later). ``hops``: the events of a
        chain of destinations before this one, carried on to the invocations it makes (loop detection)."""
        parts = bus_arn.split(":", 5)
        if len(parts) != 6 or (parts[3], parts[4]) != (self.names.region, self.names.account):
            return False
        bus = self.names.bus_name(bus_arn)
        await self.known(bus)
        self.bus(bus)
        problem = self.entry_problem(entry)
        if problem is not None:
            raise JsonError(problem[0], problem[1])
        received = time.time()
        await self.route(bus, self.build_event(entry, received), received, str(entry["Detail"]), hops)
        return True

    # -- scheduled events ---------------------------------------------------------------------------------------

    def scheduled(self) -> list[Rule]:
        """The enabled rules with a ScheduleExpression (all on the default bus)."""
        return [r for r in self._rules.values() if r.schedule and r.enabled]

    async def fire(self, bus: str, name: str, when: float) -> None:
        """One firing of scheduled rule ``name``: its "Scheduled Event" to each of its targets."""
        rule = self._rules.get((bus, name))
        if rule is None or not rule.enabled or not rule.schedule:
            return
        arn = self.names.rule_arn(bus, name)
        event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
                 "account": self.names.account, "time": event_time(when), "region": self.names.region,
                 "resources": [arn], "detail": {}}
        await self._deliveries.deliver(arn, rule, event, time.time())

