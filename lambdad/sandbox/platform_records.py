"""Lambda's JSON log records (LogFormat JSON): the system lines as platform events, and the level of a function's
output line. Pure functions; ``json_log.py`` writes what they make.

A system record is one line of compact JSON, ``{"time", "type", "record"}``, with the record of the Telemetry API's
event schema (2022-12-13) — what Lambda writes to the log stream in place of INIT_START, START, END and REPORT:

    platform.initStart        {initializationType, phase, runtimeVersion, runtimeVersionArn, functionName,
                               functionVersion, instanceId (the log stream), instanceMaxMemory (bytes)}
    platform.initRuntimeDone  {initializationType, phase, status}
    platform.initReport       {initializationType, phase, status, errorType?, metrics: {durationMs}}
    platform.start            {requestId, functionArn, version}
    platform.runtimeDone      {requestId, status, errorType?, metrics: {durationMs}}
    platform.report           {requestId, metrics: {durationMs, billedDurationMs, memorySizeMB, maxMemoryUsedMB,
                               initDurationMs?}, status, errorType?}

Their levels, for ``SystemLogLevel``: start, report, initStart and initReport are INFO (the records a stream shows
at the default level); runtimeDone and initRuntimeDone are DEBUG (shown only at DEBUG). A status is ``success``,
``error`` (the function or runtime reported an error), ``failure`` (the runtime exited: errorType
``Runtime.ExitError``) or ``timeout``.

A function's output line has a level for ``ApplicationLogLevel``: the ``level`` member of a line that is a JSON
object (``WARNING``/``CRITICAL`` as Python's logging names them count as WARN/FATAL; any case), else INFO — as
Lambda reads the output of any runtime or logging method.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["LEVELS", "line_level", "record", "report_record", "runtime_done_record", "status_of"]

# the numeric order of Lambda's log levels: a record is written when its level >= the configured one
LEVELS = {"TRACE": 1, "DEBUG": 2, "INFO": 3, "WARN": 4, "ERROR": 5, "FATAL": 6}
_ALIASES = {"WARNING": 4, "CRITICAL": 6}
_INFO = LEVELS["INFO"]
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def record(time: str, type_: str, body: dict[str, Any]) -> str:
    """One system record: ``{"time":...,"type":...,"record":{...}}``."""
    return _encode({"time": time, "type": type_, "record": body})


def status_of(status: str, report_error: str | None) -> tuple[str, str | None]:
    """The Telemetry API's status and error type of an invocation that ended with lambdad's ``status``
    (success | error | timeout | crash) and REPORT error type."""
    if status == "timeout":
        return "timeout", None
    if status == "crash":
        return "failure", report_error or "Runtime.ExitError"
    if status == "success" and report_error is None:
        return "success", None
    return "error", report_error


def runtime_done_record(request_id: str, duration_ms: float, status: str, error_type: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"requestId": request_id, "status": status}
    if error_type is not None:
        out["errorType"] = error_type
    out["metrics"] = {"durationMs": round(duration_ms, 3)}
    return out


def report_record(request_id: str, duration_ms: float, memory_size_mb: int, max_memory_used_mb: int,
                  init_duration_ms: float | None, status: str, error_type: str | None) -> dict[str, Any]:
    metrics: dict[str, Any] = {"durationMs": round(duration_ms, 3),
                               "billedDurationMs": max(1, math.ceil(duration_ms)),
                               "memorySizeMB": memory_size_mb, "maxMemoryUsedMB": max_memory_used_mb}
    if init_duration_ms is not None:
        metrics["initDurationMs"] = round(init_duration_ms, 3)
    out: dict[str, Any] = {"requestId": request_id, "metrics": metrics, "status": status}
    if error_type is not None:
        out["errorType"] = error_type
    return out


def line_level(line: str) -> tuple[int, Any]:
    """The level of a function's output line, and the line as the Telemetry API's ``function`` record carries it
    (the parsed object when the line is a JSON object, else the text)."""
    if not line.startswith("{"):
        return _INFO, line
    try:
        parsed = json.loads(line)
    except ValueError:
        return _INFO, line
    if not isinstance(parsed, dict):
        return _INFO, line
    level = parsed.get("level")
    if isinstance(level, str):
        name = level.upper()
        return LEVELS.get(name) or _ALIASES.get(name) or _INFO, parsed
    return _INFO, parsed
