"""Node.js runtimes (nodejs18.x, nodejs20.x, nodejs22.x) end to end: handler styles (CommonJS, ES modules,
async, callback), the context object, console lines, Lambda's error shapes and init errors."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
import time

import pytest

from tests.server import ROLE, make_zip, wait_until

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs node on PATH")

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t(?P<rid>[^\t]+)\t(?P<level>[A-Z]+)\t(?P<message>.*)$")

CONTEXT_CJS = """
let calls = 0;
exports.handler = async (event, context) => {
  calls += 1;
  console.log("hello", {n: calls});
  console.warn("careful");
  console.error("bad", new Error("shown"));
  return {
    event, calls,
    functionName: context.functionName, functionVersion: context.functionVersion,
    invokedFunctionArn: context.invokedFunctionArn, memoryLimitInMB: context.memoryLimitInMB,
    awsRequestId: context.awsRequestId, logGroupName: context.logGroupName, logStreamName: context.logStreamName,
    remaining: context.getRemainingTimeInMillis(), clientContext: context.clientContext ?? null,
    identity: context.identity ?? null, waits: context.callbackWaitsForEmptyEventLoop,
    env: process.env, node: process.version, cwd: process.cwd(), uid: process.getuid(),
  };
};
"""


def create_node(lam, name: str, files: dict, handler: str = "index.handler", runtime: str = "nodejs20.x", **kwargs):
    lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
                        Code={"ZipFile": make_zip(files)}, **{"MemorySize": 512, **kwargs})


def invoke(lam, name: str, payload=None, **kwargs):
    resp = lam.invoke(FunctionName=name, Payload=json.dumps(payload if payload is not None else {}), LogType="Tail",
                      **kwargs)
    return resp, json.loads(resp["Payload"].read()), base64.b64decode(resp["LogResult"]).decode()


def console_lines(log: str) -> list[dict]:
    return [m.groupdict() for m in map(LINE.match, log.splitlines()) if m]


def test_commonjs_async_context_env_and_console(lam, fname):
    create_node(lam, fname, {"index.js": CONTEXT_CJS}, Environment={"Variables": {"GREETING": "hi"}})
    ctx = base64.b64encode(json.dumps({"custom": {"k": "v"}, "env": {}, "client": {}}).encode()).decode()
    resp, body, log = invoke(lam, fname, {"a": 1}, ClientContext=ctx)
    rid = resp["ResponseMetadata"]["RequestId"]
    assert "FunctionError" not in resp, body
    assert body["event"] == {"a": 1}
    assert body["awsRequestId"] == rid
    assert body["functionName"] == fname and body["functionVersion"] == "$LATEST"
    assert body["invokedFunctionArn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{fname}"
    assert body["memoryLimitInMB"] == "512"  # a string, as on AWS
    assert body["logGroupName"] == f"/aws/lambda/{fname}"
    assert body["logStreamName"].startswith(time.strftime("%Y/%m/%d/", time.gmtime()) + "[$LATEST]")
    assert 0 < body["remaining"] <= 3000
    assert body["clientContext"]["custom"] == {"k": "v"}
    assert body["identity"] is None and body["waits"] is True
    assert body["cwd"] == "/var/task" and body["uid"] != 0
    env = body["env"]
    assert env["GREETING"] == "hi"
    assert env["_HANDLER"] == "index.handler"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_nodejs20.x"
    assert env["LAMBDA_TASK_ROOT"] == "/var/task" and env["LAMBDA_RUNTIME_DIR"] == "/var/runtime"
    assert env["NODE_PATH"] == ("/opt/nodejs/node20/node_modules:/opt/nodejs/node_modules:"
                                "/var/runtime/node_modules:/var/runtime:/var/task")
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512" and env["TZ"] == ":UTC"
    assert env["_X_AMZN_TRACE_ID"].startswith("Root=1-")
    assert "LAMBDAD_SECRET_ACCESS_KEY" not in env
    lines = console_lines(log)
    assert [(l["rid"], l["level"]) for l in lines[:3]] == [(rid, "INFO"), (rid, "WARN"), (rid, "ERROR")]
    assert lines[0]["message"] == "hello { n: 1 }"
    assert lines[1]["message"] == "careful"
    assert lines[2]["message"].startswith("bad Error: shown")  # util.format, then the stack on the next lines

    # warm: the module stays loaded, no new init
    resp, body, log = invoke(lam, fname, {"a": 2})
    assert body["calls"] == 2 and "Init Duration" not in log
    assert console_lines(log)[0]["message"] == "hello { n: 2 }"


@pytest.mark.parametrize(
    "files, handler, expected",
    [
        ({"index.mjs": "export const handler = async (event) => ({esm: 'mjs', event});"}, "index.handler",
         {"esm": "mjs", "event": {"x": 1}}),
        ({"package.json": '{"type": "module"}', "app.js": "export async function run(e) { return {esm: 'type-module', e}; }"},
         "app.run", {"esm": "type-module", "e": {"x": 1}}),
        ({"lib/mod.cjs": "module.exports = {api: {get: async (e) => ({cjs: true, e})}};"}, "lib/mod.api.get",
         {"cjs": True, "e": {"x": 1}}),
        ({"node_modules/helper/index.js": "exports.twice = (n) => n * 2;",
          "src/index.js": "const {twice} = require('helper');\nexports.handler = async (e) => twice(e.x);"},
         "src/index.handler", 2),
    ],
    ids=["mjs", "type-module", "cjs-nested-path", "node_modules"],
)
def test_module_kinds(lam, fname, files, handler, expected):
    create_node(lam, fname, files, handler)
    resp, body, _ = invoke(lam, fname, {"x": 1})
    assert "FunctionError" not in resp, body
    assert body == expected


def test_callback_waits_for_empty_event_loop(lam, fname):
    code = """
exports.handler = (event, context, callback) => {
  setTimeout(() => console.log("timer done"), 300);
  callback(null, {via: "callback"});
};
"""
    create_node(lam, fname, {"index.js": code})
    start = time.time()
    resp, body, log = invoke(lam, fname)
    assert body == {"via": "callback"}
    assert time.time() - start >= 0.3  # the answer left only once the event loop was empty
    messages = [l["message"] for l in console_lines(log)]
    assert "timer done" in messages  # inside this invocation's log, before END


def test_callback_without_waiting(lam, fname):
    code = """
let calls = 0;
exports.handler = (event, context, callback) => {
  calls += 1;
  context.callbackWaitsForEmptyEventLoop = false;
  setTimeout(() => console.log("late timer of call", calls), 1500);
  callback(null, {calls});
};
"""
    create_node(lam, fname, {"index.js": code})
    start = time.time()
    _, body, log = invoke(lam, fname)
    assert body == {"calls": 1}
    assert time.time() - start < 1.4  # answered at once, the timer still pending
    assert "late timer" not in log


@pytest.mark.parametrize(
    "code, expected",
    [
        ("exports.handler = (e, c) => { c.succeed({how: 'succeed'}); };", {"how": "succeed"}),
        ("exports.handler = (e, c) => { c.done(null, 'done'); c.done(null, 'twice'); };", "done"),
        ("exports.handler = (e) => { return 'ignored'; };", None),  # not async, never called back: null
        ("exports.handler = (e) => Promise.resolve({how: 'promise'});", {"how": "promise"}),
    ],
    ids=["succeed", "done-once", "sync-return", "returned-promise"],
)
def test_other_handler_styles(lam, fname, code, expected):
    create_node(lam, fname, {"index.js": code})
    resp, body, _ = invoke(lam, fname)
    assert "FunctionError" not in resp, body
    assert body == expected


def test_function_errors(lam, fname):
    create_node(lam, fname, {"index.js": "exports.handler = async (e) => { throw new TypeError('bad thing'); };"})
    resp, body, log = invoke(lam, fname)
    rid = resp["ResponseMetadata"]["RequestId"]
    assert resp["FunctionError"] == "Unhandled"
    assert set(body) == {"errorType", "errorMessage", "trace"}
    assert body["errorType"] == "TypeError" and body["errorMessage"] == "bad thing"
    assert body["trace"][0] == "TypeError: bad thing"
    assert "/var/task/index.js" in body["trace"][1]
    error_line = [l for l in console_lines(log) if l["level"] == "ERROR"][0]
    assert error_line["rid"] == rid
    title, _, formatted = error_line["message"].partition(" \t")
    assert title == "Invoke Error"
    logged = json.loads(formatted)
    assert logged["errorType"] == "TypeError" and logged["stack"][0] == "TypeError: bad thing"

    # callback with a value that is not an Error
    lam.update_function_code(FunctionName=fname, ZipFile=make_zip({"index.js": "exports.handler = (e, c, cb) => cb('nope');"}))
    _, body, _ = invoke(lam, fname)
    assert body == {"errorType": "string", "errorMessage": "nope", "trace": []}

    # an async handler whose promise never settles
    lam.update_function_code(FunctionName=fname, ZipFile=make_zip({"index.mjs": "export const handler = async () => new Promise(() => {});"}))
    _, body, _ = invoke(lam, fname)
    assert body["errorType"] == "Runtime.NodeJsExit"
    assert "detected an unexpected Node.js exit code" in body["errorMessage"]


def test_uncaught_exception_fails_the_invocation_and_the_next_one_starts_fresh(lam, fname):
    code = """
const started = Date.now();
exports.handler = (event, context, callback) => {
  if (event.crash) { setTimeout(() => { throw new RangeError("from a timer"); }, 10); return; }
  callback(null, started);
};
"""
    create_node(lam, fname, {"index.js": code})
    _, first, _ = invoke(lam, fname)
    resp, body, _ = invoke(lam, fname, {"crash": True})
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "RangeError" and body["errorMessage"] == "from a timer"
    _, after, log = invoke(lam, fname)
    assert after != first and "Init Duration" in log  # the runtime exited (129): a new environment


@pytest.mark.parametrize(
    "files, handler, error_type, message",
    [
        ({"index.js": "exports.handler = 1;"}, "nope.handler", "Runtime.ImportModuleError",
         "Error: Cannot find module 'nope'\nRequire stack:\n- /var/runtime/index.js"),
        ({"index.js": "exports.other = async () => 1;"}, "index.handler", "Runtime.HandlerNotFound",
         "index.handler is undefined or not exported"),
        ({"index.js": "exports.handler = 42;"}, "index.handler", "Runtime.HandlerNotFound", "index.handler is not a function"),
        ({"index.js": "exports.handler = async () => {;"}, "index.handler", "Runtime.UserCodeSyntaxError",
         "SyntaxError: Unexpected end of input"),
        ({"index.js": "require('missing-dependency');"}, "index.handler", "Runtime.ImportModuleError",
         "Error: Cannot find module 'missing-dependency'"),
        ({"index.js": "throw new Error('init failed');"}, "index.handler", "Error", "init failed"),
        ({"index.js": ""}, "../index.handler", "Runtime.MalformedHandlerName",
         "'../index.handler' is not a valid handler name. Use absolute paths when specifying root directories in handler names."),
        ({"index.js": ""}, "index", "Runtime.MalformedHandlerName", "Bad handler"),
    ],
    ids=["no-module", "not-exported", "not-a-function", "syntax", "missing-dependency", "throws", "dotdot", "no-dot"],
)
def test_init_errors(lam, fname, files, handler, error_type, message):
    create_node(lam, fname, files, handler)
    for _ in range(2):  # an init error does not poison the next invoke: it fails the same way
        resp, body, log = invoke(lam, fname)
        assert resp["FunctionError"] == "Unhandled"
        assert body["errorType"] == error_type
        assert body["errorMessage"].startswith(message), body["errorMessage"]
        assert body["trace"][0].startswith(f"{error_type}: {message.splitlines()[0]}")
        line = [l for l in console_lines(log) if l["level"] == "ERROR"][0]
        assert line["rid"] == "undefined"  # no invocation yet, as on AWS
        assert line["message"].startswith("Uncaught Exception \t{")


def test_json_log_format_and_level(lam, fname):
    code = """
exports.handler = async () => {
  console.debug("hidden");
  console.info("shown", 1);
  console.error({structured: true});
  return "ok";
};
"""
    create_node(lam, fname, {"index.js": code},
                Environment={"Variables": {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "INFO"}})
    resp, _, log = invoke(lam, fname)
    rid = resp["ResponseMetadata"]["RequestId"]
    records = [json.loads(l) for l in log.splitlines() if l.startswith("{")]
    assert [(r["level"], r["message"]) for r in records] == [("INFO", "shown 1"), ("ERROR", {"structured": True})]
    assert all(r["requestId"] == rid and r["timestamp"].endswith("Z") for r in records)


def test_memory_flags_and_node_options(lam, fname):
    code = "exports.handler = async () => ({argv: process.execArgv, heap: require('v8').getHeapStatistics().heap_size_limit});"
    create_node(lam, fname, {"index.js": code}, MemorySize=256)
    _, body, _ = invoke(lam, fname)
    assert "--max-old-space-size=231" in body["argv"]
    assert body["heap"] < 256 * 1024 * 1024
    lam.update_function_configuration(FunctionName=fname, Environment={"Variables": {"NODE_OPTIONS": "--max-old-space-size=100"}})
    _, body, _ = invoke(lam, fname)
    assert not any("space-size" in a for a in body["argv"])  # the function's own NODE_OPTIONS win


@pytest.mark.parametrize("runtime", ["nodejs18.x", "nodejs20.x", "nodejs22.x"])
def test_runtime_names_and_init_start(server, lam, fname, runtime):
    create_node(lam, fname, {"index.mjs": "export const handler = async () => process.versions.node;"}, runtime=runtime)
    _, version, _ = invoke(lam, fname)
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    assert f"v{version}" == node  # one node serves every name

    def init_start() -> list[str]:
        out = subprocess.run([sys.executable, "-m", "lambdad", "logs", fname, "--data-dir", str(server.data_dir)],
                             capture_output=True, text=True, timeout=60).stdout
        return [l for l in out.splitlines() if l.startswith("INIT_START")]

    assert wait_until(lambda: init_start(), timeout=10)
    major = runtime.removeprefix("nodejs").removesuffix(".x")
    label = init_start()[0].split("\t")[0]
    exact = node.lstrip("v").split(".")[0] == major
    assert label == f"INIT_START Runtime Version: nodejs:{major}.lambdad" + ("" if exact else f" (on node {node})")


def test_large_event_and_response(lam, fname):
    create_node(lam, fname, {"index.js": "exports.handler = async (e) => ({n: e.pad.length, back: 'z'.repeat(e.want)});"},
                MemorySize=1024)
    pad = "x" * (5 * 1024 * 1024)
    resp = lam.invoke(FunctionName=fname, Payload=json.dumps({"pad": pad, "want": 5 * 1024 * 1024}))
    body = json.loads(resp["Payload"].read())
    assert "FunctionError" not in resp
    assert body["n"] == len(pad) and len(body["back"]) == 5 * 1024 * 1024
    # over 6 MB back: Lambda's error, and the environment goes on serving
    resp = lam.invoke(FunctionName=fname, Payload=json.dumps({"pad": "", "want": 7 * 1024 * 1024}))
    assert json.loads(resp["Payload"].read())["errorType"] == "Function.ResponseSizeTooLarge"
    resp = lam.invoke(FunctionName=fname, Payload=json.dumps({"pad": "abc", "want": 1}))
    assert json.loads(resp["Payload"].read()) == {"n": 3, "back": "z"}
