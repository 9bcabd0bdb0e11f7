"""Access keys for users other than root, made with ``lambdad keys create NAME``.

Each key belongs to an IAM-user-like principal ``arn:aws:iam::<account>:user/NAME`` (see ``auth/principals.py``
for what it may do). Keys live in the metadata store (table ``access_keys``: the data dir's SQLite database, or
the cluster's PostgreSQL); the ``lambdad keys`` commands open the store themselves, so they work whether or not a
server runs, and a running server reads the table on each use of such a key: a new key works at once, a deleted one is refused at once. The secret is stored as it is
(SigV4 needs it to compute signatures) and shown once, by ``create``.
"""

from __future__ import annotations

import re
import secrets
import string
import time
from dataclasses import dataclass

from lambdad.errors import LambdadError
from lambdad.store.interfaces import KeyStore, StoreConflict

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


async def create_key(store: KeyStore, name: str) -> AccessKey:
    if _NAME.fullmatch(name) is None:
        raise AccessKeyError(f"invalid user name {name!r}: 1 to 64 letters, digits and +=,.@_-")
    key = AccessKey(
        name=name,
        access_key_id="AKIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16)),
        secret_access_key=secrets.token_urlsafe(30),
        created=time.time(),
    )
    try:
        await store.put_access_key(key.access_key_id, key.name, key.secret_access_key, key.created)
    except StoreConflict as exc:
        raise AccessKeyError(f"a key named {name!r} exists already; delete it first") from exc
    return key


async def list_keys(store: KeyStore) -> list[AccessKey]:
    """Every key, oldest first (secrets included: the caller decides what to show)."""
    return [AccessKey(*row) for row in await store.list_access_keys()]


async def delete_key(store: KeyStore, name: str) -> None:
    if not await store.delete_access_key(name):
        raise AccessKeyError(f"no key named {name!r}")
