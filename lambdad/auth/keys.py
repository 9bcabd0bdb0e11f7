"""``lambdad keys``: access keys of IAM users, from the command line, whether or not a server runs.

A thin wrapper over IAM (``lambdad/iam/``): ``create NAME`` makes the IAM user NAME when there is none (with no
policies: it may do what resource policies grant it, until policies are attached with ``aws iam``) and an access
key for it; ``list`` lists every user's keys; ``delete NAME`` deletes all of NAME's keys (the user stays). The
same keys are made with ``aws iam create-access-key``. Keys live in the metadata store (``iam_access_keys``: the
data dir's SQLite database, or the cluster's PostgreSQL); a running server reads a key on each use, so a new key
works at once and a deleted one is refused at once. The secret is stored as it is (SigV4 needs it to compute
signatures) and shown once, by ``create``.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass

from lambdad.errors import LambdadError
from lambdad.iam.service import MAX_KEYS_PER_USER, new_user_record, unique_id
from lambdad.store.interfaces import IamStore, StoreConflict

__all__ = ["AccessKey", "create_key", "list_keys", "delete_key", "AccessKeyError"]

_NAME = re.compile(r"[\w+=,.@-]{1,64}")  # IAM's user name pattern


class AccessKeyError(LambdadError):
    """A key command that cannot be done: a bad name, a user with two keys already, or no such key."""


@dataclass(frozen=True)
class AccessKey:
    name: str
    access_key_id: str
    secret_access_key: str
    status: str
    created: float  # epoch seconds


async def create_key(store: IamStore, name: str) -> AccessKey:
    if _NAME.fullmatch(name) is None:
        raise AccessKeyError(f"invalid user name {name!r}: 1 to 64 letters, digits and +=,.@_-")
    if await store.get_iam("user", name) is None:
        try:
            await store.put_iam("user", name, json.dumps(new_user_record(name)), None)
        except StoreConflict:
            pass  # made meanwhile, by the API or another command
    key = AccessKey(name, unique_id("AKIA"), secrets.token_urlsafe(30), "Active", time.time())
    try:
        await store.put_access_key(key.access_key_id, key.name, key.secret_access_key, key.created,
                                   most=MAX_KEYS_PER_USER)
    except StoreConflict as exc:
        raise AccessKeyError(f"user {name!r} has {MAX_KEYS_PER_USER} keys already (IAM's limit); delete them "
                             "first") from exc
    return key


async def list_keys(store: IamStore) -> list[AccessKey]:
    """Every key, oldest first (secrets included: the caller decides what to show)."""
    return [AccessKey(user, key_id, secret, status, created)
            for user, key_id, secret, status, created in await store.list_access_keys()]


async def delete_key(store: IamStore, name: str) -> None:
    """Delete every key of user ``name``."""
    keys = await store.list_access_keys(name)
    if not keys:
        raise AccessKeyError(f"no key of a user named {name!r}")
    for _user, key_id, *_ in keys:
        await store.delete_access_key(key_id, name)
