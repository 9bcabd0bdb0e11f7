"""The outside services some tests need (PostgreSQL, NATS), each test on names of its own.

A test that needs one asks for it through a fixture of conftest.py, which skips the test with the reason when the
service does not answer on its standard loopback port (CI has them all, so there they run).
"""

from __future__ import annotations

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
