"""The log sink: takes log lines from environments without waiting, writes them to the store in batches.

``emit`` only appends to a list; a background task flushes every ``interval`` seconds (0.2 s; sooner when the batch
is large), so no invocation ever waits for a log write, and a line is on disk (committed with ``synchronous=FULL``)
within about 0.2 s of being printed: that is all a kill -9 of the server can lose. ``aclose`` flushes what is left.

Backpressure: what is pending is bounded. Past ``HIGH_WATER`` bytes (4 MiB) the sink is ``congested``; an
environment then stops reading its function's output (``when_drained`` tells it when to read again, after the
next write), so a function printing faster than the store can write blocks on its full pipe, as a process
writing to a slow terminal does, instead of filling the server's memory.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from lambdad.periodic import Periodic
from lambdad.store.interfaces import LogEvent, LogStore

__all__ = ["LogSink", "HIGH_WATER"]

HIGH_WATER = 4 * 1024 * 1024  # characters of messages pending (bytes for ASCII) before producers are asked to wait

log = logging.getLogger(__name__)


class LogSink:
    def __init__(self, store: LogStore, interval: float = 0.2, batch: int = 2000,
                 on_written: Callable[[int], None] | None = None,
                 structured: tuple[Callable[[str], bool], Callable[[str], None]] | None = None) -> None:
        self._store = store
        # (a cheap test, what to do with a line that passes it): embedded metric format lines (metrics/emf.py)
        self._structured = structured
        self._on_written = on_written  # told how many bytes of messages each batch wrote (log retention)
        self._interval = interval
        self._batch = batch
        self._pending: list[LogEvent] = []
        self._pending_bytes = 0
        self._drained: list[Callable[[], None]] = []  # told once the pending bytes are written
        self._writer = Periodic("log-sink", self.flush, interval)

    def start(self) -> None:
        self._writer.start()

    def emit(self, group: str, stream: str, message: str, timestamp_ms: int | None = None) -> None:
        ts = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
        self._pending.append(LogEvent(group, stream, ts, message))
        self._pending_bytes += len(message)
        if len(self._pending) >= self._batch or self._pending_bytes >= HIGH_WATER:
            self._writer.wake()

    @property
    def congested(self) -> bool:
        """More than HIGH_WATER characters wait to be written: producers should stop until ``when_drained``."""
        return self._pending_bytes >= HIGH_WATER

    def when_drained(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (once) after the next write, when the sink is no longer congested."""
        self._drained.append(callback)
        self._writer.wake()

    async def flush(self) -> None:
        batch, self._pending = self._pending, []
        written, self._pending_bytes = self._pending_bytes, 0
        if self._structured is not None and batch:
            test, use = self._structured
            for event in batch:
                if test(event.message):
                    try:
                        use(event.message)
                    except Exception:
                        log.exception("a structured log line could not be read")
        if batch:
            try:
                await self._store.append_logs(batch)
            except Exception:
                log.exception("could not write %d log events", len(batch))
            else:
                if self._on_written is not None:
                    self._on_written(written)
        if self._drained and not self.congested:
            waiting, self._drained = self._drained, []
            for callback in waiting:
                callback()

    async def aclose(self) -> None:
        """Write what is pending and stop. The writer is not cancelled: a cancellation in the middle of a write
        could lose its batch; it is told to stop, finishes the write it is in, and a last flush follows."""
        await self._writer.aclose()
        await self.flush()
