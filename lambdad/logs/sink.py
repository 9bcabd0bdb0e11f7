"""The log sink: takes log lines from environments without waiting, writes them to the store in batches.

``emit`` only appends to a list; a background task flushes every ``interval`` seconds (0.2 s; sooner when the batch
is large), so no invocation ever waits for a log write, and a line is on disk (committed with ``synchronous=FULL``)
within about 0.2 s of being printed: that is all a kill -9 of the server can lose. ``aclose`` flushes what is left.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from lambdad.periodic import Periodic
from lambdad.store.sqlite import LogEvent, SqliteStore

__all__ = ["LogSink"]

log = logging.getLogger(__name__)


class LogSink:
    def __init__(self, store: SqliteStore, interval: float = 0.2, batch: int = 2000,
                 on_written: Callable[[int], None] | None = None) -> None:
        self._store = store
        self._on_written = on_written  # told how many bytes of messages each batch wrote (log retention)
        self._interval = interval
        self._batch = batch
        self._pending: list[LogEvent] = []
        self._writer = Periodic("log-sink", self.flush, interval)

    def start(self) -> None:
        self._writer.start()

    def emit(self, group: str, stream: str, message: str, timestamp_ms: int | None = None) -> None:
        ts = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
        self._pending.append(LogEvent(group, stream, ts, message))
        if len(self._pending) >= self._batch:
            self._writer.wake()

    async def flush(self) -> None:
        batch, self._pending = self._pending, []
        if batch:
            try:
                await self._store.append_logs(batch)
            except Exception:
                log.exception("could not write %d log events", len(batch))
                return
            if self._on_written is not None:
                self._on_written(sum(len(e.message) for e in batch))

    async def aclose(self) -> None:
        """Write what is pending and stop. The writer is not cancelled: a cancellation in the middle of a write
        could lose its batch; it is told to stop, finishes the write it is in, and a last flush follows."""
        await self._writer.aclose()
        await self.flush()
