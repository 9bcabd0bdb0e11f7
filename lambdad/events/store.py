"""What EventBridge keeps in the metadata store (``store/sql_events.py`` implements it on SqlStore).

Every write names its bus, so a cluster's other nodes hear of it (``events`` change notices, by bus name) and read
the buses, rules and targets again.
"""

from __future__ import annotations

from typing import Protocol, Sequence

__all__ = ["EventsStore"]


class EventsStore(Protocol):
    async def load_event_buses(self) -> list[tuple[str, str, float]]:
        """(name, config JSON, created) of every bus (``default`` once it has been recorded)."""

    async def add_event_bus(self, name: str, config: str, created: float) -> None:
        """Record the bus unless it is recorded already (``default``'s creation time, kept from the first start)."""

    async def put_event_bus(self, name: str, config: str, created: float) -> None: ...

    async def delete_event_bus(self, name: str) -> None:
        """Delete the bus, its rules and their targets."""

    async def load_event_rules(self) -> list[tuple[str, str, str, float]]:
        """(bus, name, config JSON, created) of every rule."""

    async def put_event_rule(self, bus: str, name: str, config: str, created: float) -> None: ...

    async def delete_event_rule(self, bus: str, name: str) -> None:
        """Delete the rule and its targets."""

    async def load_event_targets(self) -> list[tuple[str, str, str, str]]:
        """(bus, rule, target id, config JSON) of every target."""

    async def put_event_targets(self, bus: str, rule: str, targets: Sequence[tuple[str, str]]) -> None:
        """Add or replace targets (id, config JSON) of a rule, in one transaction."""

    async def delete_event_targets(self, bus: str, rule: str, ids: Sequence[str]) -> None: ...

    async def put_event_dead_letter(self, row: dict[str, object]) -> None:
        """An event for a dead-letter queue (id, queue_arn, body, attributes, rule, attempts, not_before, created)."""

    async def due_event_dead_letters(self, now: float, limit: int) -> list[dict[str, object]]:
        """Those whose ``not_before`` has come, oldest first."""

    async def retry_event_dead_letter(self, row_id: str, attempts: int, not_before: float) -> None: ...

    async def delete_event_dead_letter(self, row_id: str) -> None: ...
