"""An environment's log: every line it writes to its log stream, and where else each line goes.

- Platform lines not tied to an invocation (INIT_START, INIT_REPORT, EXTENSION) go to the stream (``emit``).
- An invocation's lines (START, the function's output, errors, END, REPORT) also go to its tail when the caller
  asked for the log (LogType=Tail: ``Invocation.want_log``); the tail is written before the caller's answer.
- The function's output is read from its pipe (``output.py``) and drained before END, so everything the function
  printed before answering is in that invocation's log.
- REPORT carries the billed duration, the memory used (the cgroup's peak, or the process's VmHWM without
  cgroups) and, on the first invocation of an environment that was not initialised ahead, the init duration.
  The usage meter (``Meter``, ``invoke/usage.py``) counts the billed duration as REPORT says it: one call.
- Telemetry API subscribers (``telemetry.py``) get the function's output lines and platform.start, runtimeDone
  and report; without a subscription that costs one ``is None`` test per line.

The environment decides what happens to an invocation; this class only writes it down. It owns the output reader
and the telemetry subscriptions (``aclose``). This class writes the Text format (LogFormat Text, the default);
``json_log.py``'s subclass writes the JSON format and filters by level, so that the Text path pays nothing for it.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Callable

from lambdad.sandbox.output import OutputReader
from lambdad.sandbox.telemetry import TelemetryHub

if TYPE_CHECKING:
    from lambdad.sandbox.launcher import LaunchedProcess
    from lambdad.sandbox.spec import FunctionVersion, Invocation, LogWriter, Meter

__all__ = ["InvocationLog"]


_EARLY_LINES = 256  # init output kept for the first invocation's tail (a tail is the last 4 KB anyway)


class InvocationLog:
    """The log stream ``group``/``stream`` of one environment. ``current`` returns the invocation the function's
    output belongs to now (its lines go to that invocation's tail)."""

    def __init__(self, sink: LogWriter, env_id: str, config: FunctionVersion,
                 current: Callable[[], Invocation | None], *, report_init: bool, meter: Meter | None = None) -> None:
        self._sink = sink
        self._config = config
        self._meter = meter
        self.group = config.log_group_name
        self.stream = f"{time.strftime('%Y/%m/%d', time.gmtime())}/[{config.version}]{env_id}"
        self._version = config.version
        self._memory_size = config.memory_size
        self._current = current
        self._report_init = report_init  # False when init ran ahead of any invocation (provisioned concurrency)
        self._init_ms: float | None = None  # the init duration, until a REPORT has carried it
        self._proc: LaunchedProcess | None = None
        self._output: OutputReader | None = None  # the function's stdout+stderr, read into log lines
        self.telemetry: TelemetryHub | None = None  # Telemetry API subscriptions; None until the first one
        # what the function printed before its first invocation began (its init): that invocation's tail gets it,
        # as Lambda's first invoke's LogResult does, however the output and the invocation's start interleave
        self._early: list[str] | None = []

    def attach(self, proc: LaunchedProcess) -> None:
        """The environment's process is launched: its memory and network are what REPORT and telemetry use."""
        self._proc = proc

    def read_output(self) -> None:
        """Start reading the function's output (stdout+stderr) into log lines."""
        assert self._proc is not None
        self._output = OutputReader(self._proc, self._sink, self._function_line)
        self._output.start()

    def drain(self) -> None:
        """Read what the function has printed so far into log lines, now."""
        if self._output is not None:
            self._output.drain()

    def close_output(self) -> None:
        """The process is gone: read what is left of its output and close the pipe."""
        self.drain()
        if self._output is not None:
            self._output.close()

    def initialised(self, duration_ms: float) -> None:
        """The init phase took ``duration_ms``: the next REPORT says so, if init did not run ahead."""
        if self._report_init:
            self._init_ms = duration_ms

    # -- lines -----------------------------------------------------------------------------------------------

    def init_start(self, runtime_version: str, runtime_version_arn: str) -> None:
        """The init phase begins: INIT_START."""
        self.emit(f"INIT_START Runtime Version: {runtime_version}\tRuntime Version ARN: {runtime_version_arn}")

    def init_failed(self, duration_ms: float, error_type: str) -> None:
        """The init phase failed after ``duration_ms``: INIT_REPORT with its error type."""
        self.emit(f"INIT_REPORT Init Duration: {duration_ms:.2f} ms\tPhase: init\tStatus: error\t"
                  f"Error Type: {error_type}")

    def system_line(self, inv: Invocation, line: str) -> None:
        """A line the platform writes about ``inv`` (a timeout, a runtime exit, an init failure)."""
        self.line(inv, line)

    def emit(self, line: str) -> None:
        """A line of the environment's own (INIT_START, INIT_REPORT, EXTENSION): to the stream only."""
        self._sink.emit(self.group, self.stream, line)

    def line(self, inv: Invocation, line: str) -> None:
        """A line of ``inv``'s log: to the stream, and to its tail when the caller wants it."""
        if inv.want_log:
            inv.log_lines.append(line)
        self._sink.emit(self.group, self.stream, line)

    def start(self, inv: Invocation) -> None:
        """The runtime has taken ``inv``: its START line and telemetry's platform.start."""
        self.line(inv, f"START RequestId: {inv.request_id} Version: {self._version}")
        self._take_early(inv)
        if self.telemetry is not None:
            self.telemetry.publish("platform", "platform.start",
                                   {"requestId": inv.request_id, "version": self._version})

    def start_unrun(self, inv: Invocation) -> None:
        """``inv`` ends without the runtime having taken it (a crash, an init error, a timeout): its clock starts
        now, with its START line, unless it had started."""
        if not inv.started:
            inv.started = time.monotonic()
            self.line(inv, f"START RequestId: {inv.request_id} Version: {self._version}")
            self._take_early(inv)

    def _take_early(self, inv: Invocation) -> None:
        """The first invocation's tail gets what the init printed (already in the stream)."""
        early, self._early = self._early, None
        if early and inv.want_log:
            inv.log_lines.extend(early)

    def _function_line(self, line: str) -> None:
        self._take_line(line, line)

    def _take_line(self, line: str, record: object) -> None:
        """A line the function printed: to the current invocation's tail (or, before the first, kept for it), to
        the stream, and as ``record`` to telemetry subscribers."""
        inv = self._current()
        if inv is not None and inv.want_log:
            inv.log_lines.append(line)
        elif inv is None and self._early is not None and len(self._early) < _EARLY_LINES:
            self._early.append(line)
        self._sink.emit(self.group, self.stream, line)
        if self.telemetry is not None:
            self.telemetry.publish("function", "function", record)

    def report(self, inv: Invocation, duration: float, status: str, report_error: str | None) -> None:
        """The invocation's last function output, its END and REPORT lines, and telemetry's platform events."""
        self.drain()
        self.line(inv, f"END RequestId: {inv.request_id}")
        billed = max(1, math.ceil(duration))
        if self._meter is not None:
            self._meter.invoked(self._config, billed, not self._report_init)
        report = (
            f"REPORT RequestId: {inv.request_id}\tDuration: {duration:.2f} ms\t"
            f"Billed Duration: {billed} ms\tMemory Size: {self._memory_size} MB\t"
            f"Max Memory Used: {self._max_memory_mb()} MB"
        )
        init_ms = self._init_ms
        if init_ms is not None:
            self._init_ms = None  # only the first invocation of an environment is a cold start
            report += f"\tInit Duration: {init_ms:.2f} ms"
        if status == "timeout":
            report += "\tStatus: timeout"
        elif report_error is not None:
            report += f"\tStatus: error\tError Type: {report_error}"
        elif status == "crash":
            report += "\tStatus: error\tError Type: Runtime.ExitError"
        self.line(inv, report)
        if self.telemetry is not None:
            self._publish_done(self.telemetry, inv, duration, status, report_error, init_ms)

    def _publish_done(self, telemetry: TelemetryHub, inv: Invocation, duration: float, status: str,
                      report_error: str | None, init_ms: float | None) -> None:
        """platform.runtimeDone and platform.report (Telemetry API schema 2022-12-13) for subscribers."""
        status = "success" if status == "success" and report_error is None else (
            "timeout" if status == "timeout" else "failure" if status == "crash" else "error")
        telemetry.publish("platform", "platform.runtimeDone", {
            "requestId": inv.request_id, "status": status, "metrics": {"durationMs": round(duration, 3)}})
        metrics = {"durationMs": round(duration, 3), "billedDurationMs": max(1, math.ceil(duration)),
                   "memorySizeMB": self._memory_size, "maxMemoryUsedMB": self._max_memory_mb()}
        if init_ms is not None:
            metrics["initDurationMs"] = round(init_ms, 3)
        record = {"requestId": inv.request_id, "status": status, "metrics": metrics}
        error_type = report_error or ("Runtime.ExitError" if status == "failure" else None)
        if error_type is not None:
            record["errorType"] = error_type
        telemetry.publish("platform", "platform.report", record)

    def _max_memory_mb(self) -> int:
        proc = self._proc
        if proc is None:
            return 0
        peak = proc.cgroup.peak_memory_bytes() if proc.cgroup is not None else 0
        if not peak:
            peak = _vm_hwm_bytes(proc.pid)
        return max(1, round(peak / (1024 * 1024)))

    # -- telemetry -------------------------------------------------------------------------------------------

    def subscribe(self, extension_id: str, extension_name: str, body: bytes) -> None:
        """A Telemetry API subscription (``PUT /telemetry``, validated by ``TelemetryHub.subscribe``)."""
        if self.telemetry is None:
            proc = self._proc
            self.telemetry = TelemetryHub(proc.network if proc is not None else None)
        self.telemetry.subscribe(extension_id, extension_name, body)

    async def aclose(self) -> None:
        """Close the telemetry subscriptions (their posting tasks and HTTP session)."""
        if self.telemetry is not None:
            await self.telemetry.aclose()


def _vm_hwm_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0
