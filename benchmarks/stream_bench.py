"""Time to first byte of a streamed response against the function's whole time.

    python3 benchmarks/stream_bench.py [--n 20] [--chunks 6] [--pause-ms 200]

Starts its own ``lambdad serve`` (port 0, a temp data dir, stopped at the end) and two streaming functions that
write ``--chunks`` chunks, the first at once, each followed by ``--pause-ms`` of sleep: a Node.js
``awslambda.streamifyResponse`` handler and a custom runtime (a Python ``bootstrap`` that POSTs its answer
chunked). For each, over ``--n`` warm invocations through boto3's ``invoke_with_response_stream``, it prints the
client's time to the first PayloadChunk and to InvokeComplete (p50), and the same function through ``invoke``
(buffered: the whole answer at the end). Beside them, for scale, a warm boto3 ``invoke`` of a Python function that
returns its event: what any call costs on this machine, the floor under the first byte.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.server import ROLE, Server, create_python_function, make_zip  # noqa: E402
from tests.test_streaming import NODE_STREAMING, STREAMING_BOOTSTRAP  # noqa: E402


def streamed(lam, name: str, payload: bytes) -> tuple[float, float]:
    """(time to the first PayloadChunk, time to InvokeComplete), in ms, as the client saw them."""
    start = time.perf_counter()
    response = lam.invoke_with_response_stream(FunctionName=name, Payload=payload)
    first = 0.0
    stream = response["EventStream"]
    try:
        for event in stream:
            if "PayloadChunk" in event and not first:
                first = time.perf_counter()
            if "InvokeComplete" in event and event["InvokeComplete"].get("ErrorCode"):
                raise RuntimeError(f"{name} failed: {event['InvokeComplete']}")
    finally:
        stream.close()
    return (first - start) * 1000.0, (time.perf_counter() - start) * 1000.0


def buffered(lam, name: str, payload: bytes) -> float:
    start = time.perf_counter()
    response = lam.invoke(FunctionName=name, Payload=payload)
    response["Payload"].read()
    return (time.perf_counter() - start) * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="warm invocations measured per figure")
    parser.add_argument("--chunks", type=int, default=6, help="chunks the function writes, each followed by a pause")
    parser.add_argument("--pause-ms", type=float, default=200.0, help="the function's sleep after each of them")
    args = parser.parse_args()
    node_payload = json.dumps({"chunks": args.chunks, "pause": args.pause_ms}).encode()
    custom_payload = json.dumps({"chunks": args.chunks, "pause": args.pause_ms / 1000.0}).encode()
    with tempfile.TemporaryDirectory(prefix="lambdad-stream-bench-") as data:
        server = Server(Path(data), env={"LAMBDAD_IDLE_TIMEOUT_SECONDS": "3600"}).start()
        try:
            lam = server.client()
            lam.create_function(FunctionName="bench-stream-node", Runtime="nodejs20.x", Role=ROLE,
                                Handler="index.handler", Code={"ZipFile": make_zip({"index.js": NODE_STREAMING})},
                                Timeout=120, MemorySize=1769)
            lam.create_function(FunctionName="bench-stream-custom", Runtime="provided.al2023", Role=ROLE,
                                Handler="x", Timeout=120, MemorySize=1769,
                                Code={"ZipFile": make_zip({"bootstrap": STREAMING_BOOTSTRAP}, {"bootstrap": 0o755})})
            create_python_function(lam, "bench-stream-echo", "def handler(event, context):\n    return event\n",
                                   MemorySize=1769)
            floor = []
            buffered(lam, "bench-stream-echo", b"{}")
            for _ in range(args.n):
                floor.append(buffered(lam, "bench-stream-echo", b"{}"))
            print(f"lambdad streaming: {args.n} warm invocations each; the function writes {args.chunks} chunks, the "
                  f"first at once, each followed by {args.pause_ms:.0f} ms of sleep "
                  f"(its own time: {args.chunks * args.pause_ms:.0f} ms and up)")
            print(f"floor: warm boto3 invoke of a Python echo function, p50 {statistics.median(floor):.2f} ms")
            print(f"{'function':22} {'first byte p50':>15} {'complete p50':>13} {'ratio':>7} {'Invoke (buffered) p50':>22}")
            for name, payload in (("bench-stream-node", node_payload), ("bench-stream-custom", custom_payload)):
                streamed(lam, name, payload)  # cold start, not measured
                firsts, totals, whole = [], [], []
                for _ in range(args.n):
                    first, total = streamed(lam, name, payload)
                    firsts.append(first)
                    totals.append(total)
                for _ in range(max(3, args.n // 4)):
                    whole.append(buffered(lam, name, payload))
                first_p50, total_p50 = statistics.median(firsts), statistics.median(totals)
                print(f"{name:22} {first_p50:12.2f} ms {total_p50:10.1f} ms {first_p50 / total_p50:7.3f} "
                      f"{statistics.median(whole):19.1f} ms")
            lam.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
