"""The metadata store's access operations: a part of ``SqlStore`` (store/sql.py).

Access and limits: IAM entities (lambdad/iam/) and the concurrency grants of cluster mode.
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from lambdad.store import schema as t
from lambdad.store.interfaces import StoreConflict
from lambdad.store.sql_base import SqlBase


class AccessTables(SqlBase):
    # -- IAM (lambdad/iam/) -----------------------------------------------------------------------------------

    async def load_iam(self) -> list[tuple[str, str, str, int]]:
        """(kind, name, record, generation) of every IAM entity."""
        e = t.iam_entities
        return [(k, n, r, g) for k, n, r, g in await self._read(sa.select(e.c.kind, e.c.name, e.c.record,
                                                                          e.c.generation))]

    async def get_iam(self, kind: str, name: str) -> tuple[str, int] | None:
        """(record, generation) of one IAM entity, or None."""
        e = t.iam_entities
        rows = await self._read(sa.select(e.c.record, e.c.generation).where(e.c.kind == kind, e.c.name == name))
        return (rows[0][0], rows[0][1]) if rows else None

    async def put_iam(self, kind: str, name: str, record: str, expect: int | None) -> int:
        """Write an IAM entity and return its new generation: a new one when ``expect`` is None (one of that kind
        and name already stored is a ``StoreConflict``), else one stored at generation ``expect`` (another
        generation, or none, is a ``StoreConflict``: another node wrote it meanwhile)."""
        e = t.iam_entities

        def put(conn: sa.Connection) -> int:
            if expect is None:
                try:
                    conn.execute(sa.insert(e).values(kind=kind, name=name, record=record, generation=1))
                except sa.exc.IntegrityError as exc:
                    raise StoreConflict(f"{kind} {name}") from exc
                return 1
            done = conn.execute(sa.update(e).where(e.c.kind == kind, e.c.name == name, e.c.generation == expect)
                                .values(record=record, generation=expect + 1)).rowcount
            if not done:
                raise StoreConflict(f"{kind} {name}")
            return expect + 1

        generation = await self._run(put, write=True)
        self._wrote("iam", f"{kind}:{name}")
        return generation

    async def delete_iam(self, kind: str, name: str, expect: int | None = None) -> bool:
        """Delete an IAM entity (only at generation ``expect`` when given); whether one was deleted."""
        e = t.iam_entities
        statement = sa.delete(e).where(e.c.kind == kind, e.c.name == name)
        if expect is not None:
            statement = statement.where(e.c.generation == expect)
        deleted = bool(await self._run(lambda conn: conn.execute(statement).rowcount, write=True))
        if deleted:
            self._wrote("iam", f"{kind}:{name}")
        return deleted

    async def get_access_key(self, access_key_id: str) -> tuple[str, str, str] | None:
        """(user name, secret, status) of an IAM user's access key; read on every use, so that a key made,
        deactivated or deleted on another node or by ``lambdad keys`` counts at once."""
        keys = t.iam_access_keys
        rows = await self._read(sa.select(keys.c.user_name, keys.c.secret_access_key, keys.c.status)
                                .where(keys.c.access_key_id == access_key_id))
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else None

    async def put_access_key(self, access_key_id: str, user: str, secret: str, created: float,
                             most: int = 2) -> None:
        """Store a new Active key of ``user``; a user who has ``most`` keys already is a ``StoreConflict``
        (decided in the transaction that stores it)."""
        keys = t.iam_access_keys

        def put(conn: sa.Connection) -> None:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('iam_access_keys'))"))
            held = conn.execute(sa.select(sa.func.count()).select_from(keys)
                                .where(keys.c.user_name == user)).scalar_one()
            if held >= most:
                raise StoreConflict(user)
            conn.execute(sa.insert(keys).values(access_key_id=access_key_id, user_name=user,
                                                secret_access_key=secret, status="Active", created=created))

        await self._run(put, write=True)

    async def list_access_keys(self, user: str | None = None) -> list[tuple[str, str, str, str, float]]:
        """(user name, access key id, secret, status, created) of every key (of ``user``), oldest first."""
        keys = t.iam_access_keys
        query = sa.select(keys.c.user_name, keys.c.access_key_id, keys.c.secret_access_key, keys.c.status,
                          keys.c.created).order_by(keys.c.created)
        if user is not None:
            query = query.where(keys.c.user_name == user)
        return [(u, k, s, st, c) for u, k, s, st, c in await self._read(query)]

    async def update_access_key(self, access_key_id: str, user: str, status: str) -> bool:
        keys = t.iam_access_keys
        statement = (sa.update(keys).where(keys.c.access_key_id == access_key_id, keys.c.user_name == user)
                     .values(status=status))
        done = bool(await self._run(lambda conn: conn.execute(statement).rowcount, write=True))
        self._wrote("iam", f"key:{access_key_id}")
        return done

    async def delete_access_key(self, access_key_id: str, user: str) -> bool:
        """Delete ``user``'s key; whether there was one."""
        keys = t.iam_access_keys
        statement = sa.delete(keys).where(keys.c.access_key_id == access_key_id, keys.c.user_name == user)
        done = bool(await self._run(lambda conn: conn.execute(statement).rowcount, write=True))
        self._wrote("iam", f"key:{access_key_id}")
        return done

    async def root_credentials(self, proposed: tuple[str, str], replace: bool) -> tuple[str, str]:
        """The cluster's root (access key id, secret): ``proposed`` when ``replace`` (set by the operator) or when
        there are none yet, else the stored ones — decided in one transaction, so nodes starting together agree."""
        table = t.root_credentials

        def decide(conn: sa.Connection) -> tuple[str, str]:
            if replace:
                conn.execute(self._upsert(table, ("name",), name="root", access_key_id=proposed[0],
                                          secret_access_key=proposed[1]))
                return proposed
            conn.execute(self._insert(table).values(name="root", access_key_id=proposed[0],
                                                    secret_access_key=proposed[1])
                         .on_conflict_do_nothing(index_elements=["name"]))
            row = conn.execute(sa.select(table.c.access_key_id, table.c.secret_access_key)
                               .where(table.c.name == "root")).one()
            return row[0], row[1]

        return await self._run(decide, write=True)

    # -- concurrency grants (cluster mode) -------------------------------------------------------------------

    async def grant_permits(self, scope: str, node: str, want: int, cap: int, void_before: float) -> int:
        """Give ``node`` up to ``want`` more permits of ``scope`` while the shares of all nodes stay within
        ``cap`` (shares renewed before ``void_before`` count for nothing, and are deleted); returns how many.
        One transaction, serialised per scope (an advisory lock on PostgreSQL; SQLite has one writer)."""
        grants = t.concurrency_grants

        def grant(conn: sa.Connection) -> int:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:scope))"), {"scope": scope})
            conn.execute(sa.delete(grants).where(grants.c.scope == scope, grants.c.renewed < void_before))
            given = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(grants.c.permits), 0))
                                 .where(grants.c.scope == scope)).scalar_one()
            more = min(want, cap - int(given))
            if more <= 0:
                return 0
            statement = self._insert(grants).values(scope=scope, node=node, permits=more, renewed=time.time())
            conn.execute(statement.on_conflict_do_update(
                index_elements=["scope", "node"],
                set_={"permits": grants.c.permits + more, "renewed": statement.excluded.renewed}))
            return more

        return await self._run(grant, write=True)

    async def settle_permits(self, node: str, keep: dict[str, int]) -> set[str]:
        """Set ``node``'s shares to ``keep`` (scope -> permits, never more than it holds; a scope not named is
        given up) and renew them; returns the scopes whose share was void already (not renewed in time)."""
        grants = t.concurrency_grants
        now = time.time()

        def settle(conn: sa.Connection) -> set[str]:
            conn.execute(sa.delete(grants).where(grants.c.node == node, grants.c.scope.not_in(list(keep))))
            lost = set()
            for scope, permits in keep.items():
                if not conn.execute(sa.update(grants).where(grants.c.node == node, grants.c.scope == scope)
                                    .values(permits=permits, renewed=now)).rowcount:
                    lost.add(scope)
            return lost

        return await self._run(settle, write=True)
