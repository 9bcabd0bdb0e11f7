"""The metadata store's foundation: one implementation, on SQLAlchemy Core, for SQLite (embedded) and PostgreSQL (cluster).

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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement


__all__ = ["SqlBase", "Statement", "database_url", "greatest", "open_engine"]

T = TypeVar("T")
S = TypeVar("S", bound="SqlBase")
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


class SqlBase:
    """What every part of the store shares: the engine, the worker threads, a transaction's run (``_run``,
    ``_transaction``, ``_read``), the dialect's upsert and the change callback (``written``). Owner of its engine and
    threads. The parts (sql_functions.py, sql_sources.py, sql_access.py, sql_logs.py, sql_metrics.py) add the
    operations of their tables; ``SqlStore`` (sql.py) is all of them."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self.dialect = engine.dialect.name
        self._insert = sqlite.insert if self.dialect == "sqlite" else postgresql.insert
        self._threads = ThreadPoolExecutor(1 if self.dialect == "sqlite" else _POOL, thread_name_prefix="store")
        # told (kind, name) after each committed write of shared state: cluster/notices.py tells the other nodes
        self.written: Callable[[str, str], None] | None = None

    @classmethod
    async def open(cls: type[S], url: str) -> S:
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

    # -- helpers ---------------------------------------------------------------------------------------------

    # -- for modules that keep tables of their own (lambdad/schedules/store.py) -----------------------------

    async def run(self, work: Callable[[sa.Connection], T], write: bool = False) -> T:
        """``work`` in one transaction on a store thread (see ``_run``)."""
        return await self._run(work, write)

    def upsert(self, table: sa.Table, keys: tuple[str, ...], **values: Any) -> Statement:
        """An insert of ``values`` into ``table`` that updates the row whose ``keys`` it names, if there is one."""
        return self._upsert(table, keys, **values)

    def _wrote(self, kind: str, name: str) -> None:
        if self.written is not None:
            self.written(kind, name)

    def _upsert(self, table: sa.Table, keys: tuple[str, ...], **values: Any) -> Statement:
        statement = self._insert(table).values(**values)
        return statement.on_conflict_do_update(
            index_elements=list(keys), set_={k: statement.excluded[k] for k in values if k not in keys})

    async def _read(self, query: sa.Executable) -> list[Any]:
        return await self._run(lambda conn: _rows(conn, query))

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
