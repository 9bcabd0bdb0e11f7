"""Warm GET through a function URL against warm Invoke of the same function, measured in the same run.

    python3 benchmarks/url_bench.py [--n 2000] [--json]

A URL request and an Invoke cross the same HTTP server and the same invoke service; the URL adds finding the URL
by its Host, the resource-policy check of AuthType NONE, building the payload format 2.0 event and reading the
function's answer back as an HTTP response, and saves the SigV4 verification an Invoke pays. The figure is the
ratio of their p50 (and p99), with a bare asyncio echo server's round trip beside them as the floor of the
client and the loopback. Requests alternate in blocks so that drift hits every side alike; the client is
benchmarks/harness.py's raw keep-alive HTTP/1.1 client (not boto3). The script starts its own ``lambdad serve``
(port 0, temp data dir) and echo server, and stops both.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.harness import Connection, echo_server, pct, say, signed_invoke  # noqa: E402
from tests.server import Server, create_python_function  # noqa: E402

CODE = "def handler(event, context):\n    return {'statusCode': 200, 'body': 'ok'}\n"
FUNCTION = "url-bench"


def url_get(port: int, host: str) -> bytes:
    return f"GET /path?q=1 HTTP/1.1\r\nHost: {host}\r\nUser-Agent: url-bench\r\nAccept: */*\r\n\r\n".encode()


def measure(n: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory(prefix="url-bench-") as tmp, echo_server() as (echo_port, _pid):
        server = Server(Path(tmp) / "data").start()
        try:
            lam = server.client()
            create_python_function(lam, FUNCTION, CODE)
            url = lam.create_function_url_config(FunctionName=FUNCTION, AuthType="NONE")["FunctionUrl"]
            lam.add_permission(FunctionName=FUNCTION, StatementId="public", Action="lambda:InvokeFunctionUrl",
                               Principal="*", FunctionUrlAuthType="NONE")
            host = urlsplit(url).netloc
            reqs = {"url": [url_get(server.port, host)] * n,
                    "invoke": [signed_invoke(server.port, FUNCTION, b"{}") for _ in range(n)],
                    "echo": [url_get(echo_port, host)] * n}
            ports = {"url": server.port, "invoke": server.port, "echo": echo_port}
            conns = {side: Connection(port) for side, port in ports.items()}
            for side, conn in conns.items():  # warm-up: the environment, the connections, the caches
                for r in reqs[side][:100]:
                    status, _, body = conn.roundtrip(r)
                    assert status == 200, (side, status, body)
            say(f"{n} sequential requests each: URL GET, Invoke, echo")
            out: dict[str, list[float]] = {side: [] for side in reqs}
            block = max(50, n // 10)
            clock = time.perf_counter_ns
            for start in range(0, n, block):
                for side, conn in conns.items():
                    samples = out[side]
                    for r in reqs[side][start:start + block]:
                        t0 = clock()
                        status, _, body = conn.roundtrip(r)
                        samples.append((clock() - t0) / 1e6)
                        if status != 200:
                            raise SystemExit(f"{side}: {status} {body[:200]!r}")
            for conn in conns.values():
                conn.close()
            return out
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    samples = measure(args.n)
    figures = {side: {"p50_ms": round(pct(s, 50), 3), "p99_ms": round(pct(s, 99), 3),
                      "mean_ms": round(statistics.fmean(s), 3)} for side, s in samples.items()}
    figures["ratio"] = {"p50": round(figures["url"]["p50_ms"] / figures["invoke"]["p50_ms"], 2),
                        "p99": round(figures["url"]["p99_ms"] / figures["invoke"]["p99_ms"], 2)}
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    for side, label in (("url", "warm GET through a function URL"), ("invoke", "warm Invoke (SigV4)"),
                        ("echo", "floor: asyncio echo round trip")):
        f = figures[side]
        print(f"{label:34} p50 {f['p50_ms']:.3f} ms  p99 {f['p99_ms']:.3f} ms  mean {f['mean_ms']:.3f} ms")
    print(f"URL / Invoke: p50 {figures['ratio']['p50']:.2f}x, p99 {figures['ratio']['p99']:.2f}x")


if __name__ == "__main__":
    main()
