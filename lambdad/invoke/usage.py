"""Usage metering, as Lambda bills it: per function version and hour, the requests, the billed milliseconds and
the MB-milliseconds of duration, of provisioned concurrency and of ephemeral storage above 512 MB.

- An invocation is counted where its REPORT line is written (``sandbox/invocation_log.py``), with the same
  ``Billed Duration``: ``invoked`` adds to a dict in memory — no I/O, no lock, nothing but a few additions on the
  warm path. Its hour is the one it completed in.
- Provisioned concurrency is counted by sampling: at each flush the provisioned environments initialised on this
  node (``ProvisionedConcurrency.allocated``) are taken as held since the sample before, their time × memory
  split over the hours it spans. It is exact to the flush interval.
- Every ``interval`` seconds (``LAMBDAD_USAGE_FLUSH_SECONDS``) a ``Periodic`` adds what was counted to the store
  (``UsageStore.add_usage``: an upsert that adds, so every node of a cluster adds to the same function-hour
  rows); a failed write keeps the counts for the next one. ``aclose`` flushes once more after the environments
  are gone: a clean stop loses nothing; a kill -9 loses what was counted since the last flush (a few seconds).
"""

from __future__ import annotations

import time
from typing import Callable, Iterable

from lambdad.periodic import Periodic
from lambdad.sandbox.spec import FunctionVersion
from lambdad.store.interfaces import UsageRecord, UsageStore

__all__ = ["UsageMeter", "split_hours"]

_HOUR_MS = 3_600_000
_FREE_EPHEMERAL_MB = 512  # ephemeral storage every function has at no cost

# the places of the counts of one (function, version, hour), in UsageRecord's order
_REQUESTS, _BILLED, _DURATION, _PROVISIONED_DURATION, _PROVISIONED, _EPHEMERAL = range(6)

Allocated = Iterable[tuple[str, str, int, int]]  # (function, version, memory MB, initialised environments)


def split_hours(start_ms: int, end_ms: int) -> list[tuple[int, int]]:
    """[start_ms, end_ms) cut at the hours: (hour start in epoch seconds, milliseconds in it) for each hour."""
    out = []
    while start_ms < end_ms:
        hour_ms = start_ms - start_ms % _HOUR_MS
        upto = min(end_ms, hour_ms + _HOUR_MS)
        out.append((hour_ms // 1000, upto - start_ms))
        start_ms = upto
    return out


class UsageMeter:
    """Counts in memory (``invoked``, the sampled provisioned environments) and adds them to the store."""

    def __init__(self, store: UsageStore, allocated: Callable[[], Allocated], interval: float,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._allocated = allocated
        self._clock = clock
        self._counts: dict[tuple[str, str, int], list[int]] = {}
        self._held: list[tuple[str, str, int, int]] = []  # the provisioned environments at the last sample
        self._sampled_ms: int | None = None
        self._periodic = Periodic("usage meter", self.flush, interval)

    def start(self) -> None:
        self._sample()  # provisioned time counts from here
        self._periodic.start()

    async def aclose(self) -> None:
        """Stop the periodic flush, then flush what is left (the caller has closed the environments)."""
        await self._periodic.aclose()
        await self.flush()

    # -- counting ----------------------------------------------------------------------------------------------

    def invoked(self, config: FunctionVersion, billed_ms: int, provisioned: bool) -> None:
        """An invocation of ``config`` ended with ``billed_ms`` billed (its REPORT line's Billed Duration), in a
        provisioned environment or not. The warm path: a dict lookup and a few additions."""
        now = int(self._clock())
        key = (config.name, config.version, now - now % 3600)
        counts = self._counts.get(key)
        if counts is None:
            counts = self._counts[key] = [0, 0, 0, 0, 0, 0]
        mb_ms = billed_ms * config.memory_size
        counts[_REQUESTS] += 1
        counts[_BILLED] += billed_ms
        counts[_DURATION] += mb_ms
        if provisioned:
            counts[_PROVISIONED_DURATION] += mb_ms
        extra = config.ephemeral_storage - _FREE_EPHEMERAL_MB
        if extra > 0:
            counts[_EPHEMERAL] += billed_ms * extra

    def _sample(self) -> None:
        """The provisioned environments since the last sample count as held until now; take the next sample."""
        now_ms = int(self._clock() * 1000)
        if self._sampled_ms is not None and now_ms > self._sampled_ms:
            for hour, ms in split_hours(self._sampled_ms, now_ms):
                for name, version, memory, count in self._held:
                    counts = self._counts.get((name, version, hour))
                    if counts is None:
                        counts = self._counts[(name, version, hour)] = [0, 0, 0, 0, 0, 0]
                    counts[_PROVISIONED] += ms * memory * count
        self._held = [a for a in self._allocated() if a[3] > 0]
        self._sampled_ms = now_ms

    # -- flushing ----------------------------------------------------------------------------------------------

    async def flush(self) -> None:
        """Add what was counted to the store; on a failure keep it for the next flush."""
        self._sample()
        if not self._counts:
            return
        counts, self._counts = self._counts, {}
        records = [UsageRecord(name, version, hour, *c) for (name, version, hour), c in counts.items()]
        try:
            await self._store.add_usage(records)
        except Exception:
            for key, c in counts.items():  # counted meanwhile, or not: added back either way
                kept = self._counts.setdefault(key, [0, 0, 0, 0, 0, 0])
                for i, n in enumerate(c):
                    kept[i] += n
            raise
