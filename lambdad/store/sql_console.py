"""The metadata store's console operations: a part of ``SqlStore`` (store/sql.py).

The web console's sessions (kept here, not in a node's memory, so a session opened through one node of a cluster
is good on every node, and a sign-out anywhere ends it everywhere) and its saved test events.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa

from lambdad.store import schema as t
from lambdad.store.sql_base import SqlBase

__all__ = ["ConsoleSession", "ConsoleTables"]


@dataclass(frozen=True)
class ConsoleSession:
    """A signed-in session: whose key it acts with, its CSRF token, when it ends (epoch seconds)."""

    access_key_id: str
    principal: str
    csrf: str
    expires: float


class ConsoleTables(SqlBase):
    # -- console sessions --------------------------------------------------------------------------------------

    async def put_console_session(self, digest: str, session: ConsoleSession) -> None:
        """Record a new session under ``digest`` (the hash of its cookie's id); sessions past their end go."""
        now = time.time()
        s = t.console_sessions
        await self._transaction([
            sa.delete(s).where(s.c.expires < now),
            sa.insert(s).values(id=digest, access_key_id=session.access_key_id, principal=session.principal,
                                csrf=session.csrf, created=now, expires=session.expires),
        ])

    async def get_console_session(self, digest: str) -> ConsoleSession | None:
        """The session recorded under ``digest``, if it has not ended."""
        s = t.console_sessions
        rows = await self._read(sa.select(s.c.access_key_id, s.c.principal, s.c.csrf, s.c.expires)
                                .where(s.c.id == digest, s.c.expires > time.time()))
        return ConsoleSession(*rows[0]) if rows else None

    async def delete_console_session(self, digest: str) -> None:
        s = t.console_sessions
        await self._transaction([sa.delete(s).where(s.c.id == digest)])

    # -- saved test events -------------------------------------------------------------------------------------

    async def list_test_events(self, owner: str, function: str) -> list[tuple[str, str]]:
        """``owner``'s saved test events of ``function``: (name, body), by name."""
        e = t.console_test_events
        rows = await self._read(sa.select(e.c.event_name, e.c.body)
                                .where(e.c.owner == owner, e.c.name == function).order_by(e.c.event_name))
        return [(name, body) for name, body in rows]

    async def put_test_event(self, owner: str, function: str, name: str, body: str) -> None:
        await self._transaction([self._upsert(t.console_test_events, ("owner", "name", "event_name"), owner=owner,
                                              name=function, event_name=name, body=body, updated=time.time())])

    async def delete_test_event(self, owner: str, function: str, name: str) -> None:
        e = t.console_test_events
        await self._transaction([sa.delete(e).where(e.c.owner == owner, e.c.name == function,
                                                    e.c.event_name == name)])
