"""Log retention's trim costs what it deletes, not what it keeps (issue 10 item 8): with 300 MB of logs that are
all within their caps beside a small group over its own, a trim removes the small group's oldest events and
reads nothing else (the old trim summed every message of the table under the write lock: seconds at this size)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from lambdad.store.interfaces import LogEvent
from lambdad.store.sql import SqlStore, database_url


def test_a_trim_reads_only_what_it_deletes(tmp_path: Path) -> None:
    async def run() -> tuple[float, int, dict[str, int], float]:
        store = await SqlStore.open(database_url(None, tmp_path))
        try:
            now = int(time.time() * 1000)
            line = "x" * 10_000
            for group in ("a", "b", "c"):  # 3 x 100 MB, each just under its cap
                for _ in range(10):
                    await store.append_logs([LogEvent(f"/aws/lambda/{group}", "s", now, line)] * 1000)
            small = [LogEvent("/aws/lambda/small", "s", now, f"{i:04d}" + "y" * 996) for i in range(2000)]
            await store.append_logs(small)  # 2 MB
            started = time.perf_counter()
            deleted = await store.trim_logs(now - 3_600_000, 101 * 1_000_000, 10**12)
            took = time.perf_counter() - started
            assert deleted == 0  # nothing over 101 MB, nothing old
            started = time.perf_counter()
            deleted = await store.trim_logs(now - 3_600_000, 100_000_000 + 1, 10**12)
            took = max(took, time.perf_counter() - started)
            kept = {g: len(await store.read_logs(f"/aws/lambda/{g}")) for g in ("a", "small")}
            # the floor: reading every message's length once, as a trim that looks at what it keeps must
            def full_read() -> float:
                conn = sqlite3.connect(tmp_path / "lambdad.db")
                try:
                    started = time.perf_counter()
                    conn.execute("SELECT SUM(length(CAST(message AS BLOB))) FROM log_events").fetchone()
                    return time.perf_counter() - started
                finally:
                    conn.close()

            return took, deleted, kept, await asyncio.to_thread(full_read)
        finally:
            await store.aclose()

    took, deleted, kept, floor = asyncio.run(run())
    assert deleted == 0 and kept == {"a": 10_000, "small": 2000}
    assert took < floor / 3, (took, floor)  # measured here: ~0.03 s against ~0.25 s (the old trim: ~0.28 s)

    async def over_cap() -> tuple[float, int, list[str]]:
        store = await SqlStore.open(database_url(None, tmp_path))
        try:
            started = time.perf_counter()
            deleted = await store.trim_logs(0, 1_000_000, 10**12)  # every group over 1 MB: a, b, c and small
            took = time.perf_counter() - started
            small = [e.message[:4] for e in await store.read_logs("/aws/lambda/small")]
            return took, deleted, small
        finally:
            await store.aclose()

    took, deleted, small = asyncio.run(over_cap())
    assert small == [f"{i:04d}" for i in range(1000, 2000)]  # its newest 1 MB, oldest gone first
    assert deleted == 3 * 9_900 + 1000
