"""Access keys for users other than root, made with ``lambdad keys create NAME``.

Each key belongs to an IAM-user-like principal ``arn:aws:iam::<account>:user/NAME`` (see ``auth/principals.py``
for what it may do). Keys live in the data dir's SQLite database (table ``access_keys``); these functions open
their own connection, so they work whether or not a server runs, and a running server reads the table on each
use of such a key: a new key works at once, a deleted one is refused at once. The secret is stored as it is
(SigV4 needs it to compute signatures) and shown once, by ``create``.
"""

from __future__ import annotations

import re
import secrets
import sqlite3
import string
import time
from dataclasses import dataclass
from pathlib import Path

from lambdad.errors import LambdadError
from lambdad.store.sqlite import ACCESS_KEYS_SCHEMA

__all__ = ["AccessKey", "create_key", "list_keys", "delete_key", "AccessKeyError"]

_NAME = re.compile(r"[\w+=,.@-]{1,64}")  # IAM's user name pattern
_KEY_ALPHABET = string.ascii_uppercase + "234567"


class AccessKeyError(LambdadError):
    """A key command that cannot be done: a bad or duplicate name, or no such key."""


@dataclass(frozen=True)
class AccessKey:
    name: str
    access_key_id: str
    secret_access_key: str
    created: float  # epoch seconds


def _connect(db: Path) -> sqlite3.Connection:
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db, timeout=10.0, isolation_level=None)  # waits for the server's writes
    conn.executescript(ACCESS_KEYS_SCHEMA)
    return conn


def create_key(db: Path, name: str) -> AccessKey:
    if _NAME.fullmatch(name) is None:
        raise AccessKeyError(f"invalid user name {name!r}: 1 to 64 letters, digits and +=,.@_-")
    key = AccessKey(
        name=name,
        access_key_id="AKIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16)),
        secret_access_key=secrets.token_urlsafe(30),
        created=time.time(),
    )
    conn = _connect(db)
    try:
        conn.execute(
            "INSERT INTO access_keys (access_key_id, name, secret_access_key, created) VALUES (?, ?, ?, ?)",
            (key.access_key_id, key.name, key.secret_access_key, key.created),
        )
    except sqlite3.IntegrityError as exc:
        raise AccessKeyError(f"a key named {name!r} exists already; delete it first") from exc
    finally:
        conn.close()
    return key


def list_keys(db: Path) -> list[AccessKey]:
    """Every key, oldest first (secrets included: the caller decides what to show)."""
    conn = _connect(db)
    try:
        rows = conn.execute(
            "SELECT name, access_key_id, secret_access_key, created FROM access_keys ORDER BY created"
        ).fetchall()
    finally:
        conn.close()
    return [AccessKey(*row) for row in rows]


def delete_key(db: Path, name: str) -> None:
    conn = _connect(db)
    try:
        deleted = conn.execute("DELETE FROM access_keys WHERE name = ?", (name,)).rowcount
    finally:
        conn.close()
    if not deleted:
        raise AccessKeyError(f"no key named {name!r}")
