"""The OpenTelemetry SDK's side of traces (``traces.py`` says which invocations are traced and what their spans
are): the spans of each traced invocation, handed to the SDK's BatchSpanProcessor, which exports them over
OTLP/HTTP from a thread of its own. Imported only when ``LAMBDAD_OTLP_ENDPOINT`` is set.

The spans are built as the SDK's ``ReadableSpan`` values, whole, once their times are known, and given to the
processor as a Tracer's ended spans are: a Tracer's live spans (context, sampler, locks, attribute bookkeeping)
cost ~35 µs to open and ~130 µs for the four of an invocation, against a few µs this way, and an invocation
needs none of what they offer — its ids are decided here (the trace id is the X-Ray Root's) and nothing else
adds to its spans.
"""

from __future__ import annotations

import asyncio
import socket
import time

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

from lambdad.ids import random_bits
from lambdad.traces import otlp_traces_url, parse_trace_header

__all__ = ["InvocationSpans", "Traces"]

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


class InvocationSpans:
    """One traced invocation's spans: its ids and start are fixed by ``Traces.begin``; ``ended`` (called once, by
    the environment, when it is ready again or gone) builds the invocation span and its children and hands them
    to the processor. Times are monotonic seconds."""

    __slots__ = ("_traces", "_name", "_context", "_parent", "_attributes", "_start_ns", "_cold", "_offset_ns",
                 "header")

    def __init__(self, traces: "Traces", name: str, context: SpanContext, parent: SpanContext | None,
                 attributes: dict[str, str | bool], start_ns: int, header: str) -> None:
        self._traces = traces
        self._name = name
        self._context = context
        self._parent = parent
        self._attributes = attributes
        self._start_ns = start_ns
        self._cold = False
        self._offset_ns = time.time_ns() - time.monotonic_ns()  # monotonic to wall clock
        self.header = header  # the X-Ray header the runtime is given (without Lineage)

    def cold_start(self, cold: bool) -> None:
        """Whether the invocation waited for a new environment's init (then ``ended`` adds an Init span)."""
        self._cold = cold
        self._attributes["faas.coldstart"] = cold

    def _ns(self, monotonic: float) -> int:
        return int(monotonic * 1e9) + self._offset_ns

    def ended(self, started: float, answered: float, ready: float | None, init: tuple[float, float] | None) -> None:
        """The runtime took the event at ``started`` (0: never), answered at ``answered``, asked for the next one
        at ``ready`` (None: the environment ended instead); ``init`` is its init phase (start, duration in ms)."""
        child = self._traces.child
        own = self._context
        if self._cold and init is not None:
            began, duration_ms = init
            child("Init", own, self._ns(began), self._ns(began + duration_ms / 1000.0),
                  {"faas.init_duration_ms": round(duration_ms, 3)})
        end = self._ns(answered)
        if started:
            child("Invoke", own, self._ns(started), end)
            if ready is not None:
                child("Overhead", own, end, self._ns(ready))
                end = self._ns(ready)
        self._traces.emit(ReadableSpan(
            self._name, own, self._parent, self._traces.resource, self._attributes,
            kind=SpanKind.SERVER, start_time=self._start_ns, end_time=max(end, self._start_ns),
            instrumentation_scope=self._traces.scope))


class Traces:
    """The span exporter of one server: the SDK's BatchSpanProcessor (export on its own thread) over OTLP/HTTP."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = otlp_traces_url(endpoint)
        self.resource = Resource.create({"service.name": "lambdad", "host.name": socket.gethostname()})
        self.scope = InstrumentationScope("lambdad")
        self._processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=self.endpoint))

    def begin(self, root_header: str, caller: str | None, *, request_id: str, start_ns: int, function_arn: str,
              name: str, version: str) -> InvocationSpans:
        """A traced invocation's spans, in the trace ``root_header`` (``Root=1-…``), the invocation's span a child
        of the caller's Parent when its header had one; its id becomes the header's Parent."""
        root = root_header[5:]  # "Root=" …
        trace_id = int(root[2:10] + root[11:], 16)
        context = parse_trace_header(caller) if caller else None
        parent = None
        if context is not None and context.parent is not None and context.root == root:
            parent = SpanContext(trace_id, int(context.parent, 16), is_remote=True, trace_flags=_SAMPLED)
        own = SpanContext(trace_id, random_bits(64), is_remote=False, trace_flags=_SAMPLED)
        attributes: dict[str, str | bool] = {
            "faas.invocation_id": request_id, "cloud.resource_id": function_arn, "faas.name": name,
            "faas.version": version, "faas.coldstart": False}
        return InvocationSpans(self, name, own, parent, attributes, start_ns,
                               f"{root_header};Parent={own.span_id:016x};Sampled=1")

    def child(self, name: str, parent: SpanContext, start_ns: int, end_ns: int,
              attributes: dict[str, float] | None = None) -> None:
        """An INTERNAL span under ``parent``, over."""
        context = SpanContext(parent.trace_id, random_bits(64), is_remote=False, trace_flags=_SAMPLED)
        self.emit(ReadableSpan(name, context, parent, self.resource, attributes or {}, start_time=start_ns,
                               end_time=end_ns, instrumentation_scope=self.scope))

    def emit(self, span: ReadableSpan) -> None:
        self._processor.on_end(span)  # queued; exported from the processor's thread

    async def aclose(self) -> None:
        """Export what is queued, then stop the processor's thread and the exporter (blocking: on a thread)."""
        await asyncio.to_thread(self._processor.shutdown)
