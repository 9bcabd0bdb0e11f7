"""Where a cluster keeps its code blobs: put and get of a 5 MB and a 50 MB zip, side by side (docs/cluster.md).

1. local files (``FileBlobStore``: the embedded server, and each node's cache) — the floor;
2. JetStream's object store (``SharedBlobStore``, NATS on 127.0.0.1:4222);
3. an S3 bucket through botocore (``S3BlobStore``) on a moto_server started here (an S3 emulator on the same
   machine, so this measures the client, HTTP and the emulator, not AWS's S3).

A get is measured on a node whose cache does not have the blob (the cost a node pays the first time it runs a
function uploaded elsewhere). Each figure is the median of ``--rounds`` rounds.

    python3 benchmarks/blobs.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lambdad.cluster.blobs import SharedBlobStore  # noqa: E402
from lambdad.cluster.link import Link  # noqa: E402
from lambdad.cluster.s3_blobs import S3BlobStore  # noqa: E402
from lambdad.store.blobs import FileBlobStore  # noqa: E402
from tests.services import MOTO_ENV, NATS, moto_s3, nats_cluster_name  # noqa: E402

SIZES = {"5 MB": 5 * 1024 * 1024, "50 MB": 50 * 1024 * 1024}


def timed(work: Callable[[], Any]) -> float:
    started = time.perf_counter()
    work()
    return (time.perf_counter() - started) * 1000


def measure(make: Callable[[Path], Any], rounds: int) -> dict[str, tuple[float, float]]:
    """size -> (put ms, get-on-a-cold-cache ms), medians."""
    out = {}
    for label, size in SIZES.items():
        puts, gets = [], []
        for _ in range(rounds):
            data = os.urandom(size)
            with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
                writer, reader = make(Path(a)), make(Path(b))
                key: list[str] = []
                puts.append(timed(lambda: key.append(writer.put(data))))
                gets.append(timed(lambda: reader.get(key[0])))
        out[label] = (statistics.median(puts), statistics.median(gets))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, dict[str, tuple[float, float]]] = {}
    # a get from local files is a read of the writer's own file: the reader is given the writer's directory
    shared_dir: list[Path] = []

    def local(path: Path) -> FileBlobStore:
        if not shared_dir:
            shared_dir.append(path)
        return FileBlobStore(shared_dir[0])

    results["local files"] = measure(lambda p: local(p), args.rounds)
    shared_dir.clear()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    with nats_cluster_name() as name:
        link = asyncio.run_coroutine_threadsafe(Link.open(NATS, name), loop).result(30)
        try:
            def object_store(path: Path) -> SharedBlobStore:
                return asyncio.run_coroutine_threadsafe(SharedBlobStore.open(FileBlobStore(path), link), loop).result(30)

            results["JetStream object store"] = measure(object_store, args.rounds)
        finally:
            asyncio.run_coroutine_threadsafe(link.aclose(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)

    with moto_s3() as (endpoint, bucket):
        os.environ.update(MOTO_ENV, AWS_ENDPOINT_URL_S3=endpoint)
        results["S3 (botocore, moto_server)"] = measure(
            lambda p: S3BlobStore.open(FileBlobStore(p), f"s3://{bucket}/code", "us-east-1"), args.rounds)

    print(f"code blobs, median of {args.rounds} rounds, {os.cpu_count()} cores (get: on a node without the blob)")
    print(f"{'store':30} " + "  ".join(f"{label + ' put':>12} {label + ' get':>12}" for label in SIZES))
    for store, figures in results.items():
        print(f"{store:30} " + "  ".join(f"{put:9.0f} ms {get:9.0f} ms" for put, get in figures.values()))


if __name__ == "__main__":
    main()
