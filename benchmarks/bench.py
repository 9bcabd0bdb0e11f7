"""lambdad's performance figures, each beside a floor measured in the same run.

    python3 benchmarks/bench.py [--quick] [--json] [--profile DIR]

Machines are noisy, so what counts is the ratio of each figure to a floor that the same machine produced a
moment earlier, not the figure itself. The script starts its own ``lambdad serve`` (port 0, temp data dir,
SIGTERM at the end) and its own floor servers and processes, and leaves nothing behind.

Figures and floors (targets from the project's performance issue):

1. warm invoke latency, p50 and p99 of sequential invokes of ``return event``, against the round trip of a
   minimal asyncio HTTP/1.1 echo server driven by the same client code with the same request bytes;
   target p50 <= 6x echo, p99 <= 3x lambdad's own p50.
2. throughput, invokes/s from several client processes with keep-alive connections, against the echo
   server's requests/s with the same client set-up; target >= 25 % of echo. Printed beside it, for scale: what a
   relay that does nothing reaches with the same clients (benchmarks/relay_floor.py).
3. cold start, client-side time of the first invoke of a brand-new function (created, then invoked at once),
   against a fresh ``python -c "import json"`` of a clean interpreter (a venv of the runtime's python with nothing
   installed, so that no ``.pth`` file of the machine's site-packages inflates the floor); target <= 0.2x (issue
   21; it was 0.5x). Each sample is followed by ``SETTLE_S`` of quiet, so that the server's refill of its pool
   shares the CPUs with neither the floor nor the next cold start.
   The Node.js cold start alike: the first invoke of a brand-new nodejs20.x function (128 MB, ``async (event) =>
   event``), against a fresh ``node -e 0`` of the node it runs on, 0.5 s apart (the prewarm pool refills); target
   <= 0.3x (issue 21).
4. cold start of a function that does ``import boto3`` at module level, against the clean interpreter's
   ``python -c "import boto3"`` (boto3's directory on its PYTHONPATH); target <= 0.1x (issue 21; it was 0.15x).
5. private memory (USS = Private_Clean + Private_Dirty, summed over all the processes of an environment) per idle
   warm Python environment, at 500 idle environments of one function (20 with --quick); target <= 2.5 MB (issue
   21). Shown beside the USS of a bare idle interpreter, for scale (benchmarks/idle_memory.py).
6. warm p99 at the default MemorySize 128 (a CPU quota of 128/1,769 of a core), Python and Node.js, against the
   same function's p50; target <= 3x (issue 21). Beside it the same runtime at 1,769 MB (one vCPU) in the same
   minutes, how often and how long the quota throttled the environment (its cgroup's cpu.stat), and the same
   invokes paced 5 ms apart (back to back, a trivial handler's environment asks for several times its share;
   lambdad then paces the hand-over of its invocations, sandbox/pacing.py, so that it spends the share evenly).

The client is a minimal keep-alive HTTP/1.1 client on raw sockets (not boto3, whose own ~1 ms per call would
hide everything), the same code for lambdad and for the echo server. Invoke requests are SigV4-signed with
botocore before any timed loop (signatures stay valid for 15 minutes; each throughput client cycles through
its own batch of them). For throughput the client processes are pinned to ``--client-cpus`` (default: the
last core) and the server under test, lambdad with all its environments or the echo server, to
``--server-cpus`` (default: the other cores), so that neither side can starve the other; the CPU time each
side used is measured and printed. Latency runs unpinned: its one client waits for every answer.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


from lambdad.runtimes.registry import RuntimeRegistry, RuntimeUnavailable  # noqa: E402
from tests.server import ROLE, Server, create_python_function, make_zip  # noqa: E402

from harness import (  # noqa: E402
    _echo_main,
    _machine_ticks,
    RUNTIME,
    IDLE_TIMEOUT,
    WARM_MEMORY_MB,
    ECHO_CODE,
    SLEEP_CODE,
    NODE_ECHO_CODE,
    NODE_RUNTIME,
    BOTO3_CODE,
    BOTO3_PTH,
    Plan,
    FULL,
    QUICK,
    say,
    Connection,
    header,
    signed_invoke,
    echo_server,
    pct,
    pinned,
    latency,
    sequential,
    _check,
    throughput,
    environment_pids,
)
from idle_memory import idle_uss  # noqa: E402


def clean_interpreter(python: str, into: Path) -> tuple[str, str]:
    """A venv of ``python`` with nothing installed (not even pip): a fresh start of it processes no ``.pth`` file
    of the machine's site-packages, which here cost more than the interpreter itself. Its executable, and what its
    start-up sees, for the report: its site directories, the imports that ``site`` made.

    Not ``-I``: the boto3 floor finds boto3 through PYTHONPATH (a directory on PYTHONPATH is not a site directory,
    so its ``.pth`` files are not processed); the venv alone keeps the machine's site-packages and the user's out
    (a venv without system site packages has no user site either), and the floors run with no other PYTHON*
    variable set."""
    subprocess.run([python, "-m", "venv", "--without-pip", str(into)], check=True)
    exe = str(into / "bin" / "python")
    seen = subprocess.run([exe, "-c", "import site, sys; print('site dirs', site.getsitepackages(), 'user site', "
                           "site.ENABLE_USER_SITE, 'modules at start', len(sys.modules))"],
                          env=_floor_env(""), capture_output=True, text=True, check=True).stdout.strip()
    return exe, seen


def _floor_env(pythonpath: str) -> dict[str, str]:
    """The server's environment without PYTHON* variables (PYTHONPATH = ``pythonpath`` when given)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return env


def cold_starts(server: Server, port: int, samples: int, files: dict[str, str], floor: list[str],
                floor_env: dict[str, str], label: str, runtime: str = RUNTIME, handler: str = "app.handler",
                interval: float = 0.0) -> dict[str, list[float]]:
    """Create a new function per sample, time its first invoke; interleaved with fresh starts of ``floor``;
    ``interval`` seconds between samples (cold starts spread over time, as the prewarm pool is refilled)."""
    say(f"cold start ({label}): {samples} new {runtime} functions vs {samples} x {' '.join(floor)}")
    client = server.client()
    conn = Connection(port)
    code = make_zip(files)
    out: dict[str, list[float]] = {"lambdad": [], "floor": [], "init": []}
    for i in range(samples + 1):  # sample 0 warms the page cache and the server's code paths; it is dropped
        time.sleep(interval)
        name = f"cold-{label}-{i}"
        client.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
                               Code={"ZipFile": code})
        req = signed_invoke(port, name, headers={"X-Amz-Log-Type": "Tail"})
        t0 = time.perf_counter()
        resp = conn.roundtrip(req)
        elapsed = (time.perf_counter() - t0) * 1000
        _check(resp, f"cold {name}")
        tail = base64.b64decode(header(resp[1], "X-Amz-Log-Result") or "").decode()
        m = re.search(r"Init Duration: ([\d.]+) ms", tail)
        # the server refills its pool after a cold start (prewarm.py): let that happen before the floor runs, so
        # that neither measurement shares the CPUs with it
        time.sleep(SETTLE_S)
        t0 = time.perf_counter()
        subprocess.run(floor, check=True, env=floor_env, stdout=subprocess.DEVNULL)
        floor_ms = (time.perf_counter() - t0) * 1000
        if i:
            out["lambdad"].append(elapsed)
            out["floor"].append(floor_ms)
            out["init"].append(float(m.group(1)) if m else float("nan"))
        client.delete_function(FunctionName=name)  # its environment goes with it
        time.sleep(SETTLE_S)
    conn.close()
    return out


SETTLE_S = 0.3  # between a cold start and the next measurement: the pool's refill and the deletion's clean-up
def node_executable() -> str | None:
    """The node lambdad runs nodejs20.x functions with, for the floor; None when it has none."""
    try:
        return str(RuntimeRegistry().get(NODE_RUNTIME).executable)
    except RuntimeUnavailable:
        return None


# Node.js cold starts are 0.5 s apart: the prewarm pool keeps 2 slots a key, and starts the next one 0.25 s after a
# cold start took one (a burst of cold starts beyond the pool starts the rest without a slot)
NODE_COLD_INTERVAL = 0.5
SMALL_MB = 128
PACE_S = 0.005  # the 128 MB share of 5 ms is 362 us of CPU: a Python environment's ~120 us per warm invoke fits
# (a Node.js one's ~500 us, by its cgroup's count, does not: docs/performance.md, issue 21)


def cpu_throttled(server_pid: int) -> tuple[int, float]:
    """Periods in which the CPU quota throttled the server's environments, and for how long (ms), summed over their
    cgroups (v1 cpu controller or v2); (0, 0.0) without them."""
    periods, ms = 0, 0.0
    for stat in [*Path("/sys/fs/cgroup/cpu/lambdad").glob(f"{server_pid}-*/*/cpu.stat"),
                 *Path("/sys/fs/cgroup/lambdad").glob(f"{server_pid}-*/*/cpu.stat")]:
        fields = _cpu_stat(stat)
        periods += fields.get("nr_throttled", 0)
        ms += fields["throttled_time"] / 1e6 if "throttled_time" in fields else fields.get("throttled_usec", 0) / 1e3
    return periods, ms


def _cpu_stat(path: Path) -> dict[str, int]:
    """A group's ``cpu.stat`` (v1 or v2) as numbers; empty when it is gone."""
    try:
        return {k: int(v) for k, v in (line.split() for line in path.read_text().splitlines())}
    except (OSError, ValueError):
        return {}


def _usage_files(server_pid: int) -> list[Path]:
    """The CPU-usage file of each of the server's environment groups (pre-started slots left out): v1
    ``cpuacct.usage`` (ns; cpuacct's own hierarchy or comounted with cpu), or v2 ``cpu.stat``."""
    return [path for path in [*Path("/sys/fs/cgroup/cpuacct/lambdad").glob(f"{server_pid}-*/*/cpuacct.usage"),
                              *Path("/sys/fs/cgroup/lambdad").glob(f"{server_pid}-*/*/cpu.stat")]
            if not path.parent.name.startswith("slot-")]  # a slot starting meanwhile is no environment


def _usage_us(path: Path) -> float:
    if path.name == "cpu.stat":
        return float(_cpu_stat(path).get("usage_usec", 0))
    try:
        return int(path.read_text()) / 1e3
    except (OSError, ValueError):
        return 0.0


class CpuMeter:
    """Called after each invoke of one function, records in ``samples`` the CPU its environment used since the
    last call (µs, by the environment cgroup's own count)."""

    def __init__(self, group: Path) -> None:
        self.group = group
        self.samples: list[float] = []
        self._last = _usage_us(group)

    def __call__(self) -> None:
        now = _usage_us(self.group)
        self.samples.append(now - self._last)
        self._last = now


def cpu_meter(server_pid: int, port: int, function: str) -> CpuMeter | None:
    """The meter of ``function``'s environment: the group whose count grew most over one invoke; None where there
    are no such groups."""
    conn = Connection(port)
    request = signed_invoke(port, function)
    conn.roundtrip(request)
    before = {path: _usage_us(path) for path in _usage_files(server_pid)}
    conn.roundtrip(request)
    conn.close()
    grown = {path: _usage_us(path) - used for path, used in before.items()}
    if not grown or max(grown.values()) <= 0:
        return None
    return CpuMeter(max(grown, key=lambda path: grown[path]))


def small_memory(server: Server, port: int, n: int) -> dict[str, Any]:
    """Warm latency at 128 MB beside 1,769 MB, Python and Node.js: back to back, then paced ``PACE_S`` apart; with
    the quota's throttling during each 128 MB loop, and the CPU each 128 MB invoke in a row cost its environment
    (the cgroup's count): latency in a row is that CPU over the share, so its p99/p50 is where the latency's
    comes from."""
    client = server.client()
    for name, memory in (("bench-node", WARM_MEMORY_MB), ("bench-node-128", SMALL_MB)):
        client.create_function(FunctionName=name, Runtime=NODE_RUNTIME, Role=ROLE, Handler="index.handler",
                               Code={"ZipFile": make_zip({"index.js": NODE_ECHO_CODE})}, MemorySize=memory)
    server_pid = server.proc.pid  # type: ignore[union-attr]
    out: dict[str, Any] = {}
    for runtime, big, small in (("python", "bench-echo", "bench-echo-128"), ("nodejs", "bench-node", "bench-node-128")):
        loops: dict[str, list[float]] = {}
        throttled: dict[str, dict[str, float]] = {}
        meter: CpuMeter | None = None
        for key, function, gap in (("big", big, 0.0), ("small", small, 0.0), ("small_paced", small, PACE_S),
                                   ("big_paced", big, PACE_S)):
            if key == "small":
                meter = cpu_meter(server_pid, port, function)
            before = cpu_throttled(server_pid)
            loops[key] = sequential(port, function, n if not gap else n // 2, gap_s=gap,
                                    after=meter if key == "small" else None)
            after = cpu_throttled(server_pid)
            throttled[key] = {"periods": after[0] - before[0], "ms": after[1] - before[1]}
        out[runtime] = {key: {"n": len(v), "p50_ms": pct(v, 50), "p99_ms": pct(v, 99), "max_ms": max(v),
                              "throttled_periods": throttled[key]["periods"], "throttled_ms": throttled[key]["ms"]}
                        for key, v in loops.items()}
        if meter is not None and meter.samples:
            out[runtime]["small"].update(cpu_p50_us=pct(meter.samples, 50), cpu_p99_us=pct(meter.samples, 99))
    return out


def provides_boto3(server: Server, port: int) -> bool:
    """Whether a function that only says ``import boto3`` gets one from the runtime."""
    server.client().create_function(FunctionName="bench-boto3-probe", Runtime=RUNTIME, Role=ROLE,
                                    Handler="app.handler", Code={"ZipFile": make_zip({"app.py": BOTO3_CODE})})
    conn = Connection(port)
    status, _, body = conn.roundtrip(signed_invoke(port, "bench-boto3-probe"))
    conn.close()
    server.client().delete_function(FunctionName="bench-boto3-probe")
    return status == 200 and b"errorType" not in body


# ------------------------------------------------------------------------------------------- report


def busy_fraction(seconds: float = 1.0) -> float:
    """How busy the machine's CPUs were over ``seconds``, before we start anything."""
    busy0, total0, _ = _machine_ticks()
    time.sleep(seconds)
    busy1, total1, _ = _machine_ticks()
    return (busy1 - busy0) / max(1, total1 - total0)


def machine() -> dict[str, Any]:
    def git(*args: str) -> str:
        r = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
        return r.stdout.strip()

    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "lambdad_commit": git("rev-parse", "--short", "HEAD") + (" (+ uncommitted changes)"
                                                                 if git("status", "--porcelain", "--", "lambdad")
                                                                 else ""),
        "loadavg_start": os.getloadavg()[0],
        "busy_before": busy_fraction(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def rows(r: dict[str, Any]) -> list[dict[str, Any]]:
    lat, tp, cold, boto, mem = r["latency"], r["throughput"], r["cold"], r["cold_boto3"], r["memory"]
    small = [
        {"figure": f"128 MB p99 in a row, {runtime}", "value": s["small"]["p99_ms"], "unit": "ms",
         "floor": s["small"]["p50_ms"], "floor_is": "its own p50 (1,769 MB: p50 %.3f, p99 %.3f ms)" % (
             s["big"]["p50_ms"], s["big"]["p99_ms"]),
         "ratio": s["small"]["p99_ms"] / s["small"]["p50_ms"], "target": "<= 3x", "limit": 3.0}
        for runtime, s in r["small_memory"].items()] + [
        {"figure": f"128 MB p99 {PACE_S * 1000:.0f} ms apart, {runtime}", "value": s["small_paced"]["p99_ms"], "unit": "ms",
         "floor": s["small_paced"]["p50_ms"], "floor_is": "its own p50 (1,769 MB paced alike: p50 %.3f, p99 %.3f ms)" % (
             s["big_paced"]["p50_ms"], s["big_paced"]["p99_ms"]),
         "ratio": s["small_paced"]["p99_ms"] / s["small_paced"]["p50_ms"], "target": "<= 3x", "limit": 3.0}
        for runtime, s in r["small_memory"].items()]
    return small + [
        {"figure": "warm invoke p50", "value": lat["lambdad_p50_ms"], "unit": "ms",
         "floor": lat["echo_p50_ms"], "floor_is": "echo server round trip p50",
         "ratio": lat["lambdad_p50_ms"] / lat["echo_p50_ms"], "target": "<= 6x", "limit": 6.0},
        {"figure": "warm invoke p99", "value": lat["lambdad_p99_ms"], "unit": "ms",
         "floor": lat["lambdad_p50_ms"], "floor_is": "lambdad warm p50 (echo p99: %.3f ms)" % lat["echo_p99_ms"],
         "ratio": lat["lambdad_p99_ms"] / lat["lambdad_p50_ms"], "target": "<= 3x", "limit": 3.0},
        {"figure": "throughput", "value": tp["lambdad"]["rps"], "unit": "invokes/s",
         "floor": tp["echo"]["rps"], "floor_is": "echo server requests/s, same clients",
         "ratio": tp["lambdad"]["rps"] / tp["echo"]["rps"], "target": ">= 0.25x", "limit": -0.25},
        {"figure": "cold start p50", "value": cold["lambdad_p50_ms"], "unit": "ms",
         "floor": cold["floor_p50_ms"], "floor_is": "fresh clean python -c 'import json' p50",
         "ratio": cold["lambdad_p50_ms"] / cold["floor_p50_ms"], "target": "<= 0.2x", "limit": 0.2},
        {"figure": "cold start p50, import boto3", "value": boto["lambdad_p50_ms"], "unit": "ms",
         "floor": boto["floor_p50_ms"], "floor_is": "fresh clean python -c 'import boto3' p50",
         "ratio": boto["lambdad_p50_ms"] / boto["floor_p50_ms"], "target": "<= 0.1x", "limit": 0.1},
        *([{"figure": "cold start p50, Node.js", "value": r["cold_node"]["lambdad_p50_ms"], "unit": "ms",
            "floor": r["cold_node"]["floor_p50_ms"], "floor_is": "fresh node -e 0 p50",
            "ratio": r["cold_node"]["lambdad_p50_ms"] / r["cold_node"]["floor_p50_ms"], "target": "<= 0.3x",
            "limit": 0.3}] if "cold_node" in r else []),
        {"figure": "USS per idle warm env", "value": mem["uss_mb"], "unit": "MB",
         "floor": mem["bare_mb"], "floor_is": "USS of a bare idle interpreter",
         "ratio": mem["uss_mb"] / mem["bare_mb"], "target": "<= 2.5 MB", "limit": None, "absolute": 2.5},
    ]


def verdict(row: dict[str, Any]) -> bool:
    if row.get("absolute") is not None:
        return bool(row["value"] <= row["absolute"])
    limit = row["limit"]
    return bool(row["ratio"] >= -limit) if limit < 0 else bool(row["ratio"] <= limit)


def warnings(r: dict[str, Any]) -> list[str]:
    """Reasons not to trust a run: other work on the machine before it or during the throughput windows."""
    out = []
    if r["machine"]["busy_before"] > 0.1:
        out.append(f"the machine was {r['machine']['busy_before']:.0%} busy before the run; figures are unreliable")
    other = max(r["throughput"]["lambdad"]["other_cores"], r["throughput"]["echo"]["other_cores"])
    if other > 0.15:
        out.append(f"something else used up to {other:.2f} cores during the throughput windows; throughput is "
                   "unreliable")
    echo = r["throughput"]["echo"]
    if max(echo["server_cores"], echo["client_cores"]) < 0.8:
        out.append(f"the echo floor kept neither its server ({echo['server_cores']:.2f}) nor its client "
                   f"({echo['client_cores']:.2f}) busy: it was held back (CPU taken from this VM?); throughput is "
                   "unreliable")
    return out


def render(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        f"lambdad {m['lambdad_commit']}  |  {m['date']}  |  {m['nproc']} cores ({m['cpu']})  |  "
        f"Python {m['python']}  |  kernel {m['kernel']}",
        f"load avg {m['loadavg_start']:.2f} -> {m['loadavg_end']:.2f}; CPU busy before the run: {m['busy_before']:.0%}",
        f"functions run on {r['runtime_python']}",
        f"cold-start floors run on {r['floor_python']}",
        f"client: {r['client']}",
        "",
        f"{'figure':<30} {'lambdad':>12} {'floor':>12}  {'ratio':>7}  {'target':>9}  {'met':<4} floor is",
        "-" * 118,
    ]
    for row in r["rows"]:
        unit = row["unit"]
        fmt = (lambda v: f"{v:,.0f}") if unit == "invokes/s" else (lambda v: f"{v:.2f}" if v >= 10 else f"{v:.3f}")
        lines.append(
            f"{row['figure']:<30} {fmt(row['value']) + ' ' + unit.replace('invokes/s', '/s'):>12} "
            f"{fmt(row['floor']) + ' ' + unit.replace('invokes/s', '/s'):>12}  {row['ratio']:>6.2f}x  "
            f"{row['target']:>9}  {'yes' if row['ok'] else 'NO':<4} {row['floor_is']}")
    tp, cold, boto, mem = r["throughput"], r["cold"], r["cold_boto3"], r["memory"]
    lines += [
        "",
        f"throughput detail: lambdad {tp['lambdad']['rps']:,.0f}/s using {tp['lambdad']['server_cores']:.2f} "
        f"server cores ({tp['lambdad']['server_processes']} processes), client {tp['lambdad']['client_cores']:.2f} "
        f"cores; echo {tp['echo']['rps']:,.0f}/s using {tp['echo']['server_cores']:.2f} server cores, client "
        f"{tp['echo']['client_cores']:.2f} cores; the rest of the machine meanwhile "
        f"{tp['lambdad']['other_cores']:.2f} / {tp['echo']['other_cores']:.2f} cores",
        f"throughput for scale: a relay that does nothing but pass the bytes between the clients and 8 bare runtimes "
        f"(benchmarks/relay_floor.py) reaches {tp['relay']['rps']:,.0f}/s = {tp['relay']['rps'] / tp['echo']['rps']:.2f}x "
        f"echo ({tp['relay']['cpu_us_main_user'] + tp['relay']['cpu_us_main_sys']:.0f} us relay + "
        f"{tp['relay']['cpu_us_envs_user'] + tp['relay']['cpu_us_envs_sys']:.0f} us runtimes per invocation)",
        f"cold start detail: server-reported Init Duration p50 {cold['init_p50_ms']:.1f} ms "
        f"(import boto3: {boto['init_p50_ms']:.1f} ms); lambdad p90 {cold['lambdad_p90_ms']:.1f} ms; "
        f"boto3 from {r['boto3_from']}",
        *([(f"Node.js cold start detail: Init Duration p50 {r['cold_node']['init_p50_ms']:.1f} ms; lambdad p90 "
            f"{r['cold_node']['lambdad_p90_ms']:.1f} ms; floor {r['cold_node']['node']}")] if "cold_node" in r else
          ["Node.js cold start: not measured (no node here)"]),
        f"CPU per request (us, user+sys): lambdad server process {tp['lambdad']['cpu_us_main_user']:.0f}+"
        f"{tp['lambdad']['cpu_us_main_sys']:.0f}, its environments {tp['lambdad']['cpu_us_envs_user']:.0f}+"
        f"{tp['lambdad']['cpu_us_envs_sys']:.0f}; echo server {tp['echo']['cpu_us_main_user']:.0f}+"
        f"{tp['echo']['cpu_us_main_sys']:.0f}  ({tp['envs']} environments)",
        f"memory detail: {mem['envs']} environments of {mem['asked']} asked measured ({mem['processes']} processes); "
        f"the bare interpreter is {r['runtime_python']} -I; per environment by mapping: "
        + ", ".join(f"{kind} {mb:.2f} MB" for kind, mb in mem["by_kind_mb"].items() if mb >= 0.01),
        *(f"128 MB detail, {runtime}: back to back the quota throttled {s['small']['throttled_periods']} periods "
          f"({s['small']['throttled_ms']:.0f} ms, summed over CPUs) in {s['small']['n']} invokes, max "
          f"{s['small']['max_ms']:.1f} ms (1,769 MB: {s['big']['max_ms']:.1f} ms); paced, throttled "
          f"{s['small_paced']['throttled_periods']} periods, max {s['small_paced']['max_ms']:.1f} ms "
          f"(1,769 MB: {s['big_paced']['max_ms']:.1f} ms)"
          + (f"; CPU per invoke in a row by its cgroup p50 {s['small']['cpu_p50_us']:.0f} us, p99 "
             f"{s['small']['cpu_p99_us']:.0f} us ({s['small']['cpu_p99_us'] / max(s['small']['cpu_p50_us'], 1):.1f}x)"
             if "cpu_p50_us" in s["small"] else "")
          for runtime, s in r["small_memory"].items()),
        *(f"WARNING: {w}" for w in r["warnings"]),
        f"warm latency of an IAM user with a policy (evaluated, its decision cached): p50 "
        f"{r['latency_iam_user']['user_p50_ms']:.3f} ms against root's {r['latency_iam_user']['root_p50_ms']:.3f} ms "
        f"in the same minutes = {r['latency_iam_user']['user_p50_ms'] / r['latency_iam_user']['root_p50_ms']:.2f}x "
        "(root is never evaluated)",
    ]
    return "\n".join(lines)


def runtime_python(runtime: str = RUNTIME) -> str:
    """The interpreter lambdad runs ``runtime`` (python3.11) functions with (pyenv shims resolved), for the floors."""
    try:
        return str(RuntimeRegistry().get(runtime).executable)
    except Exception:  # the registry's interface is lambdad's own business; the floor only needs the interpreter
        found = shutil.which(runtime) or sys.executable
        return subprocess.run([found, "-c", "import sys; print(sys.executable)"], capture_output=True, text=True,
                              check=True).stdout.strip()


def iam_user_latency(server: Server, port: int, n: int) -> dict[str, float]:
    """Warm p50 of an IAM user whose policy allows the invoke, beside root's in the same minutes (root, user,
    root, user: drift hits both): what an evaluated caller pays over root, who is never evaluated."""
    iam = server.client("iam")
    iam.create_user(UserName="bench-user")
    iam.put_user_policy(UserName="bench-user", PolicyName="invoke", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction",
                                                "Resource": "arn:aws:lambda:*:*:function:bench-echo"}]}))
    key = iam.create_access_key(UserName="bench-user")["AccessKey"]
    user = (key["AccessKeyId"], key["SecretAccessKey"])
    root_ms: list[float] = []
    user_ms: list[float] = []
    for _ in range(2):
        root_ms += sequential(port, "bench-echo", n // 2)
        user_ms += sequential(port, "bench-echo", n // 2, credentials=user)
    return {"n": n, "root_p50_ms": pct(root_ms, 50), "user_p50_ms": pct(user_ms, 50)}


def run(plan: Plan, client_cpus: set[int], server_cpus: set[int], profile_dir: Path | None) -> dict[str, Any]:
    python = runtime_python()
    data_dir = Path(tempfile.mkdtemp(prefix="lambdad-bench-"))
    # PYTHONPATH: the server runs the lambdad of this checkout, whatever is installed
    server = Server(data_dir, env={"LAMBDAD_IDLE_TIMEOUT_SECONDS": IDLE_TIMEOUT, "PYTHONPATH": str(REPO)})
    result: dict[str, Any] = {"machine": machine(), "plan": plan.__dict__, "runtime_python": python}
    result["client"] = (f"{plan.tput_procs} processes x {plan.tput_conns} keep-alive connections pinned to CPU "
                        f"{sorted(client_cpus)} ({len(client_cpus)} of {os.cpu_count()} cores) for throughput, the "
                        f"server under test (lambdad with its environments, or echo) pinned to CPU "
                        f"{sorted(server_cpus)}; latency: one connection, nothing pinned")
    try:
        server.start()
        port = server.port
        say(f"lambdad pid {server.proc.pid} on port {port}; data dir {data_dir}")  # type: ignore[union-attr]
        client = server.client()
        create_python_function(client, "bench-echo", ECHO_CODE, runtime=RUNTIME, MemorySize=WARM_MEMORY_MB)
        create_python_function(client, "bench-echo-128", ECHO_CODE, runtime=RUNTIME)
        with echo_server() as (echo_port, echo_pid):
            lat = latency(port, echo_port, "bench-echo", plan.latency_n)
            result["latency"] = {
                "n": plan.latency_n,
                "lambdad_p50_ms": pct(lat["lambdad"], 50), "lambdad_p99_ms": pct(lat["lambdad"], 99),
                "lambdad_mean_ms": statistics.fmean(lat["lambdad"]),
                "echo_p50_ms": pct(lat["echo"], 50), "echo_p99_ms": pct(lat["echo"], 99),
                "echo_mean_ms": statistics.fmean(lat["echo"]),
            }
            result["small_memory"] = small_memory(server, port, max(200, plan.latency_n // 4))
            result["latency_iam_user"] = iam_user_latency(server, port, max(300, plan.latency_n // 2))
            say(f"throughput: {plan.tput_procs} processes x {plan.tput_conns} connections, "
                f"{plan.tput_warmup:.0f} s warm-up + {plan.tput_seconds:.0f} s, lambdad then echo")
            srv_pid = server.proc.pid  # type: ignore[union-attr]
            with pinned([srv_pid], server_cpus):
                tp_l = throughput(port, "bench-echo", plan, client_cpus,
                                  lambda: [srv_pid] + environment_pids(srv_pid))
                envs = len(environment_pids(srv_pid))
            with pinned([echo_pid], server_cpus):
                tp_e = throughput(echo_port, "bench-echo", plan, client_cpus, lambda: [echo_pid])
            if tp_l["errors"] or tp_e["errors"]:
                raise RuntimeError(f"throughput errors: lambdad {tp_l['errors']}, echo {tp_e['errors']}")
            # for scale: what a relay that does nothing but pass the bytes between clients and bare runtimes reaches
            from relay_floor import measure as relay_throughput  # benchmarks/relay_floor.py

            say("throughput of a do-nothing relay (benchmarks/relay_floor.py), same clients")
            tp_r = relay_throughput(plan, client_cpus, server_cpus)
            result["throughput"] = {"lambdad": tp_l, "echo": tp_e, "relay": tp_r, "envs": envs}
        boto3_files = {"app.py": BOTO3_CODE}
        result["boto3_from"] = "the runtime"
        purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        if not provides_boto3(server, port):
            boto3_files[BOTO3_PTH] = purelib + "\n"
            result["boto3_from"] = f"{purelib} (by a .pth file in the function's code: the runtime has no boto3)"
        clean, seen = clean_interpreter(python, data_dir / "clean-venv")
        result["floor_python"] = f"{clean} (a venv of {python} with nothing installed; {seen})"
        for key, files, floor, floor_path in (("cold", {"app.py": ECHO_CODE}, "import json", ""),
                                              ("cold_boto3", boto3_files, "import boto3", purelib)):
            c = cold_starts(server, port, plan.cold_samples, files, [clean, "-c", floor], _floor_env(floor_path),
                            key.replace("_", "-"))
            result[key] = {"samples": plan.cold_samples, "lambdad_p50_ms": pct(c["lambdad"], 50),
                           "lambdad_p90_ms": pct(c["lambdad"], 90), "floor_p50_ms": pct(c["floor"], 50),
                           "init_p50_ms": pct(c["init"], 50)}
        node = node_executable()
        if node is not None:  # the floor: a fresh node, in a clean environment (no NODE_OPTIONS of the machine's)
            c = cold_starts(server, port, plan.cold_samples, {"index.js": NODE_ECHO_CODE}, [node, "-e", "0"],
                            {"PATH": "/usr/bin:/bin"}, "node", NODE_RUNTIME, "index.handler", NODE_COLD_INTERVAL)
            result["cold_node"] = {"samples": plan.cold_samples, "lambdad_p50_ms": pct(c["lambdad"], 50),
                                   "lambdad_p90_ms": pct(c["lambdad"], 90), "floor_p50_ms": pct(c["floor"], 50),
                                   "init_p50_ms": pct(c["init"], 50), "node": node}
        result["memory"] = idle_uss(server, port, python, plan.uss_envs)
        if profile_dir is not None:
            from profiling import profile  # benchmarks/profiling.py

            profile(server, port, "bench-echo", profile_dir, 10.0, server_cpus, client_cpus)
    finally:
        if server.proc is not None:
            status = server.stop()
            if status != 0:
                say(f"lambdad exited with status {status}:\n" + "".join(server.output[-20:]))
        shutil.rmtree(data_dir, ignore_errors=True)
    result["machine"]["loadavg_end"] = os.getloadavg()[0]
    result["rows"] = rows(result)
    for row in result["rows"]:
        row["ok"] = verdict(row)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer samples, shorter windows (~20 s)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument("--client-cpus", default=None,
                        help="comma-separated CPUs for the client (default: the last CPU, or all on 1 core)")
    parser.add_argument("--server-cpus", default=None,
                        help="comma-separated CPUs for lambdad and the echo server (default: the others)")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="after the figures, py-spy the server and one environment under sequential load")
    parser.add_argument("--echo-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_server:
        asyncio.run(_echo_main())
        return
    cpus = sorted(os.sched_getaffinity(0))
    client_cpus = ({int(c) for c in args.client_cpus.split(",")} if args.client_cpus
                   else {cpus[-1]} if len(cpus) > 1 else set(cpus))
    server_cpus = ({int(c) for c in args.server_cpus.split(",")} if args.server_cpus
                   else (set(cpus) - client_cpus) or set(cpus))
    started = time.monotonic()
    result = run(QUICK if args.quick else FULL, client_cpus, server_cpus, args.profile)
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    result["warnings"] = warnings(result)
    for w in result["warnings"]:
        say(f"WARNING: {w}")
    say(f"done in {result['elapsed_s']:.0f} s")
    if args.json:
        json.dump(result, sys.stdout, indent=2, default=str)
        print()
    else:
        print(render(result))


if __name__ == "__main__":
    main()
