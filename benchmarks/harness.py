"""What bench.py, relay_floor.py and profiling.py share: the plan of a run, raw HTTP/1.1 clients of lambdad and of
an echo server, CPU pinning and accounting, and the throughput loop. Its own module, so that the three import it
and not each other (they used to import in a circle: bench.py <-> profiling.py <-> relay_floor.py)."""

from __future__ import annotations

import asyncio
import base64
import json
import multiprocessing as mp
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, cast

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

from tests.server import ACCESS_KEY, SECRET_KEY  # noqa: E402


RUNTIME = "python3.11"
PAYLOAD = b'{"hello": "world", "n": 12345}'
IDLE_TIMEOUT = "3600"  # no environment is recycled during a run
PRESIGNED_BATCH = 256  # throughput clients cycle through this many distinct signed requests each
# Lambda gives a function CPU in proportion to its memory (1,769 MB = one vCPU) and lambdad does the same with a
# CFS quota. The warm figures measure the platform, not that quota, so their function gets one full vCPU; the
# default 128 MB (7 % of a core) is measured beside them for information.
WARM_MEMORY_MB = 1769

ECHO_CODE = "def handler(event, context):\n    return event\n"
NODE_RUNTIME = "nodejs20.x"
NODE_ECHO_CODE = "exports.handler = async (event) => event;\n"
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
            uss_envs=500)
QUICK = Plan(latency_n=300, tput_seconds=1.5, tput_warmup=1.0, tput_procs=4, tput_conns=2, cold_samples=5,
             uss_envs=20)


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


def signed_invoke(port: int, function: str, payload: bytes = PAYLOAD, headers: dict[str, str] | None = None,
                  credentials: tuple[str, str] | None = None) -> bytes:
    """The bytes of one SigV4-signed Invoke request, as boto3 would sign it (root's key unless ``credentials``)."""
    path = f"/2015-03-31/functions/{function}/invocations"
    request = AWSRequest("POST", f"http://127.0.0.1:{port}{path}", data=payload,
                         headers={"Content-Type": "application/json", **(headers or {})})
    SigV4Auth(Credentials(*(credentials or (ACCESS_KEY, SECRET_KEY))), "lambda", "us-east-1").add_auth(request)
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


def sequential(port: int, function: str, n: int, credentials: tuple[str, str] | None = None,
               gap_s: float = 0.0, after: Callable[[], None] | None = None) -> list[float]:
    """Sequential invokes of ``function`` alone (after 50 unmeasured ones), signed by root or ``credentials``,
    back to back or ``gap_s`` apart; ``after`` is called after each measured one, outside its timing.
    Milliseconds."""
    say(f"warm latency of {function}: {n} sequential invokes" + (" by an IAM user" if credentials else "")
        + (f", {gap_s * 1000:.0f} ms apart" if gap_s else ""))
    reqs = [signed_invoke(port, function, credentials=credentials) for _ in range(n + 50)]
    conn = Connection(port)
    out = []
    for i, r in enumerate(reqs):
        t0 = time.perf_counter_ns()
        resp = conn.roundtrip(r)
        if i >= 50:
            out.append((time.perf_counter_ns() - t0) / 1e6)
            if after is not None:
                after()
        _check(resp, function)
        if gap_s:
            time.sleep(gap_s)
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


def _machine_ticks() -> tuple[int, int, int]:
    """Clock ticks of all CPUs since boot, from /proc/stat: busy, total, and spent in processes (user, nice,
    system: not interrupts, where the kernel does loopback networking without charging a process)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields), fields[0] + fields[1] + fields[2]


if __name__ == "__main__" and sys.argv[1:] == ["--echo-server"]:  # echo_server() runs this file
    asyncio.run(_echo_main())
