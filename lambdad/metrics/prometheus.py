"""GET /metrics: the recorder's counters and gauges in Prometheus's text exposition format (prometheus_client).

Counters count since the server started, per function and the resource invoked (``function`` or
``function:qualifier``, as CloudWatch's Resource dimension); the duration histogram's buckets are read off the
recorder's log-linear distribution (a value is counted under each ``le`` at or above its bucket's upper edge, so
within 1/32 of the value); gauges are read at the scrape. Each node serves its own figures: a cluster is scraped
node by node, as Prometheus does.

The endpoint needs no SigV4 signature. With a token set (``LAMBDAD_METRICS_TOKEN``) a scrape must carry
``Authorization: Bearer <token>``; anything else is answered 401 (docs/security.md).
"""

from __future__ import annotations

import hmac
from typing import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from lambdad.api.server import HttpRequest, HttpResponse
from lambdad.metrics.distribution import upper_of
from lambdad.metrics.recorder import MetricsRecorder

__all__ = ["PrometheusEndpoint", "METRICS_PATH"]

METRICS_PATH = "/metrics"
_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BOUNDS_MS = (1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0,
              300000.0, 900000.0)
_ASYNC = {"AsyncEventsReceived": ("lambdad_async_events_received", "Asynchronous invocations queued"),
          "AsyncEventsDropped": ("lambdad_async_events_dropped", "Asynchronous invocations dropped without a "
                                 "successful run (retries exhausted, or too old)"),
          "DestinationDeliveryFailures": ("lambdad_destination_delivery_failures",
                                          "Records that could not be sent to a destination (each try)"),
          "DeadLetterErrors": ("lambdad_dead_letter_errors", "Events that could not be sent to a dead-letter queue "
                               "(each try)")}


def _resource(function: str, qualifier: str) -> str:
    return f"{function}:{qualifier}" if qualifier else function


class _Collector(Collector):
    def __init__(self, recorder: MetricsRecorder, pool: Callable[[], tuple[int, int, int]]) -> None:
        self._recorder = recorder
        self._pool = pool  # (environments, busy, busy under the unreserved pool)

    def collect(self) -> Iterator[Metric]:
        totals = self._recorder.totals()
        labels = ["function_name", "resource"]
        for name, help_text, table in (
                ("lambdad_invocations", "Invocations of function code (function errors included)",
                 totals.invocations),
                ("lambdad_errors", "Invocations that ended in a function error", totals.errors),
                ("lambdad_throttles", "Invocation requests throttled (no concurrency left)", totals.throttles),
                ("lambdad_provisioned_concurrency_invocations", "Invocations that ran on provisioned concurrency",
                 totals.provisioned),
                ("lambdad_provisioned_concurrency_spillover_invocations",
                 "Invocations that ran on demand while provisioned concurrency was all in use", totals.spillover)):
            family = CounterMetricFamily(name, help_text, labels=labels)
            for (function, qualifier), n in sorted(table.items()):
                family.add_metric([function, _resource(function, qualifier)], n)
            yield family
        histogram = HistogramMetricFamily("lambdad_duration_milliseconds", "Time function code ran per invocation",
                                          labels=labels, unit="")
        for (function, qualifier), buckets in sorted(totals.duration_buckets.items()):
            cumulative = []
            ordered = sorted((upper_of(b), n) for b, n in buckets.items())
            i, seen = 0, 0.0
            for bound in _BOUNDS_MS:
                while i < len(ordered) and ordered[i][0] <= bound:
                    seen += ordered[i][1]
                    i += 1
                cumulative.append((_bound(bound), seen))
            cumulative.append(("+Inf", sum(buckets.values())))
            histogram.add_metric([function, _resource(function, qualifier)], cumulative,
                                 totals.duration_sum.get((function, qualifier), 0.0))
        yield histogram
        for metric, (name, help_text) in _ASYNC.items():
            family = CounterMetricFamily(name, help_text, labels=labels)
            for (function, qualifier), n in sorted(totals.async_counts.get(metric, {}).items()):
                family.add_metric([function, _resource(function, qualifier)], n)
            yield family
        running = GaugeMetricFamily("lambdad_concurrent_executions", "Invocations running now, per function",
                                    labels=["function_name"])
        for function, n in sorted(self._recorder.running_functions().items()):
            running.add_metric([function], n)
        yield running
        environments, busy, unreserved = self._pool()
        yield GaugeMetricFamily("lambdad_account_concurrent_executions", "Invocations running now on this node",
                                value=busy)
        yield GaugeMetricFamily("lambdad_unreserved_concurrent_executions",
                                "Invocations running now under the unreserved concurrency pool", value=unreserved)
        yield GaugeMetricFamily("lambdad_environments", "Execution environments on this node, busy or idle",
                                value=environments)


def _bound(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


class PrometheusEndpoint:
    def __init__(self, recorder: MetricsRecorder, pool: Callable[[], tuple[int, int, int]],
                 token: str | None) -> None:
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(_Collector(recorder, pool))
        self._token = f"Bearer {token}".encode() if token else None

    async def handle(self, request: HttpRequest) -> HttpResponse:
        if self._token is not None:
            given = next((v for k, v in request.headers if k.lower() == "authorization"), "")
            if not hmac.compare_digest(given.encode("latin-1", "replace"), self._token):
                return HttpResponse(401, b"401 Unauthorized: GET /metrics needs Authorization: Bearer <token>\n",
                                    (("Content-Type", "text/plain; charset=utf-8"),
                                     ("WWW-Authenticate", 'Bearer realm="lambdad metrics"')))
        if request.method != "GET":
            return HttpResponse(405, b"405 Method Not Allowed\n", (("Allow", "GET"),
                                                                   ("Content-Type", "text/plain; charset=utf-8")))
        return HttpResponse(200, generate_latest(self._registry), (("Content-Type", _CONTENT_TYPE),))
