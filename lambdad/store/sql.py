"""The metadata store: one implementation, on SQLAlchemy Core, for SQLite (embedded) and PostgreSQL (cluster).

``SqlStore.open(url)`` takes ``sqlite:///path`` or ``postgresql+psycopg://…`` (``database_url`` turns a plain
``postgresql://`` URL, or a data dir, into one), brings the schema up to date with the versioned migrations
(``store/migrations/``, Alembic) and returns the store. The queries are written once, against
``store/schema.py``; where the two dialects spell a thing differently (an upsert, ``greatest``, a byte length)
a construct compiles to each.

Each operation is one function of a SQLAlchemy ``Connection`` run on the store's worker threads, so a transaction
costs one hop off the event loop whatever its number of statements (SQLAlchemy's asyncio layer over aiosqlite
hops once per statement: a three-statement log append took ~4 ms against ~1 ms so). SQLite gets one thread, its
one writer; PostgreSQL a few, as many as the connection pool.

Durability: when a write method returns, its rows are committed. SQLite runs in WAL mode with
``synchronous=FULL`` (a commit is on disk), which is what lets the API promise that a created function or an
accepted async event survives kill -9; PostgreSQL commits are durable by its own default. A write, once begun,
runs to its end even if its caller is cancelled (it is shielded): a client that goes away mid-request can not
leave a transaction half-applied or the connection in one.

SQLite allows one writer: this process's operations take turns on its one thread (``lambdad keys``, another
process, waits on SQLite's busy timeout). PostgreSQL takes writes from every node at once; what must be atomic is one
transaction.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from lambdad.store import schema as t
from lambdad.store.sql_events import SqlEventsMixin
from lambdad.store.interfaces import (AliasRecord, AsyncEvent, LogEvent, LogGroupInfo, LogStreamInfo,
                                      MetricAggregate, StoreConflict, StoredFunction, StoredLogEvent,
                                      UsageRecord,
                                      VersionRecord)

__all__ = ["SqlStore", "database_url", "open_engine"]

T = TypeVar("T")
Statement = sa.Executable
_POOL = 4  # PostgreSQL connections (and threads) per node


def database_url(url: str | None, data_dir: Path) -> str:
    """The SQLAlchemy URL to open: ``url`` (``postgresql://`` given the psycopg driver), or the data dir's SQLite
    file when there is none."""
    if not url:
        return f"sqlite:///{data_dir / 'lambdad.db'}"
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


def open_engine(url: str) -> sa.Engine:
    """An engine for ``url``; for SQLite with the pragmas the durability promise rests on, and with the BEGIN that
    SQLite's Python driver would otherwise place itself (late, and never for a read)."""
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_size=_POOL, max_overflow=0, pool_pre_ping=True)
    Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 10.0}, pool_size=1, max_overflow=0)

    @event.listens_for(engine, "connect")
    def _connected(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we say BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON",
                       # the write-ahead log is cut back to 64 MB after a checkpoint: a burst of log writes (a
                       # function flooding its output) does not leave a file of its size behind
                       "journal_size_limit=67108864"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        # a write transaction takes the write lock at once: two processes never find out at COMMIT
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")

    return engine


class greatest(FunctionElement[int]):
    """The larger of two values: ``greatest`` on PostgreSQL, the two-argument scalar ``max`` on SQLite."""

    type = sa.BigInteger()
    inherit_cache = True


@compiles(greatest)
def _greatest(element: greatest, compiler: Any, **kw: Any) -> str:
    return f"greatest({compiler.process(element.clauses, **kw)})"


@compiles(greatest, "sqlite")
def _sqlite_greatest(element: greatest, compiler: Any, **kw: Any) -> str:
    return f"max({compiler.process(element.clauses, **kw)})"


class SqlStore(SqlEventsMixin):
    """Function metadata (functions, versions and their counter, aliases, resource policies), reserved and
    provisioned concurrency, layers, the async event queue, log events and access keys. Owner of its engine and
    threads."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self.dialect = engine.dialect.name
        self._insert = sqlite.insert if self.dialect == "sqlite" else postgresql.insert
        self._threads = ThreadPoolExecutor(1 if self.dialect == "sqlite" else _POOL, thread_name_prefix="store")
        # told (kind, name) after each committed write of shared state: cluster/notices.py tells the other nodes
        self.written: Callable[[str, str], None] | None = None

    @classmethod
    async def open(cls, url: str) -> "SqlStore":
        from lambdad.store.migrations import upgrade  # Alembic is only needed at open

        engine = open_engine(url)
        store = cls(engine)
        try:
            await store._run(lambda conn: upgrade(conn), write=True)
        except BaseException:
            await store.aclose()
            raise
        return store

    async def aclose(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._threads, self._engine.dispose)
        self._threads.shutdown(wait=True)

    # -- functions -------------------------------------------------------------------------------------------

    async def load_functions(self, name: str | None = None) -> list[StoredFunction]:
        """Every function, or the one named ``name`` (none: an empty list)."""
        queries = [sa.select(t.functions.c.name, t.functions.c.tags, t.functions.c.generation),
                   sa.select(t.versions.c.name, t.versions.c.version, t.versions.c.config),
                   sa.select(t.version_counters),
                   sa.select(t.aliases.c.name, t.aliases.c.alias, t.aliases.c.config),
                   sa.select(t.policies)]
        if name is not None:
            tables = (t.functions, t.versions, t.version_counters, t.aliases, t.policies)
            queries = [q.where(table.c.name == name) for q, table in zip(queries, tables)]

        def read(conn: sa.Connection) -> list[list[Any]]:
            return [_rows(conn, q) for q in queries]

        tag_rows, rows, counters, alias_rows, policy_rows = await self._run(read)
        tags = {name: (json.loads(text), generation) for name, text, generation in tag_rows}
        functions = {name: StoredFunction(name=name, latest=cfg, tags=tags[name][0], generation=tags[name][1])
                     for name, version, cfg in rows if version == "$LATEST" and name in tags}
        for name, version, cfg in rows:
            if version != "$LATEST" and name in functions:
                functions[name].versions[version] = cfg
        for name, last_version, published_from in counters:
            if name in functions:
                functions[name].last_version = last_version
                functions[name].published_from = published_from
        for name, alias, cfg in alias_rows:
            if name in functions:
                functions[name].aliases[alias] = cfg
        for name, qualifier, statements in policy_rows:
            if name in functions:
                functions[name].policies[qualifier] = json.loads(statements)
        return list(functions.values())
    async def create_function(self, config: VersionRecord, tags: dict[str, str], published: VersionRecord | None = None,
                              fingerprint: str = "") -> None:
        """Store a new function; with ``published``, its version 1 too (published from $LATEST as it was then:
        ``fingerprint``), in the same transaction. A function of that name already stored (by another node) is a
        ``StoreConflict``."""
        statements: list[Statement] = [
            sa.insert(t.functions).values(name=config.name, tags=json.dumps(tags), created=time.time()),
            self._put_version(config),
        ]
        if published is not None:
            statements += [self._put_version(published),
                           self._put_counter(config.name, int(published.version), fingerprint)]
        try:
            await self._transaction(statements)
        except sa.exc.IntegrityError as exc:
            raise StoreConflict(config.name) from exc
        self._wrote("function", config.name)

    async def put_version(self, config: VersionRecord, *, expect: int) -> None:
        await self._function_write(config.name, expect, [self._put_version(config)])
        self._wrote("function", config.name)

    async def publish_version(self, version: VersionRecord, latest: VersionRecord, published_from: str, *,
                              expect: int) -> None:
        """Store a newly published version, the $LATEST it came from and the version counter, atomically."""
        await self._function_write(latest.name, expect, [
            self._put_version(version), self._put_version(latest),
            self._put_counter(latest.name, int(version.version), published_from)])
        self._wrote("function", latest.name)

    async def put_tags(self, name: str, tags: dict[str, str], latest: VersionRecord, *, expect: int) -> None:
        """Replace a function's tags; ``latest`` carries the new revision id that a tag change gives $LATEST."""
        await self._function_write(name, expect, [
            sa.update(t.functions).where(t.functions.c.name == name).values(tags=json.dumps(tags)),
            self._put_version(latest),
        ])
        self._wrote("function", name)

    async def delete_function(self, name: str, *, expect: int) -> None:
        await self._function_write(name, expect, [
            sa.delete(table).where(table.c.name == name)
            for table in (t.policies, t.reserved_concurrency, t.provisioned_concurrency, t.event_invoke_configs,
                          t.event_source_mappings, t.stream_checkpoints, t.function_urls, t.aliases, t.version_counters, t.versions, t.functions)
        ])
        self._wrote("function", name)

    async def delete_version(self, name: str, version: str, *, expect: int) -> None:
        """Delete a published version and its resource policy."""
        await self._function_write(name, expect, [
            sa.delete(t.versions).where(t.versions.c.name == name, t.versions.c.version == version),
            sa.delete(t.policies).where(t.policies.c.name == name, t.policies.c.qualifier == version),
        ])
        self._wrote("function", name)

    async def put_alias(self, alias: AliasRecord, *, expect: int) -> None:
        await self._function_write(alias.function_name, expect, [self._put_alias(alias)])
        self._wrote("function", alias.function_name)

    async def delete_alias(self, function_name: str, alias_name: str, *, expect: int) -> None:
        """Delete an alias and its resource policy."""
        await self._function_write(function_name, expect, [
            sa.delete(t.aliases).where(t.aliases.c.name == function_name, t.aliases.c.alias == alias_name),
            sa.delete(t.policies).where(t.policies.c.name == function_name, t.policies.c.qualifier == alias_name),
            sa.delete(t.function_urls).where(t.function_urls.c.name == function_name,
                                             t.function_urls.c.qualifier == alias_name),
        ])
        self._wrote("function", function_name)

    async def put_policy(
        self, name: str, qualifier: str, statements: list[dict[str, Any]], target: VersionRecord | AliasRecord, *,
        expect: int
    ) -> None:
        """Replace the policy of ``qualifier`` (none left: delete it) and store ``target`` (the version or alias
        the policy belongs to, with its new revision id) in the same transaction."""
        policy: Statement
        if statements:
            policy = self._upsert(t.policies, ("name", "qualifier"), name=name, qualifier=qualifier,
                                  statements=json.dumps(statements, separators=(",", ":")))
        else:
            policy = sa.delete(t.policies).where(t.policies.c.name == name, t.policies.c.qualifier == qualifier)
        owner = self._put_alias(target) if _is_alias(target) else self._put_version(target)  # type: ignore[arg-type]
        await self._function_write(name, expect, [policy, owner])
        self._wrote("function", name)

    # -- reserved and provisioned concurrency ----------------------------------------------------------------

    async def load_reserved_concurrency(self) -> dict[str, int]:
        return {name: reserved for name, reserved in await self._read(sa.select(t.reserved_concurrency))}

    async def put_reserved_concurrency(self, name: str, reserved: int, most: int) -> bool:
        """Reserve ``reserved`` for ``name`` if all reservations together stay within ``most``; whether it did.
        Decided in one transaction serialised over the whole table (an advisory lock on PostgreSQL; SQLite has one
        writer), so two nodes reserving at once cannot pass ``most`` together."""
        table = t.reserved_concurrency
        statement = self._upsert(table, ("name",), name=name, reserved=reserved)

        def reserve(conn: sa.Connection) -> bool:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('reserved_concurrency'))"))
            others = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(table.c.reserved), 0))
                                  .where(table.c.name != name)).scalar_one()
            if int(others) + reserved > most:
                return False
            conn.execute(statement)
            return True

        placed = await self._run(reserve, write=True)
        if placed:
            self._wrote("concurrency", name)
        return placed

    async def delete_reserved_concurrency(self, name: str) -> None:
        await self._transaction([sa.delete(t.reserved_concurrency).where(t.reserved_concurrency.c.name == name)])
        self._wrote("concurrency", name)

    async def load_provisioned_concurrency(self) -> list[tuple[str, str, int, str]]:
        """(function name, qualifier, requested, last modified) of every provisioned concurrency config."""
        return [(n, q, r, m) for n, q, r, m in await self._read(sa.select(t.provisioned_concurrency))]

    async def put_provisioned_concurrency(self, name: str, qualifier: str, requested: int, last_modified: str,
                                          unreserved_most: int) -> int | None:
        """Store a provisioned concurrency config if the limits allow it; None when stored, else the limit it would
        pass: the function's reservation (when it has one: all its configs together may not exceed it), or
        ``unreserved_most`` (what reservations and the configs of functions without one may take together).
        Decided in the transaction that stores it, serialised with reservations, as ``put_reserved_concurrency``."""
        prov, reserved = t.provisioned_concurrency, t.reserved_concurrency
        statement = self._upsert(prov, ("name", "qualifier"), name=name, qualifier=qualifier, requested=requested,
                                 last_modified=last_modified)
        not_this = sa.not_(sa.and_(prov.c.name == name, prov.c.qualifier == qualifier))

        def provision(conn: sa.Connection) -> int | None:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('reserved_concurrency'))"))
            total = sa.func.coalesce(sa.func.sum(prov.c.requested), 0)
            own = conn.execute(sa.select(reserved.c.reserved).where(reserved.c.name == name)).scalar_one_or_none()
            if own is not None:
                others = conn.execute(sa.select(total).where(prov.c.name == name, not_this)).scalar_one()
                if int(others) + requested > own:
                    return int(own)
            else:
                reservations = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(reserved.c.reserved), 0))
                                            ).scalar_one()
                unreserved = conn.execute(sa.select(total).where(
                    not_this, prov.c.name.not_in(sa.select(reserved.c.name)))).scalar_one()
                if int(reservations) + int(unreserved) + requested > unreserved_most:
                    return unreserved_most
            conn.execute(statement)
            return None

        refused = await self._run(provision, write=True)
        if refused is None:
            self._wrote("provisioned", name)
        return refused

    async def delete_provisioned_concurrency(self, name: str, qualifier: str) -> None:
        table = t.provisioned_concurrency
        await self._transaction([sa.delete(table).where(table.c.name == name, table.c.qualifier == qualifier)])
        self._wrote("provisioned", name)

    # -- event invoke configs -------------------------------------------------------------------------------

    async def load_event_invoke_configs(self) -> list[tuple[str, str, str, float]]:
        """(function name, qualifier, config JSON, last modified) of every event invoke config."""
        return [(n, q, c, m) for n, q, c, m in await self._read(sa.select(t.event_invoke_configs))]

    async def put_event_invoke_config(self, name: str, qualifier: str, config: str, last_modified: float) -> None:
        await self._transaction([self._upsert(t.event_invoke_configs, ("name", "qualifier"), name=name,
                                              qualifier=qualifier, config=config, last_modified=last_modified)])
        self._wrote("eventinvoke", name)

    async def delete_event_invoke_config(self, name: str, qualifier: str) -> None:
        table = t.event_invoke_configs
        await self._transaction([sa.delete(table).where(table.c.name == name, table.c.qualifier == qualifier)])
        self._wrote("eventinvoke", name)

    # -- event source mappings ------------------------------------------------------------------------------

    async def load_event_source_mappings(self) -> list[tuple[str, str, str, str, float]]:
        """(UUID, function name, event source ARN, config JSON, last modified) of every event source mapping."""
        m = t.event_source_mappings
        query = sa.select(m.c.uuid, m.c.name, m.c.event_source_arn, m.c.config, m.c.last_modified)
        return [(u, n, a, c, lm) for u, n, a, c, lm in await self._read(query)]

    async def put_event_source_mapping(self, uuid: str, name: str, event_source_arn: str, config: str,
                                       last_modified: float) -> None:
        await self._transaction([self._upsert(t.event_source_mappings, ("uuid",), uuid=uuid, name=name,
                                              event_source_arn=event_source_arn, config=config,
                                              last_modified=last_modified)])
        self._wrote("eventsource", name)

    async def delete_event_source_mapping(self, uuid: str, name: str) -> None:
        table = t.event_source_mappings
        checkpoints = t.stream_checkpoints
        await self._transaction([sa.delete(table).where(table.c.uuid == uuid),
                                 sa.delete(checkpoints).where(checkpoints.c.uuid == uuid)])
        self._wrote("eventsource", name)

    async def load_stream_checkpoints(self, uuid: str) -> dict[str, str]:
        c = t.stream_checkpoints
        return {shard: seq for shard, seq in
                await self._read(sa.select(c.c.shard_id, c.c.sequence).where(c.c.uuid == uuid))}

    async def put_stream_checkpoint(self, uuid: str, name: str, shard_id: str, sequence: str) -> None:
        await self._transaction([self._upsert(t.stream_checkpoints, ("uuid", "shard_id"), uuid=uuid,
                                              shard_id=shard_id, name=name, sequence=sequence,
                                              updated=time.time())])

    # -- function URLs ---------------------------------------------------------------------------------------

    async def load_function_urls(self) -> list[tuple[str, str, str, str, str, str]]:
        """(function name, qualifier, URL id, config JSON, created, last modified) of every function URL."""
        return [(n, q, u, c, cr, m) for n, q, u, c, cr, m in await self._read(sa.select(t.function_urls))]

    async def put_function_url(self, name: str, qualifier: str, url_id: str, config: str, created: str,
                               last_modified: str) -> None:
        await self._transaction([self._upsert(t.function_urls, ("name", "qualifier"), name=name, qualifier=qualifier,
                                              url_id=url_id, config=config, created=created,
                                              last_modified=last_modified)])
        self._wrote("functionurl", name)

    async def delete_function_url(self, name: str, qualifier: str) -> None:
        table = t.function_urls
        await self._transaction([sa.delete(table).where(table.c.name == name, table.c.qualifier == qualifier)])
        self._wrote("functionurl", name)

    # -- brokers of event sources ---------------------------------------------------------------------------

    async def put_broker_record(self, arn: str, kind: str, record: str, created: float) -> None:
        await self._transaction([self._upsert(t.brokers, ("arn",), arn=arn, kind=kind, record=record,
                                              created=created)])

    async def get_broker_record(self, arn: str) -> tuple[str, str, float] | None:
        b = t.brokers
        rows = await self._read(sa.select(b.c.kind, b.c.record, b.c.created).where(b.c.arn == arn))
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else None

    async def list_broker_records(self) -> list[tuple[str, str, str, float]]:
        b = t.brokers
        return [(a, k, r, c) for a, k, r, c in
                await self._read(sa.select(b.c.arn, b.c.kind, b.c.record, b.c.created).order_by(b.c.arn))]

    async def delete_broker_record(self, arn: str) -> bool:
        statement = sa.delete(t.brokers).where(t.brokers.c.arn == arn)
        return bool(await self._run(lambda conn: conn.execute(statement).rowcount, write=True))

    # -- layers ----------------------------------------------------------------------------------------------

    async def load_layers(self) -> tuple[list[str], dict[str, int]]:
        """Every layer version record (JSON, deleted ones too) and each layer's highest version number."""
        records = [row[0] for row in await self._read(sa.select(t.layer_versions.c.record))]
        counters = {name: last for name, last in await self._read(sa.select(t.layer_counters))}
        return records, counters

    async def put_layer_version(self, name: str, version: int, record: str, counter: int | None = None) -> None:
        """Store a layer version's record; with ``counter``, the layer's version counter in the same transaction."""
        statements: list[Statement] = [
            self._upsert(t.layer_versions, ("name", "version"), name=name, version=version, record=record)]
        if counter is not None:
            statements.append(self._upsert(t.layer_counters, ("name",), name=name, last_version=counter))
        await self._transaction(statements)
        self._wrote("layer", name)

    # -- async events ----------------------------------------------------------------------------------------

    async def put_async_event(self, event: AsyncEvent) -> None:
        await self._transaction([sa.insert(t.async_events).values(
            id=event.id, function_name=event.function_name, qualifier=event.qualifier, payload=event.payload,
            client_context=event.client_context, attempts=event.attempts, not_before=event.not_before,
            received=event.received, outcome=event.outcome, hops=event.hops)])

    async def reschedule_async_event(self, event_id: str, attempts: int, not_before: float,
                                     outcome: str | None = None) -> None:
        await self._transaction([sa.update(t.async_events).where(t.async_events.c.id == event_id)
                                 .values(attempts=attempts, not_before=not_before, outcome=outcome)])

    async def delete_async_event(self, event_id: str) -> None:
        await self._transaction([sa.delete(t.async_events).where(t.async_events.c.id == event_id)])

    async def load_async_events(self) -> list[AsyncEvent]:
        return [AsyncEvent(*row) for row in await self._read(sa.select(t.async_events)
                                                             .order_by(t.async_events.c.received))]

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

    # -- logs ------------------------------------------------------------------------------------------------

    async def append_logs(self, events: Sequence[LogEvent]) -> None:
        if not events:
            return
        now = int(time.time() * 1000)
        streams: dict[tuple[str, str], tuple[int, int]] = {}
        sizes: dict[str, int] = {}
        for e in events:
            first, last = streams.get((e.log_group, e.log_stream), (e.timestamp, e.timestamp))
            streams[(e.log_group, e.log_stream)] = (min(first, e.timestamp), max(last, e.timestamp))
            sizes[e.log_group] = sizes.get(e.log_group, 0) + len(e.message.encode("utf-8", "surrogatepass"))
        ls = t.log_streams
        stream_rows = self._insert(ls)
        stream_rows = stream_rows.on_conflict_do_update(
            index_elements=["log_group", "log_stream"],
            set_={"last_event": greatest(ls.c.last_event, stream_rows.excluded.last_event),
                  "first_event": sa.func.coalesce(ls.c.first_event, stream_rows.excluded.first_event),
                  "last_ingestion": stream_rows.excluded.last_ingestion})
        group_rows = self._insert(t.log_group_bytes)
        group_rows = group_rows.on_conflict_do_update(
            index_elements=["log_group"], set_={"bytes": t.log_group_bytes.c.bytes + group_rows.excluded.bytes})
        new_groups = self._insert(t.log_groups).on_conflict_do_nothing(index_elements=["log_group"])

        def write(conn: sa.Connection) -> None:
            conn.execute(new_groups, [{"log_group": g, "created": now} for g in sizes])
            conn.execute(stream_rows, [{"log_group": g, "log_stream": s, "created": first, "last_event": last,
                                        "first_event": first, "last_ingestion": now}
                                       for (g, s), (first, last) in streams.items()])
            conn.execute(sa.insert(t.log_events), [
                {"log_group": e.log_group, "log_stream": e.log_stream, "timestamp": e.timestamp,
                 "message": e.message, "ingested": now} for e in events])
            conn.execute(group_rows, [{"log_group": g, "bytes": n} for g, n in sizes.items()])

        await self._run(write, write=True)

    async def trim_logs(self, older_than_ms: int, group_bytes: int, total_bytes: int) -> int:
        """Log retention: delete events older than ``older_than_ms`` (epoch ms), then those older than their group's
        retention in days (PutRetentionPolicy), then each group's oldest events
        past its newest ``group_bytes`` of messages, then the oldest of all past the newest ``total_bytes``;
        and the streams left empty. Returns the events deleted.

        What each group holds is kept in ``log_group_bytes`` (added to by every append), so a trim reads only
        the events it deletes (found through the indexes by time, by group, and by id, oldest first), never
        the ones it keeps: it costs in proportion to what it removes, not to the size of the database (the
        whole table was read, under the write lock, at every trim: ~1.1 s at 200 MB)."""
        events, groups = t.log_events, t.log_group_bytes

        def trim(conn: sa.Connection) -> int:
            deleted: int = 0
            old: sa.Executable
            if conn.dialect.name == "sqlite":  # by time: only the rows that go (SQLite would pick the group index)
                old = sa.text("SELECT log_group, COUNT(*), SUM(length(CAST(message AS BLOB))) FROM log_events "
                              "INDEXED BY log_events_by_time WHERE timestamp < :cutoff GROUP BY log_group"
                              ).bindparams(cutoff=older_than_ms)
            else:
                old = (sa.select(events.c.log_group, sa.func.count(), sa.func.sum(t.octet_length(events.c.message)))
                       .where(events.c.timestamp < older_than_ms).group_by(events.c.log_group))
            old_rows = _rows(conn, old)
            freed = {group: nbytes for group, _count, nbytes in old_rows}
            deleted += sum(count for _group, count, _nbytes in old_rows)
            if freed:
                conn.execute(sa.delete(events).where(events.c.timestamp < older_than_ms))
                _forget_bytes(conn, freed)
            # each group's own retention (PutRetentionPolicy), in days
            now = time.time() * 1000
            kept = _rows(conn, sa.select(t.log_groups.c.log_group, t.log_groups.c.retention_days)
                         .where(t.log_groups.c.retention_days.is_not(None)))
            for group, days in kept:
                cutoff = int(now - days * 86_400_000)
                if cutoff <= older_than_ms:
                    continue  # the server-wide age cap went further
                scope = (events.c.log_group == group, events.c.timestamp < cutoff)
                count, nbytes = conn.execute(sa.select(sa.func.count(), sa.func.coalesce(
                    sa.func.sum(t.octet_length(events.c.message)), 0)).where(*scope)).one()
                if count:
                    conn.execute(sa.delete(events).where(*scope))
                    _forget_bytes(conn, {group: int(nbytes)})
                    deleted += count
            over = _rows(conn, sa.select(groups.c.log_group, groups.c.bytes).where(groups.c.bytes > group_bytes))
            for group, nbytes in over:
                deleted += _delete_oldest(conn, nbytes - group_bytes, group)
            total = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(groups.c.bytes), 0))).scalar_one()
            if total > total_bytes:
                deleted += _delete_oldest(conn, total - total_bytes, None)
            if deleted:
                streams = t.log_streams
                conn.execute(sa.delete(streams).where(~sa.exists().where(
                    events.c.log_group == streams.c.log_group, events.c.log_stream == streams.c.log_stream)))
                conn.execute(sa.delete(groups).where(groups.c.bytes <= 0))
            return deleted

        return await self._run(trim, write=True)

    async def read_logs(self, log_group: str, log_stream: str | None = None) -> list[LogEvent]:
        events = t.log_events
        query = (sa.select(events.c.log_group, events.c.log_stream, events.c.timestamp, events.c.message)
                 .where(events.c.log_group == log_group).order_by(events.c.id))
        if log_stream is not None:
            query = query.where(events.c.log_stream == log_stream)
        return [LogEvent(*row) for row in await self._read(query)]

    async def list_log_streams(self, log_group: str) -> list[str]:
        streams = t.log_streams
        rows = await self._read(sa.select(streams.c.log_stream).where(streams.c.log_group == log_group)
                                .order_by(streams.c.created))
        return [row[0] for row in rows]

    # -- the CloudWatch Logs API (logs/api.py) ------------------------------------------------------------------

    async def create_log_group(self, name: str, created: int) -> bool:
        """A new, empty group; False if it exists."""
        statement = self._insert(t.log_groups).values(log_group=name, created=created).on_conflict_do_nothing(
            index_elements=["log_group"])
        return bool(await self._run(lambda conn: conn.execute(statement).rowcount, write=True))

    async def log_groups(self, name: str | None = None) -> list[LogGroupInfo]:
        """Every group (or the one named), by name, with the bytes of messages it holds."""
        groups, sizes = t.log_groups, t.log_group_bytes
        query = (sa.select(groups.c.log_group, groups.c.created, groups.c.retention_days,
                           sa.func.coalesce(sizes.c.bytes, 0))
                 .select_from(groups.outerjoin(sizes, sizes.c.log_group == groups.c.log_group))
                 .order_by(groups.c.log_group))
        if name is not None:
            query = query.where(groups.c.log_group == name)
        return [LogGroupInfo(*row) for row in await self._read(query)]

    async def delete_log_group(self, name: str) -> bool:
        """The group, its streams and its events; False if there was no such group."""
        def delete(conn: sa.Connection) -> bool:
            gone = conn.execute(sa.delete(t.log_groups).where(t.log_groups.c.log_group == name)).rowcount
            for table in (t.log_events, t.log_streams, t.log_group_bytes):
                conn.execute(sa.delete(table).where(table.c.log_group == name))
            return bool(gone)

        return await self._run(delete, write=True)

    async def set_log_retention(self, name: str, days: int | None) -> bool:
        groups = t.log_groups
        statement = sa.update(groups).where(groups.c.log_group == name).values(retention_days=days)
        return bool(await self._run(lambda conn: conn.execute(statement).rowcount, write=True))

    async def create_log_stream(self, group: str, stream: str, created: int) -> bool:
        """A new, empty stream in ``group`` (which the caller found); False if it exists."""
        statement = self._insert(t.log_streams).values(
            log_group=group, log_stream=stream, created=created, last_event=0).on_conflict_do_nothing(
            index_elements=["log_group", "log_stream"])
        return bool(await self._run(lambda conn: conn.execute(statement).rowcount, write=True))

    async def log_stream_infos(self, group: str, stream: str | None = None) -> list[LogStreamInfo]:
        streams = t.log_streams
        query = (sa.select(streams.c.log_stream, streams.c.created, streams.c.first_event, streams.c.last_event,
                           streams.c.last_ingestion)
                 .where(streams.c.log_group == group).order_by(streams.c.log_stream))
        if stream is not None:
            query = query.where(streams.c.log_stream == stream)
        return [LogStreamInfo(name, created, first, last or None, ingestion)
                for name, created, first, last, ingestion in await self._read(query)]

    async def delete_log_stream(self, group: str, stream: str) -> bool:
        """The stream and its events (their bytes no longer count against the group); False if there was none."""
        events, streams = t.log_events, t.log_streams

        def delete(conn: sa.Connection) -> bool:
            gone = conn.execute(sa.delete(streams).where(streams.c.log_group == group,
                                                         streams.c.log_stream == stream)).rowcount
            nbytes = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(t.octet_length(events.c.message)), 0))
                                  .where(events.c.log_group == group, events.c.log_stream == stream)).scalar_one()
            conn.execute(sa.delete(events).where(events.c.log_group == group, events.c.log_stream == stream))
            if nbytes:
                _forget_bytes(conn, {group: int(nbytes)})
            return bool(gone)

        return await self._run(delete, write=True)

    async def log_events_page(self, group: str, streams: Sequence[str] | None, start: int | None, end: int | None,
                              after: tuple[int, int] | None, before: tuple[int, int] | None, limit: int,
                              newest_first: bool, containing: Sequence[str] = ()) -> list[StoredLogEvent]:
        """Up to ``limit`` events of ``group`` (of ``streams`` only, if given) with ``start <= timestamp < end``,
        strictly after ``after`` / before ``before`` in (timestamp, id) order; oldest first, or newest first.
        ``containing``: only events whose message may contain each of these (SQL LIKE, which SQLite compares
        without regard to ASCII case: a superset, for the caller to match exactly)."""
        events = t.log_events
        position = sa.tuple_(events.c.timestamp, events.c.id)
        where: list[ColumnElement[bool]] = [events.c.log_group == group]
        if streams is not None:
            where.append(events.c.log_stream.in_(list(streams)) if len(streams) != 1
                         else events.c.log_stream == streams[0])
        if start is not None:
            where.append(events.c.timestamp >= start)
        if end is not None:
            where.append(events.c.timestamp < end)
        if after is not None:
            where.append(position > sa.tuple_(*after))
        if before is not None:
            where.append(position < sa.tuple_(*before))
        where.extend(events.c.message.contains(text, autoescape=True) for text in containing)
        order = (events.c.timestamp.desc(), events.c.id.desc()) if newest_first else (events.c.timestamp, events.c.id)
        query = (sa.select(events.c.id, events.c.log_stream, events.c.timestamp, events.c.message, events.c.ingested)
                 .where(*where).order_by(*order).limit(limit))
        return [StoredLogEvent(*row) for row in await self._read(query)]

    # -- metrics ---------------------------------------------------------------------------------------------

    async def add_metrics(self, aggregates: Sequence[MetricAggregate],
                          buckets: Sequence[tuple[str, str, str, int, int, float]]) -> None:
        """Add partial aggregates (one transaction): counts and sums add up, the extremes are kept. Buckets are
        (namespace, metric name, dimensions, minute, bucket, count)."""
        if not aggregates and not buckets:
            return
        md, mb = t.metric_data, t.metric_buckets
        rows = self._insert(md)
        rows = rows.on_conflict_do_update(
            index_elements=["namespace", "metric_name", "dimensions", "period"],
            set_={"sample_count": md.c.sample_count + rows.excluded.sample_count,
                  "sum": md.c.sum + rows.excluded.sum,
                  "minimum": sa.case((rows.excluded.minimum < md.c.minimum, rows.excluded.minimum),
                                     else_=md.c.minimum),
                  "maximum": sa.case((rows.excluded.maximum > md.c.maximum, rows.excluded.maximum),
                                     else_=md.c.maximum),
                  "unit": rows.excluded.unit})
        bucket_rows = self._insert(mb)
        bucket_rows = bucket_rows.on_conflict_do_update(
            index_elements=["namespace", "metric_name", "dimensions", "period", "bucket"],
            set_={"count": mb.c.count + bucket_rows.excluded.count})

        def write(conn: sa.Connection) -> None:
            if aggregates:
                conn.execute(rows, [{"namespace": a.namespace, "metric_name": a.metric_name,
                                     "dimensions": a.dimensions, "period": a.period, "unit": a.unit,
                                     "sample_count": a.sample_count, "sum": a.sum, "minimum": a.minimum,
                                     "maximum": a.maximum} for a in aggregates])
            if buckets:
                conn.execute(bucket_rows, [{"namespace": ns, "metric_name": name, "dimensions": dims, "period": period,
                                            "bucket": bucket, "count": count}
                                           for ns, name, dims, period, bucket, count in buckets])

        await self._run(write, write=True)

    async def read_metrics(self, namespace: str, metric_name: str, dimensions: str, start: int,
                           end: int) -> list[MetricAggregate]:
        """The minutes of one metric (exactly these dimensions) from ``start`` (included) to ``end`` (excluded)."""
        md = t.metric_data
        query = (sa.select(md.c.namespace, md.c.metric_name, md.c.dimensions, md.c.period, md.c.unit,
                           md.c.sample_count, md.c.sum, md.c.minimum, md.c.maximum)
                 .where(md.c.namespace == namespace, md.c.metric_name == metric_name, md.c.dimensions == dimensions,
                        md.c.period >= start, md.c.period < end).order_by(md.c.period))
        return [MetricAggregate(*row) for row in await self._read(query)]

    async def read_metric_buckets(self, namespace: str, metric_name: str, dimensions: str, start: int,
                                  end: int) -> list[tuple[int, int, float]]:
        """(minute, bucket, count) of one metric's value distribution over ``start`` to ``end``."""
        mb = t.metric_buckets
        query = (sa.select(mb.c.period, mb.c.bucket, mb.c.count)
                 .where(mb.c.namespace == namespace, mb.c.metric_name == metric_name, mb.c.dimensions == dimensions,
                        mb.c.period >= start, mb.c.period < end))
        return [(int(p), int(b), float(c)) for p, b, c in await self._read(query)]

    async def list_metrics(self, namespace: str | None, metric_name: str | None,
                           since: int) -> list[tuple[str, str, str]]:
        """(namespace, metric name, dimensions) of every metric with data since ``since``, sorted."""
        md = t.metric_data
        query = sa.select(md.c.namespace, md.c.metric_name, md.c.dimensions).where(md.c.period >= since).distinct()
        if namespace is not None:
            query = query.where(md.c.namespace == namespace)
        if metric_name is not None:
            query = query.where(md.c.metric_name == metric_name)
        query = query.order_by(md.c.namespace, md.c.metric_name, md.c.dimensions)
        return [(ns, name, dims) for ns, name, dims in await self._read(query)]

    async def trim_metrics(self, before: int) -> int:
        """Delete the minutes before ``before``; returns how many aggregates went."""
        def trim(conn: sa.Connection) -> int:
            conn.execute(sa.delete(t.metric_buckets).where(t.metric_buckets.c.period < before))
            return int(conn.execute(sa.delete(t.metric_data).where(t.metric_data.c.period < before)).rowcount or 0)

        return await self._run(trim, write=True)

    # -- usage ---------------------------------------------------------------------------------------------

    async def add_usage(self, records: Sequence[UsageRecord]) -> None:
        """One transaction: each record's sums added to its row (INSERT ... ON CONFLICT DO UPDATE SET x = x +
        excluded.x), so nodes adding to one function-hour at once all count."""
        if not records:
            return
        u = t.usage
        statement = self._insert(u)
        statement = statement.on_conflict_do_update(
            index_elements=["function_name", "version", "hour"],
            set_={k: u.c[k] + statement.excluded[k] for k in t.USAGE_SUMS})
        rows = [dataclasses.asdict(r) for r in records]
        await self._run(lambda conn: conn.execute(statement, rows), write=True)

    async def read_usage(self, function_name: str | None = None, since: int | None = None,
                         until: int | None = None) -> list[UsageRecord]:
        u = t.usage
        query = sa.select(u.c.function_name, u.c.version, u.c.hour, *(u.c[k] for k in t.USAGE_SUMS))
        if function_name is not None:
            query = query.where(u.c.function_name == function_name)
        if since is not None:
            query = query.where(u.c.hour >= since)
        if until is not None:
            query = query.where(u.c.hour < until)
        query = query.order_by(u.c.hour, u.c.function_name, u.c.version)
        return [UsageRecord(*row) for row in await self._read(query)]

    # -- for modules that keep tables of their own (lambdad/schedules/store.py) -----------------------------

    async def run(self, work: Callable[[sa.Connection], T], write: bool = False) -> T:
        """``work`` in one transaction on a store thread (see ``_run``)."""
        return await self._run(work, write)

    def upsert(self, table: sa.Table, keys: tuple[str, ...], **values: Any) -> Statement:
        """An insert of ``values`` into ``table`` that updates the row whose ``keys`` it names, if there is one."""
        return self._upsert(table, keys, **values)

    # -- helpers ---------------------------------------------------------------------------------------------

    def _wrote(self, kind: str, name: str) -> None:
        if self.written is not None:
            self.written(kind, name)

    def _upsert(self, table: sa.Table, keys: tuple[str, ...], **values: Any) -> Statement:
        statement = self._insert(table).values(**values)
        return statement.on_conflict_do_update(
            index_elements=list(keys), set_={k: statement.excluded[k] for k in values if k not in keys})

    def _put_version(self, config: VersionRecord) -> Statement:
        return self._upsert(t.versions, ("name", "version"), name=config.name, version=config.version,
                            config=config.to_json())

    def _put_counter(self, name: str, last_version: int, published_from: str) -> Statement:
        return self._upsert(t.version_counters, ("name",), name=name, last_version=last_version,
                            published_from=published_from)

    def _put_alias(self, alias: AliasRecord) -> Statement:
        return self._upsert(t.aliases, ("name", "alias"), name=alias.function_name, alias=alias.name,
                            config=alias.to_json())

    async def _read(self, query: sa.Executable) -> list[Any]:
        return await self._run(lambda conn: _rows(conn, query))

    async def _function_write(self, name: str, expect: int, statements: Sequence[Statement]) -> None:
        """Write function ``name`` in one transaction, if its generation is still ``expect`` (the one the writer's
        copy came from), taking it to ``expect + 1``; else nothing is written and it is a ``StoreConflict``: another
        node changed the function in between."""
        functions = t.functions

        def run(conn: sa.Connection) -> None:
            bumped = conn.execute(sa.update(functions).where(functions.c.name == name, functions.c.generation == expect)
                                  .values(generation=expect + 1))
            if bumped.rowcount != 1:
                raise StoreConflict(name)
            for statement in statements:
                conn.execute(statement)

        await self._run(run, write=True)

    async def _transaction(self, statements: Sequence[Statement]) -> None:
        def run(conn: sa.Connection) -> None:
            for statement in statements:
                conn.execute(statement)

        await self._run(run, write=True)

    async def _run(self, work: Callable[[sa.Connection], T], write: bool = False) -> T:
        """Run ``work`` in one transaction on a store thread (committed when it returns, rolled back when it
        raises). Once begun it runs to its end: a cancelled caller stops waiting, the transaction does not."""
        def transaction() -> T:
            with self._engine.connect() as conn:
                if write:
                    conn = conn.execution_options(write=True)
                with conn.begin():
                    return work(conn)

        return await asyncio.get_running_loop().run_in_executor(self._threads, transaction)


def _rows(conn: sa.Connection, query: sa.Executable) -> list[Any]:
    """Every row of ``query``, as tuples to unpack."""
    return list(conn.execute(query).all())


def _delete_oldest(conn: sa.Connection, excess: int, group: str | None) -> int:
    """Delete the oldest events (of ``group``, or of all; by timestamp, then id) until at least ``excess`` bytes of
    messages are gone; in the caller's transaction. Reads 500 events at a time, oldest first, through the index
    by group and time (or by time)."""
    events = t.log_events
    scope: list[ColumnElement[bool]] = [events.c.log_group == group] if group is not None else []
    position = sa.tuple_(events.c.timestamp, events.c.id)
    freed: dict[str, int] = {}
    gone, count = 0, 0
    last: tuple[int, int] | None = None
    while gone < excess:
        after = [position > sa.tuple_(*last)] if last is not None else []
        rows = _rows(conn, sa.select(events.c.timestamp, events.c.id, events.c.log_group,
                                     t.octet_length(events.c.message))
                     .where(*scope, *after).order_by(events.c.timestamp, events.c.id).limit(500))
        if not rows:
            break
        for timestamp, row_id, row_group, nbytes in rows:
            last = (timestamp, row_id)
            gone += nbytes
            count += 1
            freed[row_group] = freed.get(row_group, 0) + nbytes
            if gone >= excess:
                break
    if count and last is not None:
        conn.execute(sa.delete(events).where(*scope, position <= sa.tuple_(*last)))
        _forget_bytes(conn, freed)
    return count


def _forget_bytes(conn: sa.Connection, freed: dict[str, int]) -> None:
    groups = t.log_group_bytes
    conn.execute(sa.update(groups).where(groups.c.log_group == sa.bindparam("group"))
                 .values(bytes=groups.c.bytes - sa.bindparam("freed")),
                 [{"group": g, "freed": n} for g, n in freed.items()])


def _is_alias(record: VersionRecord | AliasRecord) -> bool:
    """An alias record names its function apart (``function_name``); a version record is its function's name."""
    return hasattr(record, "function_name")
