"""The OpenTelemetry SDK's side of traces (``traces.py`` says which invocations are sampled and what their spans
are): one TracerProvider per server, exporting over OTLP/HTTP from a BatchSpanProcessor's thread. Imported only
when ``LAMBDAD_OTLP_ENDPOINT`` is set.
"""

from __future__ import annotations

import asyncio
import socket
import time

from opentelemetry import trace as otel
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator

from lambdad.traces import otlp_traces_url, parse_trace_header

__all__ = ["InvocationSpans", "Traces"]


class _XRayIds(IdGenerator):
    """Span ids at random; the trace id of the next root span is the X-Ray Root set just before it starts."""

    def __init__(self) -> None:
        self._random = RandomIdGenerator()
        self.next_trace_id = 0

    def generate_span_id(self) -> int:
        return self._random.generate_span_id()

    def generate_trace_id(self) -> int:
        return self.next_trace_id or self._random.generate_trace_id()


class InvocationSpans:
    """One sampled invocation's spans: the invocation span is open from ``__init__``; ``ended`` (called once, by
    the environment, when it is ready again or gone) adds the children and ends it. Times are monotonic seconds."""

    __slots__ = ("_span", "_tracer", "_cold", "_offset_ns", "header")

    def __init__(self, tracer: otel.Tracer, span: otel.Span, header: str) -> None:
        self._tracer = tracer
        self._span = span
        self._cold = False
        self._offset_ns = time.time_ns() - time.monotonic_ns()  # monotonic to wall clock
        self.header = header  # the X-Ray header the runtime is given (without Lineage)

    def cold_start(self, cold: bool) -> None:
        """Whether the invocation waited for a new environment's init (then ``ended`` adds an Init span)."""
        self._cold = cold
        self._span.set_attribute("faas.coldstart", cold)

    def _ns(self, monotonic: float) -> int:
        return int(monotonic * 1e9) + self._offset_ns

    def ended(self, started: float, answered: float, ready: float | None, init: tuple[float, float] | None) -> None:
        """The runtime took the event at ``started``, answered at ``answered``, asked for the next one at
        ``ready`` (None: the environment ended instead); ``init`` is its init phase (start, duration in ms)."""
        parent = otel.set_span_in_context(self._span, Context())
        if self._cold and init is not None:
            began, duration_ms = init
            span = self._tracer.start_span("Init", parent, start_time=self._ns(began),
                                           attributes={"faas.init_duration_ms": round(duration_ms, 3)})
            span.end(self._ns(began + duration_ms / 1000.0))
        if started:
            self._tracer.start_span("Invoke", parent, start_time=self._ns(started)).end(self._ns(answered))
        end = answered
        if ready is not None and started:
            self._tracer.start_span("Overhead", parent, start_time=self._ns(answered)).end(self._ns(ready))
            end = ready
        self._span.end(self._ns(max(end, answered)))


class Traces:
    """The OTLP exporter of one server: a TracerProvider with a BatchSpanProcessor (export on its own thread)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = otlp_traces_url(endpoint)
        self._ids = _XRayIds()
        resource = Resource.create({"service.name": "lambdad", "host.name": socket.gethostname()})
        self._provider = TracerProvider(resource=resource, id_generator=self._ids, shutdown_on_exit=False)
        self._provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=self.endpoint)))
        self._tracer = self._provider.get_tracer("lambdad")

    def begin(self, root_header: str, caller: str | None, *, request_id: str, start_ns: int, function_arn: str,
              name: str, version: str) -> InvocationSpans:
        """Open a sampled invocation's span in the trace ``root_header`` (``Root=1-…``), as a child of the
        caller's Parent when its header had one; its id becomes the header's Parent."""
        root = root_header[5:]  # "Root=" …
        trace_id = int(root[2:10] + root[11:], 16)
        context = parse_trace_header(caller) if caller else None
        parent = Context()
        if context is not None and context.parent is not None and context.root == root:
            remote = otel.SpanContext(trace_id, int(context.parent, 16), is_remote=True,
                                      trace_flags=otel.TraceFlags(otel.TraceFlags.SAMPLED))
            parent = otel.set_span_in_context(otel.NonRecordingSpan(remote), parent)
        self._ids.next_trace_id = trace_id  # read by the SDK within start_span, on this thread
        try:
            span = self._tracer.start_span(name, parent, kind=otel.SpanKind.SERVER, attributes={
                "faas.invocation_id": request_id, "cloud.resource_id": function_arn, "faas.name": name,
                "faas.version": version, "faas.coldstart": False}, start_time=start_ns)
        finally:
            self._ids.next_trace_id = 0
        span_id = f"{span.get_span_context().span_id:016x}"
        return InvocationSpans(self._tracer, span, f"{root_header};Parent={span_id};Sampled=1")

    async def aclose(self) -> None:
        """Export what is queued and stop the processor's thread (the export is blocking: on a thread)."""
        await asyncio.to_thread(self._provider.shutdown)
