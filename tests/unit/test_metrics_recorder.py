"""The metrics recorder, its value distribution and the embedded metric format reader: pure logic."""

from __future__ import annotations

import json
import random

import pytest

from lambdad.metrics.distribution import bucket_of, percentile, upper_of, value_of
from lambdad.metrics.emf import extract_emf, maybe_emf
from lambdad.metrics.recorder import MetricsRecorder, dimensions_key


@pytest.mark.parametrize("value", [1e-6, 0.3, 1.0, 7.5, 123.456, 899_999.0, -42.0])
def test_a_bucket_holds_its_value_within_a_sixtyfourth(value: float) -> None:
    b = bucket_of(value)
    assert abs(value_of(b) - value) <= abs(value) / 64
    assert upper_of(b) >= value
    assert bucket_of(0.0) == 0 and value_of(0) == 0.0


def test_percentiles_of_a_distribution() -> None:
    rng = random.Random(7)
    values = [rng.uniform(1, 1000) for _ in range(10_000)]
    buckets: dict[int, float] = {}
    for v in values:
        buckets[bucket_of(v)] = buckets.get(bucket_of(v), 0) + 1
    ordered = sorted(values)
    for p in (50, 90, 99, 99.9):
        exact = ordered[int(p / 100 * len(values)) - 1]
        assert percentile(buckets, p, ordered[0], ordered[-1]) == pytest.approx(exact, rel=0.03)
    assert percentile(buckets, 100, ordered[0], ordered[-1]) == ordered[-1]


def _aggregates(recorder: MetricsRecorder) -> dict[tuple[str, str], tuple[float, float, float, float]]:
    aggregates, _ = recorder.drain()
    return {(a.metric_name, a.dimensions): (a.sample_count, a.sum, a.minimum, a.maximum) for a in aggregates}


def test_an_alias_invocation_is_counted_under_each_dimension_set() -> None:
    r = MetricsRecorder()
    for error in (False, True, False):
        r.started("f", "live")
        r.finished("f", "live", "3", 2.0, error, unreserved=1)
    got = _aggregates(r)
    for dims in ([], [("FunctionName", "f")], [("FunctionName", "f"), ("Resource", "f:live")],
                 [("FunctionName", "f"), ("Resource", "f:live"), ("ExecutedVersion", "3")]):
        key = dimensions_key(dims)
        assert got[("Invocations", key)] == (3, 3, 1, 1)
        assert got[("Errors", key)] == (3, 1, 0, 1)
        assert got[("Duration", key)] == (3, 6.0, 2.0, 2.0)
    assert got[("ConcurrentExecutions", dimensions_key([("FunctionName", "f")]))] == (3, 3, 1, 1)
    assert r.running_functions() == {} and r.running_total == 0
    assert _aggregates(r) == {}  # drained
    totals = r.totals()
    assert totals.invocations[("f", "live")] == 3 and totals.errors[("f", "live")] == 1


def test_throttles_and_an_abandoned_invocation() -> None:
    r = MetricsRecorder()
    r.started("f", "")
    r.throttled("f", "")
    r.abandoned("f", "")
    got = _aggregates(r)
    assert got[("Throttles", dimensions_key([("FunctionName", "f")]))] == (1, 1, 1, 1)
    assert ("Throttles", dimensions_key([("FunctionName", "f"), ("Resource", "f:")])) not in got
    assert r.running_total == 0 and r.running_functions() == {}


def _emf(**root) -> str:
    return json.dumps(root)


def test_embedded_metric_format_documents() -> None:
    good = _emf(_aws={"Timestamp": 1_700_000_000_000, "CloudWatchMetrics": [
        {"Namespace": "App", "Dimensions": [["Svc"], []], "Metrics": [{"Name": "Hits", "Unit": "Count"}]}]},
        Svc="a", Hits=[1, 2])
    assert maybe_emf(good)
    found = extract_emf(good)
    assert found == [("App", "Hits", dimensions_key([("Svc", "a")]), "Count", [1.0, 2.0], 1_700_000_000.0),
                     ("App", "Hits", "[]", "Count", [1.0, 2.0], 1_700_000_000.0)]
    assert not maybe_emf("START RequestId: x") and not maybe_emf('{"a": 1}')
    for bad in (_emf(_aws={"CloudWatchMetrics": []}),  # no Timestamp
                _emf(_aws={"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "App", "Dimensions": [["Svc"]],
                                                                   "Metrics": [{"Name": "Hits"}]}]}, Hits=1),
                _emf(_aws={"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "AWS/X", "Dimensions": [],
                                                                   "Metrics": [{"Name": "Hits"}]}]}, Hits=1),
                _emf(_aws={"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "App", "Dimensions": [],
                                                                   "Metrics": [{"Name": "Hits"}]}]}, Hits="1"),
                '{"_aws": ', "[1, 2]"):
        assert extract_emf(bad) == []
