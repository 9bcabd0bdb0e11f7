"""A kill -9 of the server loses no log line of an invocation that had completed ~0.3 s before (issue 10 item 11):
log batches reach the disk within ~200 ms."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from tests.server import create_python_function


def test_kill_9_keeps_the_logs_of_completed_invocations(fresh_server, tmp_path):
    data = tmp_path / "data"
    srv = fresh_server(data_dir=data)
    lam = srv.client()
    create_python_function(lam, "chatty", "def handler(e, c):\n    print('line', e['n'])\n    return e['n']\n")
    for n in range(40):
        assert lam.invoke(FunctionName="chatty", Payload=f'{{"n": {n}}}'.encode())["StatusCode"] == 200
    time.sleep(0.4)
    srv.stop(signal.SIGKILL)
    out = subprocess.run([sys.executable, "-m", "lambdad", "logs", "chatty", "--data-dir", str(data)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert sum(line.startswith("REPORT RequestId:") for line in lines) == 40, out.stdout[-2000:]
    assert {f"line {n}" for n in range(40)} <= {line.split("\t")[-1] for line in lines}
