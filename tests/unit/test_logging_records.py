"""Lambda's advanced logging controls, the pure parts: resolving a LoggingConfig (functions/logging_config.py), the
JSON system records and the level of an output line (sandbox/platform_records.py), the JSON log of an
environment filtering by level (sandbox/json_log.py), and the variables the runtime reads (sandbox/variables.py)."""

from __future__ import annotations

import dataclasses
import json
from typing import Callable

import pytest

from lambdad.errors import InvalidParameterValueException, ValidationException
from lambdad.functions.logging_config import LoggingSettings, resolve
from lambdad.functions.model import FunctionConfig
from lambdad.runtimes.registry import RuntimeRegistry
from lambdad.sandbox import platform_records as records
from lambdad.sandbox.invocation_log import InvocationLog
from lambdad.sandbox.json_log import JsonInvocationLog, invocation_log
from lambdad.sandbox.spec import EnvironmentSpec, Invocation
from lambdad.sandbox.variables import runtime_variables

CONFIG = FunctionConfig(name="f", version="$LATEST", runtime="python3.12", handler="app.handler", role="r",
                        code_sha256="", code_hash="", code_size=0, last_modified="", revision_id="rev",
                        memory_size=256, log_format="JSON", application_log_level="INFO", system_log_level="INFO")


# -- LoggingConfig ------------------------------------------------------------------------------------------

def test_json_defaults_both_levels_to_info() -> None:
    assert resolve(LoggingSettings(), "JSON", None, None, None) == LoggingSettings("JSON", "INFO", "INFO", "")


def test_a_level_with_the_text_format_is_refused_as_lambda_refuses_it() -> None:
    with pytest.raises(InvalidParameterValueException) as raised:
        resolve(LoggingSettings(), "Text", "DEBUG", None, None)
    assert raised.value.message == (
        'LogLevel is not supported when LogFormat is set to "Text". Remove LogLevel from your request or change '
        'the LogFormat to "JSON" and try again.')
    with pytest.raises(InvalidParameterValueException):  # no format given: the function's (Text) counts
        resolve(LoggingSettings(), None, None, "WARN", None)


def test_an_update_keeps_what_it_does_not_name_and_text_drops_the_levels() -> None:
    json_debug = LoggingSettings("JSON", "DEBUG", "WARN", "/custom/group")
    assert resolve(json_debug, None, "ERROR", None, None) == LoggingSettings("JSON", "ERROR", "WARN", "/custom/group")
    assert resolve(json_debug, "JSON", None, None, None) == json_debug
    assert resolve(json_debug, "Text", None, None, None) == LoggingSettings("Text", "", "", "/custom/group")
    assert resolve(LoggingSettings(), None, None, None, "/g") == LoggingSettings("Text", "", "", "/g")


@pytest.mark.parametrize("args, message", [
    (("json", None, None, None), "Value 'json' at 'loggingConfig.logFormat' failed to satisfy constraint: "
                                 "Member must satisfy enum value set: [JSON, Text]"),
    (("JSON", "WARNING", None, None), "Value 'WARNING' at 'loggingConfig.applicationLogLevel' failed to satisfy "
                                      "constraint: Member must satisfy enum value set: "
                                      "[TRACE, DEBUG, INFO, WARN, ERROR, FATAL]"),
    (("JSON", None, "ERROR", None), "Value 'ERROR' at 'loggingConfig.systemLogLevel' failed to satisfy constraint: "
                                    "Member must satisfy enum value set: [DEBUG, INFO, WARN]"),
    ((None, None, None, "no spaces"), "Value 'no spaces' at 'loggingConfig.logGroup' failed to satisfy constraint: "
                                      "Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+"),
])
def test_values_outside_the_model_are_validation_errors(args: tuple[str | None, ...], message: str) -> None:
    with pytest.raises(ValidationException) as raised:
        resolve(LoggingSettings(), *args)
    assert raised.value.message == "1 validation error detected: " + message


def test_get_function_configuration_shows_the_levels_with_json_only() -> None:
    assert CONFIG.to_api("us-east-1", "000000000000")["LoggingConfig"] == {
        "LogFormat": "JSON", "ApplicationLogLevel": "INFO", "SystemLogLevel": "INFO", "LogGroup": "/aws/lambda/f"}
    text = dataclasses.replace(CONFIG, log_format="Text", application_log_level="", system_log_level="")
    assert text.to_api("us-east-1", "000000000000")["LoggingConfig"] == {
        "LogFormat": "Text", "LogGroup": "/aws/lambda/f"}


# -- records ------------------------------------------------------------------------------------------------

def test_a_report_record_has_the_telemetry_schema_metrics() -> None:
    body = records.report_record("r1", 693.9213, 128, 84, 397.6801, "success", None)
    assert body == {"requestId": "r1", "status": "success", "metrics": {
        "durationMs": 693.921, "billedDurationMs": 694, "memorySizeMB": 128, "maxMemoryUsedMB": 84,
        "initDurationMs": 397.68}}
    assert "initDurationMs" not in records.report_record("r1", 0.2, 128, 1, None, "success", None)["metrics"]
    assert records.report_record("r1", 0.2, 128, 1, None, "success", None)["metrics"]["billedDurationMs"] == 1
    line = records.record("2026-12-05T00:00:00.000Z", "platform.report", body)
    assert json.loads(line) == {"time": "2026-12-05T00:00:00.000Z", "type": "platform.report", "record": body}
    assert "\n" not in line and ", " not in line  # one compact line, as Lambda writes it


def test_statuses() -> None:
    assert records.status_of("success", None) == ("success", None)
    assert records.status_of("error", None) == ("error", None)
    assert records.status_of("success", "Runtime.Unknown") == ("error", "Runtime.Unknown")
    assert records.status_of("timeout", None) == ("timeout", None)
    assert records.status_of("crash", None) == ("failure", "Runtime.ExitError")


@pytest.mark.parametrize("line, level", [
    ('{"level": "debug", "msg": "x"}', "DEBUG"), ('{"level":"WARNING"}', "WARN"), ('{"level":"CRITICAL"}', "FATAL"),
    ('{"level":"TRACE"}', "TRACE"), ('{"level":"nonsense"}', "INFO"), ('{"message":"no level"}', "INFO"),
    ("plain print output", "INFO"), ("{not json", "INFO"), ('{"level": 5}', "INFO"),
])
def test_the_level_of_an_output_line(line: str, level: str) -> None:
    assert records.line_level(line)[0] == records.LEVELS[level]


# -- the JSON log -------------------------------------------------------------------------------------------

class Sink:
    congested = False

    def __init__(self) -> None:
        self.lines: list[str] = []

    def emit(self, group: str, stream: str, message: str, timestamp_ms: int | None = None) -> None:
        self.lines.append(message)

    def when_drained(self, callback: Callable[[], None]) -> None:
        callback()


def json_log(sink: Sink, current: Callable[[], Invocation | None] = lambda: None, **levels: str) -> JsonInvocationLog:
    config = dataclasses.replace(CONFIG, **levels)
    return JsonInvocationLog(sink, "e1", config, current, initialization_type="on-demand")


def test_a_cold_invocation_in_json() -> None:
    sink = Sink()
    log = json_log(sink)
    log.init_start("python:3.12", "arn:aws:lambda:us-east-1::runtime:lambdad-python3.12")
    log.initialised(20.5)
    inv = Invocation("r1", b"{}", "arn:aws:lambda:us-east-1:000000000000:function:f", want_log=True)
    log.start(inv)
    log.report(inv, 3.25, "success", None)
    parsed = [json.loads(line) for line in sink.lines]
    assert [p["type"] for p in parsed] == ["platform.initStart", "platform.start", "platform.report"]
    assert parsed[0]["record"] == {
        "initializationType": "on-demand", "phase": "init", "runtimeVersion": "python:3.12",
        "runtimeVersionArn": "arn:aws:lambda:us-east-1::runtime:lambdad-python3.12", "functionName": "f",
        "functionVersion": "$LATEST", "instanceId": log.stream, "instanceMaxMemory": 256 * 1024 * 1024}
    assert parsed[1]["record"] == {"requestId": "r1", "functionArn": inv.invoked_arn, "version": "$LATEST"}
    assert parsed[2]["record"]["metrics"]["initDurationMs"] == 20.5 and parsed[2]["record"]["status"] == "success"
    assert inv.log_lines == sink.lines[1:]  # the tail has the stream's records


def test_system_levels_filter_the_platform_records() -> None:
    debug, warn = Sink(), Sink()
    for sink, level in ((debug, "DEBUG"), (warn, "WARN")):
        log = json_log(sink, system_log_level=level)
        log.init_start("python:3.12", "arn")
        log.initialised(1.0)
        inv = Invocation("r1", b"{}", "arn")
        log.start(inv)
        log.report(inv, 1.0, "timeout", None)
    assert [json.loads(line)["type"] for line in debug.lines] == [
        "platform.initStart", "platform.initRuntimeDone", "platform.start", "platform.runtimeDone", "platform.report"]
    assert json.loads(debug.lines[3])["record"]["status"] == "timeout"
    assert warn.lines == []


def test_application_levels_filter_the_functions_lines() -> None:
    sink = Sink()
    inv = Invocation("r1", b"{}", "arn", want_log=True)
    log = json_log(sink, lambda: inv, application_log_level="WARN")
    for line in ('{"level":"INFO","message":"i"}', '{"level":"WARNING","message":"w"}', "printed",
                 '{"level":"ERROR","message":"e"}'):
        log._function_line(line)
    assert sink.lines == inv.log_lines == ['{"level":"WARNING","message":"w"}', '{"level":"ERROR","message":"e"}']


def test_the_platforms_text_lines_are_not_written_in_json() -> None:
    sink = Sink()
    log = json_log(sink)
    inv = Invocation("r1", b"{}", "arn")
    log.start_unrun(inv)
    log.system_line(inv, "2026-12-05T00:00:00.000Z r1 Task timed out after 3.00 seconds")
    log.init_failed(12.0, "Runtime.ExitError")
    assert [json.loads(line)["type"] for line in sink.lines] == ["platform.start", "platform.initReport"]
    assert json.loads(sink.lines[1])["record"] == {
        "initializationType": "on-demand", "phase": "init", "status": "error", "errorType": "Runtime.ExitError",
        "metrics": {"durationMs": 12.0}}


def spec(config: FunctionConfig) -> EnvironmentSpec:
    return EnvironmentSpec(config=config, runtime=RuntimeRegistry().get("python3.12"), task_root="/t",
                           runtime_label="python:3.12", region="us-east-1", account_id="000000000000")


def test_the_format_picks_the_log_and_the_variables() -> None:
    text = dataclasses.replace(CONFIG, log_format="Text", application_log_level="", system_log_level="")
    assert type(invocation_log(Sink(), "e", spec(text), lambda: None)) is InvocationLog
    assert type(invocation_log(Sink(), "e", spec(CONFIG), lambda: None)) is JsonInvocationLog
    env = runtime_variables(spec(text), runtime_api="a:1", jailed=True, log_stream="s")
    assert env["AWS_LAMBDA_LOG_FORMAT"] == "Text" and "AWS_LAMBDA_LOG_LEVEL" not in env
    debug = dataclasses.replace(CONFIG, application_log_level="DEBUG", log_group="/my/group")
    env = runtime_variables(spec(debug), runtime_api="a:1", jailed=True, log_stream="s")
    assert env["AWS_LAMBDA_LOG_FORMAT"] == "JSON" and env["AWS_LAMBDA_LOG_LEVEL"] == "DEBUG"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/my/group"
