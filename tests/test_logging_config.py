"""Lambda's advanced logging controls (LoggingConfig) end to end: the JSON format of the system records and of the
runtimes' application records, log-level filtering of both, validation as Lambda words it, a custom log group,
and the Text format as it was. Each check reads what the caller's tail (LogType=Tail) and the stored stream
(``lambdad logs``) hold."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys

import pytest

from tests.server import ROLE, Server, create_python_function, make_zip, wait_until

PYTHON = """
import json, logging, os
logger = logging.getLogger()
def handler(event, context):
    logger.debug("debug %s", 1)
    logger.info("info %s", "x")
    logger.warning("careful", extra={"order": 7})
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("caught")
    print("plain print")
    print(json.dumps({"level": "debug", "message": "printed debug"}))
    print(json.dumps({"level": "error", "message": "printed error"}))
    env = {k: os.environ.get(k) for k in ("AWS_LAMBDA_LOG_FORMAT", "AWS_LAMBDA_LOG_LEVEL", "AWS_LAMBDA_LOG_GROUP_NAME")}
    return {"env": env, "group": context.log_group_name}
"""

NODE = """
exports.handler = async () => {
  console.trace("a trace");
  console.debug("a debug");
  console.log("a log", 1);
  console.info({structured: true});
  console.warn("a warning");
  console.error(new TypeError("bad type"));
  return "ok";
};
"""

SLEEPY = "import time\ndef handler(event, context):\n    time.sleep(5)\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("logging-config")).start()
    yield srv
    srv.stop()


@pytest.fixture
def lam(server):
    return server.client()


def invoke(lam, name: str) -> tuple[dict, object, list[str]]:
    resp = lam.invoke(FunctionName=name, Payload=b"{}", LogType="Tail")
    return resp, json.loads(resp["Payload"].read()), base64.b64decode(resp["LogResult"]).decode().splitlines()


def stored(server: Server, name: str) -> tuple[int, list[str]]:
    out = subprocess.run([sys.executable, "-m", "lambdad", "logs", name, "--data-dir", str(server.data_dir)],
                         capture_output=True, text=True, timeout=60)
    return out.returncode, out.stdout.splitlines()


def records(lines: list[str]) -> list[dict]:
    return [json.loads(line) for line in lines if line.startswith("{")]


def platform(lines: list[str], type_: str) -> list[dict]:
    return [r["record"] for r in records(lines) if r.get("type") == type_]


def test_text_stays_the_default(server, lam, fname) -> None:
    create_python_function(lam, fname, PYTHON)
    config = lam.get_function_configuration(FunctionName=fname)
    assert config["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{fname}"}
    resp, body, tail = invoke(lam, fname)
    rid = resp["ResponseMetadata"]["RequestId"]
    assert body["env"] == {"AWS_LAMBDA_LOG_FORMAT": "Text", "AWS_LAMBDA_LOG_LEVEL": None,
                           "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fname}"}
    assert tail[0] == f"START RequestId: {rid} Version: $LATEST"
    assert tail[-2] == f"END RequestId: {rid}" and tail[-1].startswith(f"REPORT RequestId: {rid}\tDuration: ")
    # the root logger at Python's default level (WARNING) without AWS_LAMBDA_LOG_LEVEL, as on Lambda
    assert any(line.startswith("[WARNING]\t") and line.endswith(f"\t{rid}\tcareful") for line in tail)
    assert not any(line.endswith("\tinfo x") for line in tail)
    assert "plain print" in tail
    assert wait_until(lambda: stored(server, fname)[1][:1] and stored(server, fname)[1][0].startswith("INIT_START"))


def test_python_json_records(server, lam, fname) -> None:
    create_python_function(lam, fname, PYTHON, runtime="python3.12", LoggingConfig={"LogFormat": "JSON"})
    config = lam.get_function_configuration(FunctionName=fname)
    assert config["LoggingConfig"] == {"LogFormat": "JSON", "ApplicationLogLevel": "INFO", "SystemLogLevel": "INFO",
                                       "LogGroup": f"/aws/lambda/{fname}"}
    resp, body, tail = invoke(lam, fname)
    rid = resp["ResponseMetadata"]["RequestId"]
    assert body["env"] == {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "INFO",
                           "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fname}"}
    assert not any(line.startswith(("START", "END", "REPORT")) for line in tail)
    first, last = json.loads(tail[0]), json.loads(tail[-1])
    assert first["type"] == "platform.start" and first["time"].endswith("Z")
    assert first["record"] == {"requestId": rid, "functionArn": first["record"]["functionArn"], "version": "$LATEST"}
    assert last["type"] == "platform.report"
    report = last["record"]
    assert report["requestId"] == rid and report["status"] == "success"
    metrics = report["metrics"]
    assert set(metrics) == {"durationMs", "billedDurationMs", "memorySizeMB", "maxMemoryUsedMB", "initDurationMs"}
    assert metrics["memorySizeMB"] == 128 and metrics["billedDurationMs"] >= metrics["durationMs"]

    app = [r for r in records(tail) if "level" in r]
    by_message = {r["message"]: r for r in app}
    assert set(by_message) == {"info x", "careful", "caught", "printed error"}  # debug dropped both ways
    info = by_message["info x"]
    assert set(info) == {"timestamp", "level", "message", "logger", "requestId"}
    assert info["level"] == "INFO" and info["logger"] == "root" and info["requestId"] == rid
    assert info["timestamp"].endswith("Z") and len(info["timestamp"]) == len("2026-12-05T19:00:00.000Z")
    assert by_message["careful"]["level"] == "WARNING" and by_message["careful"]["order"] == 7
    caught = by_message["caught"]
    assert caught["level"] == "ERROR" and caught["errorType"] == "ValueError" and caught["errorMessage"] == "boom"
    assert caught["stackTrace"] and "location" in caught
    assert "plain print" in tail  # print stays plain text

    _, warm_tail = invoke(lam, fname)[1:]
    assert "initDurationMs" not in platform(warm_tail, "platform.report")[0]["metrics"]
    # the stream has the same records, and the init start
    assert wait_until(lambda: len(platform(stored(server, fname)[1], "platform.report")) == 2)
    lines = stored(server, fname)[1]
    init = platform(lines, "platform.initStart")[0]
    assert init["functionName"] == fname and init["functionVersion"] == "$LATEST"
    assert init["initializationType"] == "on-demand" and init["phase"] == "init"
    assert init["instanceMaxMemory"] == 128 * 1024 * 1024 and init["runtimeVersion"].startswith("python:3.12")
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", init["instanceId"])  # the log stream
    assert all(line in lines for line in tail + warm_tail)  # the tail has the stream's lines


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node on PATH")
def test_node_json_records(lam, fname) -> None:
    lam.create_function(FunctionName=fname, Runtime="nodejs20.x", Role=ROLE, Handler="index.handler",
                        Code={"ZipFile": make_zip({"index.js": NODE})}, MemorySize=512,
                        LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "DEBUG"})
    resp, body, tail = invoke(lam, fname)
    rid = resp["ResponseMetadata"]["RequestId"]
    assert body == "ok"
    app = [r for r in records(tail) if "level" in r]
    assert [(r["level"], r["message"]) for r in app[:4]] == [
        ("DEBUG", "a debug"), ("INFO", "a log 1"), ("INFO", {"structured": True}), ("WARN", "a warning")]
    assert all(set(r) >= {"timestamp", "level", "requestId", "message"} and r["requestId"] == rid for r in app)
    error = app[4]["message"]
    assert app[4]["level"] == "ERROR" and error["errorType"] == "TypeError" and error["errorMessage"] == "bad type"
    assert len(app) == 5  # TRACE is below DEBUG


def test_levels_filter_both_ways(lam, fname) -> None:
    create_python_function(lam, fname, PYTHON, LoggingConfig={
        "LogFormat": "JSON", "ApplicationLogLevel": "ERROR", "SystemLogLevel": "WARN"})
    _, _, tail = invoke(lam, fname)
    assert [r["message"] for r in records(tail)] == ["caught", "printed error"]  # no platform record at WARN
    assert "plain print" not in tail  # a line without a level is INFO

    lam.update_function_configuration(FunctionName=fname, LoggingConfig={
        "ApplicationLogLevel": "DEBUG", "SystemLogLevel": "DEBUG"})
    config = lam.get_function_configuration(FunctionName=fname)["LoggingConfig"]
    assert (config["LogFormat"], config["ApplicationLogLevel"], config["SystemLogLevel"]) == ("JSON", "DEBUG", "DEBUG")
    resp, body, tail = invoke(lam, fname)
    assert body["env"]["AWS_LAMBDA_LOG_LEVEL"] == "DEBUG"
    messages = [r.get("message") for r in records(tail)]
    assert "debug 1" in messages and "printed debug" in messages and "plain print" in tail
    types = [r.get("type") for r in records(tail) if "type" in r]
    assert types == ["platform.start", "platform.runtimeDone", "platform.report"]
    done = platform(tail, "platform.runtimeDone")[0]
    assert done["status"] == "success" and done["requestId"] == resp["ResponseMetadata"]["RequestId"]


def test_a_timeout_in_json(lam, fname) -> None:
    create_python_function(lam, fname, SLEEPY, Timeout=1, LoggingConfig={"LogFormat": "JSON"})
    resp, body, tail = invoke(lam, fname)
    assert body["errorType"] == "Sandbox.Timedout"
    assert not any("Task timed out" in line for line in tail)
    report = platform(tail, "platform.report")[0]
    assert report["status"] == "timeout" and report["metrics"]["durationMs"] >= 1000


def test_errors_in_json(lam, fname) -> None:
    code = ("import os\ndef handler(event, context):\n    if event.get('exit'):\n        os._exit(3)\n"
            "    raise KeyError('missing')\n")
    create_python_function(lam, fname, code, LoggingConfig={"LogFormat": "JSON"})
    resp, body, tail = invoke(lam, fname)
    rid = resp["ResponseMetadata"]["RequestId"]
    assert body["errorType"] == "KeyError"
    error = [r for r in records(tail) if r.get("level") == "ERROR"][0]  # the runtime's error record, in JSON
    assert error["errorType"] == "KeyError" and error["requestId"] == rid and error["stackTrace"]
    assert platform(tail, "platform.report")[0]["status"] == "error"
    resp = lam.invoke(FunctionName=fname, Payload=b'{"exit": true}', LogType="Tail")
    assert json.loads(resp["Payload"].read())["errorType"] == "Runtime.ExitError"
    tail = base64.b64decode(resp["LogResult"]).decode().splitlines()
    assert not any("Runtime exited" in line for line in tail)
    report = platform(tail, "platform.report")[0]
    assert (report["status"], report["errorType"]) == ("failure", "Runtime.ExitError")


def test_levels_need_the_json_format(lam, fname) -> None:
    message = ('LogLevel is not supported when LogFormat is set to "Text". Remove LogLevel from your request or '
               'change the LogFormat to "JSON" and try again.')
    for logging_config in ({"LogFormat": "Text", "ApplicationLogLevel": "INFO"}, {"SystemLogLevel": "WARN"}):
        with pytest.raises(lam.exceptions.InvalidParameterValueException) as raised:
            create_python_function(lam, fname, PYTHON, LoggingConfig=logging_config)
        assert raised.value.response["Error"]["Message"] == message
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    create_python_function(lam, fname, PYTHON)
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.update_function_configuration(FunctionName=fname, LoggingConfig={"ApplicationLogLevel": "DEBUG"})
    with pytest.raises(lam.exceptions.ClientError) as raised:
        lam.update_function_configuration(FunctionName=fname, LoggingConfig={"LogFormat": "XML"})
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert raised.value.response["Error"]["Message"] == (
        "1 validation error detected: Value 'XML' at 'loggingConfig.logFormat' failed to satisfy constraint: "
        "Member must satisfy enum value set: [JSON, Text]")
    # JSON, then back to Text: the levels go
    lam.update_function_configuration(FunctionName=fname, LoggingConfig={"LogFormat": "JSON",
                                                                         "SystemLogLevel": "DEBUG"})
    lam.get_waiter("function_updated_v2").wait(FunctionName=fname)
    lam.update_function_configuration(FunctionName=fname, LoggingConfig={"LogFormat": "Text"})
    assert lam.get_function_configuration(FunctionName=fname)["LoggingConfig"] == {
        "LogFormat": "Text", "LogGroup": f"/aws/lambda/{fname}"}


def test_a_custom_log_group(server, lam, fname) -> None:
    group = f"/custom/{fname}"
    create_python_function(lam, fname, PYTHON, LoggingConfig={"LogGroup": group})
    assert lam.get_function_configuration(FunctionName=fname)["LoggingConfig"]["LogGroup"] == group
    resp, body, _ = invoke(lam, fname)
    assert body["env"]["AWS_LAMBDA_LOG_GROUP_NAME"] == group and body["group"] == group
    rid = resp["ResponseMetadata"]["RequestId"]
    assert wait_until(lambda: any(line.startswith(f"REPORT RequestId: {rid}") for line in stored(server, fname)[1]))
    assert stored(server, group)[1] == stored(server, fname)[1]
    code, lines = stored(server, f"/aws/lambda/{fname}")
    assert code == 1 and lines == []  # nothing went to the default group
    logs = server.client("logs")  # the CloudWatch Logs API sees the same group
    events = logs.filter_log_events(logGroupName=group)["events"]
    assert any(e["message"].startswith(f"REPORT RequestId: {rid}") for e in events)
    logs.close()
