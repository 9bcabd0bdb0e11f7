"""The metadata store's EventBridge part: a part of ``SqlStore`` (store/sql.py), ``events/store.py``'s
``EventsStore``: buses, rules and their targets, and events on their way to a dead-letter queue.

Every write is an ``events`` change notice naming its bus, so a cluster's other nodes read the rules again.
"""

from __future__ import annotations

from typing import Sequence

import sqlalchemy as sa

from lambdad.store import schema as t
from lambdad.store.sql_base import SqlBase

__all__ = ["EventTables"]


class EventTables(SqlBase):
    async def load_event_buses(self) -> list[tuple[str, str, float]]:
        b = t.event_buses
        return [(n, c, cr) for n, c, cr in await self._read(sa.select(b.c.name, b.c.config, b.c.created))]

    async def add_event_bus(self, name: str, config: str, created: float) -> None:
        """The bus, unless it is stored already (then nothing changes): the ``default`` bus's first record."""
        statement = self._insert(t.event_buses).values(name=name, config=config, created=created)
        await self._transaction([statement.on_conflict_do_nothing(index_elements=["name"])])

    async def put_event_bus(self, name: str, config: str, created: float) -> None:
        await self._transaction([self._upsert(t.event_buses, ("name",), name=name, config=config, created=created)])
        self._wrote("events", name)

    async def delete_event_bus(self, name: str) -> None:
        b, r, g = t.event_buses, t.event_rules, t.event_targets
        await self._transaction([sa.delete(g).where(g.c.bus == name), sa.delete(r).where(r.c.bus == name),
                                 sa.delete(b).where(b.c.name == name)])
        self._wrote("events", name)

    async def load_event_rules(self) -> list[tuple[str, str, str, float]]:
        r = t.event_rules
        return [(b, n, c, cr) for b, n, c, cr in await self._read(sa.select(r.c.bus, r.c.name, r.c.config,
                                                                              r.c.created))]

    async def put_event_rule(self, bus: str, name: str, config: str, created: float) -> None:
        await self._transaction([self._upsert(t.event_rules, ("bus", "name"), bus=bus, name=name, config=config,
                                              created=created)])
        self._wrote("events", bus)

    async def delete_event_rule(self, bus: str, name: str) -> None:
        r, g = t.event_rules, t.event_targets
        await self._transaction([sa.delete(g).where(g.c.bus == bus, g.c.rule == name),
                                 sa.delete(r).where(r.c.bus == bus, r.c.name == name)])
        self._wrote("events", bus)

    async def load_event_targets(self) -> list[tuple[str, str, str, str]]:
        g = t.event_targets
        return [(b, r, i, c) for b, r, i, c in await self._read(sa.select(g.c.bus, g.c.rule, g.c.id, g.c.config))]

    async def put_event_targets(self, bus: str, rule: str, targets: Sequence[tuple[str, str]]) -> None:
        await self._transaction([self._upsert(t.event_targets, ("bus", "rule", "id"), bus=bus, rule=rule,
                                              id=target_id, config=config) for target_id, config in targets])
        self._wrote("events", bus)

    async def delete_event_targets(self, bus: str, rule: str, ids: Sequence[str]) -> None:
        g = t.event_targets
        await self._transaction([sa.delete(g).where(g.c.bus == bus, g.c.rule == rule, g.c.id.in_(list(ids)))])
        self._wrote("events", bus)

    # -- events on their way to a dead-letter queue (events/delivery.py) ----------------------------------------

    async def put_event_dead_letter(self, row: dict[str, object]) -> None:
        await self._transaction([sa.insert(t.event_dead_letters).values(**row)])

    async def due_event_dead_letters(self, now: float, limit: int) -> list[dict[str, object]]:
        d = t.event_dead_letters
        rows = await self._read(sa.select(*d.c).where(d.c.not_before <= now).order_by(d.c.not_before).limit(limit))
        return [dict(row._mapping) for row in rows]

    async def retry_event_dead_letter(self, row_id: str, attempts: int, not_before: float) -> None:
        d = t.event_dead_letters
        await self._transaction([sa.update(d).where(d.c.id == row_id).values(attempts=attempts,
                                                                              not_before=not_before)])

    async def delete_event_dead_letter(self, row_id: str) -> None:
        d = t.event_dead_letters
        await self._transaction([sa.delete(d).where(d.c.id == row_id)])
