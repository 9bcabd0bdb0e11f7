"""Costs of the pieces of lambdad's warm path, each measured alone (docs/performance.md, "Where the time goes").

    python3 benchmarks/breakdown.py

1. HTTP: a bare aiohttp ``web.Server`` and lambdad's own HTTP server (``lambdad/api/server.py``, what the
   control API runs on since ccb7f81) answering with the request body, against the minimal asyncio echo server
   of bench.py, each on the standard event loop and on uvloop (when installed), driven by bench.py's client:
   round trip p50 and server CPU per request.
2. SigV4: ``lambdad.auth.sigv4.verify`` on a signed Invoke request, in a hot loop (the best case: in the server
   its code and data are cold in the caches at every request).
3. cgroupfs (root and cgroup v1 only): writing and reading a control file of a fresh, empty cgroup by path
   (open, write or read, close: what ``EnvCgroup`` does per invocation) against the same through a file
   descriptor kept open. The group is created under ``<mount>/<controller>/lambdad-breakdown-<pid>`` and removed.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
import timeit
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (puts the checkout on sys.path)
import harness  # noqa: E402

from lambdad.auth.sigv4 import Secret, SignedRequest, verify  # noqa: E402


async def _serve(kind: str) -> None:
    from aiohttp import web

    async def echo(request: web.BaseRequest) -> web.Response:
        return web.Response(body=await request.read(), content_type="application/json")

    if kind == "lambdad":  # lambdad's own HTTP/1.1 server (lambdad/api/server.py), answering with the body
        from lambdad.api.server import HttpRequest, HttpResponse, HttpServer

        async def app(request: HttpRequest) -> HttpResponse:
            return HttpResponse(200, request.body, (("Content-Type", "application/json"),))

        http = HttpServer(app, max_body=1 << 20, too_large=lambda limit: HttpResponse(413))
        print(await http.start("127.0.0.1", 0), flush=True)
        await asyncio.Event().wait()
    loop = asyncio.get_running_loop()
    factory = web.Server(echo, access_log=None) if kind == "aiohttp" else harness._EchoProtocol
    server = await loop.create_server(factory, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


def _serve_main(kind: str, loop: str) -> None:
    if loop == "uvloop":
        import uvloop

        uvloop.run(_serve(kind))
    else:
        asyncio.run(_serve(kind))


def per_call_us(fn: Callable[[], object], n: int) -> float:
    fn()
    return min(timeit.repeat(fn, number=n, repeat=3)) / n * 1e6


def http_floors(n: int = 3000) -> None:
    try:
        import uvloop  # noqa: F401

        loops = ["asyncio", "uvloop"]
    except ImportError:
        loops = ["asyncio"]
    for loop in loops:
        for kind, label in (("protocol", "Protocol echo"), ("aiohttp", "aiohttp web.Server echo"),
                            ("lambdad", "lambdad HttpServer echo")):
            proc = subprocess.Popen([sys.executable, __file__, "--serve", kind, loop], stdout=subprocess.PIPE,
                                    text=True)
            try:
                assert proc.stdout is not None
                port = int(proc.stdout.readline())
                conn = harness.Connection(port)
                reqs = [harness.signed_invoke(port, "f") for _ in range(n)]
                for r in reqs[:200]:
                    conn.roundtrip(r)
                cpu0, lat = harness._cpu_seconds([proc.pid]), []
                for r in reqs:
                    t0 = time.perf_counter_ns()
                    conn.roundtrip(r)
                    lat.append((time.perf_counter_ns() - t0) / 1e3)
                cpu = (harness._cpu_seconds([proc.pid]) - cpu0) * 1e6 / n
                conn.close()
                print(f"  {label + ' on ' + loop:<34} round trip p50 {statistics.median(lat):5.0f} us, "
                      f"server CPU {cpu:4.0f} us/request")
            finally:
                proc.kill()
                proc.wait()


def sigv4_cost() -> None:
    raw = harness.signed_invoke(9001, "bench-echo")
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    method, path, _ = lines[0].split(" ")
    headers = [(k, v) for k, _, v in (line.partition(": ") for line in lines[1:])]
    request = SignedRequest(method, path, "", headers, body)
    secret = Secret(harness.SECRET_KEY)
    us = per_call_us(lambda: verify(request, lambda _: secret, region="us-east-1"), 2000)
    print(f"  verify() of a signed Invoke, hot loop: {us:.0f} us per call")


def cgroup_costs(mount: Path = Path("/sys/fs/cgroup")) -> None:
    files = {"memory": ("memory.max_usage_in_bytes", b"0"), "freezer": ("freezer.state", b"THAWED")}
    for controller, (name, value) in files.items():
        group = mount / controller / f"lambdad-breakdown-{os.getpid()}"
        try:
            group.mkdir()
        except OSError as exc:
            print(f"  {controller}: no cgroup to measure ({exc.strerror}); needs root and cgroup v1")
            continue
        try:
            path = str(group / name)

            def by_path_write() -> None:
                with open(path, "wb", buffering=0) as f:
                    f.write(value)

            def by_path_read() -> None:
                with open(path, "rb", buffering=0) as f:
                    f.read()

            fd = os.open(path, os.O_RDWR)
            try:
                print(f"  {controller}/{name}: by path (binary, unbuffered): write "
                      f"{per_call_us(by_path_write, 2000):4.1f} us, read {per_call_us(by_path_read, 2000):4.1f} us; "
                      f"through a kept fd: write "
                      f"{per_call_us(lambda: os.pwrite(fd, value, 0), 2000):4.1f} us, read "
                      f"{per_call_us(lambda: os.pread(fd, 64, 0), 2000):4.1f} us")
            finally:
                os.close(fd)
            try:  # lambdad's own helpers (text mode, by path), when this checkout still has them
                from lambdad.sandbox.cgroups import _read, _write
            except ImportError:
                continue
            text = value.decode()
            write_us = per_call_us(lambda: _write(Path(path), text), 2000)
            read_us = per_call_us(lambda: _read(Path(path)), 2000)
            print(f"  {controller}/{name}: lambdad.sandbox.cgroups._write {write_us:4.1f} us, _read {read_us:4.1f} us")
        finally:
            group.rmdir()


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        _serve_main(sys.argv[2], sys.argv[3])
        return
    print(f"busy before: {bench.busy_fraction():.0%} of the CPUs")
    print("HTTP, one keep-alive connection, sequential:")
    http_floors()
    print("SigV4:")
    sigv4_cost()
    print("cgroupfs:")
    cgroup_costs()


if __name__ == "__main__":
    main()
