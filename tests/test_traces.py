"""Traces (docs/observability.md#traces): TracingConfig through the API, the X-Ray header a function sees in
``_X_AMZN_TRACE_ID``, and the spans a real ``lambdad serve`` exports over OTLP/HTTP to a receiver in this test
process (a small HTTP server decoding ``ExportTraceServiceRequest`` with opentelemetry-proto)."""

from __future__ import annotations

import json
import re
import shutil
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
from botocore.exceptions import ClientError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (ExportTraceServiceRequest,
                                                                      ExportTraceServiceResponse)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from lambdad.traces import continue_trace, parse_trace_header
from tests.server import ROLE, Server, create_python_function, make_zip, wait_until

ARN = "arn:aws:lambda:us-east-1:000000000000:function"
ECHO_TRACE = "import os\n\ndef handler(event, context):\n    return os.environ['_X_AMZN_TRACE_ID']\n"
HEADER = re.compile(r"Root=1-([0-9a-f]{8})-([0-9a-f]{24});Parent=([0-9a-f]{16});Sampled=([01])")
CALLER_ROOT = "1-5759e988-bd862e3fe1be46a994272793"
CALLER_PARENT = "53995c3f42cd8ad8"


class Receiver:
    """An OTLP/HTTP traces endpoint: POST /v1/traces, protobuf; keeps every span with its resource's attributes."""

    def __init__(self) -> None:
        self.spans: list[tuple[Span, dict[str, Any]]] = []
        self.requests = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path != "/v1/traces" or self.headers["Content-Type"] != "application/x-protobuf":
                    self.send_response(404)
                    self.end_headers()
                    return
                request = ExportTraceServiceRequest.FromString(body)
                for resource_spans in request.resource_spans:
                    resource = attributes(resource_spans.resource.attributes)
                    for scope_spans in resource_spans.scope_spans:
                        receiver.spans.extend((span, resource) for span in scope_spans.spans)
                receiver.requests += 1
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def trace(self, trace_id: str) -> dict[str, Span]:
        """The spans of one trace by name."""
        return {span.name: span for span, _ in self.spans if span.trace_id.hex() == trace_id}

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(5)


def attributes(kvs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in kvs:
        kind = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, kind) if kind else None
    return out


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[Server]:
    # a short export delay (the SDK's OTEL_BSP_SCHEDULE_DELAY, 5 s by default) keeps the test quick
    srv = Server(tmp_path_factory.mktemp("traced"), env={"LAMBDAD_OTLP_ENDPOINT": receiver.url,
                                                          "OTEL_BSP_SCHEDULE_DELAY": "100"}).start()
    yield srv
    srv.stop()


def invoke(client, name: str, trace: str | None = None) -> tuple[str, str]:
    """(the X-Ray header the function saw, the request id), sending ``trace`` as X-Amzn-Trace-Id."""
    def add_header(request, **_: Any) -> None:
        request.headers["X-Amzn-Trace-Id"] = trace

    if trace is not None:
        client.meta.events.register("before-sign.lambda.Invoke", add_header)
    try:
        out = client.invoke(FunctionName=name, Payload=b"{}")
    finally:
        if trace is not None:
            client.meta.events.unregister("before-sign.lambda.Invoke", add_header)
    assert "FunctionError" not in out, out["Payload"].read()
    return json.loads(out["Payload"].read()), out["ResponseMetadata"]["RequestId"]


def trace_id_of(header: str) -> str:
    m = HEADER.search(header)
    assert m is not None, header
    return m.group(1) + m.group(2)


# -- the header, decided (pure) -------------------------------------------------------------------------------

def test_headers_are_continued_as_the_tracing_mode_says() -> None:
    caller = f"Root={CALLER_ROOT};Parent={CALLER_PARENT};Sampled=1;Lineage=6c616d64:2"
    assert parse_trace_header(caller) == parse_trace_header(f"Sampled=1; Parent={CALLER_PARENT};Root={CALLER_ROOT}")
    assert continue_trace("Active", caller) == (f"Root={CALLER_ROOT}", True)  # its Parent: the invocation's span
    assert continue_trace("Active", f"Root={CALLER_ROOT};Sampled=0")[1] is False  # the caller's decision stands
    assert continue_trace("Active", f"Root={CALLER_ROOT};Sampled=0")[0].endswith(";Sampled=0")
    header, sampled = continue_trace("Active", None)
    assert sampled and re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24}", header or "")
    assert abs(int(header[7:15], 16) - time.time()) < 5  # the Root's time part is now
    # passed on as the caller sent it (not sampled unless it says so), and not traced by lambdad
    assert continue_trace("PassThrough", caller) == (f"Root={CALLER_ROOT};Parent={CALLER_PARENT};Sampled=1", False)
    assert continue_trace("PassThrough", f"Root={CALLER_ROOT};Parent={CALLER_PARENT}") == (
        f"Root={CALLER_ROOT};Parent={CALLER_PARENT};Sampled=0", False)
    assert continue_trace("PassThrough", None) == (None, False)  # the environment makes a new unsampled one
    assert continue_trace("PassThrough", "Root=nonsense;Sampled=1") == (None, False)


# -- TracingConfig through the API ----------------------------------------------------------------------------

def test_tracing_config_is_created_updated_and_read(traced: Server) -> None:
    lam = traced.client()
    created = create_python_function(lam, "traced-config", ECHO_TRACE, TracingConfig={"Mode": "Active"})
    assert created["TracingConfig"] == {"Mode": "Active"}
    assert lam.get_function_configuration(FunctionName="traced-config")["TracingConfig"] == {"Mode": "Active"}
    lam.get_waiter("function_updated_v2").wait(FunctionName="traced-config")
    updated = lam.update_function_configuration(FunctionName="traced-config", TracingConfig={"Mode": "PassThrough"})
    assert updated["TracingConfig"] == {"Mode": "PassThrough"}
    assert lam.get_function(FunctionName="traced-config")["Configuration"]["TracingConfig"] == {"Mode": "PassThrough"}
    plain = create_python_function(lam, "traced-default", ECHO_TRACE)
    assert plain["TracingConfig"] == {"Mode": "PassThrough"}
    with pytest.raises(ClientError) as e:
        lam.update_function_configuration(FunctionName="traced-config", TracingConfig={"Mode": "Sometimes"})
    err = e.value.response
    assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == ("ValidationException", 400)
    assert "Member must satisfy enum value set: [Active, PassThrough]" in err["Error"]["Message"]


# -- spans ------------------------------------------------------------------------------------------------------

def test_active_invocations_export_their_spans(traced: Server, receiver: Receiver) -> None:
    lam = traced.client()
    create_python_function(lam, "traced-active", ECHO_TRACE, TracingConfig={"Mode": "Active"})
    first, first_id = invoke(lam, "traced-active")
    second, second_id = invoke(lam, "traced-active")
    m1, m2 = HEADER.fullmatch(first), HEADER.fullmatch(second)
    assert m1 is not None and m2 is not None, (first, second)
    assert m1.group(4) == m2.group(4) == "1"  # sampled
    assert abs(int(m1.group(1), 16) - time.time()) < 60
    one, two = trace_id_of(first), trace_id_of(second)
    assert one != two  # a trace per invocation
    assert wait_until(lambda: {"Invoke", "Overhead"} <= receiver.trace(two).keys(), timeout=10)
    assert wait_until(lambda: {"Init", "Invoke", "Overhead"} <= receiver.trace(one).keys(), timeout=10)

    for header, request_id, cold in ((first, first_id, True), (second, second_id, False)):
        spans = receiver.trace(trace_id_of(header))
        top = spans["traced-active"]
        assert top.kind == Span.SpanKind.SPAN_KIND_SERVER
        assert top.span_id.hex() == HEADER.fullmatch(header).group(3)  # the header's Parent is the invocation span
        assert top.parent_span_id == b""  # no caller's trace: a root span
        assert attributes(top.attributes) == {
            "faas.invocation_id": request_id, "faas.coldstart": cold, "faas.name": "traced-active",
            "faas.version": "$LATEST", "cloud.resource_id": f"{ARN}:traced-active:$LATEST"}
        assert ("Init" in spans) is cold
        invoke_span, overhead = spans["Invoke"], spans["Overhead"]
        for child in (invoke_span, overhead, *([spans["Init"]] if cold else [])):
            assert child.parent_span_id == top.span_id and child.kind == Span.SpanKind.SPAN_KIND_INTERNAL
        assert top.start_time_unix_nano <= invoke_span.start_time_unix_nano <= invoke_span.end_time_unix_nano
        assert invoke_span.end_time_unix_nano <= overhead.start_time_unix_nano <= overhead.end_time_unix_nano
        assert overhead.end_time_unix_nano == top.end_time_unix_nano  # ready again: the invocation is over
        if cold:
            init = spans["Init"]
            duration_ms = attributes(init.attributes)["faas.init_duration_ms"]
            assert 0 < duration_ms < 10_000
            assert abs((init.end_time_unix_nano - init.start_time_unix_nano) / 1e6 - duration_ms) < 1
            assert top.start_time_unix_nano <= init.start_time_unix_nano
            assert init.end_time_unix_nano <= invoke_span.start_time_unix_nano
    resources = [resource for span, resource in receiver.spans if span.trace_id.hex() == one]
    assert resources and all(r["service.name"] == "lambdad" and r["host.name"] == socket.gethostname()
                             for r in resources)


def test_the_callers_trace_is_continued(traced: Server, receiver: Receiver) -> None:
    lam = traced.client()
    create_python_function(lam, "traced-continued", ECHO_TRACE, TracingConfig={"Mode": "Active"})
    seen, _ = invoke(lam, "traced-continued", f"Root={CALLER_ROOT};Parent={CALLER_PARENT};Sampled=1")
    m = HEADER.fullmatch(seen)
    assert m is not None and f"1-{m.group(1)}-{m.group(2)}" == CALLER_ROOT and m.group(4) == "1"
    assert m.group(3) != CALLER_PARENT  # the function's parent is the invocation's span
    trace_id = CALLER_ROOT[2:10] + CALLER_ROOT[11:]  # X-Ray 1-5759e988-bd86… ↔ OTel 5759e988bd86…
    assert wait_until(lambda: "traced-continued" in receiver.trace(trace_id), timeout=10)
    top = receiver.trace(trace_id)["traced-continued"]
    assert top.span_id.hex() == m.group(3) and top.parent_span_id.hex() == CALLER_PARENT

    # the caller decided not to sample: the function is told so, and nothing is exported
    unsampled_root = "1-5759e988-00000000000000000000abcd"
    seen, _ = invoke(lam, "traced-continued", f"Root={unsampled_root};Parent={CALLER_PARENT};Sampled=0")
    assert seen.startswith(f"Root={unsampled_root};Parent=") and seen.endswith(";Sampled=0")
    sentinel, _ = invoke(lam, "traced-continued")  # exported after the one before would have been
    assert wait_until(lambda: "Overhead" in receiver.trace(trace_id_of(sentinel)), timeout=10)
    assert receiver.trace(unsampled_root[2:10] + unsampled_root[11:]) == {}


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node on PATH")
def test_node_functions_see_the_header_in_their_environment(traced: Server, receiver: Receiver) -> None:
    lam = traced.client()
    code = "exports.handler = async () => process.env._X_AMZN_TRACE_ID;\n"
    lam.create_function(FunctionName="traced-node", Runtime="nodejs20.x", Role=ROLE, Handler="index.handler",
                        Code={"ZipFile": make_zip({"index.js": code})}, TracingConfig={"Mode": "Active"})
    lam.get_waiter("function_active_v2").wait(FunctionName="traced-node")
    seen, request_id = invoke(lam, "traced-node", f"Root={CALLER_ROOT};Parent={CALLER_PARENT};Sampled=1")
    m = HEADER.fullmatch(seen)
    assert m is not None and seen.startswith(f"Root={CALLER_ROOT};") and m.group(4) == "1", seen
    again, _ = invoke(lam, "traced-node")
    assert HEADER.fullmatch(again) is not None and trace_id_of(again) != trace_id_of(seen)  # per invocation
    assert wait_until(lambda: "Overhead" in receiver.trace(trace_id_of(again)), timeout=10)
    spans = [span for span, _ in receiver.spans if span.name == "traced-node"
             and attributes(span.attributes)["faas.invocation_id"] == request_id]
    assert len(spans) == 1 and spans[0].span_id.hex() == m.group(3)


def test_pass_through_and_untraced_functions_export_nothing(traced: Server, receiver: Receiver) -> None:
    lam = traced.client()
    create_python_function(lam, "traced-passthrough", ECHO_TRACE, TracingConfig={"Mode": "PassThrough"})
    create_python_function(lam, "traced-sentinel", ECHO_TRACE, TracingConfig={"Mode": "Active"})
    own, _ = invoke(lam, "traced-passthrough")
    assert HEADER.fullmatch(own) is not None and own.endswith(";Sampled=0")  # a new trace, not sampled
    caller = f"Root=1-5759e988-0000000000000000000000ff;Parent={CALLER_PARENT};Sampled=1"
    passed, _ = invoke(lam, "traced-passthrough", caller)
    assert passed == caller  # passed through as the caller sent it
    sentinel, _ = invoke(lam, "traced-sentinel")
    assert wait_until(lambda: "Overhead" in receiver.trace(trace_id_of(sentinel)), timeout=10)
    assert receiver.trace(trace_id_of(own)) == {} and receiver.trace(trace_id_of(passed)) == {}
    assert not any(span.name == "traced-passthrough" for span, _ in receiver.spans)


def test_spans_are_flushed_when_the_server_stops(tmp_path: Path, receiver: Receiver) -> None:
    # an export delay of an hour: only the shutdown's flush can send them
    srv = Server(tmp_path / "data", env={"LAMBDAD_OTLP_ENDPOINT": receiver.url,
                                         "OTEL_BSP_SCHEDULE_DELAY": "3600000"}).start()
    try:
        lam = srv.client()
        create_python_function(lam, "traced-flushed", ECHO_TRACE, TracingConfig={"Mode": "Active"})
        seen, _ = invoke(lam, "traced-flushed")
        time.sleep(0.3)
        assert receiver.trace(trace_id_of(seen)) == {}
    finally:
        assert srv.stop() == 0
    assert {"traced-flushed", "Init", "Invoke", "Overhead"} <= receiver.trace(trace_id_of(seen)).keys()


def test_without_an_endpoint_active_functions_still_get_sampled_headers(server: Server) -> None:
    lam = server.client()
    create_python_function(lam, "untraced-active", ECHO_TRACE, TracingConfig={"Mode": "Active"})
    seen, _ = invoke(lam, "untraced-active")
    assert HEADER.fullmatch(seen) is not None and seen.endswith(";Sampled=1")
    seen, _ = invoke(lam, "untraced-active", f"Root={CALLER_ROOT};Parent={CALLER_PARENT}")
    assert seen.startswith(f"Root={CALLER_ROOT};Parent=") and seen.endswith(";Sampled=1")
    assert CALLER_PARENT not in seen
