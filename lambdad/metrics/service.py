"""The metrics service: the recorder's aggregates flushed to the store, kept for a while, and read back.

- A ``Periodic`` drains the recorder every ``flush_seconds`` (5 s) and adds what it held to the store
  (``MetricStore.add_metrics``: upsert-add, so that every node of a cluster adds its partial aggregates of a minute
  to the same rows). A read (``statistics``, ``list_metrics``) flushes this node first, so that what it recorded is
  seen at once; another node's last few seconds reach the store with its next flush.
- A second ``Periodic``, holding the ``metrics-retention`` lease (one node of a cluster does it), deletes the
  minutes older than ``retention_days`` (15 days, as CloudWatch keeps one-minute data) every hour.
- ``statistics`` answers GetMetricStatistics and GetMetricData's MetricStat queries: per period (a multiple of
  60 s) the minutes' aggregates merged — Sum, SampleCount, Average, Minimum, Maximum — and percentiles (pNN.N) from
  the merged distribution.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Sequence

from lambdad.metrics.distribution import percentile
from lambdad.metrics.recorder import MetricsRecorder
from lambdad.periodic import Held, Periodic
from lambdad.store.interfaces import MetricAggregate, MetricStore

__all__ = ["MetricsService", "Datapoint", "RETENTION_CHECK_SECONDS"]

log = logging.getLogger(__name__)

RETENTION_CHECK_SECONDS = 3600.0


@dataclass
class Datapoint:
    timestamp: int  # the period's start, epoch seconds
    unit: str
    sample_count: float
    sum: float
    minimum: float
    maximum: float
    buckets: dict[int, float]

    def statistic(self, name: str) -> float | None:
        """A statistic by CloudWatch's name: SampleCount, Sum, Average, Minimum, Maximum or pNN.NN."""
        if name == "SampleCount":
            return self.sample_count
        if name == "Sum":
            return self.sum
        if name == "Average":
            return self.sum / self.sample_count if self.sample_count else 0.0
        if name == "Minimum":
            return self.minimum
        if name == "Maximum":
            return self.maximum
        if name.startswith("p"):
            if not self.buckets:
                return None
            return percentile(self.buckets, float(name[1:]), self.minimum, self.maximum)
        return None


class MetricsService:
    def __init__(self, store: MetricStore, recorder: MetricsRecorder, *, flush_seconds: float,
                 retention_days: float, lease: Held | None = None) -> None:
        self._store = store
        self.recorder = recorder
        self._retention = retention_days * 86400.0
        self._lock = asyncio.Lock()  # one drain-and-write at a time: a read waits for the one under way
        self._flusher = Periodic("metrics-flush", self._flush_job, flush_seconds)
        self._trimmer = Periodic("metrics-retention", self.trim, RETENTION_CHECK_SECONDS, lease=lease)

    def start(self) -> None:
        self._flusher.start()
        self._trimmer.start(at_once=True)

    async def _flush_job(self) -> None:
        await self.flush()

    async def flush(self) -> None:
        """Add what the recorder holds to the store."""
        async with self._lock:
            aggregates, buckets = self.recorder.drain()
            if not aggregates and not buckets:
                return
            try:
                await self._store.add_metrics(aggregates, buckets)
            except Exception:
                log.exception("metrics: could not write %d aggregates; they are lost", len(aggregates))

    async def trim(self) -> None:
        before = int(time.time() - self._retention) // 60 * 60
        deleted = await self._store.trim_metrics(before)
        if deleted:
            log.info("metrics retention: %d one-minute aggregates older than %.1f days deleted", deleted,
                     self._retention / 86400)

    async def list_metrics(self, namespace: str | None, metric_name: str | None,
                           recently_active: bool = False) -> list[tuple[str, str, str]]:
        await self.flush()
        since = time.time() - (3 * 3600 if recently_active else self._retention)
        return await self._store.list_metrics(namespace, metric_name, int(since) // 60 * 60)

    async def statistics(self, namespace: str, metric_name: str, dimensions: str, start: float, end: float,
                         period: int, percentiles: bool, unit: str | None = None) -> list[Datapoint]:
        """The datapoints of one metric from ``start`` to ``end`` (seconds), one per ``period`` with data, oldest
        first. A period starts at ``start`` rounded down to a minute plus a multiple of ``period``."""
        await self.flush()
        first = int(start) // 60 * 60
        last = int(end) // 60 * 60 + (60 if int(end) % 60 else 0)  # a minute that has begun before end counts
        rows = await self._store.read_metrics(namespace, metric_name, dimensions, first, last)
        if unit is not None:
            rows = [r for r in rows if r.unit == unit]
        buckets: list[tuple[int, int, float]] = []
        if percentiles and rows:
            buckets = await self._store.read_metric_buckets(namespace, metric_name, dimensions, first, last)
        return _by_period(rows, buckets, first, period)

    async def aclose(self) -> None:
        await self._flusher.aclose()
        await self._trimmer.aclose()
        await self.flush()


def _by_period(rows: Sequence[MetricAggregate], buckets: Sequence[tuple[int, int, float]], first: int,
               period: int) -> list[Datapoint]:
    points: dict[int, Datapoint] = {}
    for r in rows:
        start = first + (r.period - first) // period * period
        p = points.get(start)
        if p is None:
            points[start] = Datapoint(start, r.unit, r.sample_count, r.sum, r.minimum, r.maximum, {})
        else:
            p.sample_count += r.sample_count
            p.sum += r.sum
            p.minimum = min(p.minimum, r.minimum)
            p.maximum = max(p.maximum, r.maximum)
    for minute, bucket, count in buckets:
        p = points.get(first + (minute - first) // period * period)
        if p is not None:
            p.buckets[bucket] = p.buckets.get(bucket, 0.0) + count
    return [points[k] for k in sorted(points)]
