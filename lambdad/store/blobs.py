"""The embedded blob store: code packages as content-addressed files under ``<data-dir>/code``.

A blob's key is the hex SHA-256 of its bytes, so storing the same zip twice stores it once and a key always names
the same bytes. Writes go to a temp file that is fsynced and renamed into place: a blob is either whole or absent.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from pathlib import Path

__all__ = ["FileBlobStore"]


class FileBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        # held by whoever stores code (a blob, then its tree) and by the code collector while it deletes, so that
        # code uploaded again while its old copy is being collected is stored again, not found and then deleted
        self.guard = asyncio.Lock()

    def path(self, key: str) -> Path:
        if len(key) != 64 or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"not a blob key: {key!r}")
        return self.root / f"{key}.zip"

    def put(self, data: bytes, key: str | None = None) -> str:
        """Store ``data`` (blocking: call from a thread) and return its key (``key``: its hash, if known)."""
        key = key or hashlib.sha256(data).hexdigest()
        target = self.path(key)
        if target.exists():
            return key
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:12]}-", suffix=".tmp", dir=self.root)  # one per writer
        try:
            with open(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
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
