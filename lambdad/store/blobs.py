"""The embedded blob store: code packages as content-addressed files under ``<data-dir>/code``.

A blob's key is the hex SHA-256 of its bytes, so storing the same zip twice stores it once and a key always names
the same bytes. Writes go to a temp file that is fsynced and renamed into place: a blob is either whole or absent.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["FileBlobStore"]


class FileBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        if len(key) != 64 or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"not a blob key: {key!r}")
        return self.root / f"{key}.zip"

    def put(self, data: bytes) -> str:
        """Store ``data`` (blocking: call from a thread) and return its key."""
        key = hashlib.sha256(data).hexdigest()
        target = self.path(key)
        if target.exists():
            return key
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        dir_fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return key

    def get(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)
