"""X-Ray trace headers for invocations, and their spans sent over OTLP.

The header an invocation's runtime is given (``Lambda-Runtime-Trace-Id``, which the runtime puts in
``_X_AMZN_TRACE_ID``) is decided by the function's ``TracingConfig`` and the caller's ``X-Amzn-Trace-Id``:

    Active       the caller's trace is continued (its Root), or a new one begun; sampled unless the caller said
                 ``Sampled=0``. The header's Parent is the invocation's own span (the X-Ray function segment).
    PassThrough  the caller's Root, Parent and Sampled are passed on (``Sampled=0`` unless the caller said 1);
                 without a caller's header, a new, unsampled trace (the environment makes it: nothing runs here).

Either way a ``Lineage`` field (async chains, ids.py) is appended by the environment.

Spans (``spans.py``, imported only when ``LAMBDAD_OTLP_ENDPOINT`` is set): each traced invocation (a sampled one
of an Active function) is exported as an invocation span (kind SERVER, named after the function, FaaS
attributes) whose trace id is the X-Ray Root without its version and dashes (``1-5759e988-bd862e3fe1be46a994272793``
↔ ``5759e988bd862e3fe1be46a994272793``) and whose span id is the header's Parent, with the children X-Ray's
Lambda segment has:

    Init      a cold start's init phase (``faas.init_duration_ms``)
    Invoke    from the runtime taking the event to its response or error
    Overhead  from that answer until the runtime asks for the next event (the environment is ready again)

The invocation's ids and start are fixed when it begins (its span id goes into the header); its spans are built
from the times the environment reports (``InvocationSpans.ended``) when the environment is ready again — or
gone — and exported by the SDK's BatchSpanProcessor on its own thread; ``Traces.aclose`` flushes it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from lambdad.ids import new_trace_root, random_hex

__all__ = ["ACTIVE", "TraceContext", "continue_trace", "otlp_traces_url", "parse_trace_header"]

ACTIVE = "Active"


@dataclass(frozen=True, slots=True)
class TraceContext:
    """The fields of an ``X-Amzn-Trace-Id`` header that lambdad reads: Root, Parent, Sampled (None: undecided)."""

    root: str | None
    parent: str | None
    sampled: bool | None


def parse_trace_header(text: str) -> TraceContext:
    """``Root=1-…;Parent=…;Sampled=1`` (any order, any other fields ignored). A Root or Parent that is not of
    X-Ray's form is ignored."""
    root = parent = None
    sampled: bool | None = None
    for part in text.split(";"):
        key, _, value = part.strip().partition("=")
        if key == "Root" and _valid_root(value):
            root = value.lower()
        elif key == "Parent" and len(value) == 16 and _is_hex(value):
            parent = value.lower()
        elif key == "Sampled" and value in ("0", "1"):
            sampled = value == "1"
    return TraceContext(root, parent, sampled)


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def _valid_root(value: str) -> bool:
    parts = value.split("-")
    return (len(parts) == 3 and parts[0] == "1" and len(parts[1]) == 8 and len(parts[2]) == 24
            and _is_hex(parts[1] + parts[2]))


def continue_trace(mode: str, caller: str | None) -> tuple[str | None, bool]:
    """The trace an invocation belongs to: (its header, e.g. ``Root=1-…;Parent=…;Sampled=1``, or None when the
    environment is to make a new unsampled one; whether lambdad traces it: a sampled invocation of an Active
    function). ``caller`` is the caller's X-Amzn-Trace-Id, if any. A traced invocation's header is ``Root=…``
    only: its Parent is the invocation's own span, added by whoever opens it."""
    context = parse_trace_header(caller) if caller else None
    if mode == ACTIVE:
        sampled = context is None or context.sampled is not False  # the caller's decision is respected
        root = context.root if context is not None and context.root else new_trace_root(time.time())
        if sampled:
            return f"Root={root}", True
        return f"Root={root};Parent={random_hex(16)};Sampled=0", False
    if context is None or context.root is None:
        return None, False
    sampled = context.sampled is True  # passed on; lambdad's spans are for Active functions only
    return f"Root={context.root};Parent={context.parent or random_hex(16)};Sampled={int(sampled)}", False


def otlp_traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL of an endpoint given as its base (``http://host:4318``) or in full."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else endpoint + "/v1/traces"
