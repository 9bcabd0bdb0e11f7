"""EventBridge's nouns as lambdad keeps them: buses, rules and their targets, their names and ARNs, and the errors
the service answers (``JsonError`` by the name botocore's ``events`` model gives each).

ARNs, as AWS writes them: a bus ``arn:aws:events:<region>:<account>:event-bus/<name>``; a rule of the default bus
``arn:aws:events:<region>:<account>:rule/<name>``, of another bus ``...:rule/<bus>/<name>``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from lambdad.api.json_api import JsonError

__all__ = ["DEFAULT_BUS", "Bus", "Rule", "Target", "Names", "validation", "not_found", "RULE_NAME", "BUS_NAME",
           "MAX_TARGETS"]

DEFAULT_BUS = "default"
MAX_TARGETS = 5  # targets per rule (EventBridge's quota)
RULE_NAME = re.compile(r"[\.\-_A-Za-z0-9]{1,64}")
BUS_NAME = re.compile(r"[/\.\-_A-Za-z0-9]{1,256}")
ENABLED_STATES = ("ENABLED", "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS")


def validation(message: str) -> JsonError:
    return JsonError("ValidationException", message)


def not_found(message: str) -> JsonError:
    return JsonError("ResourceNotFoundException", message)


def pattern_error(member: str, value: str, pattern: str) -> JsonError:
    return validation(f"1 validation error detected: Value '{value[:256]}' at '{member}' failed to satisfy "
                      f"constraint: Member must satisfy regular expression pattern: {pattern}")


@dataclass
class Bus:
    name: str
    created: float
    config: dict[str, Any] = field(default_factory=dict)  # Description, Tags, ...

    def to_json(self) -> str:
        return json.dumps(self.config, sort_keys=True)


@dataclass
class Target:
    id: str
    config: dict[str, Any]  # the Target as PutTargets took it (Id, Arn, Input, InputTransformer, ...)

    @property
    def arn(self) -> str:
        return str(self.config.get("Arn", ""))

    def to_json(self) -> str:
        return json.dumps(self.config, sort_keys=True)


@dataclass
class Rule:
    bus: str
    name: str
    config: dict[str, Any]  # EventPattern, ScheduleExpression, State, Description, RoleArn
    created: float
    targets: dict[str, Target] = field(default_factory=dict)
    matcher: Callable[[Mapping[str, Any]], bool] | None = field(default=None, repr=False)

    @property
    def enabled(self) -> bool:
        return self.config.get("State", "ENABLED") in ENABLED_STATES

    @property
    def schedule(self) -> str | None:
        value = self.config.get("ScheduleExpression")
        return str(value) if value else None

    def to_json(self) -> str:
        return json.dumps(self.config, sort_keys=True)


@dataclass(frozen=True)
class Names:
    """The region and account ARNs are made in."""

    region: str
    account: str

    def bus_arn(self, bus: str) -> str:
        return f"arn:aws:events:{self.region}:{self.account}:event-bus/{bus}"

    def rule_arn(self, bus: str, rule: str) -> str:
        middle = "" if bus == DEFAULT_BUS else f"{bus}/"
        return f"arn:aws:events:{self.region}:{self.account}:rule/{middle}{rule}"

    def bus_name(self, given: str | None) -> str:
        """An EventBusName parameter (a name or a bus ARN) as a name; ``default`` when absent."""
        if not given:
            return DEFAULT_BUS
        if given.startswith("arn:"):
            parts = given.split(":", 5)
            if len(parts) != 6 or parts[2] != "events" or not parts[5].startswith("event-bus/"):
                raise pattern_error("eventBusName", given, "(arn:aws[\\w-]*:events:[a-z]+-[a-z]+-[\\w-]+:[0-9]{12}:"
                                    "event-bus\\/)?[/\\.\\-_A-Za-z0-9]+")
            if parts[3] != self.region or parts[4] != self.account:
                raise not_found(f"Event bus {given} does not exist.")
            return parts[5][len("event-bus/"):]
        if not BUS_NAME.fullmatch(given):
            raise pattern_error("eventBusName", given, "[/\\.\\-_A-Za-z0-9]+")
        return given

    def rule_of_arn(self, arn: str) -> tuple[str, str] | None:
        """(bus, rule) of a rule ARN of this region and account; None when it is not one."""
        prefix = f"arn:aws:events:{self.region}:{self.account}:rule/"
        if not arn.startswith(prefix):
            return None
        rest = arn[len(prefix):]
        bus, _, name = rest.rpartition("/")
        return (bus or DEFAULT_BUS, name)
