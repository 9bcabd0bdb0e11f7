"""Collecting the cluster's shared code blobs that nothing references any more.

Each node collects its own cached copies (``functions/collector.py``); the shared copies — in JetStream's object
store or the S3 bucket — are collected here, by one node at a time: the holder of the lease ``blob-sweep``
(``cluster/leases.py``), every ``interval`` seconds. A shared blob is deleted when no function version and no
layer version references it (as this node, which holds every function and layer the database does, sees them)
*and* it was last written more than ``grace`` seconds ago: a node may be uploading code whose function record is
not committed yet, which no node can see, and an upload never takes longer than the grace period (an hour by
default). A round is skipped while this node writes a function or layer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable, Protocol

from lambdad.periodic import Held, Periodic

__all__ = ["BlobSweep", "SharedBlobs"]

log = logging.getLogger(__name__)


class SharedBlobs(Protocol):
    """The shared copies of a cluster's blob store (blocking: called from a worker thread)."""

    def list_shared(self) -> list[tuple[str, float]]: ...

    def delete_shared(self, key: str) -> None: ...


class BlobSweep:
    def __init__(self, blobs: SharedBlobs, referenced: Callable[[], set[str] | None], lease: Held, *,
                 interval: float, grace: float) -> None:
        self._blobs = blobs
        self._referenced = referenced
        self._grace = grace
        self._job = Periodic("blob-sweep", self.sweep, interval, lease=lease)
        self.deleted = 0  # shared copies deleted by this node

    def start(self) -> None:
        self._job.start()

    async def sweep(self) -> bool:
        """One round; True when it could not run (a write in progress): try again soon."""
        keep = self._referenced()
        if keep is None:
            return True
        listed = await asyncio.to_thread(self._blobs.list_shared)
        cutoff = time.time() - self._grace
        doomed = [key for key, modified in listed if key not in keep and modified < cutoff]
        for key in doomed:
            keep_now = self._referenced()  # looked at again just before: a function may have taken it meanwhile
            if keep_now is None or key in keep_now:
                continue
            await asyncio.to_thread(self._blobs.delete_shared, key)
            self.deleted += 1
        if doomed:
            log.info("blob sweep: %d shared code blobs that nothing references deleted", len(doomed))
        return False

    async def aclose(self) -> None:
        await self._job.aclose()
