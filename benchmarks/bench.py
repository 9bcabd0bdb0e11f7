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
3. cold start, client-side time of the first invoke of a brand-new function, against a fresh
   ``python -c "import json"`` of a clean interpreter (a venv of the runtime's python with nothing installed, so
   that no ``.pth`` file of the machine's site-packages inflates the floor); target <= 0.5x.
4. cold start of a function that does ``import boto3`` at module level, against the clean interpreter's
   ``python -c "import boto3"`` (boto3's directory on its PYTHONPATH); target <= 0.15x.
5. private memory (USS = Private_Clean + Private_Dirty) per idle warm Python environment; target <= 12 MB.
   Shown beside the USS of a bare idle interpreter, for scale.

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
import multiprocessing as mp
import os
import platform
import re
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, cast

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

from lambdad.runtimes.registry import RuntimeRegistry  # noqa: E402
from tests.server import ACCESS_KEY, ROLE, SECRET_KEY, Server, create_python_function, make_zip  # noqa: E402

RUNTIME = "python3.11"
PAYLOAD = b'{"hello": "world", "n": 12345}'
IDLE_TIMEOUT = "3600"  # no environment is recycled during a run
PRESIGNED_BATCH = 256  # throughput clients cycle through this many distinct signed requests each
# Lambda gives a function CPU in proportion to its memory (1,769 MB = one vCPU) and lambdad does the same with a
# CFS quota. The warm figures measure the platform, not that quota, so their function gets one full vCPU; the
# default 128 MB (7 % of a core) is measured beside them for information.
WARM_MEMORY_MB = 1769

ECHO_CODE = "def handler(event, context):\n    return event\n"
SLEEP_CODE = "import time\n\ndef handler(event, context):\n    time.sleep(event.get('sleep', 0))\n    return event\n"
BOTO3_CODE = "import boto3\n\ndef handler(event, context):\n    return event\n"
# AWS's Python runtimes ship boto3. Where lambdad's do not (from its fork server to 7357f86 environments saw only
# the interpreter's standard library), the boto3 function puts the runtime interpreter's site-packages on its own
# sys.path with a .pth file in its code (the runtime processes .pth files in the task root, as AWS's does).
BOTO3_PTH = "host-site-packages.pth"


@dataclass(frozen=True)
class Plan:
    latency_n: int
    tput_seconds: float
    tput_warmup: float
    tput_procs: int
    tput_conns: int
    cold_samples: int
    uss_envs: int


FULL = Plan(latency_n=2000, tput_seconds=5.0, tput_warmup=2.0, tput_procs=4, tput_conns=2, cold_samples=20,
            uss_envs=20)
QUICK = Plan(latency_n=300, tput_seconds=1.5, tput_warmup=1.0, tput_procs=4, tput_conns=2, cold_samples=5,
             uss_envs=5)


def say(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------- HTTP client


class ResponseParser:
    """Incremental parser of HTTP/1.1 responses with Content-Length (what both servers send)."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes, bytes]]:
        self.buf += data
        out: list[tuple[int, bytes, bytes]] = []
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return out
            head = bytes(self.buf[:end])
            m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            length = int(m.group(1)) if m else 0
            total = end + 4 + length
            if len(self.buf) < total:
                return out
            body = bytes(self.buf[end + 4:total])
            del self.buf[:total]
            out.append((int(head[9:12]), head, body))


class Connection:
    """One keep-alive connection; ``roundtrip`` sends pre-built request bytes and reads one response."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.parser = ResponseParser()

    def roundtrip(self, request: bytes) -> tuple[int, bytes, bytes]:
        self.sock.sendall(request)
        while True:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("server closed the connection")
            done = self.parser.feed(data)
            if done:
                return done[0]

    def close(self) -> None:
        self.sock.close()


def header(head: bytes, name: str) -> str | None:
    m = re.search(rb"(?im)^" + re.escape(name.encode()) + rb":\s*(.*?)\r?$", head)
    return m.group(1).decode() if m else None


def signed_invoke(port: int, function: str, payload: bytes = PAYLOAD, headers: dict[str, str] | None = None) -> bytes:
    """The bytes of one SigV4-signed Invoke request, as boto3 would sign it."""
    path = f"/2015-03-31/functions/{function}/invocations"
    request = AWSRequest("POST", f"http://127.0.0.1:{port}{path}", data=payload,
                         headers={"Content-Type": "application/json", **(headers or {})})
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "lambda", "us-east-1").add_auth(request)
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(payload)}"]
    lines += [f"{k}: {v}" for k, v in request.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


# ------------------------------------------------------------------------------------------- echo floor


class _EchoProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive: answer each request with a fixed 200 carrying the request body."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.WriteTransport, transport)  # uvloop's are not asyncio.Transport subclasses
        self.buf = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            m = re.search(rb"(?im)^content-length:\s*(\d+)", self.buf[:end])
            total = end + 4 + (int(m.group(1)) if m else 0)
            if len(self.buf) < total:
                return
            body = bytes(self.buf[end + 4:total])
            del self.buf[:total]
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                                 % (len(body), body))


async def _echo_main() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_EchoProtocol, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    server.close()


@contextmanager
def echo_server() -> Iterator[tuple[int, int]]:
    """The floor server, in its own process (same interpreter, plain asyncio like lambdad): (port, pid)."""
    proc = subprocess.Popen([sys.executable, __file__, "--echo-server"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield int(proc.stdout.readline()), proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


# ------------------------------------------------------------------------------------------- measurements


def pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


def set_affinity(pids: list[int], cpus: set[int]) -> None:
    """Pin every thread of ``pids`` and of their descendants (environments fork from the server's main thread,
    so new environments inherit the server's CPUs)."""
    for pid in pids + [d for p in pids for d in descendants(p)]:
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                os.sched_setaffinity(int(tid), cpus)
        except (ProcessLookupError, FileNotFoundError):
            pass


@contextmanager
def pinned(pids: list[int], cpus: set[int]) -> Iterator[None]:
    before = os.sched_getaffinity(pids[0])
    set_affinity(pids, cpus)
    try:
        yield
    finally:
        set_affinity(pids, before)


def latency(lambdad_port: int, echo_port: int, function: str, n: int) -> dict[str, list[float]]:
    """Sequential round trips, in alternating blocks so that drift hits both sides alike. Milliseconds."""
    say(f"warm latency: {n} sequential invokes vs {n} echo round trips")
    reqs = {"lambdad": [signed_invoke(lambdad_port, function) for _ in range(n)],
            "echo": [signed_invoke(echo_port, function) for _ in range(n)]}
    conns = {"lambdad": Connection(lambdad_port), "echo": Connection(echo_port)}
    out: dict[str, list[float]] = {"lambdad": [], "echo": []}
    block = max(50, n // 8)
    for side, conn in conns.items():  # warm-up: first environment, connection, caches
        for r in reqs[side][:50]:
            _check(conn.roundtrip(r), side)
    clock = time.perf_counter_ns
    for start in range(0, n, block):
        for side, conn in conns.items():
            samples = out[side]
            for r in reqs[side][start:start + block]:
                t0 = clock()
                resp = conn.roundtrip(r)
                samples.append((clock() - t0) / 1e6)
                _check(resp, side)
    for c in conns.values():
        c.close()
    return out


def sequential(port: int, function: str, n: int) -> list[float]:
    """Sequential invokes of ``function`` alone (after 50 unmeasured ones). Milliseconds."""
    say(f"warm latency of {function}: {n} sequential invokes")
    reqs = [signed_invoke(port, function) for _ in range(n + 50)]
    conn = Connection(port)
    out = []
    for i, r in enumerate(reqs):
        t0 = time.perf_counter_ns()
        resp = conn.roundtrip(r)
        if i >= 50:
            out.append((time.perf_counter_ns() - t0) / 1e6)
        _check(resp, function)
    conn.close()
    return out


def _check(resp: tuple[int, bytes, bytes], side: str) -> None:
    status, head, body = resp
    if status != 200 or json.loads(body) != json.loads(PAYLOAD):
        tail = base64.b64decode(header(head, "X-Amz-Log-Result") or "").decode(errors="replace")
        raise RuntimeError(f"{side}: unexpected answer {status} {body[:300]!r}"
                           + (f"\nlog tail:\n{tail}" if tail else ""))


def _tput_worker(port: int, requests: list[bytes], conns: int, t_start: float, t_end: float, cpus: set[int],
                 results: Any) -> None:
    """One client process: ``conns`` keep-alive connections, each with one request in flight, for the window."""
    os.sched_setaffinity(0, cpus)
    sel = selectors.DefaultSelector()
    socks = []
    for i in range(conns):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, [ResponseParser(), i])
        socks.append(s)
        s.send(requests[i % len(requests)])
    done = errors = 0
    cpu0 = cpu1 = 0.0
    counting = False
    k = conns
    while True:
        now = time.monotonic()
        if not counting and now >= t_start:
            counting, cpu0 = True, time.process_time()
        if now >= t_end:
            cpu1 = time.process_time()
            break
        for key, _ in sel.select(0.05):
            parser = key.data[0]
            data = key.fileobj.recv(65536)  # type: ignore[union-attr]
            if not data:
                raise ConnectionError("server closed a connection")
            for status, _, _ in parser.feed(data):
                if counting:
                    done += 1
                    errors += status != 200
                key.fileobj.send(requests[k % len(requests)])  # type: ignore[union-attr]
                k += 1
    for s in socks:
        s.close()
    results.put((done, errors, cpu1 - cpu0))


def _cpu_times(pids: list[int]) -> tuple[float, float]:
    """User and system CPU seconds of ``pids`` (all their threads)."""
    user = system = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            user += int(fields[11])
            system += int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    tick = os.sysconf("SC_CLK_TCK")
    return user / tick, system / tick


def _cpu_seconds(pids: list[int]) -> float:
    return sum(_cpu_times(pids))


def throughput(port: int, function: str, plan: Plan, cpus: set[int], server_pids: Any) -> dict[str, float]:
    ctx = mp.get_context("fork")
    results = ctx.Queue()
    now = time.monotonic()
    t_start = now + 0.5 + plan.tput_warmup
    t_end = t_start + plan.tput_seconds
    procs = []
    for _ in range(plan.tput_procs):
        reqs = [signed_invoke(port, function) for _ in range(PRESIGNED_BATCH)]
        p = ctx.Process(target=_tput_worker, args=(port, reqs, plan.tput_conns, t_start, t_end, cpus, results))
        p.start()
        procs.append(p)
    time.sleep(max(0.0, t_start - time.monotonic()))
    pids = server_pids()
    main0, rest0, machine0 = _cpu_times(pids[:1]), _cpu_times(pids[1:]), _machine_ticks()[2]
    time.sleep(max(0.0, t_end - time.monotonic()))
    main1, rest1, machine1 = _cpu_times(pids[:1]), _cpu_times(pids[1:]), _machine_ticks()[2]
    got = [results.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(10)
    done = sum(g[0] for g in got)
    per_us = 1e6 / max(1, done)
    client_cores = sum(g[2] for g in got) / plan.tput_seconds
    server_cores = (sum(main1) + sum(rest1) - sum(main0) - sum(rest0)) / plan.tput_seconds
    machine_cores = (machine1 - machine0) / os.sysconf("SC_CLK_TCK") / plan.tput_seconds
    return {
        "rps": done / plan.tput_seconds,
        "errors": sum(g[1] for g in got),
        "client_cores": client_cores,
        "server_cores": server_cores,
        # CPU the rest of the machine used meanwhile (other sessions, the bench itself): noise in the figure
        "other_cores": max(0.0, machine_cores - client_cores - server_cores),
        "server_processes": len(pids),
        # CPU per request, microseconds: the server process (all threads), then its environments
        "cpu_us_main_user": (main1[0] - main0[0]) * per_us, "cpu_us_main_sys": (main1[1] - main0[1]) * per_us,
        "cpu_us_envs_user": (rest1[0] - rest0[0]) * per_us, "cpu_us_envs_sys": (rest1[1] - rest0[1]) * per_us,
    }


def _parents() -> dict[int, int]:
    """pid -> ppid for every process on the machine."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    out[int(entry)] = int(f.read().rpartition(")")[2].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    return out


def descendants(pid: int) -> list[int]:
    parents = _parents()
    out, todo = [], [pid]
    while todo:
        parent = todo.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        out += kids
        todo += kids
    return out


def environment_pids(server_pid: int) -> list[int]:
    """The runtime processes of the server's environments: descendants running ``bootstrap.py`` (spawned
    environments), or forked from a ``forkserver.py`` fork server (the fork server itself, a direct child of the server,
    is not an environment)."""
    parents = _parents()
    pids = []
    for pid in descendants(server_pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"bootstrap.py" in cmdline or (b"forkserver.py" in cmdline and parents.get(pid) != server_pid):
            pids.append(pid)
    return pids


def uss_bytes(pid: int) -> int:
    total = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith(("Private_Clean:", "Private_Dirty:")):
            total += int(line.split()[1]) * 1024
    return total


def clean_interpreter(python: str, into: Path) -> str:
    """A venv of ``python`` with nothing installed (not even pip): a fresh start of it processes no ``.pth`` file
    of the machine's site-packages, which here cost more than the interpreter itself. Its executable."""
    subprocess.run([python, "-m", "venv", "--without-pip", str(into)], check=True)
    return str(into / "bin" / "python")


def cold_starts(server: Server, port: int, python: str, samples: int, files: dict[str, str], floor_code: str,
                label: str, floor_path: str = "") -> dict[str, list[float]]:
    """Create a new function per sample, time its first invoke; interleaved with fresh-interpreter floors
    (``python -c floor_code``, with ``floor_path`` as its PYTHONPATH when given)."""
    say(f"cold start ({label}): {samples} new functions vs {samples} x {python} -c {floor_code!r}")
    floor_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if floor_path:
        floor_env["PYTHONPATH"] = floor_path
    client = server.client()
    conn = Connection(port)
    code = make_zip(files)
    out: dict[str, list[float]] = {"lambdad": [], "floor": [], "init": []}
    for i in range(samples + 1):  # sample 0 warms the page cache and the server's code paths; it is dropped
        name = f"cold-{label}-{i}"
        client.create_function(FunctionName=name, Runtime=RUNTIME, Role=ROLE, Handler="app.handler",
                               Code={"ZipFile": code})
        req = signed_invoke(port, name, headers={"X-Amz-Log-Type": "Tail"})
        t0 = time.perf_counter()
        resp = conn.roundtrip(req)
        elapsed = (time.perf_counter() - t0) * 1000
        _check(resp, f"cold {name}")
        tail = base64.b64decode(header(resp[1], "X-Amz-Log-Result") or "").decode()
        m = re.search(r"Init Duration: ([\d.]+) ms", tail)
        t0 = time.perf_counter()
        subprocess.run([python, "-c", floor_code], check=True, env=floor_env)
        floor = (time.perf_counter() - t0) * 1000
        if i:
            out["lambdad"].append(elapsed)
            out["floor"].append(floor)
            out["init"].append(float(m.group(1)) if m else float("nan"))
        client.delete_function(FunctionName=name)  # its environment goes with it
    conn.close()
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


def idle_uss(server: Server, port: int, python: str, k: int) -> dict[str, float]:
    say(f"memory: {k} idle warm environments of one function")
    create_python_function(server.client(), "bench-idle", SLEEP_CODE, runtime=RUNTIME)
    server_pid = server.proc.pid  # type: ignore[union-attr]
    before = set(environment_pids(server_pid))
    payload = b'{"sleep": 0.5}'
    reqs = [signed_invoke(port, "bench-idle", payload) for _ in range(k)]
    errors: list[str] = []

    def one(req: bytes) -> None:
        conn = Connection(port)
        status, _, body = conn.roundtrip(req)
        if status != 200:
            errors.append(body.decode(errors="replace"))
        conn.close()

    threads = [threading.Thread(target=one, args=(r,)) for r in reqs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"idle environments: {errors[0]}")
    time.sleep(0.5)
    pids = sorted(set(environment_pids(server_pid)) - before)  # the environments of bench-idle
    uss = [uss_bytes(p) for p in pids]
    bare = subprocess.Popen([python, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    time.sleep(0.5)
    bare_uss = uss_bytes(bare.pid)
    bare.communicate(b"")
    return {"envs": len(pids), "uss_mb": sum(uss) / len(uss) / 2**20 if uss else float("nan"),
            "bare_mb": bare_uss / 2**20}


# ------------------------------------------------------------------------------------------- report


def _machine_ticks() -> tuple[int, int, int]:
    """Clock ticks of all CPUs since boot, from /proc/stat: busy, total, and spent in processes (user, nice,
    system: not interrupts, where the kernel does loopback networking without charging a process)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields), fields[0] + fields[1] + fields[2]


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
    return [
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
         "ratio": cold["lambdad_p50_ms"] / cold["floor_p50_ms"], "target": "<= 0.5x", "limit": 0.5},
        {"figure": "cold start p50, import boto3", "value": boto["lambdad_p50_ms"], "unit": "ms",
         "floor": boto["floor_p50_ms"], "floor_is": "fresh clean python -c 'import boto3' p50",
         "ratio": boto["lambdad_p50_ms"] / boto["floor_p50_ms"], "target": "<= 0.15x", "limit": 0.15},
        {"figure": "USS per idle warm env", "value": mem["uss_mb"], "unit": "MB",
         "floor": mem["bare_mb"], "floor_is": "USS of a bare idle interpreter",
         "ratio": mem["uss_mb"] / mem["bare_mb"], "target": "<= 12 MB", "limit": None, "absolute": 12.0},
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
        f"CPU per request (us, user+sys): lambdad server process {tp['lambdad']['cpu_us_main_user']:.0f}+"
        f"{tp['lambdad']['cpu_us_main_sys']:.0f}, its environments {tp['lambdad']['cpu_us_envs_user']:.0f}+"
        f"{tp['lambdad']['cpu_us_envs_sys']:.0f}; echo server {tp['echo']['cpu_us_main_user']:.0f}+"
        f"{tp['echo']['cpu_us_main_sys']:.0f}  ({tp['envs']} environments)",
        f"memory detail: {mem['envs']} environments measured",
        *(f"WARNING: {w}" for w in r["warnings"]),
        f"warm latency at the default MemorySize 128 (CPU quota: 7 % of a core): p50 "
        f"{r['latency_128mb']['p50_ms']:.3f} ms, p99 {r['latency_128mb']['p99_ms']:.3f} ms "
        f"(the figures above use MemorySize {WARM_MEMORY_MB}, one vCPU)",
    ]
    return "\n".join(lines)


def runtime_python() -> str:
    """The interpreter lambdad runs python3.11 functions with (pyenv shims resolved), for the floors."""
    try:
        return str(RuntimeRegistry().get(RUNTIME).executable)
    except Exception:  # the registry's interface is lambdad's own business; the floor only needs a python3.11
        found = shutil.which(RUNTIME) or sys.executable
        return subprocess.run([found, "-c", "import sys; print(sys.executable)"], capture_output=True, text=True,
                              check=True).stdout.strip()


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
            small = sequential(port, "bench-echo-128", max(200, plan.latency_n // 4))
            result["latency_128mb"] = {"n": len(small), "p50_ms": pct(small, 50), "p99_ms": pct(small, 99)}
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
        clean = clean_interpreter(python, data_dir / "clean-venv")
        result["floor_python"] = f"{clean} (a venv of {python} with nothing installed)"
        for key, files, floor, floor_path in (("cold", {"app.py": ECHO_CODE}, "import json", ""),
                                              ("cold_boto3", boto3_files, "import boto3", purelib)):
            c = cold_starts(server, port, clean, plan.cold_samples, files, floor, key.replace("_", "-"), floor_path)
            result[key] = {"samples": plan.cold_samples, "lambdad_p50_ms": pct(c["lambdad"], 50),
                           "lambdad_p90_ms": pct(c["lambdad"], 90), "floor_p50_ms": pct(c["floor"], 50),
                           "init_p50_ms": pct(c["init"], 50)}
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
