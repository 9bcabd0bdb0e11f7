"""CPU in proportion to memory (sandbox/cgroups.py ``cpu_bandwidth``): a CPU-bound 128 MB function gets its share
of one CPU (128 / 1,769) and no more, and the share comes in short periods, so that a throttled function waits
about one period (27.6 ms at 128 MB), not the kernel's default 100 ms. A small function invoked back to back is
paced by the server (sandbox/pacing.py) instead of stalled by the kernel, and the wait is not in its Duration.

Robust on a loaded machine: other work can only take CPU from the function, so the share is checked as an upper
bound, with a loose lower bound (the function runs at all). Stalls are judged by where half of the stalled time
lies: a busy machine lengthens some (a throttled task, once let go, waits for a CPU) but leaves most of the time
in stalls well under the 93 ms that the kernel's default period gives.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.server import (
    ACCESS_KEY,
    CGROUP_ROOT,
    SECRET_KEY,
    Server,
    create_python_function,
)

needs_cpu_controller = pytest.mark.skipif(
    not (Path("/sys/fs/cgroup/cpu/cgroup.procs").exists() or "cpu" in (
        Path("/sys/fs/cgroup/cgroup.controllers").read_text().split()
        if Path("/sys/fs/cgroup/cgroup.controllers").exists() else ())) or not CGROUP_ROOT.parent.exists(),
    reason="needs cgroups with the cpu controller (root on Linux)")

BUSY = """
import time

def handler(event, context):
    wall0, cpu0 = time.perf_counter(), time.process_time()
    last, stalls = wall0, []
    while time.perf_counter() - wall0 < event["seconds"]:
        now = time.perf_counter()
        if now - last > 0.002:  # the loop was not running for over 2 ms: throttled (or preempted)
            stalls.append((now - last) * 1000)
        last = now
    return {"cpu": time.process_time() - cpu0, "wall": time.perf_counter() - wall0, "stalls_ms": stalls}
"""


@needs_cpu_controller
def test_cpu_bound_128mb_function_gets_its_share_in_short_periods(lam, fname):
    create_python_function(lam, fname, BUSY, MemorySize=128, Timeout=30)
    share = 128 / 1769
    resp = lam.invoke(FunctionName=fname, Payload=json.dumps({"seconds": 2.0}))
    out = json.loads(resp["Payload"].read())
    assert "FunctionError" not in resp, out
    rate = out["cpu"] / out["wall"]
    # at most its share: the burst allowance adds one quota (2 ms) at most over the 2 s
    assert rate <= share * 1.15 + 0.001, (rate, share)
    assert rate >= share * 0.4, (rate, share)  # and it did run
    stalls = out["stalls_ms"]
    assert len(stalls) > 20, stalls  # throttled (about every one of the ~72 periods of 27.6 ms in 2 s)
    # each stall lasts about period - quota = 25.6 ms (more on a busy machine); with the kernel's default 100 ms
    # period every throttled stall lasted ~93 ms
    assert _half_time_stall(stalls) < 70, sorted(stalls)


def _half_time_stall(stalls: list[float]) -> float:
    """The stall length at or under which half of the stalled time was spent."""
    total, seen = sum(stalls), 0.0
    for stall in sorted(stalls):
        seen += stall
        if seen >= total / 2:
            return stall
    return 0.0


ECHO = """
def handler(event, context):
    if event.get("burn_ms"):  # CPU, not wall time: at 128 MB the kernel stretches it ~14-fold
        import time
        start = time.process_time()
        while time.process_time() - start < event["burn_ms"] / 1000:
            pass
    return {}
"""


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of this module's own: every environment group under it is this module's (the throttling counted)."""
    srv = Server(tmp_path_factory.mktemp("pace")).start()
    yield srv
    srv.stop()


def _signed(port: int, function: str, payload: bytes, tail: bool = False) -> tuple[str, bytes, dict[str, str]]:
    """A SigV4-signed Invoke, sent as is over a kept-alive connection: boto3's own overhead (milliseconds per call)
    would space the invocations out to well within the function's CPU share."""
    path = f"/2015-03-31/functions/{function}/invocations"
    headers = {"Content-Type": "application/json", **({"X-Amz-Log-Type": "Tail"} if tail else {})}
    request = AWSRequest("POST", f"http://127.0.0.1:{port}{path}", data=payload, headers=headers)
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "lambda", "us-east-1").add_auth(request)
    return path, payload, dict(request.headers.items())


def _invoke(conn: http.client.HTTPConnection, request: tuple[str, bytes, dict[str, str]]) -> http.client.HTTPResponse:
    path, payload, headers = request
    conn.request("POST", path, body=payload, headers=headers)
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 200 and resp.getheader("X-Amz-Function-Error") is None, resp.status
    return resp


def _throttling(server: Server) -> tuple[int, float]:
    """Periods in which the kernel's CPU quota throttled one of ``server``'s environments (v1 cpu or v2 groups),
    and the milliseconds they were held for."""
    pid = server.proc.pid if server.proc is not None else 0
    periods, held_ms = 0, 0.0
    for stat in [*Path("/sys/fs/cgroup/cpu/lambdad").glob(f"{pid}-*/*/cpu.stat"),
                 *Path("/sys/fs/cgroup/lambdad").glob(f"{pid}-*/*/cpu.stat")]:
        fields = dict(line.split() for line in stat.read_text().splitlines())
        periods += int(fields["nr_throttled"])
        held_ms += int(fields["throttled_time"]) / 1e6 if "throttled_time" in fields else int(
            fields.get("throttled_usec", 0)) / 1e3
    return periods, held_ms


def _throttled_periods(server: Server) -> int:
    return _throttling(server)[0]


@needs_cpu_controller
def test_128mb_function_invoked_back_to_back_is_paced_not_throttled(own_server):
    """1,500 invocations in a row need 2–4× a 128 MB share of CPU: unpaced, the kernel let ~40 of them through at
    a time, then stopped the environment for ~20 ms, in 20 periods and more. Paced, it is (almost) never
    throttled.

    The bound, measured on a 2-vCPU VM (2026-12-06, this loop in rounds from one server): with the pacer switched
    off, 93–99 periods and 1,302–1,345 ms held; paced, 0 in most rounds, up to 9 periods and 21 ms held in a few
    on a quiet machine (none with both CPUs busy), at a06d0f1 as after it. Where those few come from is not
    settled: with the environment pinned to one CPU there were as many (7, 5, 2 and 1 in ten rounds), so it is
    not a quota slice stranded on the other CPU. A likely place (not measured): the pacer's bucket refills
    continuously and the kernel's quota once per period, and at the edges the two can disagree for a period or two. So the bound leaves room for a few
    and stays far from what an unpaced environment gets: at most 15 periods and 100 ms held."""
    lam = own_server.client()
    create_python_function(lam, "paced", ECHO, MemorySize=128)
    conn = http.client.HTTPConnection("127.0.0.1", own_server.port)
    requests = [_signed(own_server.port, "paced", b"{}") for _ in range(1550)]
    for request in requests[:50]:  # the cold start, and the environment's init, at full speed
        _invoke(conn, request)
    periods_before, held_before = _throttling(own_server)
    started = time.monotonic()
    for request in requests[50:]:
        _invoke(conn, request)
    elapsed = time.monotonic() - started
    periods, held_ms = _throttling(own_server)
    conn.close()
    throttled, held = periods - periods_before, held_ms - held_before
    assert throttled <= 15 and held <= 100, (throttled, held, elapsed)


@needs_cpu_controller
def test_pacing_wait_is_not_in_the_duration(own_server):
    """After an invocation that spent far more than its share (20 ms of CPU at 128 MB, most of it beyond what the
    pacer's bucket holds), the next ones wait for their turn before they are handed over, the debt paid in
    instalments: the caller waits, their REPORT Durations do not."""
    lam = own_server.client()
    create_python_function(lam, "paced-duration", ECHO, MemorySize=128)
    conn = http.client.HTTPConnection("127.0.0.1", own_server.port)
    _invoke(conn, _signed(own_server.port, "paced-duration", b"{}"))  # the cold start
    time.sleep(0.2)  # the bucket refills
    burn = _signed(own_server.port, "paced-duration", json.dumps({"burn_ms": 20}).encode())
    trivial = _signed(own_server.port, "paced-duration", b"{}", tail=True)
    _invoke(conn, burn)
    _, held_before = _throttling(own_server)
    waited_ms, durations = 0.0, []
    for _ in range(30):
        started = time.perf_counter()
        resp = _invoke(conn, trivial)
        waited_ms += (time.perf_counter() - started) * 1000
        log = base64.b64decode(resp.getheader("X-Amz-Log-Result") or "").decode()
        duration = re.search(r"REPORT RequestId: \S+\tDuration: ([\d.]+) ms", log)
        assert duration is not None, log
        durations.append(float(duration.group(1)))
    conn.close()
    # the kernel's quota and burst let it spend 4 ms beyond its share: ~58 ms of waits at 128 MB's pace, spread
    # over the next invocations (each of which is paced at its own cost too); each runs in about a millisecond
    assert waited_ms - sum(durations) >= 40, (waited_ms, durations)
    # A kernel stall inside them (the quota holding an invocation already handed over) would add up to ~25 ms to
    # one of them; a sum over 30 ms where the kernel held the environment for less than the excess is the
    # machine's load (other tests' servers on these 2 cores), not a stall.
    held_ms = _throttling(own_server)[1] - held_before
    assert sum(durations) < 30 or held_ms < sum(durations) - 20, (held_ms, durations)
