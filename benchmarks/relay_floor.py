"""The throughput of the least any design like lambdad's can do, beside the echo floor of bench.py.

    python3 benchmarks/relay_floor.py [--seconds S] [--runtimes N]

Issue 4 asks for a throughput of at least 25 % of a minimal asyncio echo server's. An invocation in lambdad (as in
AWS Lambda) crosses three processes: the client's request reaches the server, the server hands the event to a
runtime process over the Runtime API (the answer to its ``GET /next``), the runtime posts its response
(``POST .../response``, answered 202), the server answers the client. This script measures that pattern with
everything else taken away: a *relay* server that does nothing but match bytes (no authentication, routing,
JSON, logs, limits, isolation or bookkeeping; the same ``asyncio.Protocol`` style as the echo floor, on uvloop as
lambdad is) and N runtime processes that do nothing but loop over ``GET /next`` and ``POST response`` on raw
sockets (pipelined, with the 202 riding on the next event, as lambdad's Python runtime and server do).

It runs the same clients as bench.py's throughput figure (4 processes x 2 keep-alive connections on one core, the
server side — relay and runtimes, or echo — pinned to the other) against the relay and then against the echo
server, and prints both and their ratio. Whatever the relay reaches is an upper bound for lambdad's throughput
ratio on this machine: lambdad does all the relay does and more, in the same language.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as bench  # noqa: E402  (the shared pieces of bench.py)

_LENGTH = re.compile(rb"(?im)^content-length:\s*(\d+)")
_REQUEST_ID = re.compile(rb"(?im)^lambda-runtime-aws-request-id:\s*(\S+)")


def _messages(buf: bytearray) -> list[tuple[bytes, bytes]]:
    """Complete HTTP messages at the front of ``buf`` (consumed): (head, body)."""
    out = []
    while True:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return out
        m = _LENGTH.search(buf, 0, end)
        total = end + 4 + (int(m.group(1)) if m else 0)
        if len(buf) < total:
            return out
        out.append((bytes(buf[:end]), bytes(buf[end + 4:total])))
        del buf[:total]


class _Relay:
    def __init__(self) -> None:
        self.parked: collections.deque[_RuntimeSide] = collections.deque()  # runtimes waiting in GET /next
        self.waiting: collections.deque[tuple[bytes, _ClientSide]] = collections.deque()  # events, no runtime free
        self.callers: dict[bytes, _ClientSide] = {}
        self.ids = 0

    def submit(self, body: bytes, client: "_ClientSide") -> None:
        if self.parked:
            self.parked.popleft().deliver(body, client)
        else:
            self.waiting.append((body, client))


class _ClientSide(asyncio.Protocol):
    def __init__(self, relay: _Relay) -> None:
        self.relay = relay
        self.buf = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        for _, body in _messages(self.buf):
            self.relay.submit(body, self)

    def answer(self, body: bytes) -> None:
        if self.transport.is_closing():  # type: ignore[attr-defined]  # the client left (end of a run)
            return
        self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(body), body))  # type: ignore[attr-defined]


class _RuntimeSide(asyncio.Protocol):
    def __init__(self, relay: _Relay) -> None:
        self.relay = relay
        self.buf = bytearray()
        self.held = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        for head, body in _messages(self.buf):
            if head.startswith(b"GET"):
                if self.relay.waiting:
                    self.deliver(*self.relay.waiting.popleft())
                else:
                    self.relay.parked.append(self)
            else:  # POST /2018-06-01/runtime/invocation/<id>/response
                request_id = head.split(b" ", 2)[1].split(b"/")[-2]
                self.relay.callers.pop(request_id).answer(body)
                self.held = b"HTTP/1.1 202 Accepted\r\nContent-Length: 15\r\n\r\n{\"status\":\"OK\"}"

    def deliver(self, body: bytes, client: _ClientSide) -> None:
        if self.transport.is_closing():  # type: ignore[attr-defined]
            return
        self.relay.ids += 1
        request_id = b"%032x" % self.relay.ids
        self.relay.callers[request_id] = client
        self.transport.write(self.held + b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: %s\r\n"  # type: ignore
                             b"Content-Length: %d\r\n\r\n%s" % (request_id, len(body), body))
        self.held = b""


async def _relay_main() -> None:
    import uvloop  # noqa: F401  (lambdad's loop; imported to fail early where it is missing)

    loop = asyncio.get_running_loop()
    relay = _Relay()
    clients = await loop.create_server(lambda: _ClientSide(relay), "127.0.0.1", 0)
    runtimes = await loop.create_server(lambda: _RuntimeSide(relay), "127.0.0.1", 0)
    print(clients.sockets[0].getsockname()[1], runtimes.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


def _runtime_main(port: int) -> None:
    """A runtime that does nothing but take events and answer them with their payload."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    next_request = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: r\r\n\r\n"
    sock.sendall(next_request)
    buf = bytearray()
    while True:
        messages = _messages(buf)
        while not messages:
            chunk = sock.recv(65536)
            if not chunk:
                return
            buf += chunk
            messages = _messages(buf)
        for head, body in messages:
            if head.startswith(b"HTTP/1.1 202"):
                continue
            request_id = _REQUEST_ID.search(head).group(1)  # type: ignore[union-attr]
            sock.sendall(b"POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: r\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (request_id, len(body), body) + next_request)


def measure(plan: "bench.Plan", client_cpus: set[int], server_cpus: set[int], runtimes: int = 8) -> dict:
    """The relay's throughput (bench.throughput's dict) with ``runtimes`` bare runtimes, pinned like lambdad."""
    relay = subprocess.Popen([sys.executable, __file__, "--relay-server"], stdout=subprocess.PIPE, text=True)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        assert relay.stdout is not None
        client_port, runtime_port = map(int, relay.stdout.readline().split())
        procs = [subprocess.Popen([sys.executable, __file__, "--runtime", str(runtime_port)])
                 for _ in range(runtimes)]
        time.sleep(0.5)
        pids = [relay.pid] + [r.pid for r in procs]
        with bench.pinned(pids, server_cpus):
            return bench.throughput(client_port, "f", plan, client_cpus, lambda: pids)
    finally:
        for proc in [relay, *procs]:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--runtimes", type=int, default=8, help="runtime processes (one per client connection)")
    parser.add_argument("--relay-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--runtime", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.relay_server:
        import uvloop

        uvloop.run(_relay_main())
        return
    if args.runtime:
        _runtime_main(args.runtime)
        return
    cores = sorted(os.sched_getaffinity(0))
    client_cpus, server_cpus = {cores[-1]}, set(cores[:-1]) or {cores[-1]}
    plan = bench.Plan(latency_n=0, tput_seconds=args.seconds, tput_warmup=1.0, tput_procs=bench.FULL.tput_procs,
                      tput_conns=bench.FULL.tput_conns, cold_samples=0, uss_envs=0)
    got = measure(plan, client_cpus, server_cpus, args.runtimes)
    with bench.echo_server() as (echo_port, echo_pid), bench.pinned([echo_pid], server_cpus):
        echo = bench.throughput(echo_port, "f", plan, client_cpus, lambda: [echo_pid])
    print(f"relay (server + {args.runtimes} runtimes on CPU {sorted(server_cpus)}): {got['rps']:,.0f} invocations/s, "
          f"server side {got['server_cores']:.2f} cores, clients {got['client_cores']:.2f} cores; "
          f"CPU per invocation {got['cpu_us_main_user'] + got['cpu_us_main_sys']:.0f} us relay + "
          f"{got['cpu_us_envs_user'] + got['cpu_us_envs_sys']:.0f} us runtimes")
    print(f"echo  (server on CPU {sorted(server_cpus)}): {echo['rps']:,.0f} requests/s, server "
          f"{echo['server_cores']:.2f} cores, clients {echo['client_cores']:.2f} cores")
    print(f"relay / echo: {got['rps'] / echo['rps']:.2f}x   (issue 4's bar for lambdad: >= 0.25x)")
    if max(got["other_cores"], echo["other_cores"]) > 0.2:
        print(f"WARNING: something else used up to {max(got['other_cores'], echo['other_cores']):.2f} cores meanwhile")


if __name__ == "__main__":
    main()
