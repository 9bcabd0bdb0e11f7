"""How the CPU quota's period and burst shape a 128 MB function's warm latency (issue 21 item 3).

    python3 benchmarks/cpu_periods.py [--runtime python3.11|nodejs20.x] [--n 1500] [--rounds 2]

Starts its own ``lambdad serve`` (temp data dir), creates one 128 MB ``return event`` function and warms it, then
rewrites its environment's cgroup v1 cpu files (``cpu.cfs_period_us``, ``cpu.cfs_quota_us``, ``cpu.cfs_burst_us``)
to each candidate below in turn — every one 128/1,769 of a CPU on average — and measures, for each, ``--n``
invokes back to back (the environment then asks for more than its share) and 300 invokes 5 ms apart (within its
share): p50, p99, p99.9, max, the share of invokes over 5 ms, and how many periods the quota throttled
(``cpu.stat``). Candidates alternate over ``--rounds`` rounds, so drift on a shared machine hits them alike. The
first candidate is what lambdad sets (``sandbox/cgroups.py`` ``cpu_bandwidth``); the last is the kernel's default
period with no burst, as lambdad set before issue 21. Needs root and the cgroup v1 cpu controller.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lambdad.sandbox.cgroups import cpu_bandwidth  # noqa: E402
from tests.server import ROLE, Server, create_python_function, make_zip  # noqa: E402

from harness import pct, say, sequential  # noqa: E402

MEMORY_MB = 128
_QUOTA, _PERIOD, _BURST = cpu_bandwidth(MEMORY_MB)
CANDIDATES = [(_PERIOD, _QUOTA, _BURST), (55282, 4000, 4000), (100_000, 7235, 7235), (100_000, 7235, 0)]  # (period,
# quota, burst) in microseconds


def _groups(server_pid: int) -> list[Path]:
    return [p for p in Path("/sys/fs/cgroup/cpu/lambdad").glob(f"{server_pid}-*/*") if p.is_dir()]


def _set(group: Path, period: int, quota: int, burst: int) -> None:
    """In an order the kernel accepts from any previous setting (it refuses a burst over the quota)."""
    for name, value in (("cpu.cfs_burst_us", 0), ("cpu.cfs_quota_us", -1), ("cpu.cfs_period_us", period),
                        ("cpu.cfs_quota_us", quota), ("cpu.cfs_burst_us", burst)):
        (group / name).write_text(str(value))


def _throttled(groups: list[Path]) -> int:
    total = 0
    for g in groups:
        fields = dict(line.split() for line in (g / "cpu.stat").read_text().splitlines())
        total += int(fields["nr_throttled"])
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runtime", default="python3.11")
    parser.add_argument("--n", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="lambdad-cpu-periods-"))
    server = Server(data, env={"LAMBDAD_IDLE_TIMEOUT_SECONDS": "3600", "PYTHONPATH": str(REPO)})
    server.start()
    try:
        client, port = server.client(), server.port
        if args.runtime.startswith("python"):
            create_python_function(client, "f128", "def handler(event, context):\n    return event\n",
                                   runtime=args.runtime, MemorySize=MEMORY_MB)
        else:
            client.create_function(FunctionName="f128", Runtime=args.runtime, Role=ROLE, Handler="index.handler",
                                   MemorySize=MEMORY_MB,
                                   Code={"ZipFile": make_zip({"index.js": "exports.handler = async (e) => e;\n"})})
        sequential(port, "f128", 600)  # past the first invocations (and Node.js's JIT)
        groups = _groups(server.proc.pid)  # type: ignore[union-attr]
        for _ in range(args.rounds):
            for period, quota, burst in CANDIDATES:
                for g in groups:
                    _set(g, period, quota, burst)
                time.sleep(0.3)
                for label, n, gap in (("in a row", args.n, 0.0), ("5 ms apart", 300, 0.005)):
                    before = _throttled(groups)
                    lat = sequential(port, "f128", n, gap_s=gap)
                    throttled = _throttled(groups) - before
                    print(f"{args.runtime} period {period / 1000:5.1f} ms quota {quota / 1000:.2f} ms burst "
                          f"{burst / 1000:.2f} ms, {label:>10}: p50 {pct(lat, 50):.3f} p99 {pct(lat, 99):6.2f} "
                          f"({pct(lat, 99) / pct(lat, 50):5.1f}x) p99.9 {pct(lat, 99.9):6.1f} max {max(lat):6.1f} ms, "
                          f"{sum(x > 5 for x in lat) / len(lat):5.1%} over 5 ms, throttled {throttled} periods",
                          flush=True)
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)
    say("done")


if __name__ == "__main__":
    main()
