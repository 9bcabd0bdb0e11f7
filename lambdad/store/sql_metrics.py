"""The metadata store's metric operations: a part of ``SqlStore`` (store/sql.py).

Metric aggregates (per minute) and usage records (per function version and hour).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import sqlalchemy as sa

from lambdad.store import schema as t
from lambdad.store.interfaces import MetricAggregate, UsageRecord
from lambdad.store.sql_base import SqlBase


class MetricTables(SqlBase):
    # -- metrics ---------------------------------------------------------------------------------------------

    async def add_metrics(self, aggregates: Sequence[MetricAggregate],
                          buckets: Sequence[tuple[str, str, str, int, int, float]]) -> None:
        """Add partial aggregates (one transaction): counts and sums add up, the extremes are kept. Buckets are
        (namespace, metric name, dimensions, minute, bucket, count)."""
        if not aggregates and not buckets:
            return
        md, mb = t.metric_data, t.metric_buckets
        rows = self._insert(md)
        rows = rows.on_conflict_do_update(
            index_elements=["namespace", "metric_name", "dimensions", "period"],
            set_={"sample_count": md.c.sample_count + rows.excluded.sample_count,
                  "sum": md.c.sum + rows.excluded.sum,
                  "minimum": sa.case((rows.excluded.minimum < md.c.minimum, rows.excluded.minimum),
                                     else_=md.c.minimum),
                  "maximum": sa.case((rows.excluded.maximum > md.c.maximum, rows.excluded.maximum),
                                     else_=md.c.maximum),
                  "unit": rows.excluded.unit})
        bucket_rows = self._insert(mb)
        bucket_rows = bucket_rows.on_conflict_do_update(
            index_elements=["namespace", "metric_name", "dimensions", "period", "bucket"],
            set_={"count": mb.c.count + bucket_rows.excluded.count})

        def write(conn: sa.Connection) -> None:
            if aggregates:
                conn.execute(rows, [{"namespace": a.namespace, "metric_name": a.metric_name,
                                     "dimensions": a.dimensions, "period": a.period, "unit": a.unit,
                                     "sample_count": a.sample_count, "sum": a.sum, "minimum": a.minimum,
                                     "maximum": a.maximum} for a in aggregates])
            if buckets:
                conn.execute(bucket_rows, [{"namespace": ns, "metric_name": name, "dimensions": dims, "period": period,
                                            "bucket": bucket, "count": count}
                                           for ns, name, dims, period, bucket, count in buckets])

        await self._run(write, write=True)

    async def read_metrics(self, namespace: str, metric_name: str, dimensions: str, start: int,
                           end: int) -> list[MetricAggregate]:
        """The minutes of one metric (exactly these dimensions) from ``start`` (included) to ``end`` (excluded)."""
        md = t.metric_data
        query = (sa.select(md.c.namespace, md.c.metric_name, md.c.dimensions, md.c.period, md.c.unit,
                           md.c.sample_count, md.c.sum, md.c.minimum, md.c.maximum)
                 .where(md.c.namespace == namespace, md.c.metric_name == metric_name, md.c.dimensions == dimensions,
                        md.c.period >= start, md.c.period < end).order_by(md.c.period))
        return [MetricAggregate(*row) for row in await self._read(query)]

    async def read_metric_buckets(self, namespace: str, metric_name: str, dimensions: str, start: int,
                                  end: int) -> list[tuple[int, int, float]]:
        """(minute, bucket, count) of one metric's value distribution over ``start`` to ``end``."""
        mb = t.metric_buckets
        query = (sa.select(mb.c.period, mb.c.bucket, mb.c.count)
                 .where(mb.c.namespace == namespace, mb.c.metric_name == metric_name, mb.c.dimensions == dimensions,
                        mb.c.period >= start, mb.c.period < end))
        return [(int(p), int(b), float(c)) for p, b, c in await self._read(query)]

    async def list_metrics(self, namespace: str | None, metric_name: str | None,
                           since: int) -> list[tuple[str, str, str]]:
        """(namespace, metric name, dimensions) of every metric with data since ``since``, sorted."""
        md = t.metric_data
        query = sa.select(md.c.namespace, md.c.metric_name, md.c.dimensions).where(md.c.period >= since).distinct()
        if namespace is not None:
            query = query.where(md.c.namespace == namespace)
        if metric_name is not None:
            query = query.where(md.c.metric_name == metric_name)
        query = query.order_by(md.c.namespace, md.c.metric_name, md.c.dimensions)
        return [(ns, name, dims) for ns, name, dims in await self._read(query)]

    async def trim_metrics(self, before: int) -> int:
        """Delete the minutes before ``before``; returns how many aggregates went."""
        def trim(conn: sa.Connection) -> int:
            conn.execute(sa.delete(t.metric_buckets).where(t.metric_buckets.c.period < before))
            return int(conn.execute(sa.delete(t.metric_data).where(t.metric_data.c.period < before)).rowcount or 0)

        return await self._run(trim, write=True)

    # -- usage ---------------------------------------------------------------------------------------------

    async def add_usage(self, records: Sequence[UsageRecord]) -> None:
        """One transaction: each record's sums added to its row (INSERT ... ON CONFLICT DO UPDATE SET x = x +
        excluded.x), so nodes adding to one function-hour at once all count."""
        if not records:
            return
        u = t.usage
        statement = self._insert(u)
        statement = statement.on_conflict_do_update(
            index_elements=["function_name", "version", "hour"],
            set_={k: u.c[k] + statement.excluded[k] for k in t.USAGE_SUMS})
        rows = [dataclasses.asdict(r) for r in records]
        await self._run(lambda conn: conn.execute(statement, rows), write=True)

    async def read_usage(self, function_name: str | None = None, since: int | None = None,
                         until: int | None = None) -> list[UsageRecord]:
        u = t.usage
        query = sa.select(u.c.function_name, u.c.version, u.c.hour, *(u.c[k] for k in t.USAGE_SUMS))
        if function_name is not None:
            query = query.where(u.c.function_name == function_name)
        if since is not None:
            query = query.where(u.c.hour >= since)
        if until is not None:
            query = query.where(u.c.hour < until)
        query = query.order_by(u.c.hour, u.c.function_name, u.c.version)
        return [UsageRecord(*row) for row in await self._read(query)]
