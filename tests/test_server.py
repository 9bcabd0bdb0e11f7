"""The server as a whole: authentication, durability across restarts and kill -9, the data dir lock, clean
shutdown, concurrency limits, idle recycling, async retries, logs, and the aws CLI."""

from __future__ import annotations

import base64
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.server import (ACCESS_KEY, CGROUP_ROOT, SECRET_KEY, Server, _Recordings, create_python_function, env_running,
                          make_zip, wait_until)

needs_cgroups = pytest.mark.skipif(not CGROUP_ROOT.parent.exists(), reason="needs cgroups, v1 or v2 (root on Linux)")
STREAM = "import os\ndef handler(e, c):\n    return os.environ['AWS_LAMBDA_LOG_STREAM_NAME']\n"


# -- authentication ------------------------------------------------------------------------------------------

def _raw(server: Server, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""):
    req = urllib.request.Request(server.endpoint + path, data=body or None, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, dict(e.headers), e.read()


def _signed_headers(server: Server, method: str, path: str, key: str, secret: str, when: datetime | None = None):
    req = AWSRequest(method, server.endpoint + path)
    with mock.patch("botocore.auth.get_current_datetime", return_value=when or datetime.now(timezone.utc)):
        SigV4Auth(Credentials(key, secret), "lambda", "us-east-1").add_auth(req)
    return dict(req.headers)


def test_unsigned_request_is_refused(server):
    status, headers, body = _raw(server, "GET", "/2015-03-31/functions")
    assert status == 403
    assert headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


def test_unknown_key_wrong_secret_and_skew(server):
    path = "/2015-03-31/functions"
    status, headers, _ = _raw(server, "GET", path, _signed_headers(server, "GET", path, "LKIANOBODY", SECRET_KEY))
    assert (status, headers["x-amzn-ErrorType"]) == (403, "UnrecognizedClientException")
    status, headers, _ = _raw(server, "GET", path, _signed_headers(server, "GET", path, ACCESS_KEY, "wrong"))
    assert (status, headers["x-amzn-ErrorType"]) == (403, "InvalidSignatureException")
    old = datetime.now(timezone.utc) - timedelta(minutes=16)
    status, headers, body = _raw(server, "GET", path, _signed_headers(server, "GET", path, ACCESS_KEY, SECRET_KEY, old))
    assert (status, headers["x-amzn-ErrorType"]) == (403, "InvalidSignatureException")
    assert b"Signature expired" in body
    ok = datetime.now(timezone.utc) - timedelta(minutes=5)
    status, _, _ = _raw(server, "GET", path, _signed_headers(server, "GET", path, ACCESS_KEY, SECRET_KEY, ok))
    assert status == 200
    # boto3 with a wrong secret gets the same
    with pytest.raises(ClientError) as e:
        server.client(secret_key="nope").list_functions()
    assert e.value.response["Error"]["Code"] == "InvalidSignatureException"


# -- durability, lock, shutdown --------------------------------------------------------------------------------

def test_restart_keeps_functions_and_kill9_keeps_async_events(fresh_server, tmp_path, fname):
    data = tmp_path / "durable"
    # One environment at a time and one second per event: when the server is killed right after accepting five
    # events, at most one of them can have run, so the new server must find the others on disk.
    env = {"LAMBDAD_ACCOUNT_CONCURRENCY": "1", "LAMBDAD_ASYNC_RETRY_DELAYS": "3600"}
    srv = fresh_server(env=env, data_dir=data)
    lam = srv.client()
    recorder = _Recorder()
    create_python_function(lam, fname, recorder.function_code(fail=False, sleep=1.0), Timeout=5)
    lam.update_function_configuration(FunctionName=fname, Description="kept")
    accepted = [lam.invoke(FunctionName=fname, InvocationType="Event", Payload=json.dumps({"n": i}).encode())
                for i in range(5)]
    assert all(a["StatusCode"] == 202 for a in accepted)
    srv.stop(signal.SIGKILL)
    delivered_before_restart = {e["n"] for e in recorder.events}
    assert len(delivered_before_restart) <= 1
    srv2 = fresh_server(env=env, data_dir=data)
    lam2 = srv2.client()
    assert lam2.get_function_configuration(FunctionName=fname)["Description"] == "kept"
    deadline = time.time() + 60
    while time.time() < deadline and len({e["n"] for e in recorder.events}) < 5:
        time.sleep(0.1)
    assert {e["n"] for e in recorder.events} == {0, 1, 2, 3, 4}
    assert json.loads(lam2.invoke(FunctionName=fname, Payload=b'{"n": 99}')["Payload"].read()) == "ok"
    recorder.close()


def test_second_server_on_same_data_dir_is_refused(server):
    proc = subprocess.run(
        [sys.executable, "-m", "lambdad", "serve", "--port", "0", "--data-dir", str(server.data_dir)],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "LAMBDAD_ACCESS_KEY_ID": ACCESS_KEY, "LAMBDAD_SECRET_ACCESS_KEY": SECRET_KEY},
    )
    assert proc.returncode != 0
    assert "another lambdad server" in proc.stderr and str(server.data_dir) in proc.stderr
    server.client().list_functions()  # the first one is unharmed


@needs_cgroups
def test_sigterm_leaves_nothing_behind(fresh_server, fname):
    srv = fresh_server()
    lam = srv.client()
    create_python_function(lam, fname, "import time\n" + STREAM.replace("return", "time.sleep(0.3)\n    return"))
    with ThreadPoolExecutor(3) as pool:
        streams = set(pool.map(lambda _: json.loads(lam.invoke(FunctionName=fname)["Payload"].read()), range(3)))
    assert len(streams) == 3 and all(env_running(s) for s in streams)
    server_groups = {str(p.parent) for s in streams for p in CGROUP_ROOT.glob(f"*/{s.rsplit(']', 1)[1]}")}
    assert srv.stop(signal.SIGTERM) == 0
    assert not [s for s in streams if env_running(s)], "environments survived shutdown"
    assert not [g for g in server_groups if Path(g).exists()], "the server's cgroups survived shutdown"
    server_ids = {Path(g).name.split("-", 1)[1] for g in server_groups}
    assert server_ids and not [p for i in server_ids for p in Path(tempfile.gettempdir()).glob(f"lambdad-{i}-*")]


# -- concurrency and recycling ---------------------------------------------------------------------------------

def test_account_concurrency_limit_throttles(fresh_server, fname):
    srv = fresh_server(env={"LAMBDAD_ACCOUNT_CONCURRENCY": "2"})
    lam = srv.client()
    create_python_function(lam, fname, "import time\ndef handler(e, c):\n    time.sleep(1.5)\n    return 'done'\n")

    def call(_):
        try:
            return json.loads(lam.invoke(FunctionName=fname)["Payload"].read())
        except ClientError as e:
            return e.response

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(call, range(4)))
    done = [r for r in results if r == "done"]
    throttled = [r for r in results if isinstance(r, dict)]
    assert len(done) == 2 and len(throttled) == 2
    for r in throttled:
        assert r["Error"]["Code"] == "TooManyRequestsException"
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert r["Reason"] == "ConcurrentInvocationLimitExceeded"
        assert r["ResponseMetadata"]["HTTPHeaders"]["retry-after"]


@needs_cgroups
def test_idle_environments_are_recycled(fresh_server, fname):
    srv = fresh_server(env={"LAMBDAD_IDLE_TIMEOUT_SECONDS": "1"})
    lam = srv.client()
    create_python_function(lam, fname, STREAM)
    env1 = json.loads(lam.invoke(FunctionName=fname)["Payload"].read())
    assert json.loads(lam.invoke(FunctionName=fname)["Payload"].read()) == env1
    assert wait_until(lambda: not env_running(env1), timeout=10)
    resp = lam.invoke(FunctionName=fname, LogType="Tail")
    assert json.loads(resp["Payload"].read()) != env1
    assert "Init Duration" in base64.b64decode(resp["LogResult"]).decode()


# -- async retries ------------------------------------------------------------------------------------------

class _Recorder:
    """Where functions report to, so tests can see async deliveries: a path of its own on the test process's
    shared recording server (``tests.server._Recordings``, allow-listed to every server the tests start)."""

    _paths = itertools.count()

    def __init__(self) -> None:
        shared = _Recordings.shared()
        path = f"/r{next(self._paths)}/"
        self.events = shared.by_path.setdefault(path, [])
        self.url = f"http://127.0.0.1:{shared.port}{path}"

    def function_code(self, fail: bool, sleep: float = 0.0) -> str:
        return f"""
import json, time, urllib.request
def handler(event, context):
    time.sleep({sleep!r})
    event = dict(event, request_id=context.aws_request_id)
    urllib.request.urlopen(urllib.request.Request({self.url!r}, data=json.dumps(event).encode(), method="POST")).read()
    if {fail!r}:
        raise RuntimeError("fail on purpose")
    return "ok"
"""

    def close(self) -> None:
        pass  # the shared server stays for the next test


def test_async_retries_follow_the_configured_delays(fresh_server, fname):
    srv = fresh_server(env={"LAMBDAD_ASYNC_RETRY_DELAYS": "0.5,1"})
    lam = srv.client()
    recorder = _Recorder()
    create_python_function(lam, fname, recorder.function_code(fail=True))
    start = time.time()
    resp = lam.invoke(FunctionName=fname, InvocationType="Event", Payload=b'{"n": 1}')
    deadline = time.time() + 20
    while time.time() < deadline and len(recorder.events) < 3:
        time.sleep(0.05)
    time.sleep(1.5)  # no fourth attempt
    assert len(recorder.events) == 3
    assert {e["request_id"] for e in recorder.events} == {resp["ResponseMetadata"]["RequestId"]}
    assert time.time() - start >= 1.5
    recorder.close()


# -- logs ----------------------------------------------------------------------------------------------------

def test_logs_are_stored_durably(fresh_server, tmp_path, fname):
    data = tmp_path / "logs"
    srv = fresh_server(data_dir=data)
    lam = srv.client()
    create_python_function(lam, fname, "def handler(e, c):\n    print('to the log', e['x'])\n")
    rid = lam.invoke(FunctionName=fname, Payload=b'{"x": 42}')["ResponseMetadata"]["RequestId"]
    srv.stop()
    result = subprocess.run([sys.executable, "-m", "lambdad", "logs", fname, "--data-dir", str(data)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(l.startswith("INIT_START Runtime Version: python:3.11") for l in lines)
    i = lines.index(f"START RequestId: {rid} Version: $LATEST")
    assert lines[i + 1] == "to the log 42"
    assert lines[i + 2] == f"END RequestId: {rid}"
    assert lines[i + 3].startswith(f"REPORT RequestId: {rid}\tDuration: ")


def test_a_stop_while_logs_are_being_written_keeps_every_line(fresh_server, tmp_path, fname):
    """SIGTERM lands while the log writer is busy with batches: the stop is prompt and no line is lost."""
    data = tmp_path / "busy-logs"
    srv = fresh_server(data_dir=data)
    lam = srv.client()
    create_python_function(lam, fname, "def handler(e, c):\n    for i in range(e['n']):\n        print('line', i)\n")
    lam.invoke(FunctionName=fname, Payload=b'{"n": 30000}')
    started = time.monotonic()
    srv.stop()
    assert time.monotonic() - started < 15
    result = subprocess.run([sys.executable, "-m", "lambdad", "logs", fname, "--data-dir", str(data)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    printed = [line for line in result.stdout.splitlines() if line.startswith("line ")]
    assert printed == [f"line {i}" for i in range(30000)]


# -- the aws CLI ---------------------------------------------------------------------------------------------

def test_aws_cli_invoke(server, lam, fname, tmp_path):
    create_python_function(lam, fname, "def handler(e, c):\n    return {'hello': e['name']}\n")
    out = tmp_path / "out.json"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
           "AWS_DEFAULT_REGION": "us-east-1"}
    result = subprocess.run(
        ["aws", "--endpoint-url", server.endpoint, "lambda", "invoke", "--function-name", fname,
         "--payload", '{"name": "cli"}', "--log-type", "Tail", str(out)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    meta = json.loads(result.stdout)
    assert meta["StatusCode"] == 200 and meta["ExecutedVersion"] == "$LATEST"
    assert "REPORT RequestId" in base64.b64decode(meta["LogResult"]).decode()
    assert json.loads(out.read_text()) == {"hello": "cli"}


def test_degraded_mode_runs_functions_and_says_so(fresh_server, fname):
    srv = fresh_server(env={"LAMBDAD_ISOLATION": "none"})
    banner = "".join(srv.output)
    assert "isolation: OFF cgroups" in banner
    assert "isolation: OFF PID namespace" in banner and "LAMBDAD_ISOLATION=none" in banner
    lam = srv.client()
    create_python_function(lam, fname, "import os\ndef handler(e, c):\n    return [os.getpid() != 1, os.environ['TMPDIR']]\n")
    not_pid1, tmpdir = json.loads(lam.invoke(FunctionName=fname)["Payload"].read())
    assert not_pid1 and tmpdir.endswith("/tmp")
    # a timeout still kills the runtime's whole process group without cgroups
    lam.update_function_configuration(FunctionName=fname, Timeout=1)
    lam.update_function_code(FunctionName=fname, ZipFile=make_zip({"app.py": "import time\ndef handler(e, c):\n    time.sleep(5)\n"}))
    body = json.loads(lam.invoke(FunctionName=fname)["Payload"].read())
    assert body["errorType"] == "Sandbox.Timedout"


def test_doctor_reports_protections():
    result = subprocess.run([sys.executable, "-m", "lambdad", "doctor"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "isolation:" in result.stdout and "runtime python3.12:" in result.stdout
    assert ("environments are jailed" in result.stdout) == (os.geteuid() == 0 and "OFF" not in result.stdout)
    assert "prewarm pool (pre-started Node.js and custom-runtime environments): " in result.stdout


def test_a_dead_fork_server_is_restarted(fresh_server, fname):
    srv = fresh_server()
    lam = srv.client()
    create_python_function(lam, fname, STREAM)
    first = json.loads(lam.invoke(FunctionName=fname)["Payload"].read())
    fork_servers = [int(p) for p in subprocess.run(["pgrep", "-P", str(srv.proc.pid), "-f", "forkserver.py"],
                                               capture_output=True, text=True).stdout.split()]
    assert fork_servers, "no fork server under the server"
    for pid in fork_servers:
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)  # let the server notice
    # the warm environment it had forked keeps serving; a new cold start gets a new fork server
    assert json.loads(lam.invoke(FunctionName=fname)["Payload"].read()) == first
    create_python_function(lam, fname + "-2", STREAM)
    assert json.loads(lam.invoke(FunctionName=fname + "-2")["Payload"].read()) != first
    again = [int(p) for p in subprocess.run(["pgrep", "-P", str(srv.proc.pid), "-f", "forkserver.py"],
                                            capture_output=True, text=True).stdout.split()]
    assert again and not set(again) & set(fork_servers)


def test_server_log_lines_carry_the_request_id(fresh_server, fname):
    """Every server log line says which request (or asynchronous invocation) it belongs to: here the warning
    that an event was dropped after its retries, tagged with the invocation's request id."""
    srv = fresh_server(env={"LAMBDAD_ASYNC_RETRY_DELAYS": "0.2,0.2"})
    lam = srv.client()
    recorder = _Recorder()
    create_python_function(lam, fname, recorder.function_code(fail=True))
    rid = lam.invoke(FunctionName=fname, InvocationType="Event", Payload=b"{}")["ResponseMetadata"]["RequestId"]
    assert wait_until(lambda: any("dropped after" in line for line in srv.output), 20), "".join(srv.output)
    line = next(line for line in srv.output if "dropped after" in line)
    assert f"[{rid}]:" in line, line
    assert any("[-]:" in line for line in srv.output)  # lines outside any request say so
