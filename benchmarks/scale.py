"""How lambdad holds up with hundreds of environments on one machine.

    python3 benchmarks/scale.py [--environments 500]

Starts its own ``lambdad serve`` (temp data dir), invokes one function N times at once (each invocation sleeps
long enough that all N run side by side, so N environments exist), then reports: how long the N cold starts
took, how many distinct environments served them, the machine's memory used per environment, the server's
RSS, and the warm latency of another function before and with the N environments idle — the floor for that
last figure is the same measurement before the N environments existed.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.server import ROLE, Server  # noqa: E402


def _zip(code: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", code)
    return buf.getvalue()


def _mem_used_mb() -> int:
    info = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, value = line.split(":")
            info[key] = int(value.split()[0])
    return (info["MemTotal"] - info["MemAvailable"]) // 1024


def _latency_ms(client, name: str, n: int = 100) -> float:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        client.invoke(FunctionName=name)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--environments", type=int, default=500)
    args = parser.parse_args()
    n = args.environments
    hold = max(15.0, n * 0.03)  # long enough for the last cold start to begin before the first finishes
    server = Server(Path(tempfile.mkdtemp(prefix="lambdad-scale-")),
                    env={"LAMBDAD_IDLE_TIMEOUT_SECONDS": "3600", "LAMBDAD_LOG_LEVEL": "WARNING"}).start()
    try:
        client = server.client(max_pool_connections=n, read_timeout=600)
        client.create_function(FunctionName="wide", Runtime="python3.11", Role=ROLE, Handler="app.handler", Timeout=900,
                               Code={"ZipFile": _zip("import os, time\ndef handler(e, c):\n    time.sleep(e['s'])\n"
                                                     "    return os.environ['AWS_LAMBDA_LOG_STREAM_NAME']\n")})
        client.create_function(FunctionName="probe", Runtime="python3.11", Role=ROLE, Handler="app.handler",
                               Code={"ZipFile": _zip("def handler(e, c):\n    return 1\n")})
        client.invoke(FunctionName="probe")
        before_ms = _latency_ms(client, "probe")
        mem_before = _mem_used_mb()
        start = time.time()
        payload = json.dumps({"s": hold}).encode()
        with ThreadPoolExecutor(n) as pool:
            streams = list(pool.map(
                lambda _: json.loads(client.invoke(FunctionName="wide", Payload=payload)["Payload"].read()), range(n)))
        elapsed = time.time() - start
        mem_after = _mem_used_mb()
        distinct = len({s for s in streams if isinstance(s, str)})
        after_ms = _latency_ms(client, "probe")
        rss_mb = 0
        with open(f"/proc/{server.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS"):
                    rss_mb = int(line.split()[1]) // 1024
        print(f"{n} simultaneous invocations: {distinct} distinct environments; all cold starts done in "
              f"{elapsed - hold:.1f} s ({(elapsed - hold) / n * 1000:.1f} ms each, one fork server)")
        print(f"machine memory used: +{mem_after - mem_before} MB = {(mem_after - mem_before) / max(distinct, 1):.1f} MB"
              f" per environment (processes, page tables, cgroups, tmpfs)")
        print(f"server RSS with {distinct} environments: {rss_mb} MB")
        print(f"warm invoke of another function (boto3 client, p50 of 100): {after_ms:.2f} ms with {distinct} idle "
              f"environments vs {before_ms:.2f} ms before them = {after_ms / before_ms:.2f}x")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
