"""The metadata store's stacks: a part of ``SqlStore`` (store/sql.py).

A stack is one row: what ``lambdad deploy`` made of a SAM template (deploy/stacks_api.py serves them). A put names
the generation it read (0: the stack must not exist); a put over another generation is refused, so two deploys of
one stack, from two machines or on two nodes, cannot both record their outcome over each other's.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from lambdad.store import schema as t
from lambdad.store.sql_base import SqlBase

__all__ = ["StackRecord", "StackTables"]


@dataclass(frozen=True)
class StackRecord:
    name: str
    stack_id: str
    generation: int
    template_hash: str
    status: str
    document: str  # JSON
    created: float
    updated: float


class StackTables(SqlBase):
    async def get_stack(self, name: str) -> StackRecord | None:
        s = t.stacks
        rows = await self._read(sa.select(*s.c).where(s.c.name == name))
        return StackRecord(*rows[0]) if rows else None

    async def list_stacks(self) -> list[StackRecord]:
        s = t.stacks
        return [StackRecord(*row) for row in await self._read(sa.select(*s.c).order_by(s.c.name))]

    async def put_stack(self, record: StackRecord, expected_generation: int) -> bool:
        """Write ``record`` (its generation is expected + 1) if the stored generation is ``expected_generation``
        (0: none stored); False, writing nothing, if it is not."""
        s = t.stacks

        def write(conn: sa.Connection) -> bool:
            found = conn.execute(sa.select(s.c.generation).where(s.c.name == record.name)).scalar()
            if (found or 0) != expected_generation:
                return False
            values = {"stack_id": record.stack_id, "generation": expected_generation + 1,
                      "template_hash": record.template_hash, "status": record.status, "document": record.document,
                      "updated": record.updated}
            if found is None:
                conn.execute(sa.insert(s).values(name=record.name, created=record.created, **values))
            else:
                conn.execute(sa.update(s).where(s.c.name == record.name).values(**values))
            return True

        wrote = await self._run(write, write=True)
        if wrote:
            self._wrote("stack", record.name)
        return wrote

    async def delete_stack(self, name: str, expected_generation: int | None = None) -> bool:
        """Forget stack ``name`` (at ``expected_generation`` when given); False if there was no such stack."""
        s = t.stacks
        query = sa.delete(s).where(s.c.name == name)
        if expected_generation is not None:
            query = query.where(s.c.generation == expected_generation)

        def write(conn: sa.Connection) -> bool:
            return bool(conn.execute(query).rowcount)

        deleted = await self._run(write, write=True)
        if deleted:
            self._wrote("stack", name)
        return deleted
