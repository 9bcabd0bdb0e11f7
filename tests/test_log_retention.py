"""Logs cannot grow without bound (issue 10 items 8 and 10): a line is at most one CloudWatch event, a function's
log and all logs are capped by size and age, and `lambdad logs` says where it looked when it finds nothing."""

from __future__ import annotations

import json
import sqlite3
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.server import create_python_function, wait_until

MAX_EVENT = 256 * 1024 - 26

PRINTER = """
import sys
import threading
def handler(event, context):
    line = "x" * event["size"]
    for _ in range(event["lines"]):
        sys.stdout.write(line + "\\n")
    print("after")
    return 1
"""


def group_bytes(data_dir: Path, group: str) -> int:
    with sqlite3.connect(f"file:{data_dir / 'lambdad.db'}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT COALESCE(SUM(length(CAST(message AS BLOB))), 0) FROM log_events "
                            "WHERE log_group = ?", (group,)).fetchone()[0]


def newest(data_dir: Path) -> str:
    with sqlite3.connect(f"file:{data_dir / 'lambdad.db'}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT message FROM log_events ORDER BY rowid DESC LIMIT 1").fetchone()
    return row[0] if row else ""


def logs(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lambdad", "logs", *args], capture_output=True, text=True,
                          timeout=30, cwd=cwd, env=env)


def test_a_long_line_is_cut_to_one_event(server, lam, fname):
    create_python_function(lam, fname, PRINTER, Timeout=30)
    lam.invoke(FunctionName=fname, Payload=b'{"size": 3000000, "lines": 1}')
    group = f"/aws/lambda/{fname}"
    assert wait_until(lambda: "after" in logs(fname, "--data-dir", str(server.data_dir)).stdout, 10)
    lines = logs(fname, "--data-dir", str(server.data_dir)).stdout.splitlines()
    assert max(len(line) for line in lines) == MAX_EVENT
    assert any(line.endswith("after") for line in lines)
    assert group_bytes(server.data_dir, group) < 2 * MAX_EVENT


def test_a_function_log_is_capped_and_space_is_reused(fresh_server, tmp_path):
    srv = fresh_server(env={"LAMBDAD_LOG_FUNCTION_MAX_MB": "1"}, data_dir=tmp_path / "data")
    lam = srv.client()
    create_python_function(lam, "loud", PRINTER, Timeout=60, MemorySize=512)
    db = srv.data_dir / "lambdad.db"

    def size() -> int:
        return sum(p.stat().st_size for p in srv.data_dir.glob("lambdad.db*"))

    sizes = []
    for _ in range(4):  # 4 x 12 MB printed: without a cap the database would grow by ~50 MB
        out = lam.invoke(FunctionName="loud", Payload=b'{"size": 100000, "lines": 120}')
        assert "FunctionError" not in out, out["Payload"].read()
        report = "REPORT RequestId: " + out["ResponseMetadata"]["RequestId"]
        assert wait_until(lambda: newest(srv.data_dir).startswith(report)
                          and group_bytes(srv.data_dir, "/aws/lambda/loud") <= 1024 * 1024, 20)
        sizes.append(size())
    # freed pages are reused: without the cap the 3 later invocations would add ~36 MB (the WAL may hold a batch)
    assert sizes[-1] - sizes[0] < 24 * 1024 * 1024, sizes
    assert "after" in logs("loud", "--data-dir", str(srv.data_dir)).stdout  # the newest lines are kept
    assert db.exists()


def test_old_log_events_expire(fresh_server, tmp_path):
    srv = fresh_server(env={"LAMBDAD_LOG_RETENTION_DAYS": "0.00002"}, data_dir=tmp_path / "data")  # ~1.7 s
    lam = srv.client()
    create_python_function(lam, "brief", PRINTER)
    lam.invoke(FunctionName="brief", Payload=b'{"size": 10, "lines": 1}')
    assert wait_until(lambda: "after" in logs("brief", "--data-dir", str(srv.data_dir)).stdout, 5)
    assert wait_until(lambda: group_bytes(srv.data_dir, "/aws/lambda/brief") == 0, 10)
    gone = logs("brief", "--data-dir", str(srv.data_dir))
    assert gone.returncode == 1 and "no log for /aws/lambda/brief" in gone.stderr


def test_logs_command_says_where_it_looked(server, tmp_path):
    # no credentials anywhere (no AWS_* variables, a HOME without ~/.aws): it names the file it looked for
    bare = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {"HOME": str(tmp_path)}
    elsewhere = logs("nope", cwd=tmp_path, env=bare)
    assert elsewhere.returncode != 0 and str(tmp_path / "lambdad-data") in elsewhere.stderr
    unknown = logs("no-such-function", "--data-dir", str(server.data_dir))
    assert unknown.returncode == 1
    assert "no log for /aws/lambda/no-such-function" in unknown.stderr and str(server.data_dir) in unknown.stderr


FLOOD = """
import os, sys, time
def handler(event, context):
    line = (event.get("char", "x") * 1000 + "\\n").encode("latin-1")
    block = line * 64
    end = time.time() + event["seconds"]
    written = 0
    while time.time() < end:
        os.write(1, block)
        written += len(block)
    print("done", written)
    return written
"""


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def test_a_log_flood_is_paced_by_the_store_not_held_in_memory(fresh_server, fname):
    """A function prints as fast as it can for 4 s (item 8): the server reads its output only as fast as the store
    writes it, so its memory stays bounded (before: 649 MB after a 3 s flood, every line held in a list), the
    function is slowed instead, the REPORT line follows the invoke's answer within the usual flush, and invalid
    UTF-8 cannot make an event bigger than 256 KB."""
    srv = fresh_server()
    lam = srv.client()
    create_python_function(lam, fname, FLOOD, Timeout=60, MemorySize=512)
    lam.invoke(FunctionName=fname, Payload=b'{"seconds": 0}')
    before = _rss_mb(srv.proc.pid)
    peak = before
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_mb(srv.proc.pid))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        written = json.loads(lam.invoke(FunctionName=fname, Payload=b'{"seconds": 4}')["Payload"].read())
    finally:
        done.set()
        watcher.join()
    answered = time.time()
    assert written > 50 * 1024 * 1024, written  # it did flood (tens of MB a second even when paced)
    assert peak - before < 150, (before, peak)
    assert wait_until(lambda: "REPORT" in newest(srv.data_dir), timeout=10)
    assert time.time() - answered < 10
    # a line of bytes that are not UTF-8: each becomes U+FFFD (3 bytes), and the event is still cut at 256 KB
    bad = "\\x80" * (MAX_EVENT // 2)
    create_python_function(lam, fname + "-bad", f"import os\ndef handler(e, c):\n    os.write(1, b'{bad}\\n')\n    return 1\n")
    lam.invoke(FunctionName=fname + "-bad")
    group = f"/aws/lambda/{fname}-bad"
    assert wait_until(lambda: group_bytes(srv.data_dir, group) > 0)
    with sqlite3.connect(f"file:{srv.data_dir / 'lambdad.db'}?mode=ro", uri=True) as conn:
        sizes = [row[0] for row in conn.execute(
            "SELECT length(CAST(message AS BLOB)) FROM log_events WHERE log_group = ?", (group,))]
    assert max(sizes) <= MAX_EVENT, max(sizes)
