"""The metrics recorder: what happened, counted in memory per one-minute period, until the next flush.

Contract:
- The warm invoke path costs a few dict updates: ``started`` (the function's running count goes up) and
  ``finished`` (one ``_Run`` per minute and (function, invoked qualifier, executed version) is updated: counts,
  duration sum/min/max and its bucket, concurrency samples). Nothing there allocates beyond the first invocation
  of a minute, takes a lock or does I/O. ``throttled`` is one dict update.
- ``drain()`` (the flush, every few seconds: ``metrics/service.py``) swaps the pending state out and expands it
  into the CloudWatch aggregates AWS publishes — per metric and dimension set: none (the account), FunctionName,
  FunctionName+Resource (a version or alias was invoked), and FunctionName+Resource+ExecutedVersion (an alias was
  invoked) — with Sum, SampleCount, Minimum, Maximum and, for each, the value distribution (``distribution.py``).
- Count metrics are recorded as AWS does: a value per invocation (1 for Invocations; 0 or 1 for Errors), so Sum
  is the count and SampleCount the invocations. Concurrency metrics are sampled as each invocation ends.
- Everything else (asynchronous events, destinations, PutMetricData, embedded metric format lines) goes through
  ``add``: any namespace, metric and dimensions.
- The Prometheus exposition (``metrics/prometheus.py``) reads ``totals()``: counters since the server started, per
  function and invoked qualifier, plus what is pending.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from lambdad.metrics.distribution import bucket_of
from lambdad.store.interfaces import MetricAggregate

__all__ = ["MetricsRecorder", "Totals", "LAMBDA_NAMESPACE", "dimensions_key", "function_dimensions"]

LAMBDA_NAMESPACE = "AWS/Lambda"
_NONE = "[]"


def dimensions_key(dimensions: Iterable[tuple[str, str]]) -> str:
    """The canonical form of a dimension set (the store's key): JSON of the [name, value] pairs sorted by name."""
    return json.dumps(sorted([name, value] for name, value in dimensions), separators=(",", ":"))


def function_dimensions(function: str, qualifier: str) -> list[str]:
    """The dimension sets of a function's metric (asynchronous events, destinations, throttles): none, FunctionName,
    and FunctionName+Resource when a version or alias was named."""
    sets = [_NONE, dimensions_key([("FunctionName", function)])]
    if qualifier:
        sets.append(dimensions_key([("FunctionName", function), ("Resource", f"{function}:{qualifier}")]))
    return sets


def _is_alias(qualifier: str) -> bool:
    return bool(qualifier) and qualifier != "$LATEST" and not qualifier.isdigit()


class _Stat:
    """Sum, SampleCount, Minimum, Maximum and the distribution of one metric's values over a minute."""

    __slots__ = ("unit", "count", "total", "minimum", "maximum", "buckets")

    def __init__(self, unit: str, distribution: bool = True) -> None:
        self.unit = unit
        self.count = 0.0
        self.total = 0.0
        self.minimum = float("inf")
        self.maximum = float("-inf")
        self.buckets: dict[int, float] | None = {} if distribution else None  # None: a gauge, sampled

    def add(self, value: float, count: float = 1.0) -> None:
        self.count += count
        self.total += value * count
        if value < self.minimum:
            self.minimum = value
        if value > self.maximum:
            self.maximum = value
        if self.buckets is not None:
            b = bucket_of(value)
            self.buckets[b] = self.buckets.get(b, 0.0) + count

    def add_summary(self, count: float, total: float, minimum: float, maximum: float) -> None:
        """Pre-aggregated values (PutMetricData's StatisticValues): no distribution of their own, so each is
        counted in the bucket of their mean."""
        self.count += count
        self.total += total
        self.minimum = min(self.minimum, minimum)
        self.maximum = max(self.maximum, maximum)
        if count > 0 and self.buckets is not None:
            b = bucket_of(total / count)
            self.buckets[b] = self.buckets.get(b, 0.0) + count

    def merge(self, other: "_Stat") -> None:
        self.count += other.count
        self.total += other.total
        self.minimum = min(self.minimum, other.minimum)
        self.maximum = max(self.maximum, other.maximum)
        if other.buckets and self.buckets is not None:
            for b, n in other.buckets.items():
                self.buckets[b] = self.buckets.get(b, 0.0) + n


class _Run:
    """The invocations of one (minute, function, invoked qualifier, executed version): plain numbers, updated in
    place on the invoke path (``MetricsRecorder.finished``) and made into statistics at the drain."""

    __slots__ = ("invocations", "errors", "provisioned", "spillover", "d_sum", "d_min", "d_max", "d_buckets",
                 "c_sum", "c_min", "c_max", "r_sum", "r_min", "r_max", "a_sum", "a_min", "a_max",
                 "u_sum", "u_min", "u_max", "utilization", "provisioned_busy", "owner")

    def __init__(self) -> None:
        self.invocations = self.errors = self.provisioned = self.spillover = 0
        self.d_sum = 0.0
        self.d_min = float("inf")
        self.d_max = float("-inf")
        self.d_buckets: dict[int, float] = {}
        # concurrency sampled as each invocation ends: the function's (c), the invoked resource's (r), the
        # account's (a), the unreserved pool's (u)
        self.c_sum = self.r_sum = self.a_sum = self.u_sum = 0
        self.c_min = self.r_min = self.a_min = self.u_min = 1 << 62
        self.c_max = self.r_max = self.a_max = self.u_max = -1
        self.utilization: _Stat | None = None  # provisioned concurrency in use / allocated, of ``owner``
        self.provisioned_busy: _Stat | None = None
        self.owner = ""  # the qualifier of the provisioned concurrency config that served it

    @property
    def duration(self) -> _Stat:
        stat = _Stat("Milliseconds")
        stat.count, stat.total, stat.minimum, stat.maximum = self.invocations, self.d_sum, self.d_min, self.d_max
        stat.buckets = self.d_buckets
        return stat

    def gauge(self, which: str, samples: int) -> _Stat:
        stat = _Stat("Count", False)
        stat.count = samples
        stat.total = getattr(self, which + "_sum")
        stat.minimum = getattr(self, which + "_min")
        stat.maximum = getattr(self, which + "_max")
        return stat


@dataclass
class Totals:
    """Counters since the server started, per (function, invoked qualifier) — for Prometheus."""

    invocations: dict[tuple[str, str], float] = field(default_factory=dict)
    errors: dict[tuple[str, str], float] = field(default_factory=dict)
    throttles: dict[tuple[str, str], float] = field(default_factory=dict)
    provisioned: dict[tuple[str, str], float] = field(default_factory=dict)
    spillover: dict[tuple[str, str], float] = field(default_factory=dict)
    duration_sum: dict[tuple[str, str], float] = field(default_factory=dict)
    duration_buckets: dict[tuple[str, str], dict[int, float]] = field(default_factory=dict)
    # (metric name) -> (function, qualifier) -> count: asynchronous events and destinations
    async_counts: dict[str, dict[tuple[str, str], float]] = field(default_factory=dict)

    def add_run(self, key: tuple[str, str], run: _Run) -> None:
        for table, n in ((self.invocations, run.invocations), (self.errors, run.errors),
                         (self.provisioned, run.provisioned), (self.spillover, run.spillover)):
            table[key] = table.get(key, 0.0) + n
        self.duration_sum[key] = self.duration_sum.get(key, 0.0) + run.d_sum
        buckets = self.duration_buckets.setdefault(key, {})
        for b, count in run.d_buckets.items():
            buckets[b] = buckets.get(b, 0.0) + count

    def copy(self) -> "Totals":
        return Totals({**self.invocations}, {**self.errors}, {**self.throttles}, {**self.provisioned},
                      {**self.spillover}, {**self.duration_sum},
                      {k: {**v} for k, v in self.duration_buckets.items()},
                      {k: {**v} for k, v in self.async_counts.items()})


_ASYNC_COUNTERS = ("AsyncEventsReceived", "AsyncEventsDropped", "DestinationDeliveryFailures", "DeadLetterErrors")
Aggregates = dict[tuple[str, str, str, int], _Stat]  # (namespace, metric, dimensions, minute) -> statistics


class MetricsRecorder:
    def __init__(self) -> None:
        self._runs: dict[tuple[int, str, str, str], _Run] = {}
        self._throttles: dict[tuple[int, str, str], int] = {}
        self._other: Aggregates = {}
        self._running: dict[str, int] = {}  # invocations running now, per function and per "function:qualifier"
        self.running_total = 0
        self._totals = Totals()

    # -- the invoke path --------------------------------------------------------------------------------------

    def started(self, function: str, qualifier: str) -> None:
        running = self._running
        running[function] = running.get(function, 0) + 1
        if qualifier:
            resource = f"{function}:{qualifier}"
            running[resource] = running.get(resource, 0) + 1
        self.running_total += 1

    def finished(self, function: str, qualifier: str, version: str, duration_ms: float, error: bool,
                 unreserved: int, provisioned: tuple[str, int, float] | None = None, spillover: bool = False) -> None:
        """An invocation ``started`` before has ended. ``provisioned``: it ran on provisioned concurrency, whose
        config (its qualifier) now has this many environments busy and this share of them in use."""
        key = (int(time.time()) // 60 * 60, function, qualifier, version)
        run = self._runs.get(key)
        if run is None:
            run = self._runs[key] = _Run()
        run.invocations += 1
        if error:
            run.errors += 1
        run.d_sum += duration_ms
        if duration_ms < run.d_min:
            run.d_min = duration_ms
        if duration_ms > run.d_max:
            run.d_max = duration_ms
        b = bucket_of(duration_ms)
        buckets = run.d_buckets
        buckets[b] = buckets.get(b, 0.0) + 1.0
        running = self._running
        n = running.get(function, 1)
        run.c_sum += n
        if n < run.c_min:
            run.c_min = n
        if n > run.c_max:
            run.c_max = n
        if n > 1:
            running[function] = n - 1
        else:
            running.pop(function, None)
        if qualifier:
            resource = f"{function}:{qualifier}"
            n = running.get(resource, 1)
            run.r_sum += n
            if n < run.r_min:
                run.r_min = n
            if n > run.r_max:
                run.r_max = n
            if n > 1:
                running[resource] = n - 1
            else:
                running.pop(resource, None)
        n = self.running_total
        self.running_total = n - 1
        run.a_sum += n
        if n < run.a_min:
            run.a_min = n
        if n > run.a_max:
            run.a_max = n
        run.u_sum += unreserved
        if unreserved < run.u_min:
            run.u_min = unreserved
        if unreserved > run.u_max:
            run.u_max = unreserved
        if provisioned is not None:
            run.provisioned += 1
            run.owner = provisioned[0]
            if run.utilization is None:
                run.utilization, run.provisioned_busy = _Stat("None", False), _Stat("Count", False)
            assert run.provisioned_busy is not None
            run.provisioned_busy.add(provisioned[1])
            run.utilization.add(provisioned[2])
        elif spillover:
            run.spillover += 1

    def abandoned(self, function: str, qualifier: str) -> None:
        """An invocation ``started`` before never ran (no environment could take it)."""
        for key in (function, f"{function}:{qualifier}") if qualifier else (function,):
            n = self._running.get(key, 1)
            if n > 1:
                self._running[key] = n - 1
            else:
                self._running.pop(key, None)
        self.running_total -= 1

    def throttled(self, function: str, qualifier: str) -> None:
        key = (int(time.time()) // 60 * 60, function, qualifier)
        self._throttles[key] = self._throttles.get(key, 0) + 1

    def running_functions(self) -> dict[str, int]:
        """Invocations running now, per function."""
        return {name: n for name, n in self._running.items() if ":" not in name}

    # -- everything else --------------------------------------------------------------------------------------

    def add(self, namespace: str, metric: str, dimension_sets: Sequence[str], unit: str, values: Sequence[float],
            counts: Sequence[float] | None = None, timestamp: float | None = None) -> None:
        """Values of a metric, under each of ``dimension_sets`` (``dimensions_key``), at ``timestamp`` (now)."""
        minute = int(time.time() if timestamp is None else timestamp) // 60 * 60
        for dimensions in dimension_sets:
            key = (namespace, metric, dimensions, minute)
            stat = self._other.get(key)
            if stat is None:
                stat = self._other[key] = _Stat(unit)
            for i, value in enumerate(values):
                stat.add(value, counts[i] if counts is not None else 1.0)

    def add_summary(self, namespace: str, metric: str, dimensions: str, unit: str, count: float, total: float,
                    minimum: float, maximum: float, timestamp: float | None = None) -> None:
        minute = int(time.time() if timestamp is None else timestamp) // 60 * 60
        key = (namespace, metric, dimensions, minute)
        stat = self._other.get(key)
        if stat is None:
            stat = self._other[key] = _Stat(unit)
        stat.add_summary(count, total, minimum, maximum)

    def function_event(self, metric: str, function: str, qualifier: str, value: float = 1.0,
                       unit: str = "Count") -> None:
        """An AWS/Lambda metric of a function that is not an invocation's (asynchronous events, destinations)."""
        self.add(LAMBDA_NAMESPACE, metric, function_dimensions(function, qualifier), unit, (value,))
        if metric in _ASYNC_COUNTERS:
            table = self._totals.async_counts.setdefault(metric, {})
            table[(function, qualifier)] = table.get((function, qualifier), 0.0) + value

    # -- reading ----------------------------------------------------------------------------------------------

    def totals(self) -> Totals:
        """The counters since start, with what is not drained yet."""
        totals = self._totals.copy()
        for (_, function, qualifier, _version), run in self._runs.items():
            totals.add_run((function, qualifier), run)
        for (_, function, qualifier), n in self._throttles.items():
            totals.throttles[(function, qualifier)] = totals.throttles.get((function, qualifier), 0.0) + n
        return totals

    def drain(self) -> tuple[list[MetricAggregate], list[tuple[str, str, str, int, int, float]]]:
        """Take what was recorded since the last drain, as aggregates and distribution buckets to add to the store."""
        runs, self._runs = self._runs, {}
        throttles, self._throttles = self._throttles, {}
        out, self._other = self._other, {}
        for (minute, function, qualifier, version), run in runs.items():
            self._totals.add_run((function, qualifier), run)
            _expand_run(out, minute, function, qualifier, version, run)
        for (minute, function, qualifier), n in throttles.items():
            key = (function, qualifier)
            self._totals.throttles[key] = self._totals.throttles.get(key, 0.0) + n
            for dims in function_dimensions(function, qualifier):
                stat = _stat(out, "Throttles", dims, minute, "Count")
                stat.add(1.0, n)
        aggregates = [MetricAggregate(ns, name, dims, minute, s.unit, s.count, s.total, s.minimum, s.maximum)
                      for (ns, name, dims, minute), s in out.items() if s.count > 0]
        buckets = [(ns, name, dims, minute, b, n) for (ns, name, dims, minute), s in out.items()
                   for b, n in (s.buckets or {}).items()]
        return aggregates, buckets


def _stat(out: Aggregates, metric: str, dimensions: str, minute: int, unit: str) -> _Stat:
    key = (LAMBDA_NAMESPACE, metric, dimensions, minute)
    stat = out.get(key)
    if stat is None:
        stat = out[key] = _Stat(unit)
    return stat


def _counted(stat: _Stat, ones: int, of: int) -> None:
    """``of`` values of which ``ones`` are 1 and the rest 0."""
    if ones:
        stat.add(1.0, ones)
    if of - ones:
        stat.add(0.0, of - ones)


def _expand_run(out: Aggregates, minute: int, function: str, qualifier: str, version: str, run: _Run) -> None:
    by_function = dimensions_key([("FunctionName", function)])
    sets = [_NONE, by_function]
    resource = ""
    if qualifier:
        resource = dimensions_key([("FunctionName", function), ("Resource", f"{function}:{qualifier}")])
        sets.append(resource)
        if _is_alias(qualifier):
            sets.append(dimensions_key([("FunctionName", function), ("Resource", f"{function}:{qualifier}"),
                                        ("ExecutedVersion", version)]))
    duration = run.duration
    for dims in sets:
        _counted(_stat(out, "Invocations", dims, minute, "Count"), run.invocations, run.invocations)
        _counted(_stat(out, "Errors", dims, minute, "Count"), run.errors, run.invocations)
        _stat(out, "Duration", dims, minute, "Milliseconds").merge(duration)
    n = run.invocations
    _stat(out, "ConcurrentExecutions", _NONE, minute, "Count").merge(run.gauge("a", n))
    _stat(out, "ConcurrentExecutions", by_function, minute, "Count").merge(run.gauge("c", n))
    if resource:
        _stat(out, "ConcurrentExecutions", resource, minute, "Count").merge(run.gauge("r", n))
    _stat(out, "UnreservedConcurrentExecutions", _NONE, minute, "Count").merge(run.gauge("u", n))
    if run.provisioned or run.spillover:
        for dims in [by_function] + ([resource] if resource else []):
            _counted(_stat(out, "ProvisionedConcurrencyInvocations", dims, minute, "Count"), run.provisioned,
                     run.provisioned)
            _counted(_stat(out, "ProvisionedConcurrencySpilloverInvocations", dims, minute, "Count"), run.spillover,
                     run.spillover)
    if run.utilization is not None and run.provisioned_busy is not None:
        owner = dimensions_key([("FunctionName", function), ("Resource", f"{function}:{run.owner}")])
        _stat(out, "ProvisionedConcurrencyUtilization", owner, minute, "None").merge(run.utilization)
        _stat(out, "ProvisionedConcurrentExecutions", owner, minute, "Count").merge(run.provisioned_busy)
        _stat(out, "ProvisionedConcurrentExecutions", by_function, minute, "Count").merge(run.provisioned_busy)

