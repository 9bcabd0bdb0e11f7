"""The metadata store (store/sql.py) on both of its databases: what is written is read back, a second create of
one name is a conflict (the check that holds across cluster nodes), the migrations make exactly store/schema.py,
and a data dir from before migrations is brought up to date without losing a row."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic import command
from alembic.migration import MigrationContext

from lambdad.store.interfaces import AsyncEvent, LogEvent, StoreConflict
from lambdad.store.migrations import alembic_config
from lambdad.store.schema import metadata
from lambdad.store.sql import SqlStore, database_url


@dataclass
class Version:
    name: str
    version: str
    body: str = ""

    def to_json(self) -> str:
        return json.dumps({"name": self.name, "version": self.version, "body": self.body})


@dataclass
class Alias:
    function_name: str
    name: str

    def to_json(self) -> str:
        return json.dumps({"alias": self.name})


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return database_url(None, tmp_path)
    return database_url(request.getfixturevalue("postgres_url"), tmp_path)


def run(url: str, work: Callable[[SqlStore], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        store = await SqlStore.open(url)
        try:
            return await work(store)
        finally:
            await store.aclose()

    return asyncio.run(main())


def test_what_is_written_is_read_back(store_url: str) -> None:
    async def write(store: SqlStore) -> None:
        await store.create_function(Version("f", "$LATEST", "a"), {"team": "x"})
        await store.publish_version(Version("f", "1", "a"), Version("f", "$LATEST", "b"), "fingerprint", expect=0)
        await store.put_alias(Alias("f", "live"), expect=1)
        await store.put_policy("f", "live", [{"Sid": "s1"}], Alias("f", "live"), expect=2)
        await store.put_tags("f", {"team": "y"}, Version("f", "$LATEST", "c"), expect=3)
        assert await store.put_reserved_concurrency("f", 5, most=900)
        assert await store.put_provisioned_concurrency("f", "1", 2, "2026-12-05T00:00:00.000+0000", 900) is None
        await store.put_layer_version("lib", 1, '{"v": 1}', counter=1)
        await store.put_async_event(AsyncEvent("e1", "f", "live", b"\x00{}", None, 0, 1.0, 1.0))
        await store.reschedule_async_event("e1", 1, 9.5)
        await store.append_logs([LogEvent("/aws/lambda/f", "s1", 5, "one"), LogEvent("/aws/lambda/f", "s1", 4, "two")])
        await store.put_access_key("AKIAEXAMPLE", "alice", "secret", 3.0)
        assert await store.put_iam("user", "alice", '{"UserName": "alice"}', None) == 1
        assert await store.put_iam("user", "alice", '{"UserName": "alice", "Path": "/"}', 1) == 2

    run(store_url, write)  # and read in a new process-like open: nothing lives only in memory

    async def read(store: SqlStore) -> dict[str, Any]:
        (function,) = await store.load_functions()
        return {
            "function": function,
            "reserved": await store.load_reserved_concurrency(),
            "provisioned": await store.load_provisioned_concurrency(),
            "layers": await store.load_layers(),
            "events": await store.load_async_events(),
            "logs": [e.message for e in await store.read_logs("/aws/lambda/f")],
            "streams": await store.list_log_streams("/aws/lambda/f"),
            "key": await store.get_access_key("AKIAEXAMPLE"),
            "keys": await store.list_access_keys(),
            "iam": await store.load_iam(),
        }

    got = run(store_url, read)
    function = got["function"]
    assert function.name == "f" and function.tags == {"team": "y"} and json.loads(function.latest)["body"] == "c"
    assert list(function.versions) == ["1"] and function.last_version == 1 and function.published_from == "fingerprint"
    assert list(function.aliases) == ["live"] and function.policies == {"live": [{"Sid": "s1"}]}
    assert function.generation == 4
    assert got["reserved"] == {"f": 5}
    assert got["provisioned"] == [("f", "1", 2, "2026-12-05T00:00:00.000+0000")]
    assert got["layers"] == (['{"v": 1}'], {"lib": 1})
    assert got["events"] == [AsyncEvent("e1", "f", "live", b"\x00{}", None, 1, 9.5, 1.0)]
    assert got["logs"] == ["one", "two"] and got["streams"] == ["s1"]  # in the order written
    assert got["key"] == ("alice", "secret", "Active")
    assert got["keys"] == [("alice", "AKIAEXAMPLE", "secret", "Active", 3.0)]
    assert got["iam"] == [("user", "alice", '{"UserName": "alice", "Path": "/"}', 2)]

    async def delete(store: SqlStore) -> tuple[Any, ...]:
        await store.delete_async_event("e1")
        await store.delete_function("f", expect=4)
        deleted = (await store.delete_access_key("AKIAEXAMPLE", "alice"),
                   await store.delete_access_key("AKIAEXAMPLE", "alice"))
        return (await store.load_functions(), await store.load_reserved_concurrency(),
                await store.load_provisioned_concurrency(), await store.load_async_events(), deleted)

    assert run(store_url, delete) == ([], {}, [], [], (True, False))


def test_a_second_create_of_one_name_is_a_conflict(store_url: str) -> None:
    async def twice(store: SqlStore) -> None:
        await store.create_function(Version("f", "$LATEST", "first"), {})
        with pytest.raises(StoreConflict):
            await store.create_function(Version("f", "$LATEST", "second"), {})
        await store.put_access_key("AKIA1", "bob", "s", 1.0)
        await store.put_access_key("AKIA2", "bob", "s", 2.0)
        with pytest.raises(StoreConflict):  # IAM's limit: two keys per user
            await store.put_access_key("AKIA3", "bob", "s", 3.0)
        await store.put_iam("role", "r", "{}", None)
        with pytest.raises(StoreConflict):
            await store.put_iam("role", "r", "{}", None)
        with pytest.raises(StoreConflict):  # based on a generation that is not the stored one
            await store.put_iam("role", "r", "{}", 5)
        (function,) = await store.load_functions()
        assert json.loads(function.latest)["body"] == "first"  # the loser wrote nothing

    run(store_url, twice)


def test_a_write_based_on_an_old_copy_is_refused(store_url: str) -> None:
    """Two nodes hold generation 0 of a function; the first write wins, the second changes nothing."""
    async def race(store: SqlStore) -> None:
        await store.create_function(Version("f", "$LATEST", "v0"), {})
        await store.put_version(Version("f", "$LATEST", "node a"), expect=0)
        for late in (store.put_version(Version("f", "$LATEST", "node b"), expect=0),
                     store.publish_version(Version("f", "1", "b"), Version("f", "$LATEST", "b"), "x", expect=0),
                     store.delete_function("f", expect=0)):
            with pytest.raises(StoreConflict):
                await late
        (function,) = await store.load_functions()
        assert json.loads(function.latest)["body"] == "node a" and function.versions == {}
        assert function.generation == 1

    run(store_url, race)


def test_reservations_together_stay_within_the_account(store_url: str) -> None:
    """What two nodes reserving at the same moment could pass in their memories, the store refuses."""
    async def reserve(store: SqlStore) -> None:
        for name in ("a", "b"):
            await store.create_function(Version(name, "$LATEST"), {})
        assert await store.put_reserved_concurrency("a", 600, most=900)
        assert not await store.put_reserved_concurrency("b", 400, most=900)  # 1,000 > 900
        assert await store.put_reserved_concurrency("a", 500, most=900)  # its own old value does not count
        assert await store.put_reserved_concurrency("b", 400, most=900)
        assert await store.load_reserved_concurrency() == {"a": 500, "b": 400}

    run(store_url, reserve)


def test_the_migrations_make_the_schema(store_url: str) -> None:
    async def compare(store: SqlStore) -> list[Any]:
        return await store._run(lambda conn: compare_metadata(MigrationContext.configure(conn), metadata))

    assert run(store_url, compare) == []


# The schema as lambdad made it before migrations (CREATE TABLE IF NOT EXISTS at every start), in part.
_BEFORE_MIGRATIONS = """
CREATE TABLE functions (name TEXT PRIMARY KEY, tags TEXT NOT NULL DEFAULT '{}', created REAL NOT NULL);
CREATE TABLE versions (name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE, version TEXT NOT NULL,
    config TEXT NOT NULL, PRIMARY KEY (name, version));
CREATE TABLE log_events (log_group TEXT NOT NULL, log_stream TEXT NOT NULL, timestamp INTEGER NOT NULL,
    message TEXT NOT NULL);
CREATE INDEX log_events_by_stream ON log_events (log_group, log_stream, timestamp);
CREATE TABLE log_group_bytes (log_group TEXT PRIMARY KEY, bytes INTEGER NOT NULL);
"""


def test_a_data_dir_from_before_migrations_is_upgraded(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "lambdad.db")
    conn.executescript(_BEFORE_MIGRATIONS)
    conn.execute("INSERT INTO functions VALUES ('f', '{}', 1.0)")
    conn.execute("INSERT INTO versions VALUES ('f', '$LATEST', ?)", (Version("f", "$LATEST").to_json(),))
    conn.executemany("INSERT INTO log_events VALUES ('/aws/lambda/f', 's', ?, ?)",
                     [(9 - i, f"line {i}") for i in range(10)])  # timestamps descending: order is the rowid's
    conn.commit()
    conn.close()

    async def read(store: SqlStore) -> tuple[Any, ...]:
        await store.append_logs([LogEvent("/aws/lambda/f", "s", 0, "after")])
        return ([f.name for f in await store.load_functions()],
                [e.message for e in await store.read_logs("/aws/lambda/f")],
                await store.trim_logs(-1, len("line 0") * 8 + len("after"), 10**9))

    names, messages, trimmed = run(database_url(None, tmp_path), read)
    assert names == ["f"]
    assert messages == [f"line {i}" for i in range(10)] + ["after"]
    # the bytes of the old events were counted by the migration: the oldest by timestamp go ("line 9" and "after"
    # at 0, "line 8" at 1) until 12 bytes are gone
    assert trimmed == 3


def test_concurrency_grants_never_pass_the_limit(store_url: str) -> None:
    async def grants(store: SqlStore) -> None:
        now = time.time()
        given = [await store.grant_permits("function:f", node, 2, 5, now - 10) for node in ("a", "b", "c")]
        assert given == [2, 2, 1]  # the third gets what is left
        assert await store.grant_permits("function:f", "a", 1, 5, now - 10) == 0
        assert await store.grant_permits("account", "a", 3, 5, now - 10) == 3  # scopes apart
        assert await store.settle_permits("b", {"function:f": 1}) == set()  # b gives one back
        assert await store.grant_permits("function:f", "c", 5, 5, now - 10) == 1
        # a share not renewed in time counts for nothing, and its holder learns it lost it
        assert await store.grant_permits("function:f", "d", 5, 5, time.time() + 1) == 5
        assert await store.settle_permits("a", {"function:f": 2, "account": 3}) == {"function:f"}  # voided by d's grant

    run(store_url, grants)


@pytest.mark.timeout(60)
def test_nodes_starting_together_migrate_one_after_another(postgres_url: str, tmp_path: Path) -> None:
    """Five stores opened at once on an empty database (five nodes starting together): each finds the schema made
    or makes it, none fails on another's half-made tables (without the lock they lock each other up)."""
    url = database_url(postgres_url, tmp_path)

    async def open_all() -> None:
        stores = await asyncio.gather(*(SqlStore.open(url) for _ in range(5)))
        for store in stores:
            await store.aclose()

    asyncio.run(open_all())


def test_provisioned_concurrency_is_checked_against_every_stored_limit(store_url: str) -> None:
    """The limits of a provisioned concurrency config are decided in the transaction that stores it, over what all
    nodes stored: within the function's reservation, else within what reservations leave unreserved."""
    async def check(store: SqlStore) -> None:
        await store.create_function(Version("f", "$LATEST", "a"), {})
        await store.create_function(Version("g", "$LATEST", "a"), {})
        assert await store.put_reserved_concurrency("f", 5, most=900)
        assert await store.put_provisioned_concurrency("f", "1", 2, "t", 900) is None
        assert await store.put_provisioned_concurrency("f", "2", 4, "t", 900) == 5  # 2 + 4 > the reservation
        assert await store.put_provisioned_concurrency("f", "1", 5, "t", 900) is None  # a config replaces its own
        assert await store.put_provisioned_concurrency("g", "1", 896, "t", 900) == 900  # 5 reserved + 896 > 900
        assert await store.put_provisioned_concurrency("g", "1", 895, "t", 900) is None
        assert await store.put_provisioned_concurrency("g", "2", 1, "t", 900) == 900
        stored = sorted((n, q, r) for n, q, r, _ in await store.load_provisioned_concurrency())
        assert stored == [("f", "1", 5), ("g", "1", 895)]

    run(store_url, check)


def test_keys_made_before_iam_move_to_their_users(tmp_path: Path) -> None:
    """A data dir whose ``lambdad keys`` keys predate IAM (migration 0005): each key keeps working, now an IAM
    user's, and the user is created."""
    url = database_url(None, tmp_path)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0004")
        conn.execute(sa.text("INSERT INTO access_keys VALUES ('AKIAOLD', 'alice', 'secret', 5.0)"))
    engine.dispose()

    async def read(store: SqlStore) -> tuple[Any, ...]:
        return await store.get_access_key("AKIAOLD"), await store.load_iam()

    key, entities = run(url, read)
    assert key == ("alice", "secret", "Active")
    ((kind, name, record, generation),) = entities
    assert (kind, name, generation) == ("user", "alice", 1)
    assert json.loads(record)["UserId"].startswith("AIDA")


def test_metric_aggregates_are_added_up_by_every_writer(store_url: str) -> None:
    """Two nodes' partial aggregates of one minute: counts and sums add up, the extremes are kept, bucket counts add
    up; other minutes and dimensions stay apart; a trim takes the old minutes only."""
    from lambdad.store.interfaces import MetricAggregate

    def agg(dims: str, period: int, n: float, total: float, low: float, high: float) -> MetricAggregate:
        return MetricAggregate("AWS/Lambda", "Duration", dims, period, "Milliseconds", n, total, low, high)

    async def work(store: SqlStore) -> Any:
        f = '[["FunctionName","f"]]'
        await store.add_metrics([agg(f, 600, 2, 10.0, 4.0, 6.0), agg("[]", 600, 2, 10.0, 4.0, 6.0)],
                                [("AWS/Lambda", "Duration", f, 600, 7, 2.0)])
        await store.add_metrics([agg(f, 600, 3, 6.0, 1.0, 3.0), agg(f, 660, 1, 9.0, 9.0, 9.0)],
                                [("AWS/Lambda", "Duration", f, 600, 7, 1.0), ("AWS/Lambda", "Duration", f, 600, 9, 1.0)])
        rows = await store.read_metrics("AWS/Lambda", "Duration", f, 0, 1000)
        buckets = await store.read_metric_buckets("AWS/Lambda", "Duration", f, 600, 660)
        listed = await store.list_metrics("AWS/Lambda", None, 0)
        deleted = await store.trim_metrics(660)
        left = await store.read_metrics("AWS/Lambda", "Duration", f, 0, 1000)
        return rows, sorted(buckets), listed, deleted, left

    rows, buckets, listed, deleted, left = run(store_url, work)
    assert [(r.period, r.sample_count, r.sum, r.minimum, r.maximum) for r in rows] == [
        (600, 5, 16.0, 1.0, 6.0), (660, 1, 9.0, 9.0, 9.0)]
    assert buckets == [(600, 7, 3.0), (600, 9, 1.0)]
    assert sorted(listed) == [("AWS/Lambda", "Duration", '[["FunctionName","f"]]'), ("AWS/Lambda", "Duration", "[]")]
    assert deleted == 2 and [r.period for r in left] == [660]


def test_stacks_are_put_at_the_generation_read(store_url: str) -> None:
    """A stack (lambdad deploy's record, store/sql_stacks.py) is written only over the generation its writer read,
    so two deploys of one stack on two nodes cannot both record their outcome."""
    from lambdad.store.sql_stacks import StackRecord

    async def work(store: SqlStore) -> None:
        record = StackRecord("web", "arn:aws:cloudformation:us-east-1:0:stack/web/1", 1, "h1", "CREATE_COMPLETE",
                             '{"Resources": {}}', 1.0, 1.0)
        assert await store.put_stack(record, 0)
        assert not await store.put_stack(record, 0)  # it exists now
        again = StackRecord("web", record.stack_id, 2, "h2", "UPDATE_COMPLETE", "{}", 1.0, 2.0)
        assert await store.put_stack(again, 1)
        assert not await store.put_stack(again, 1)  # a stale generation
        found = await store.get_stack("web")
        assert found is not None and (found.generation, found.template_hash, found.created) == (2, "h2", 1.0)
        assert [s.name for s in await store.list_stacks()] == ["web"]
        assert not await store.delete_stack("web", 1)
        assert await store.delete_stack("web", 2)
        assert await store.get_stack("web") is None and not await store.delete_stack("web")

    run(store_url, work)
