"""Custom runtimes (provided, provided.al2, provided.al2023) end to end: the function's own ``bootstrap`` talks to
the Runtime API — a shell script with curl, and AWS's own Python runtime interface client (awslambdaric, from
PyPI, unchanged) — plus Lambda's Runtime.InvalidEntrypoint when there is no program to run."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.server import ROLE, make_zip

needs_curl = pytest.mark.skipif(not os.access("/usr/bin/curl", os.X_OK), reason="needs /usr/bin/curl")

# A whole custom runtime in sh: loop on /next, answer each event (or report an error) with curl.
SHELL_BOOTSTRAP = r"""#!/bin/sh
set -eu
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
echo "init: handler=${_HANDLER} task=${LAMBDA_TASK_ROOT} runtime=${LAMBDA_RUNTIME_DIR} exec_env=${AWS_EXECUTION_ENV:-unset} lib=${LD_LIBRARY_PATH}"
COUNT=0
while true; do
  HEADERS="$(mktemp)"
  EVENT="$(curl -sS -D "$HEADERS" "$API/invocation/next")"
  RID="$(grep -i '^Lambda-Runtime-Aws-Request-Id:' "$HEADERS" | cut -d: -f2 | tr -d '[:space:]')"
  DEADLINE="$(grep -i '^Lambda-Runtime-Deadline-Ms:' "$HEADERS" | cut -d: -f2 | tr -d '[:space:]')"
  COUNT=$((COUNT + 1))
  echo "event $COUNT: $EVENT"
  case "$EVENT" in
    *fail*)
      curl -sS -o /dev/null -X POST -H "Lambda-Runtime-Function-Error-Type: Custom.Failure" \
        "$API/invocation/$RID/error" -d '{"errorMessage": "it failed", "errorType": "Custom.Failure"}' ;;
    *)
      curl -sS -o /dev/null -X POST "$API/invocation/$RID/response" \
        -d "{\"event\": $EVENT, \"request_id\": \"$RID\", \"count\": $COUNT, \"deadline\": $DEADLINE, \"handler\": \"${_HANDLER}\", \"pid\": $$, \"uid\": $(id -u)}" ;;
  esac
  rm -f "$HEADERS"
done
"""

# A function with enough CPU that curl and sh start quickly (128 MB gets 1/14 of a core, as on Lambda).
FAST = {"MemorySize": 1769}


def create_custom(lam, name: str, files: dict, modes: dict | None = None, *, runtime: str = "provided.al2023",
                  handler: str = "function.handler", **kwargs) -> None:
    lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
                        Code={"ZipFile": make_zip(files, modes)}, **{**FAST, **kwargs})


def invoke(lam, name: str, payload: dict | None = None):
    resp = lam.invoke(FunctionName=name, Payload=json.dumps(payload or {}), LogType="Tail")
    return resp, json.loads(resp["Payload"].read()), base64.b64decode(resp["LogResult"]).decode()


@needs_curl
@pytest.mark.parametrize("runtime", ["provided", "provided.al2", "provided.al2023"])
def test_shell_bootstrap_with_curl(lam, fname, runtime):
    create_custom(lam, fname, {"bootstrap": SHELL_BOOTSTRAP}, {"bootstrap": 0o755}, runtime=runtime)
    resp, body, log = invoke(lam, fname, {"n": 1})
    rid = resp["ResponseMetadata"]["RequestId"]
    assert resp["StatusCode"] == 200 and "FunctionError" not in resp
    assert body["event"] == {"n": 1}
    assert body["request_id"] == rid
    assert body["handler"] == "function.handler"  # _HANDLER is the function's Handler, whatever it means to it
    assert body["count"] == 1
    assert body["pid"] == 1 and body["uid"] != 0  # the bootstrap is the jail's PID 1, unprivileged
    # AWS_EXECUTION_ENV is for managed runtimes only; shared libraries are looked for in lib/ of the code
    assert ("init: handler=function.handler task=/var/task runtime=/var/runtime exec_env=unset "
            "lib=/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib") in log
    assert 'event 1: {"n": 1}' in log
    assert log.splitlines()[-1].startswith(f"REPORT RequestId: {rid}\tDuration: ")
    assert "Init Duration" in log

    # the same process serves the next invocation (warm), and reports an error through the API
    resp, body, log = invoke(lam, fname, {"n": 2})
    assert body["count"] == 2 and "Init Duration" not in log
    resp, body, _ = invoke(lam, fname, {"please": "fail"})
    assert resp["FunctionError"] == "Unhandled"
    assert body == {"errorMessage": "it failed", "errorType": "Custom.Failure"}
    _, body, _ = invoke(lam, fname, {"n": 4})
    assert body["count"] == 4


@needs_curl
def test_bootstrap_init_error_and_exit(lam, fname):
    init_error = """#!/bin/sh
curl -sS -o /dev/null -X POST -H "Lambda-Runtime-Function-Error-Type: Custom.InitFailed" \\
  "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/init/error" -d '{"errorMessage": "no config", "errorType": "Custom.InitFailed"}'
exit 1
"""
    create_custom(lam, fname, {"bootstrap": init_error}, {"bootstrap": 0o755})
    for _ in range(2):
        resp, body, _ = invoke(lam, fname)
        assert resp["FunctionError"] == "Unhandled"
        assert body == {"errorMessage": "no config", "errorType": "Custom.InitFailed"}

    exits = "#!/bin/sh\necho 'giving up' >&2\nexit 3\n"
    lam.update_function_code(FunctionName=fname, ZipFile=make_zip({"bootstrap": exits}, {"bootstrap": 0o755}))
    resp, body, log = invoke(lam, fname)
    assert body["errorType"] == "Runtime.ExitError"
    assert body["errorMessage"].endswith("Runtime exited with error: exit status 3")
    assert "giving up" in log


@pytest.mark.parametrize(
    "files, modes, reason",
    [
        ({"main.sh": "#!/bin/sh\n"}, {"main.sh": 0o755}, "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]"),
        ({"bootstrap/readme": "a directory named bootstrap"}, None, "fork/exec /var/task/bootstrap: permission denied"),
        ({"bootstrap": "#!/bin/sh\necho no exec bit\n"}, {"bootstrap": 0o644}, "fork/exec /var/task/bootstrap: permission denied"),
        ({"bootstrap": "echo no interpreter line\n"}, {"bootstrap": 0o755}, "fork/exec /var/task/bootstrap: exec format error"),
        ({"bootstrap": "#!/no/such/shell\n"}, {"bootstrap": 0o755}, "fork/exec /var/task/bootstrap: no such file or directory"),
    ],
    ids=["missing", "directory", "not-executable", "not-a-program", "missing-interpreter"],
)
def test_invalid_entrypoint(lam, fname, files, modes, reason):
    create_custom(lam, fname, files, modes, runtime="provided.al2")
    for _ in range(2):  # the next invoke tries again (a new environment) and fails the same way
        resp, body, log = invoke(lam, fname)
        rid = resp["ResponseMetadata"]["RequestId"]
        assert resp["FunctionError"] == "Unhandled"
        assert body == {"errorType": "Runtime.InvalidEntrypoint", "errorMessage": f"RequestId: {rid} Error: {reason}"}
        lines = log.splitlines()
        i = lines.index(f"START RequestId: {rid} Version: $LATEST")
        assert lines[i + 1:i + 4] == [f"RequestId: {rid} Error: {reason}", "Runtime.InvalidEntrypoint", f"END RequestId: {rid}"]
        assert lines[i + 4].startswith(f"REPORT RequestId: {rid}\t")
        assert lines[i + 4].endswith("\tStatus: error\tError Type: Runtime.InvalidEntrypoint")


# -- awslambdaric, AWS's Python runtime interface client, as published on PyPI --------------------------------

SYSTEM_PYTHON = "/usr/bin/python3"  # what a custom runtime can run inside the jail (/usr is shown read-only)


@pytest.fixture(scope="session")
def awslambdaric_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """awslambdaric and its dependencies installed by pip for the system Python, once per test session."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        pytest.skip(f"needs {SYSTEM_PYTHON}")
    target = tmp_path_factory.mktemp("awslambdaric")
    result = subprocess.run(
        [SYSTEM_PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
         "--target", str(target), "awslambdaric"],
        capture_output=True, text=True, timeout=240,
    )
    if result.returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        pytest.skip(f"pip could not install awslambdaric for {SYSTEM_PYTHON}: {result.stderr.strip()[-400:]}")
    return target


RIC_APP = """
import os, sys
STARTS = []
def handler(event, context):
    STARTS.append(1)
    print("hello from", sys.executable)
    return {"event": event, "request_id": context.aws_request_id, "function_name": context.function_name,
            "remaining": context.get_remaining_time_in_millis(), "calls": len(STARTS), "exe": sys.executable}
def boom(event, context):
    raise ValueError("boom")
"""


def ric_zip(tree: Path, app: str = RIC_APP, python: str = SYSTEM_PYTHON) -> bytes:
    """A deployment package: the awslambdaric install in ``tree`` (modes kept), a bootstrap that runs it with
    ``python``, and ``app`` as app.py."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(tree.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo(str(path.relative_to(tree)))
                info.external_attr = (path.stat().st_mode & 0o777) << 16
                z.writestr(info, path.read_bytes())
        for name, content, mode in (("bootstrap", f'#!/bin/sh\nexec {python} -m awslambdaric "$_HANDLER"\n', 0o755),
                                    ("app.py", app, 0o644)):
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            z.writestr(info, content)
    return buf.getvalue()


def test_awslambdaric_unchanged(lam, fname, awslambdaric_tree):
    lam.create_function(FunctionName=fname, Runtime="provided.al2023", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": ric_zip(awslambdaric_tree)}, **FAST)
    resp, body, log = invoke(lam, fname, {"a": 1})
    rid = resp["ResponseMetadata"]["RequestId"]
    assert "FunctionError" not in resp, body
    assert body["event"] == {"a": 1} and body["request_id"] == rid and body["function_name"] == fname
    assert 0 < body["remaining"] <= 3000
    assert body["exe"] == SYSTEM_PYTHON
    assert f"hello from {SYSTEM_PYTHON}" in log
    _, body, log = invoke(lam, fname, {"a": 2})
    assert body["calls"] == 2 and "Init Duration" not in log  # warm: the same awslambdaric process

    lam.update_function_configuration(FunctionName=fname, Handler="app.boom")
    resp, body, _ = invoke(lam, fname)
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "ValueError" and body["errorMessage"] == "boom"
    assert body["requestId"] == resp["ResponseMetadata"]["RequestId"]

    lam.update_function_configuration(FunctionName=fname, Handler="nothere.handler")
    resp, body, _ = invoke(lam, fname)
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert "Unable to import module 'nothere'" in body["errorMessage"]


ONE_SHOT_BOOTSTRAP = r"""#!/bin/sh
set -eu
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
HEADERS="$(mktemp)"
curl -sS -D "$HEADERS" -o /dev/null "$API/invocation/next"
RID="$(grep -i '^Lambda-Runtime-Aws-Request-Id:' "$HEADERS" | cut -d: -f2 | tr -d '[:space:]')"
curl -sS -o /dev/null -X POST "$API/invocation/$RID/response" -d "{\"pid\": $$}"
sleep 1
exit 3
"""


def test_an_invocation_queued_on_an_environment_that_ends_before_taking_it_runs_on_a_new_one(lam, fname):
    """The runtime answers once, then ends without asking for the next event: an invocation that came meanwhile
    was waiting for that environment; it is run again on a new one, and answered."""
    create_custom(lam, fname, {"bootstrap": ONE_SHOT_BOOTSTRAP}, {"bootstrap": 0o755})
    _, first, _ = invoke(lam, fname)
    resp, second, log = invoke(lam, fname)  # reaches the first environment while its runtime sleeps
    assert "FunctionError" not in resp, second
    assert "Init Duration" in log  # a new environment answered it
