"""The cluster's shared blob store (cluster/blobs.py) on a real NATS: listing the shared copies, which the sweep
does on one node while the others put and delete objects beside it, always returns, and always finds an object
that was there all along."""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
import time
from pathlib import Path

import pytest

from lambdad.cluster.blobs import SharedBlobStore
from lambdad.cluster.link import Link
from lambdad.store.blobs import FileBlobStore
from tests.services import NATS, answers, nats_cluster_name

pytestmark = pytest.mark.skipif(not answers("127.0.0.1", 4222), reason="needs NATS with JetStream on 127.0.0.1:4222")


def test_listing_returns_while_another_node_puts_and_deletes() -> None:
    # nats-py's ObjectStore.list() hung in 10 of 45 calls like these (NATS 2.9): its watcher waits for a delivery
    # saying nothing is pending, which objects rolled up meanwhile can keep from coming
    async def run(cluster: str, root: Path) -> tuple[int, list[float], bool]:
        a_link, b_link = await Link.open(NATS, cluster, "node-a"), await Link.open(NATS, cluster, "node-b")
        try:
            a = await SharedBlobStore.open(FileBlobStore(root / "a"), a_link)
            b = await SharedBlobStore.open(FileBlobStore(root / "b"), b_link)
            kept = await asyncio.to_thread(a.put, b"kept all along")
            stop = asyncio.Event()

            async def churn() -> None:
                i = 0
                while not stop.is_set():
                    data = b"churn %d" % (i % 5) * 200
                    key = hashlib.sha256(data).hexdigest()
                    await b._objects.put(key, data)
                    await b._objects.delete(key)
                    i += 1

            churning = asyncio.create_task(churn())
            waits: list[float] = []
            always = True
            until = time.monotonic() + 6
            try:
                while time.monotonic() < until:
                    started = time.monotonic()
                    try:
                        listed = await asyncio.wait_for(asyncio.to_thread(a.list_shared), 5)
                    except TimeoutError:
                        waits.append(float("inf"))
                        break
                    waits.append(time.monotonic() - started)
                    always = always and kept in {key for key, _ in listed}
            finally:
                stop.set()
                await churning
            return len(waits), waits, always
        finally:
            await a_link.aclose()
            await b_link.aclose()

    with nats_cluster_name() as cluster, tempfile.TemporaryDirectory() as tmp:
        calls, waits, always = asyncio.run(run(cluster, Path(tmp)))
    assert max(waits) < 5, f"a listing hung: {calls} calls, the longest {max(waits):.2f} s"
    assert always and calls >= 5
