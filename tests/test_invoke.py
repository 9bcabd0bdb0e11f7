"""Invoke end to end: results, errors, logs, limits, timeouts, memory, and the life of environments."""

from __future__ import annotations

import base64
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from tests.server import CGROUP_ROOT, ROLE, create_python_function, env_running, make_zip, wait_until

needs_cgroups = pytest.mark.skipif(not CGROUP_ROOT.parent.exists(), reason="needs cgroups, v1 or v2 (root on Linux)")
STREAM = "import os\nSTREAM = os.environ['AWS_LAMBDA_LOG_STREAM_NAME']\n"

ECHO = """
import os, json
def handler(event, context):
    print("got", json.dumps(event))
    return {
        "event": event,
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining": context.get_remaining_time_in_millis(),
        "client_context": context.client_context.custom if context.client_context else None,
        "stream": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"],
        "env": {k: v for k, v in os.environ.items()},
    }
"""


def invoke_json(lam, name, payload=None, **kwargs):
    resp = lam.invoke(FunctionName=name, Payload=json.dumps(payload if payload is not None else {}), **kwargs)
    return resp, json.loads(resp["Payload"].read())


def test_request_response_context_and_environment(lam, fname):
    create_python_function(lam, fname, ECHO, MemorySize=256, Environment={"Variables": {"GREETING": "hi"}})
    resp, body = invoke_json(lam, fname, {"a": 1})
    assert resp["StatusCode"] == 200
    assert "FunctionError" not in resp
    assert resp["ExecutedVersion"] == "$LATEST"
    assert body["event"] == {"a": 1}
    assert body["request_id"] == resp["ResponseMetadata"]["RequestId"]
    assert body["function_name"] == fname and body["function_version"] == "$LATEST"
    assert body["invoked_function_arn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{fname}"
    assert body["memory_limit_in_mb"] == "256"  # a string, as in the AWS runtime
    assert body["log_group_name"] == f"/aws/lambda/{fname}"
    assert body["log_stream_name"].startswith(time.strftime("%Y/%m/%d/", time.gmtime()) + "[$LATEST]")
    assert 0 < body["remaining"] <= 3000
    env = body["env"]
    assert env["GREETING"] == "hi"
    assert env["_HANDLER"] == "app.handler"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == fname
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.11"
    assert env["TZ"] == ":UTC"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == body["log_stream_name"]
    assert ":" in env["AWS_LAMBDA_RUNTIME_API"]
    assert os.path.isabs(env["LAMBDA_TASK_ROOT"])
    # the server's own environment does not leak into the function
    assert "LAMBDAD_SECRET_ACCESS_KEY" not in env and "LAMBDAD_ACCESS_KEY_ID" not in env


def test_empty_payload_and_client_context(lam, fname):
    create_python_function(lam, fname, ECHO)
    resp = lam.invoke(FunctionName=fname)
    assert json.loads(resp["Payload"].read())["event"] == {}
    ctx = base64.b64encode(json.dumps({"custom": {"k": "v"}, "env": {}, "client": {}}).encode()).decode()
    _, body = invoke_json(lam, fname, {}, ClientContext=ctx)
    assert body["client_context"] == {"k": "v"}


def test_log_tail(lam, fname):
    create_python_function(lam, fname, ECHO)
    resp, body = invoke_json(lam, fname, {"marker": "tail-me"}, LogType="Tail")
    log = base64.b64decode(resp["LogResult"]).decode()
    rid = body["request_id"]
    lines = log.strip().split("\n")
    assert f"START RequestId: {rid} Version: $LATEST" in lines
    assert 'got {"marker": "tail-me"}' in log
    assert f"END RequestId: {rid}" in lines
    report = [l for l in lines if l.startswith("REPORT")][0]
    fields = report.split("\t")
    assert fields[0] == f"REPORT RequestId: {rid}"
    assert fields[1].startswith("Duration: ") and fields[1].endswith(" ms")
    assert fields[2].startswith("Billed Duration: ")
    assert fields[3] == "Memory Size: 128 MB"
    assert fields[4].startswith("Max Memory Used: ")
    assert fields[5].startswith("Init Duration: ")  # the first invoke is a cold start
    resp2, _ = invoke_json(lam, fname, {}, LogType="Tail")
    assert "Init Duration" not in base64.b64decode(resp2["LogResult"]).decode()


def test_tail_is_at_most_4kb(lam, fname):
    create_python_function(lam, fname, "def handler(e, c):\n    for i in range(2000):\n        print('line', i)\n")
    resp = lam.invoke(FunctionName=fname, LogType="Tail")
    log = base64.b64decode(resp["LogResult"])
    assert len(log) <= 4096
    assert log.rstrip().split(b"\n")[-1].startswith(b"REPORT")


def test_function_error_shapes(lam, fname):
    create_python_function(lam, fname, "def handler(e, c):\n    raise ValueError('boom')\n")
    resp, body = invoke_json(lam, fname)
    assert resp["StatusCode"] == 200 and resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "ValueError" and body["errorMessage"] == "boom"
    assert body["requestId"] == resp["ResponseMetadata"]["RequestId"]
    assert any("raise ValueError('boom')" in frame for frame in body["stackTrace"])


@pytest.mark.parametrize(
    "files, handler, error_type, fragment",
    [
        ({"app.py": "x = 1\n"}, "nomodule.handler", "Runtime.ImportModuleError", "Unable to import module 'nomodule'"),
        ({"app.py": "x = 1\n"}, "app.handler", "Runtime.HandlerNotFound", "Handler 'handler' missing on module 'app'"),
        ({"app.py": "import not_a_module_anywhere\n"}, "app.handler", "Runtime.ImportModuleError", "not_a_module_anywhere"),
    ],
)
def test_init_errors(lam, fname, files, handler, error_type, fragment):
    lam.create_function(FunctionName=fname, Runtime="python3.11", Role=ROLE, Handler=handler,
                        Code={"ZipFile": make_zip(files)})
    for _ in range(2):  # an init error does not poison the next invoke: it fails the same way
        resp, body = invoke_json(lam, fname)
        assert resp["FunctionError"] == "Unhandled"
        assert body["errorType"] == error_type
        assert fragment in body["errorMessage"]


def test_warm_reuse_init_once_and_tmp_persists(lam, fname):
    code = """
import os, tempfile
COUNT = {"n": 0}
def handler(event, context):
    COUNT["n"] += 1
    path = os.path.join(tempfile.gettempdir(), "state")
    if event.get("write"):
        open(path, "w").write("kept")
    return {"env": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"], "n": COUNT["n"],
            "tmp": open(path).read() if os.path.exists(path) else None}
"""
    create_python_function(lam, fname, code)
    _, first = invoke_json(lam, fname, {"write": True})
    _, second = invoke_json(lam, fname, {})
    assert second["env"] == first["env"]
    assert (first["n"], second["n"]) == (1, 2)  # module init ran once
    assert second["tmp"] == "kept"


def test_parallel_invokes_get_parallel_environments(lam, fname):
    create_python_function(lam, fname, STREAM + "import time\ndef handler(e, c):\n    time.sleep(1)\n    return STREAM\n")
    start = time.time()
    with ThreadPoolExecutor(4) as pool:
        pids = list(pool.map(lambda _: json.loads(lam.invoke(FunctionName=fname)["Payload"].read()), range(4)))
    assert len(set(pids)) == 4
    assert time.time() - start < 3.5  # four 1 s invocations side by side, not one after another


@needs_cgroups
def test_timeout_kills_environment_and_children(lam, fname, tmp_path):
    code = STREAM + """
import subprocess, time
def handler(event, context):
    child = subprocess.Popen(["sleep", "300"])
    print("stream", STREAM, flush=True)
    time.sleep(10)
"""
    create_python_function(lam, fname, code, Timeout=1)
    resp = lam.invoke(FunctionName=fname, LogType="Tail")
    body = json.loads(resp["Payload"].read())
    rid = resp["ResponseMetadata"]["RequestId"]
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"] == f"RequestId: {rid} Error: Task timed out after 1.00 seconds"
    log = base64.b64decode(resp["LogResult"]).decode()
    assert "Status: timeout" in log
    stream = log.split("stream ", 1)[1].split()[0]
    # the environment's cgroup goes only once every process in it, the `sleep` child included, is dead
    assert wait_until(lambda: not env_running(stream)), "a process the function started survived its timeout"
    # the next invoke works (a new environment)
    lam.update_function_configuration(FunctionName=fname, Timeout=3)
    lam.update_function_code(FunctionName=fname, ZipFile=make_zip({"app.py": "def handler(e, c):\n    return 'ok'\n"}))
    assert json.loads(lam.invoke(FunctionName=fname)["Payload"].read()) == "ok"


def test_timeout_counts_from_each_invocations_own_start(lam, fname):
    """The deadline timer is re-armed lazily: when the first invocation's deadline passes during the second
    one, the second goes on until its own deadline."""
    code = "import time\ndef handler(event, context):\n    time.sleep(event['sleep'])\n    return event['sleep']\n"
    create_python_function(lam, fname, code, Timeout=2, MemorySize=1769)
    assert json.loads(lam.invoke(FunctionName=fname, Payload=b'{"sleep": 0}')["Payload"].read()) == 0
    time.sleep(1.0)
    resp = lam.invoke(FunctionName=fname, Payload=b'{"sleep": 1.5}')  # runs past the first one's deadline
    assert "FunctionError" not in resp and json.loads(resp["Payload"].read()) == 1.5
    resp = lam.invoke(FunctionName=fname, Payload=b'{"sleep": 5}')
    assert json.loads(resp["Payload"].read())["errorMessage"].endswith("Task timed out after 2.00 seconds")


def test_memory_limit_is_enforced(lam, fname):
    code = """
def handler(event, context):
    blocks = []
    for _ in range(400):
        blocks.append(bytearray(1024 * 1024))
    return len(blocks)
"""
    # 128 MB gets 1/14 of a CPU: give it time to reach the limit
    create_python_function(lam, fname, code, MemorySize=128, Timeout=60)
    resp, body = invoke_json(lam, fname)
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.OutOfMemory", body
    # the function recovers on the next invoke once it stays in bounds
    lam.update_function_code(FunctionName=fname, ZipFile=make_zip({"app.py": "def handler(e, c):\n    return 1\n"}))
    _, ok = invoke_json(lam, fname)
    assert ok == 1


def test_process_exit_is_runtime_exit_error(lam, fname):
    create_python_function(lam, fname, "import os\ndef handler(e, c):\n    os._exit(3)\n")
    resp, body = invoke_json(lam, fname)
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ExitError"
    assert body["errorMessage"].endswith("Runtime exited with error: exit status 3")


@needs_cgroups
def test_update_retires_old_environments(lam, fname):
    create_python_function(lam, fname, STREAM + "def handler(e, c):\n    return ['v1', STREAM]\n")
    _, (v, env1) = invoke_json(lam, fname)
    assert v == "v1"
    lam.update_function_code(FunctionName=fname, ZipFile=make_zip({"app.py": STREAM + "def handler(e, c):\n    return ['v2', STREAM]\n"}))
    _, (v, env2) = invoke_json(lam, fname)
    assert v == "v2" and env2 != env1
    lam.update_function_configuration(FunctionName=fname, Environment={"Variables": {"XX": "1"}})
    _, (_, env3) = invoke_json(lam, fname)
    assert env3 != env2
    assert wait_until(lambda: not env_running(env1) and not env_running(env2))


def test_dry_run_and_event(lam, fname):
    create_python_function(lam, fname, ECHO)
    dry = lam.invoke(FunctionName=fname, InvocationType="DryRun")
    assert dry["StatusCode"] == 204
    event = lam.invoke(FunctionName=fname, InvocationType="Event", Payload=b'{"async": true}')
    assert event["StatusCode"] == 202
    assert event["ResponseMetadata"]["RequestId"]


def test_invoke_bad_input(server, fname):
    lam = server.client(parameter_validation=False)
    create_python_function(lam, fname, ECHO)
    cases = [
        (dict(Payload=b"not json"), "InvalidRequestContentException", 400),
        (dict(Payload=b"x" * (6 * 1024 * 1024 + 1)), "RequestTooLargeException", 413),
        (dict(InvocationType="Event", Payload=b'"' + b"x" * (1024 * 1024) + b'"'), "RequestTooLargeException", 413),
        (dict(InvocationType="Sometimes"), "ValidationException", 400),
        (dict(ClientContext="not base64!"), "InvalidRequestContentException", 400),
        (dict(Qualifier="7"), "ResourceNotFoundException", 404),
    ]
    for kwargs, code, status in cases:
        with pytest.raises(ClientError) as e:
            lam.invoke(FunctionName=fname, **kwargs)
        err = e.value.response
        assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == (code, status), kwargs.keys()
        assert err["Error"]["Message"]


def test_large_payloads(lam, fname):
    create_python_function(lam, fname, "def handler(e, c):\n    return 'y' * e['n']\n", MemorySize=512)
    # a payload just under 6 MB goes through
    big = json.dumps({"n": 10, "pad": "x" * (6 * 1024 * 1024 - 100)})
    assert json.loads(lam.invoke(FunctionName=fname, Payload=big)["Payload"].read()) == "y" * 10
    # a response over 6 MB is a function error, not a crash
    resp, body = invoke_json(lam, fname, {"n": 7 * 1024 * 1024})
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Function.ResponseSizeTooLarge"
    resp, body = invoke_json(lam, fname, {"n": 5})
    assert body == "yyyyy"


@pytest.mark.parametrize("runtime", ["python3.9", "python3.10", "python3.12", "python3.13"])
def test_python_runtimes(lam, fname, runtime):
    code = "import sys\ndef handler(e, c):\n    return '%d.%d' % sys.version_info[:2]\n"
    create_python_function(lam, fname, code, runtime=runtime)
    _, version = invoke_json(lam, fname)
    assert version == runtime.removeprefix("python")


def test_idle_environment_is_frozen_between_invocations(lam, fname):
    code = """
import threading, time
COUNTER = [0]
def spin():
    while True:
        COUNTER[0] += 1
        time.sleep(0.001)
threading.Thread(target=spin, daemon=True).start()
def handler(event, context):
    time.sleep(0.05)  # let the thread run while we are invoked
    return COUNTER[0]
"""
    create_python_function(lam, fname, code, MemorySize=1769)
    first = json.loads(lam.invoke(FunctionName=fname)["Payload"].read())
    time.sleep(1.0)
    second = json.loads(lam.invoke(FunctionName=fname)["Payload"].read())
    # between the invocations (1 s) the thread got no CPU: only the ~50 ms inside the second invocation and the
    # 50 ms before an idle environment is frozen count
    assert second - first < 200, (first, second)
    assert second > first


def test_runtime_api_refuses_other_processes(fresh_server, fname):
    """A process outside the environment (here: the test) cannot take the environment's invocations. With
    LAMBDAD_FUNCTION_NETWORK=host the Runtime API is a port on the host's loopback, checked by peer; by default
    it listens inside the environment's own network namespace, out of the host's reach altogether."""
    lam = fresh_server(env={"LAMBDAD_FUNCTION_NETWORK": "host"}).client()
    create_python_function(lam, fname, ECHO)
    _, body = invoke_json(lam, fname)
    address = body["env"]["AWS_LAMBDA_RUNTIME_API"]
    import urllib.error
    import urllib.request

    req = urllib.request.Request(f"http://{address}/2018-06-01/runtime/invocation/next")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=5)
    e.value.close()
    assert e.value.code == 403
    _, again = invoke_json(lam, fname)  # the environment is unharmed
    assert again["stream"] == body["stream"]


def test_boto3_is_available_without_packaging(lam, fname):
    code = "import boto3, botocore\ndef handler(e, c):\n    return [boto3.__version__, botocore.__version__]\n"
    create_python_function(lam, fname, code, runtime="python3.12")
    _, versions = invoke_json(lam, fname)
    import boto3
    import botocore

    assert versions == [boto3.__version__, botocore.__version__]


def test_bundled_boto3_wins_over_the_runtime_one(lam, fname):
    files = {"app.py": "import boto3\ndef handler(e, c):\n    return boto3.__version__\n",
             "boto3/__init__.py": "__version__ = 'bundled-0.0.1'\n"}
    lam.create_function(FunctionName=fname, Runtime="python3.12", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": make_zip(files)})
    _, version = invoke_json(lam, fname)
    assert version == "bundled-0.0.1"


def test_function_calls_lambdad_with_boto3(lam, fname):
    """An unchanged boto3.client('lambda') inside a function reaches this server with the function's own
    short-lived credentials: it invokes another function its policy allows it to, and is refused a listing (default
    deny: nothing grants it ListFunctions)."""
    target = fname + "-target"
    create_python_function(lam, target, "def handler(e, c):\n    return {'doubled': e['n'] * 2}\n")
    # the caller's principal is its execution role: the target's policy must allow it to invoke
    lam.add_permission(FunctionName=target, StatementId="caller", Action="lambda:InvokeFunction", Principal=ROLE)
    code = f"""
import json, os, boto3
def handler(event, context):
    client = boto3.client("lambda")
    try:
        listed = client.list_functions(MaxItems=50)["Functions"]
    except client.exceptions.ClientError as e:
        listed = e.response["Error"]["Code"]
    out = client.invoke(FunctionName={target!r}, Payload=json.dumps({{"n": 21}}))
    return {{"listed": listed, "result": json.loads(out["Payload"].read()),
             "key": os.environ["AWS_ACCESS_KEY_ID"][:4]}}
"""
    create_python_function(lam, fname, code, runtime="python3.12", Timeout=30)
    _, body = invoke_json(lam, fname)
    assert body == {"listed": "AccessDeniedException", "result": {"doubled": 42}, "key": "ASIA"}, body


def test_function_credentials_are_per_environment_and_revoked(server, lam, fname):
    create_python_function(lam, fname, "import os\ndef handler(e, c):\n    return {k: os.environ[k] for k in "
                           "('AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN')}\n")
    _, creds = invoke_json(lam, fname)
    import boto3
    from botocore.config import Config

    leaked = boto3.client("lambda", endpoint_url=server.endpoint, region_name="us-east-1",
                          aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
                          aws_session_token=creds["AWS_SESSION_TOKEN"], config=Config(retries={"max_attempts": 0}))
    # valid while the environment lives: recognised (then refused a read no policy grants)
    with pytest.raises(ClientError) as e:
        leaked.get_function(FunctionName=fname)
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    # without the session token they are refused
    with pytest.raises(ClientError) as e:
        boto3.client("lambda", endpoint_url=server.endpoint, region_name="us-east-1",
                     aws_access_key_id=creds["AWS_ACCESS_KEY_ID"], aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
                     config=Config(retries={"max_attempts": 0})).get_function(FunctionName=fname)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # an update retires the environment: its credentials die with it
    lam.update_function_configuration(FunctionName=fname, Description="retire")
    assert wait_until(lambda: _refused(leaked, fname))


def _refused(client, name) -> bool:
    try:
        client.get_function(FunctionName=name)
    except ClientError as e:
        return e.response["Error"]["Code"] == "UnrecognizedClientException"
    return False


def test_python_runtime_uses_the_connection_the_platform_made(lam, fname):
    """lambdad hands its Python runtime a connected socketpair for the Runtime API: no TCP connection is opened
    (a fallback to AWS_LAMBDA_RUNTIME_API would still work, but cost a loopback TCP exchange per call)."""
    code = """
import os, socket, stat
def handler(event, context):
    families = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if stat.S_ISSOCK(os.fstat(int(fd)).st_mode):
                with socket.socket(fileno=os.dup(int(fd))) as s:
                    families.append(s.family.name)
        except OSError:
            pass
    return families
"""
    create_python_function(lam, fname, code)
    for _ in range(2):
        assert json.loads(lam.invoke(FunctionName=fname)["Payload"].read()) == ["AF_UNIX"]
