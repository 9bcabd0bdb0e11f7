"""The embedded metadata store: one SQLite database in the data dir.

Every write goes through aiosqlite's single worker thread (one writer, like Datasette), so the event loop never
blocks on disk. The database runs in WAL mode with ``synchronous=FULL``: when a write method returns, the row is
on disk, which is what lets the API promise that a created function or an accepted async event survives kill -9.

Log lines are the exception to "one write per call": they arrive in batches from ``logs.LogSink``.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import aiosqlite

from lambdad.store.interfaces import AliasRecord, AsyncEvent, LogEvent, StoredFunction, VersionRecord

__all__ = ["SqliteStore", "AsyncEvent", "LogEvent", "ACCESS_KEYS_SCHEMA"]

Statement = tuple[str, Iterable[Any]]

# Written by ``lambdad keys`` (auth/keys.py, its own connection, server running or not) and read by the server.
ACCESS_KEYS_SCHEMA = """
CREATE TABLE IF NOT EXISTS access_keys (
    access_key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    secret_access_key TEXT NOT NULL,
    created REAL NOT NULL
);
"""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS functions (
    name TEXT PRIMARY KEY,
    tags TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
    name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    version TEXT NOT NULL,
    config TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS version_counters (
    name TEXT PRIMARY KEY REFERENCES functions(name) ON DELETE CASCADE,
    last_version INTEGER NOT NULL,
    published_from TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS aliases (
    name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    alias TEXT NOT NULL,
    config TEXT NOT NULL,
    PRIMARY KEY (name, alias)
);
CREATE TABLE IF NOT EXISTS policies (
    name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    qualifier TEXT NOT NULL,
    statements TEXT NOT NULL,
    PRIMARY KEY (name, qualifier)
);
CREATE TABLE IF NOT EXISTS reserved_concurrency (
    name TEXT PRIMARY KEY REFERENCES functions(name) ON DELETE CASCADE,
    reserved INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS layer_versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS layer_counters (
    name TEXT PRIMARY KEY,
    last_version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS provisioned_concurrency (
    name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    qualifier TEXT NOT NULL,
    requested INTEGER NOT NULL,
    last_modified TEXT NOT NULL,
    PRIMARY KEY (name, qualifier)
);
CREATE TABLE IF NOT EXISTS async_events (
    id TEXT PRIMARY KEY,
    function_name TEXT NOT NULL,
    qualifier TEXT NOT NULL,
    payload BLOB NOT NULL,
    client_context TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before REAL NOT NULL,
    received REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS log_streams (
    log_group TEXT NOT NULL,
    log_stream TEXT NOT NULL,
    created INTEGER NOT NULL,
    last_event INTEGER NOT NULL,
    PRIMARY KEY (log_group, log_stream)
);
CREATE TABLE IF NOT EXISTS log_events (
    log_group TEXT NOT NULL,
    log_stream TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS log_events_by_stream ON log_events (log_group, log_stream, timestamp);
CREATE INDEX IF NOT EXISTS log_events_by_group ON log_events (log_group);
CREATE INDEX IF NOT EXISTS log_events_by_time ON log_events (timestamp);
CREATE TABLE IF NOT EXISTS log_group_bytes (
    log_group TEXT PRIMARY KEY,
    bytes INTEGER NOT NULL
);
""" + ACCESS_KEYS_SCHEMA


class SqliteStore:
    """Function metadata (functions, versions and their counter, aliases, resource policies), the async event
    queue and log events in one SQLite file. Owner of its connection."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        # One connection serves every coroutine; the lock keeps one coroutine's transaction from taking in
        # another's statements.
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> "SqliteStore":
        db = await aiosqlite.connect(path, isolation_level=None)
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=FULL")
        # the write-ahead log is truncated back to 64 MB after a checkpoint: a burst of log writes (a function
        # flooding its output) does not leave a file of its size behind (444 MB after a 3 s flood)
        await db.execute("PRAGMA journal_size_limit=67108864")
        await db.execute("PRAGMA foreign_keys=ON")
        await db.executescript(_SCHEMA)
        # a data dir from before log_group_bytes: count what its log groups hold, once
        async with db.execute("SELECT (SELECT COUNT(*) FROM log_group_bytes), "
                              "EXISTS (SELECT 1 FROM log_events)") as cur:
            counted, any_logs = await cur.fetchone()  # type: ignore[misc]
        if not counted and any_logs:
            await db.execute("INSERT INTO log_group_bytes SELECT log_group, SUM(length(CAST(message AS BLOB))) "
                             "FROM log_events GROUP BY log_group")
        return cls(db)

    async def aclose(self) -> None:
        await self._db.close()

    # -- functions -------------------------------------------------------------------------------------------

    async def load_functions(self) -> list[StoredFunction]:
        tags: dict[str, dict[str, str]] = {}
        async with self._db.execute("SELECT name, tags FROM functions") as cur:
            async for name, tag_text in cur:
                tags[name] = json.loads(tag_text)
        async with self._db.execute("SELECT name, version, config FROM versions") as cur:
            rows = await cur.fetchall()
        functions = {name: StoredFunction(name=name, latest=cfg, tags=tags.get(name, {}))
                     for name, version, cfg in rows if version == "$LATEST"}
        for name, version, cfg in rows:
            if version != "$LATEST" and name in functions:
                functions[name].versions[version] = cfg
        async with self._db.execute("SELECT name, last_version, published_from FROM version_counters") as cur:
            for name, last_version, published_from in await cur.fetchall():
                if name in functions:
                    functions[name].last_version = last_version
                    functions[name].published_from = published_from
        async with self._db.execute("SELECT name, alias, config FROM aliases") as cur:
            for name, alias, cfg in await cur.fetchall():
                if name in functions:
                    functions[name].aliases[alias] = cfg
        async with self._db.execute("SELECT name, qualifier, statements FROM policies") as cur:
            for name, qualifier, statements in await cur.fetchall():
                if name in functions:
                    functions[name].policies[qualifier] = json.loads(statements)
        return list(functions.values())

    async def create_function(self, config: VersionRecord, tags: dict[str, str], published: VersionRecord | None = None,
                              fingerprint: str = "") -> None:
        """Store a new function; with ``published``, its version 1 too (published from $LATEST as it was then:
        ``fingerprint``), in the same transaction."""
        statements: list[Statement] = [
            ("INSERT INTO functions (name, tags, created) VALUES (?, ?, ?)", (config.name, json.dumps(tags), time.time())),
            _put_version(config),
        ]
        if published is not None:
            statements += [_put_version(published), _put_counter(config.name, int(published.version), fingerprint)]
        await self._transaction(statements)

    async def put_version(self, config: VersionRecord) -> None:
        await self._write(*_put_version(config))

    async def publish_version(self, version: VersionRecord, latest: VersionRecord, published_from: str) -> None:
        """Store a newly published version, the $LATEST it came from and the version counter, atomically."""
        await self._transaction(
            [_put_version(version), _put_version(latest), _put_counter(latest.name, int(version.version), published_from)]
        )

    async def put_tags(self, name: str, tags: dict[str, str], latest: VersionRecord) -> None:
        """Replace a function's tags; ``latest`` carries the new revision id that a tag change gives $LATEST."""
        await self._transaction(
            [("UPDATE functions SET tags = ? WHERE name = ?", (json.dumps(tags), name)), _put_version(latest)]
        )

    async def delete_function(self, name: str) -> None:
        await self._transaction(
            [
                ("DELETE FROM policies WHERE name = ?", (name,)),
                ("DELETE FROM reserved_concurrency WHERE name = ?", (name,)),
                ("DELETE FROM provisioned_concurrency WHERE name = ?", (name,)),
                ("DELETE FROM aliases WHERE name = ?", (name,)),
                ("DELETE FROM version_counters WHERE name = ?", (name,)),
                ("DELETE FROM versions WHERE name = ?", (name,)),
                ("DELETE FROM functions WHERE name = ?", (name,)),
            ]
        )

    async def delete_version(self, name: str, version: str) -> None:
        """Delete a published version and its resource policy."""
        await self._transaction(
            [
                ("DELETE FROM versions WHERE name = ? AND version = ?", (name, version)),
                ("DELETE FROM policies WHERE name = ? AND qualifier = ?", (name, version)),
            ]
        )

    async def put_alias(self, alias: AliasRecord) -> None:
        await self._write(*_put_alias(alias))

    async def delete_alias(self, function_name: str, alias_name: str) -> None:
        """Delete an alias and its resource policy."""
        await self._transaction(
            [
                ("DELETE FROM aliases WHERE name = ? AND alias = ?", (function_name, alias_name)),
                ("DELETE FROM policies WHERE name = ? AND qualifier = ?", (function_name, alias_name)),
            ]
        )

    async def put_policy(
        self, name: str, qualifier: str, statements: list[dict[str, Any]], target: VersionRecord | AliasRecord
    ) -> None:
        """Replace the policy of ``qualifier`` (none left: delete it) and store ``target`` (the version or alias
        the policy belongs to, with its new revision id) in the same transaction."""
        if statements:
            policy: Statement = (
                "INSERT OR REPLACE INTO policies (name, qualifier, statements) VALUES (?, ?, ?)",
                (name, qualifier, json.dumps(statements, separators=(",", ":"))),
            )
        else:
            policy = ("DELETE FROM policies WHERE name = ? AND qualifier = ?", (name, qualifier))
        owner = _put_alias(target) if _is_alias(target) else _put_version(target)  # type: ignore[arg-type]
        await self._transaction([policy, owner])

    # -- reserved concurrency --------------------------------------------------------------------------------

    async def load_reserved_concurrency(self) -> dict[str, int]:
        async with self._db.execute("SELECT name, reserved FROM reserved_concurrency") as cur:
            return {name: reserved for name, reserved in await cur.fetchall()}

    async def put_reserved_concurrency(self, name: str, reserved: int) -> None:
        await self._write("INSERT OR REPLACE INTO reserved_concurrency (name, reserved) VALUES (?, ?)", (name, reserved))

    async def delete_reserved_concurrency(self, name: str) -> None:
        await self._write("DELETE FROM reserved_concurrency WHERE name = ?", (name,))

    # -- layers ----------------------------------------------------------------------------------------------

    async def load_layers(self) -> tuple[list[str], dict[str, int]]:
        """Every layer version record (JSON, deleted ones too) and each layer's highest version number."""
        async with self._db.execute("SELECT record FROM layer_versions") as cur:
            records = [row[0] for row in await cur.fetchall()]
        async with self._db.execute("SELECT name, last_version FROM layer_counters") as cur:
            counters = {name: last for name, last in await cur.fetchall()}
        return records, counters

    async def put_layer_version(self, name: str, version: int, record: str, counter: int | None = None) -> None:
        """Store a layer version's record; with ``counter``, the layer's version counter in the same transaction."""
        statements: list[Statement] = [
            ("INSERT OR REPLACE INTO layer_versions (name, version, record) VALUES (?, ?, ?)", (name, version, record))
        ]
        if counter is not None:
            statements.append(
                ("INSERT OR REPLACE INTO layer_counters (name, last_version) VALUES (?, ?)", (name, counter))
            )
        await self._transaction(statements)

    async def load_provisioned_concurrency(self) -> list[tuple[str, str, int, str]]:
        """(function name, qualifier, requested, last modified) of every provisioned concurrency config."""
        async with self._db.execute("SELECT name, qualifier, requested, last_modified FROM provisioned_concurrency") as cur:
            return [tuple(row) for row in await cur.fetchall()]

    async def put_provisioned_concurrency(self, name: str, qualifier: str, requested: int, last_modified: str) -> None:
        await self._write(
            "INSERT OR REPLACE INTO provisioned_concurrency (name, qualifier, requested, last_modified) VALUES (?, ?, ?, ?)",
            (name, qualifier, requested, last_modified),
        )

    async def delete_provisioned_concurrency(self, name: str, qualifier: str) -> None:
        await self._write("DELETE FROM provisioned_concurrency WHERE name = ? AND qualifier = ?", (name, qualifier))

    # -- async events ----------------------------------------------------------------------------------------

    async def put_async_event(self, event: AsyncEvent) -> None:
        await self._write(
            "INSERT INTO async_events (id, function_name, qualifier, payload, client_context, attempts, not_before, received)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (event.id, event.function_name, event.qualifier, event.payload, event.client_context, event.attempts,
             event.not_before, event.received),
        )

    async def reschedule_async_event(self, event_id: str, attempts: int, not_before: float) -> None:
        await self._write(
            "UPDATE async_events SET attempts = ?, not_before = ? WHERE id = ?", (attempts, not_before, event_id)
        )

    async def delete_async_event(self, event_id: str) -> None:
        await self._write("DELETE FROM async_events WHERE id = ?", (event_id,))

    async def load_async_events(self) -> list[AsyncEvent]:
        async with self._db.execute(
            "SELECT id, function_name, qualifier, payload, client_context, attempts, not_before, received"
            " FROM async_events ORDER BY received"
        ) as cur:
            return [AsyncEvent(*row) for row in await cur.fetchall()]

    # -- access keys (made by ``lambdad keys``) --------------------------------------------------------------

    async def get_access_key(self, access_key_id: str) -> tuple[str, str] | None:
        """(user name, secret) of an access key made by ``lambdad keys create``; read on every use, so that a key
        made or deleted while the server runs counts at once."""
        async with self._db.execute(
            "SELECT name, secret_access_key FROM access_keys WHERE access_key_id = ?", (access_key_id,)
        ) as cur:
            row = await cur.fetchone()
        return (row[0], row[1]) if row is not None else None

    # -- logs ------------------------------------------------------------------------------------------------

    async def append_logs(self, events: Sequence[LogEvent]) -> None:
        if not events:
            return
        streams: dict[tuple[str, str], tuple[int, int]] = {}
        for e in events:
            first, last = streams.get((e.log_group, e.log_stream), (e.timestamp, e.timestamp))
            streams[(e.log_group, e.log_stream)] = (min(first, e.timestamp), max(last, e.timestamp))
        statements: list[tuple[str, Iterable[Any]]] = [
            (
                "INSERT INTO log_streams (log_group, log_stream, created, last_event) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (log_group, log_stream) DO UPDATE SET last_event = max(last_event, excluded.last_event)",
                (group, stream, first, last),
            )
            for (group, stream), (first, last) in streams.items()
        ]
        rows = [(e.log_group, e.log_stream, e.timestamp, e.message) for e in events]
        sizes: dict[str, int] = {}
        for e in events:
            sizes[e.log_group] = sizes.get(e.log_group, 0) + len(e.message.encode("utf-8", "surrogatepass"))
        statements += [("INSERT INTO log_group_bytes (log_group, bytes) VALUES (?, ?) ON CONFLICT (log_group) "
                        "DO UPDATE SET bytes = bytes + excluded.bytes", item) for item in sizes.items()]
        async with self._write_lock:
            await self._db.execute("BEGIN")
            try:
                for sql, args in statements:
                    await self._db.execute(sql, args)
                await self._db.executemany(
                    "INSERT INTO log_events (log_group, log_stream, timestamp, message) VALUES (?, ?, ?, ?)", rows
                )
                await self._db.execute("COMMIT")
            except BaseException:
                await self._rollback()
                raise

    async def trim_logs(self, older_than_ms: int, group_bytes: int, total_bytes: int) -> int:
        """Log retention: delete events older than ``older_than_ms`` (epoch ms), then each group's oldest events
        past its newest ``group_bytes`` of messages, then the oldest of all past the newest ``total_bytes``;
        and the streams left empty. Freed pages are reused by later writes. Returns the events deleted.

        What each group holds is kept in ``log_group_bytes`` (added to by every append), so a trim reads only
        the events it deletes (found through the indexes by time, by group, and by rowid, oldest first), never
        the ones it keeps: it costs in proportion to what it removes, not to the size of the database (the
        whole table was read, under the write lock, at every trim: ~1.1 s at 200 MB)."""
        size = "length(CAST(message AS BLOB))"
        deleted = 0
        async with self._write_lock:
            await self._db.execute("BEGIN")
            try:
                freed: dict[str, int] = {}
                async with self._db.execute(f"SELECT log_group, COUNT(*), SUM({size}) FROM log_events INDEXED BY "
                                            "log_events_by_time WHERE timestamp < ? GROUP BY log_group",
                                            (older_than_ms,)) as cur:  # by time: only the rows that go
                    async for group, count, nbytes in cur:
                        freed[group] = nbytes
                        deleted += count
                if freed:
                    await self._db.execute("DELETE FROM log_events WHERE timestamp < ?", (older_than_ms,))
                    await self._forget_bytes(freed)
                async with self._db.execute("SELECT log_group, bytes FROM log_group_bytes WHERE bytes > ?",
                                            (group_bytes,)) as cur:
                    over = await cur.fetchall()
                for group, nbytes in over:
                    deleted += await self._delete_oldest(nbytes - group_bytes, group)
                async with self._db.execute("SELECT COALESCE(SUM(bytes), 0) FROM log_group_bytes") as cur:
                    total = (await cur.fetchone())[0]  # type: ignore[index]
                if total > total_bytes:
                    deleted += await self._delete_oldest(total - total_bytes, None)
                if deleted:
                    await self._db.execute(
                        "DELETE FROM log_streams WHERE NOT EXISTS (SELECT 1 FROM log_events e WHERE "
                        "e.log_group = log_streams.log_group AND e.log_stream = log_streams.log_stream)")
                    await self._db.execute("DELETE FROM log_group_bytes WHERE bytes <= 0")
                await self._db.execute("COMMIT")
            except BaseException:
                await self._rollback()
                raise
        return deleted

    async def _delete_oldest(self, excess: int, group: str | None) -> int:
        """Delete the oldest events (of ``group``, or of all) until at least ``excess`` bytes of messages are
        gone; in the caller's transaction. Reads 500 events at a time, oldest first."""
        where, args = ("WHERE log_group = ? AND rowid > ?", [group]) if group is not None else ("WHERE rowid > ?", [])
        freed: dict[str, int] = {}
        gone, last, count = 0, 0, 0
        while gone < excess:
            async with self._db.execute(
                    f"SELECT rowid, log_group, length(CAST(message AS BLOB)) FROM log_events {where} ORDER BY rowid "
                    "LIMIT 500", (*args, last)) as cur:
                rows = await cur.fetchall()
            if not rows:
                break
            for rowid, row_group, nbytes in rows:
                last = rowid
                gone += nbytes
                count += 1
                freed[row_group] = freed.get(row_group, 0) + nbytes
                if gone >= excess:
                    break
        if count:
            if group is not None:
                await self._db.execute("DELETE FROM log_events WHERE log_group = ? AND rowid <= ?", (group, last))
            else:
                await self._db.execute("DELETE FROM log_events WHERE rowid <= ?", (last,))
            await self._forget_bytes(freed)
        return count

    async def _forget_bytes(self, freed: dict[str, int]) -> None:
        await self._db.executemany("UPDATE log_group_bytes SET bytes = bytes - ? WHERE log_group = ?",
                                   [(nbytes, group) for group, nbytes in freed.items()])

    async def read_logs(self, log_group: str, log_stream: str | None = None) -> list[LogEvent]:
        args: tuple[str, ...]
        if log_stream is None:
            sql, args = "SELECT log_group, log_stream, timestamp, message FROM log_events WHERE log_group = ? ORDER BY rowid", (log_group,)
        else:
            sql = ("SELECT log_group, log_stream, timestamp, message FROM log_events"
                   " WHERE log_group = ? AND log_stream = ? ORDER BY rowid")
            args = (log_group, log_stream)
        async with self._db.execute(sql, args) as cur:
            return [LogEvent(*row) for row in await cur.fetchall()]

    async def list_log_streams(self, log_group: str) -> list[str]:
        async with self._db.execute(
            "SELECT log_stream FROM log_streams WHERE log_group = ? ORDER BY created", (log_group,)
        ) as cur:
            return [row[0] for row in await cur.fetchall()]

    # -- helpers ---------------------------------------------------------------------------------------------

    async def _write(self, sql: str, args: Iterable[Any]) -> None:
        async with self._write_lock:
            await self._db.execute(sql, args)

    async def _transaction(self, statements: Sequence[tuple[str, Iterable[Any]]]) -> None:
        async with self._write_lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                for sql, args in statements:
                    await self._db.execute(sql, args)
                await self._db.execute("COMMIT")
            except BaseException:
                await self._rollback()
                raise

    async def _rollback(self) -> None:
        """Undo the open transaction, if there still is one: a cancellation can reach the caller after the COMMIT
        ran in aiosqlite's thread, and then the caller must see that cancellation, not a failed ROLLBACK (which
        would swallow it)."""
        if self._db.in_transaction:
            await self._db.execute("ROLLBACK")


def _is_alias(record: VersionRecord | AliasRecord) -> bool:
    """An alias record names its function apart (``function_name``); a version record is its function's name."""
    return hasattr(record, "function_name")


def _put_version(config: VersionRecord) -> Statement:
    return (
        "INSERT OR REPLACE INTO versions (name, version, config) VALUES (?, ?, ?)",
        (config.name, config.version, config.to_json()),
    )


def _put_counter(name: str, last_version: int, published_from: str) -> Statement:
    return (
        "INSERT OR REPLACE INTO version_counters (name, last_version, published_from) VALUES (?, ?, ?)",
        (name, last_version, published_from),
    )


def _put_alias(alias: AliasRecord) -> Statement:
    return (
        "INSERT OR REPLACE INTO aliases (name, alias, config) VALUES (?, ?, ?)",
        (alias.function_name, alias.name, alias.to_json()),
    )
