"""The outside services some tests need (PostgreSQL, NATS), each test on names of its own.

A test that needs one asks for it through a fixture of conftest.py, which skips the test with the reason when the
service does not answer on its standard loopback port (CI has them all, so there they run).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
from typing import Iterator

POSTGRES = "postgresql://postgres@127.0.0.1:5432"
NATS = "nats://127.0.0.1:4222"


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES + "/postgres", autocommit=True) as conn:
        conn.execute(sql)


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test (or one test module's servers); dropped afterwards."""
    name = f"lambdad_test_{secrets.token_hex(6)}"
    _admin(f"CREATE DATABASE {name}")
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def _forget_cluster(name: str) -> None:
    """Delete the JetStream streams (key-value and object buckets are streams too) of cluster ``name``."""
    import nats

    client = await nats.connect(NATS, connect_timeout=2)
    try:
        js = client.jetstream()
        for info in await js.streams_info():
            stream = info.config.name or ""
            if stream.startswith((f"{name}_", f"KV_{name}_", f"OBJ_{name}_")):
                await js.delete_stream(stream)
    finally:
        await client.close()


@contextlib.contextmanager
def nats_cluster_name() -> Iterator[str]:
    """A cluster name of one test's own (every subject, stream and bucket of its nodes starts with it); its
    streams and buckets are deleted afterwards."""
    name = f"t{secrets.token_hex(5)}"
    try:
        yield name
    finally:
        asyncio.run(_forget_cluster(name))
