"""The identities of IAM users' access keys and STS sessions, kept in memory between requests.

A key read from the store is kept for ``TTL`` seconds; sooner, it is dropped when it changes: by this node's IAM
API (UpdateAccessKey, DeleteAccessKey), by another node's (the cluster's change notices name the key), or by a
``lambdad keys`` command on this data dir, which touches ``<data dir>/keys.changed`` after writing — each lookup
compares that file's modification time (one ``stat``, about a microsecond) and starts afresh when it moved. So a
warm Invoke by a user costs a dictionary lookup here rather than a read of the store, and a key deactivated or
deleted is refused from the next request on (a ``lambdad keys`` command run against a cluster's database from
another machine touches no file here: there the key goes within ``TTL``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from lambdad.auth.principals import Identity

__all__ = ["KeyCache", "TTL", "touch_marker"]

TTL = 30.0
MARKER = "keys.changed"


def touch_marker(data_dir: Path) -> None:
    """Tell a server running on ``data_dir`` that keys changed (``lambdad keys``)."""
    marker = data_dir / MARKER
    marker.touch()
    os.utime(marker)


def _mtime(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


class KeyCache:
    def __init__(self, data_dir: Path) -> None:
        self._marker = data_dir / MARKER
        self._seen = _mtime(self._marker)
        self._keys: dict[str, tuple[Identity, float]] = {}

    def get(self, access_key_id: str) -> Identity | None:
        """The identity of ``access_key_id`` if it is known and still good; None: read the store."""
        found = self._keys.get(access_key_id)
        if found is None:
            return None
        mtime = _mtime(self._marker)
        if mtime != self._seen:
            self._seen = mtime
            self._keys.clear()
            return None
        identity, until = found
        if time.monotonic() >= until:
            del self._keys[access_key_id]
            return None
        return identity

    def put(self, access_key_id: str, identity: Identity, expires: float | None = None) -> None:
        """Keep ``identity`` for ``TTL`` seconds, or until ``expires`` (epoch seconds) if sooner."""
        if len(self._keys) >= 65536:
            self._keys.clear()
        ttl = TTL if expires is None else min(TTL, expires - time.time())
        if ttl > 0:
            self._keys[access_key_id] = (identity, time.monotonic() + ttl)

    def forget(self, access_key_id: str | None = None) -> None:
        if access_key_id is None:
            self._keys.clear()
        else:
            self._keys.pop(access_key_id, None)
