"""What reading logs costs the warm invoke path: warm invoke latency alone, and while another process reads a large
log group through the CloudWatch Logs API as fast as it can (FilterLogEvents with a pattern, every page, again and
again), and, for scale, while a process asks ListFunctions as fast as it can; alternating (alone, reading,
listing, alone, reading, listing) so that drift hits all three.

    python3 benchmarks/logs_read.py [--events 50000] [--invokes 2000]

The floor is the same server's warm latency with no reader, measured in the same run. The reader is one process
pinned to the last core (with the latency client); the server is not pinned. Prints p50/p99 of each phase, the
ratio of the two.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from harness import REPO, pct, say, sequential  # benchmarks/harness.py

sys.path.insert(0, str(REPO))
from tests.server import Server, create_python_function  # noqa: E402

ECHO = "def handler(event, context):\n    return event\n"


def fill(server: Server, group: str, events: int) -> None:
    logs = server.client("logs")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    start = int(time.time() * 1000) - events
    batch = 5000
    for first in range(0, events, batch):
        logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[
            {"timestamp": start + i, "message": f"{'ERROR' if i % 100 == 0 else 'INFO'} request {i} took {i % 97} ms "
                                               f"for user u{i % 13} at /api/items/{i}"}
            for i in range(first, min(first + batch, events))])


def reader(endpoint: str, group: str, control: bool) -> None:
    """Read every page of ERROR events of ``group``, again and again, until terminated; or (``control``) ask
    ListFunctions as fast, for scale: what any API client that never pauses costs the invokes."""
    os.sched_setaffinity(0, {os.cpu_count() - 1})  # type: ignore[operator]
    import boto3

    logs = boto3.client("logs", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=os.environ["BENCH_KEY"], aws_secret_access_key=os.environ["BENCH_SECRET"])
    lam = boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id=os.environ["BENCH_KEY"], aws_secret_access_key=os.environ["BENCH_SECRET"])
    while True:
        if control:
            lam.list_functions()
            continue
        for _page in logs.get_paginator("filter_log_events").paginate(logGroupName=group, filterPattern="ERROR"):
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--invokes", type=int, default=2000)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="lambdad-logs-bench-"))
    server = Server(data_dir, env={"PYTHONPATH": str(REPO)})
    try:
        server.start()
        from tests.server import ACCESS_KEY, SECRET_KEY

        os.environ.update(BENCH_KEY=ACCESS_KEY, BENCH_SECRET=SECRET_KEY)
        create_python_function(server.client(), "bench-echo", ECHO)
        say(f"filling /bench/read with {args.events} events")
        fill(server, "/bench/read", args.events)
        phases: dict[str, list[float]] = {"alone": [], "reading": [], "listing": []}
        for phase in ("alone", "reading", "listing", "alone", "reading", "listing"):
            if phase == "alone":
                phases[phase] += sequential(server.port, "bench-echo", args.invokes // 2)
                continue
            proc = mp.Process(target=reader, args=(server.endpoint, "/bench/read", phase == "listing"))
            proc.start()
            time.sleep(1.0)  # the reader is under way
            phases[phase] += sequential(server.port, "bench-echo", args.invokes // 2)
            proc.terminate()
            proc.join()
        alone, reading, listing = phases["alone"], phases["reading"], phases["listing"]
        print(f"warm invoke, alone:             p50 {pct(alone, 50):.3f} ms  p99 {pct(alone, 99):.3f} ms  "
              f"(n={len(alone)})")
        print(f"warm invoke, logs being read:   p50 {pct(reading, 50):.3f} ms  p99 {pct(reading, 99):.3f} ms  "
              f"(n={len(reading)})")
        print(f"warm invoke, ListFunctions:     p50 {pct(listing, 50):.3f} ms  p99 {pct(listing, 99):.3f} ms  "
              f"(n={len(listing)})")
        print(f"ratio listing/alone:            p50 {pct(listing, 50) / pct(alone, 50):.2f}x  "
              f"p99 {pct(listing, 99) / pct(alone, 99):.2f}x")
        print(f"ratio reading/alone:            p50 {pct(reading, 50) / pct(alone, 50):.2f}x  "
              f"p99 {pct(reading, 99) / pct(alone, 99):.2f}x")
    finally:
        if server.proc is not None:
            server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
