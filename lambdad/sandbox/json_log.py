"""An environment's log in Lambda's JSON format (LoggingConfig LogFormat JSON), filtered by level.

What changes from the Text format (``invocation_log.py``, which this extends):

- The system lines are JSON records (``platform_records.py``): platform.initStart for INIT_START,
  platform.start for START, platform.runtimeDone then platform.report for END and REPORT (no END line),
  platform.initReport for INIT_REPORT, and platform.initRuntimeDone when the init phase ends. The platform's text
  lines about an invocation (``Task timed out``, ``Runtime exited with error``) are not written: the
  report's ``status`` and ``errorType`` say it.
- ``SystemLogLevel`` filters the system records by their level (start, report, initStart, initReport: INFO;
  runtimeDone, initRuntimeDone: DEBUG), ``ApplicationLogLevel`` the function's output lines by theirs (the
  ``level`` of a JSON line, else INFO). Our runtimes filter their own records already (from
  ``AWS_LAMBDA_LOG_LEVEL``); this filter is Lambda's, for any runtime or logging method.
- A dropped line is in neither the stream nor the caller's tail nor telemetry; the tail has the same records as
  the stream.

``invocation_log`` picks the class for a function version, so that the Text format's path stays as it was.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Callable

from lambdad.sandbox import platform_records as records
from lambdad.sandbox.invocation_log import InvocationLog
from lambdad.sandbox.telemetry import iso_time

if TYPE_CHECKING:
    from lambdad.sandbox.spec import EnvironmentSpec, FunctionVersion, Invocation, LogWriter, Meter

__all__ = ["JsonInvocationLog", "invocation_log"]

_DEBUG, _INFO = records.LEVELS["DEBUG"], records.LEVELS["INFO"]


def invocation_log(sink: LogWriter, env_id: str, spec: EnvironmentSpec, current: Callable[[], Invocation | None],
                   meter: Meter | None = None) -> InvocationLog:
    """The log of environment ``env_id`` of ``spec``: in the function version's format; ``meter`` counts each
    invocation's billed duration (``invoke/usage.py``)."""
    if spec.config.log_format == "JSON":
        return JsonInvocationLog(sink, env_id, spec.config, current, initialization_type=spec.initialization_type,
                                 meter=meter)
    return InvocationLog(sink, env_id, spec.config, current,
                         report_init=spec.initialization_type != "provisioned-concurrency", meter=meter)


class JsonInvocationLog(InvocationLog):
    def __init__(self, sink: LogWriter, env_id: str, config: FunctionVersion,
                 current: Callable[[], Invocation | None], *, initialization_type: str,
                 meter: Meter | None = None) -> None:
        super().__init__(sink, env_id, config, current,
                         report_init=initialization_type != "provisioned-concurrency", meter=meter)
        self._initialization_type = initialization_type
        self._function_name = config.name
        system = records.LEVELS[config.system_log_level or "INFO"]
        self._info = _INFO >= system  # start, report, initStart, initReport
        self._debug = _DEBUG >= system  # runtimeDone, initRuntimeDone
        self._application = records.LEVELS[config.application_log_level or "INFO"]

    def _system(self, type_: str, body: dict[str, object]) -> str:
        return records.record(iso_time(), type_, body)

    # -- init ------------------------------------------------------------------------------------------------

    def init_start(self, runtime_version: str, runtime_version_arn: str) -> None:
        if self._info:
            self.emit(self._system("platform.initStart", {
                "initializationType": self._initialization_type, "phase": "init",
                "runtimeVersion": runtime_version, "runtimeVersionArn": runtime_version_arn,
                "functionName": self._function_name, "functionVersion": self._version, "instanceId": self.stream,
                "instanceMaxMemory": self._memory_size * 1024 * 1024}))

    def init_failed(self, duration_ms: float, error_type: str) -> None:
        if self._info:
            self.emit(self._system("platform.initReport", {
                "initializationType": self._initialization_type, "phase": "init", "status": "error",
                "errorType": error_type, "metrics": {"durationMs": round(duration_ms, 3)}}))

    def initialised(self, duration_ms: float) -> None:
        super().initialised(duration_ms)
        if self._debug:
            self.emit(self._system("platform.initRuntimeDone", {
                "initializationType": self._initialization_type, "phase": "init", "status": "success"}))

    # -- an invocation ---------------------------------------------------------------------------------------

    def system_line(self, inv: Invocation, line: str) -> None:
        """Not written in the JSON format: the report's status and error type carry it."""

    def start(self, inv: Invocation) -> None:
        if self._info:
            self.line(inv, self._system("platform.start", {
                "requestId": inv.request_id, "functionArn": inv.invoked_arn, "version": self._version}))
        self._take_early(inv)
        if self.telemetry is not None:
            self.telemetry.publish("platform", "platform.start",
                                   {"requestId": inv.request_id, "version": self._version})

    def start_unrun(self, inv: Invocation) -> None:
        if not inv.started:
            inv.started = time.monotonic()
            self.start(inv)

    def report(self, inv: Invocation, duration: float, status: str, report_error: str | None) -> None:
        self.drain()
        init_ms = self._init_ms
        self._init_ms = None  # only the first invocation of an environment is a cold start
        done, error_type = records.status_of(status, report_error)
        if self._meter is not None:  # as the Text log's REPORT counts it
            self._meter.invoked(self._config, max(1, math.ceil(duration)), not self._report_init)
        if self._debug:
            self.line(inv, self._system("platform.runtimeDone",
                                        records.runtime_done_record(inv.request_id, duration, done, error_type)))
        if self._info:
            self.line(inv, self._system("platform.report", records.report_record(
                inv.request_id, duration, self._memory_size, self._max_memory_mb(), init_ms, done, error_type)))
        if self.telemetry is not None:
            self._publish_done(self.telemetry, inv, duration, status, report_error, init_ms)

    # -- the function's output -------------------------------------------------------------------------------

    def _function_line(self, line: str) -> None:
        level, record = records.line_level(line)
        if level >= self._application:
            self._take_line(line, record)
