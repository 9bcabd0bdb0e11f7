"""An environment's log (sandbox/invocation_log.py) on its own: START/END/REPORT as Lambda writes them, the init
duration on the first REPORT only (never after a provisioned init), and the tail kept only when asked for."""

from __future__ import annotations

from typing import Callable

from lambdad.functions.model import FunctionConfig
from lambdad.sandbox.invocation_log import InvocationLog
from lambdad.sandbox.spec import Invocation

CONFIG = FunctionConfig(name="f", version="3", runtime="python3.11", handler="app.handler", role="r",
                        code_sha256="", code_hash="", code_size=0, last_modified="", revision_id="rev",
                        memory_size=256)


class Sink:
    congested = False

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, str]] = []

    def emit(self, group: str, stream: str, message: str, timestamp_ms: int | None = None) -> None:
        self.lines.append((group, stream, message))

    def when_drained(self, callback: Callable[[], None]) -> None:
        callback()


def messages(sink: Sink) -> list[str]:
    return [message for _, _, message in sink.lines]


def test_an_invocation_is_logged_as_lambda_logs_it() -> None:
    sink = Sink()
    log = InvocationLog(sink, "e1", CONFIG, lambda: None, report_init=True)
    assert log.group == "/aws/lambda/f" and log.stream.endswith("/[3]e1")
    inv = Invocation("r1", b"{}", "arn")
    log.start(inv)
    log.report(inv, 1.234, "success", None)
    assert messages(sink) == [
        "START RequestId: r1 Version: 3", "END RequestId: r1",
        "REPORT RequestId: r1\tDuration: 1.23 ms\tBilled Duration: 2 ms\tMemory Size: 256 MB\tMax Memory Used: 0 MB"]
    assert {(g, s) for g, s, _ in sink.lines} == {(log.group, log.stream)}
    assert inv.log_lines == []  # the caller did not ask for the tail


def test_the_init_duration_is_on_the_first_report_only() -> None:
    sink = Sink()
    log = InvocationLog(sink, "e1", CONFIG, lambda: None, report_init=True)
    log.initialised(12.5)
    first, second = Invocation("r1", b"", "arn"), Invocation("r2", b"", "arn")
    log.report(first, 1.0, "error", "Runtime.Unknown")
    log.report(second, 1.0, "timeout", None)
    reports = [m for m in messages(sink) if m.startswith("REPORT")]
    assert reports[0].endswith("\tInit Duration: 12.50 ms\tStatus: error\tError Type: Runtime.Unknown")
    assert reports[1].endswith("Max Memory Used: 0 MB\tStatus: timeout")


def test_a_provisioned_environment_reports_no_init_duration() -> None:
    sink = Sink()
    log = InvocationLog(sink, "e1", CONFIG, lambda: None, report_init=False)
    log.initialised(12.5)
    log.report(Invocation("r1", b"", "arn"), 1.0, "crash", None)
    assert messages(sink)[-1].endswith("Max Memory Used: 0 MB\tStatus: error\tError Type: Runtime.ExitError")


def test_the_tail_is_kept_when_asked_for_and_an_unrun_invocation_starts_once() -> None:
    sink = Sink()
    log = InvocationLog(sink, "e1", CONFIG, lambda: None, report_init=True)
    inv = Invocation("r1", b"", "arn", want_log=True)
    log.start_unrun(inv)
    log.start_unrun(inv)
    log.line(inv, "RequestId: r1 Error: Runtime exited with error: signal: killed")
    log.emit("INIT_REPORT Init Duration: 0.00 ms")
    assert inv.started > 0
    assert inv.log_lines == ["START RequestId: r1 Version: 3",
                             "RequestId: r1 Error: Runtime exited with error: signal: killed"]
    assert len(sink.lines) == 3


def test_what_the_init_printed_is_in_the_first_invocations_tail() -> None:
    """Output read before the first invocation began (a runtime that prints and exits at init, its output read
    before the invocation is handed over) goes to the stream at once and into that invocation's tail; later
    invocations do not get it again."""
    sink = Sink()
    current: list[Invocation] = []
    log = InvocationLog(sink, "e1", CONFIG, lambda: current[0] if current else None, report_init=True)
    log._function_line("loading config")
    log._function_line("giving up")
    assert messages(sink) == ["loading config", "giving up"]
    first = Invocation("r1", b"{}", "arn", want_log=True)
    log.start_unrun(first)
    assert first.log_lines == ["START RequestId: r1 Version: 3", "loading config", "giving up"]
    second = Invocation("r2", b"{}", "arn", want_log=True)
    log.start(second)
    assert second.log_lines == ["START RequestId: r2 Version: 3"]
