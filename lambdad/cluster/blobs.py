"""The cluster's blob store: code and layer zips in JetStream's object store, each node's data dir as a cache.

Choice: JetStream's object store rather than an S3 bucket, because a cluster already runs NATS with JetStream and
needs nothing more; ``docs/performance.md`` has its cost against local files. Objects are named by the hex
SHA-256 of their bytes (the blob key), in the bucket ``<cluster>_code`` (file storage).

``put`` stores the zip in the node's cache (``FileBlobStore``) and in the object store before it returns, so a
function is never recorded with code that other nodes cannot fetch. ``path`` and ``get`` on a node that never saw
the upload fetch the object into its cache first. The methods block (they are called from worker threads, as the
blob store's contract says) and hand the object store's coroutines to the event loop; calling one on the event
loop's own thread would wait for itself, and raises instead.

Deletion: ``delete`` removes the node's cached copy only. The shared copies are collected by the sweep
(``cluster/blob_sweep.py``): one node at a time, and never a copy younger than the grace period (another node may
be storing a function that uses it at this very moment, its record not yet committed).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import hashlib
import json
import threading
from pathlib import Path
from typing import Any, Coroutine, TypeVar

from lambdad.cluster.link import Link, stream_subjects
from lambdad.store.blobs import FileBlobStore

__all__ = ["SharedBlobStore"]

T = TypeVar("T")
_WAIT = 300.0  # seconds a blocking call waits for the object store (a 50 MB zip takes well under one)


class SharedBlobStore:
    def __init__(self, cache: FileBlobStore, objects: Any, loop: asyncio.AbstractEventLoop, jetstream: Any = None,
                 bucket: str = "") -> None:
        self._cache = cache
        self._objects = objects  # nats.js.object_store.ObjectStore
        self._js, self._bucket = jetstream, bucket  # for reading an object's chunks at once (``_fetch``)
        self._loop = loop
        self.root = cache.root
        self.guard = cache.guard
        self._fetching = threading.Lock()

    @classmethod
    async def open(cls, cache: FileBlobStore, link: Link) -> "SharedBlobStore":
        from nats.js.api import ObjectStoreConfig, StorageType

        assert link.jetstream is not None
        bucket = link.names.bucket("code")
        objects = await link.jetstream.create_object_store(
            bucket, config=ObjectStoreConfig(bucket=bucket, storage=StorageType.FILE))
        return cls(cache, objects, asyncio.get_running_loop(), link.jetstream, bucket)

    def path(self, key: str) -> Path:
        local = self._cache.path(key)
        if not local.exists():
            with self._fetching:  # one fetch of a blob at a time per node
                if not local.exists():
                    self._cache.put(self._call(self._fetch(key)), key)
        return local

    def put(self, data: bytes, key: str | None = None) -> str:
        key = self._cache.put(data, key)
        self._call(self._objects.put(key, data))
        return key

    def get(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self._cache.exists(key) or self._call(self._has(key))

    def delete(self, key: str) -> None:
        self._cache.delete(key)

    async def _fetch(self, key: str) -> bytes:
        """The object's bytes, checked against its key. Its chunks (128 KiB messages on ``$O.<bucket>.C.<nuid>``)
        are read with an ordered consumer and joined once: nats-py's own ``get`` appends them to one bytes object
        chunk by chunk, which took 5–8 s for a 50 MB zip (a helper's measurement and the fix it proposed)."""
        from nats.js.errors import ObjectNotFoundError

        try:
            info = await self._objects.get_info(key)
        except ObjectNotFoundError:
            raise FileNotFoundError(f"blob {key} is in no node's cache and not in the cluster's object store") from None
        if not info.size:
            data = b""
        elif self._js is None:
            data = (await self._objects.get(key)).data
        else:
            sub = await self._js.subscribe(f"$O.{self._bucket}.C.{info.nuid}", ordered_consumer=True)
            chunks: list[bytes] = []
            try:
                while True:
                    msg = await sub.next_msg(timeout=_WAIT)
                    chunks.append(msg.data)
                    if msg.metadata.num_pending == 0:
                        break
            finally:
                await sub.unsubscribe()
            data = b"".join(chunks)
        if hashlib.sha256(data).hexdigest() != key:
            raise OSError(f"blob {key} came back from the object store damaged ({len(data)} bytes)")
        return data

    async def _has(self, key: str) -> bool:
        from nats.js.errors import ObjectNotFoundError

        try:
            await self._objects.get_info(key)
        except ObjectNotFoundError:
            return False
        return True

    # -- the shared copies, for the sweep ---------------------------------------------------------------------

    def list_shared(self) -> list[tuple[str, float]]:
        """(key, last modified in epoch seconds) of every blob in the object store."""
        return self._call(self._list())

    def delete_shared(self, key: str) -> None:
        self._call(self._objects.delete(key))

    async def _list(self) -> list[tuple[str, float]]:
        """Every object's latest meta record (``$O.<bucket>.M.<name>``: its info), by ``stream_subjects``."""
        from nats.js.api import ObjectInfo
        from nats.js.errors import NotFoundError

        stream, listed = f"OBJ_{self._bucket}", []
        for subject in await stream_subjects(self._js, stream, f"$O.{self._bucket}.M.>"):
            try:
                record = await self._js.get_last_msg(stream, subject)
            except NotFoundError:  # purged since it was listed
                continue
            info = ObjectInfo.from_response(json.loads(record.data))
            if not info.deleted and info.mtime:
                listed.append((info.name, dt.datetime.fromisoformat(info.mtime.replace("Z", "+00:00")).timestamp()))
        return listed

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            coro.close()
            raise RuntimeError("a blocking blob store call on the event loop's thread: call it from a worker thread")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(_WAIT)
        except concurrent.futures.TimeoutError:
            future.cancel()  # the call is given up: its coroutine (a subscription, a consumer) goes too
            raise
