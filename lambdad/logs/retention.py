"""Log retention: functions' logs are capped by age, by size per function (log group) and by size in all.

A background task owned by the app trims the store (``LogStore.trim_logs``, one write transaction) every
``interval`` seconds, and sooner once the log sink has written a quarter of the per-function cap since the last
trim, so that a function printing as fast as it can grows the database by little more than its cap before the
oldest of its lines go. The defaults are in docs/security.md ("Logs"); every trim is logged when it deletes.
"""

from __future__ import annotations

import logging
import time

from lambdad.periodic import Held, Periodic
from lambdad.store.interfaces import LogStore

__all__ = ["LogRetention"]

log = logging.getLogger(__name__)


class LogRetention:
    def __init__(self, store: LogStore, *, max_age_seconds: float, group_bytes: int, total_bytes: int,
                 interval: float = 60.0, lease: Held | None = None) -> None:
        self._store = store
        self._max_age = max_age_seconds
        self._group_bytes = group_bytes
        self._total_bytes = total_bytes
        self._soon_after = max(group_bytes // 4, 1)  # bytes written since the last trim that call for one now
        self._written = 0
        # in a cluster only the holder of the lease trims (the store is shared)
        self._job = Periodic("log-retention", self.trim, min(interval, max(max_age_seconds / 2, 0.5)), lease=lease)

    def start(self) -> None:
        self._job.start()

    def wake(self) -> None:
        """Trim now (a group's retention changed): on this node if it holds the lease, else at the holder's next
        turn."""
        self._job.wake()

    def written(self, n: int) -> None:
        """The log sink wrote ``n`` bytes of messages."""
        self._written += n
        if self._written >= self._soon_after:
            self._job.wake()

    async def trim(self) -> None:
        self._written = 0
        cutoff = int((time.time() - self._max_age) * 1000)
        deleted = await self._store.trim_logs(cutoff, self._group_bytes, self._total_bytes)
        if deleted:
            log.info("log retention: %d log events deleted (older than %.0f s, or past %d bytes per function or "
                     "%d bytes in all)", deleted, self._max_age, self._group_bytes, self._total_bytes)

    async def aclose(self) -> None:
        """Stop; a trim in progress finishes its transaction first (``Periodic``)."""
        await self._job.aclose()
