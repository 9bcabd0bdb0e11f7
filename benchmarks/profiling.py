"""``bench.py --profile``: py-spy the warm path, and rank where the server's event loop spends its Python time."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from harness import (PRESIGNED_BATCH, Connection, _cpu_seconds, _cpu_times, environment_pids, pinned, say,
                   set_affinity, signed_invoke)

from tests.server import Server

__all__ = ["profile"]


def profile(server: Server, port: int, function: str, out_dir: Path, seconds: float, server_cpus: set[int],
            client_cpus: set[int]) -> None:
    """py-spy the server and one environment while a sequential client invokes ``function``.

    The server (with its other environments) runs alone on ``server_cpus``, the environment and the client on
    ``client_cpus``: where they share a core, a socket write that wakes the peer shows up as time "in" the write.
    """
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("--profile needs py-spy (pip install py-spy)")
    out_dir.mkdir(parents=True, exist_ok=True)
    server_pid = server.proc.pid  # type: ignore[union-attr]
    reqs = [signed_invoke(port, function) for _ in range(PRESIGNED_BATCH)]
    conn = Connection(port)
    envs = environment_pids(server_pid)
    before = {pid: _cpu_seconds([pid]) for pid in envs}
    for r in reqs:
        conn.roundtrip(r)
    env_pid = max(envs, key=lambda pid: _cpu_seconds([pid]) - before[pid])  # the one the pool hands out now
    say(f"profiling server pid {server_pid} and environment pid {env_pid} for {seconds:.0f} s -> {out_dir}")
    mine = os.sched_getaffinity(0)
    with pinned([server_pid], server_cpus):
        set_affinity([env_pid], client_cpus)
        os.sched_setaffinity(0, client_cpus)
        # collapsed stacks (flamegraph.pl, inferno or speedscope read them); one sampler per process, no more:
        # samplers take CPU from a 2-core machine and slow what they measure
        spies = [subprocess.Popen([py_spy, "record", "--pid", str(pid), "--rate", "500", "--duration",
                                   str(int(seconds)), "--format", "raw", "--nonblocking", "-o",
                                   str(out_dir / f"{who}.txt")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for pid, who in ((server_pid, "server"), (env_pid, "environment"))]
        cpu0 = _cpu_times([server_pid]), _cpu_times([env_pid])
        deadline = time.monotonic() + seconds
        i = 0
        while time.monotonic() < deadline:
            conn.roundtrip(reqs[i % len(reqs)])
            i += 1
        cpu1 = _cpu_times([server_pid]), _cpu_times([env_pid])
        for spy in spies:
            spy.wait(30)
        os.sched_setaffinity(0, mine)
    conn.close()
    per = [f"{(cpu1[k][0] - cpu0[k][0]) * 1e6 / i:.0f}+{(cpu1[k][1] - cpu0[k][1]) * 1e6 / i:.0f}" for k in (0, 1)]
    summary = [f"{i} invokes in {seconds:.0f} s ({seconds * 1e6 / i:.0f} us each); CPU per invoke (us, user+sys): "
               f"server {per[0]}, environment {per[1]}", "",
               "share of the server's busy event-loop samples (inclusive):"]
    summary += [f"{share:5.1f}%  {name}" for name, share in _busy_shares(out_dir / "server.txt")[:40]]
    (out_dir / "summary.txt").write_text("\n".join(summary) + "\n")
    say("profile summary (" + str(out_dir / "summary.txt") + "):\n" + "\n".join(summary[:28]))


def _busy_shares(raw: Path) -> list[tuple[str, float]]:
    """Inclusive share of each function in py-spy's collapsed stacks of the server's event-loop thread, counting
    only samples in Python code: a stack that ends in the loop itself (waiting in epoll, or in uvloop's C code,
    which py-spy does not see into) is left out, and so are the other threads."""
    counts: dict[str, int] = {}
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")
        leaf = frames[-1].partition(" (")[0]
        if not n.isdigit() or frames[0].startswith("Thread._bootstrap") or leaf in _LOOP_LEAVES:
            continue
        total += int(n)
        seen = set()
        for frame in frames:
            name, _, where = frame.partition(" (")
            key = f"{name} ({'/'.join(where.split(':')[0].split('/')[-2:])})"
            if key not in seen and not key.endswith(_PLUMBING):
                seen.add(key)
                counts[key] = counts.get(key, 0) + int(n)
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])
    return [(k, 100 * v / max(1, total)) for k, v in ranked]


_LOOP_LEAVES = {"Runner.run", "run_until_complete", "BaseEventLoop.run_until_complete", "BaseEventLoop.run_forever",
                "select", "EpollSelector.select", "run"}
# frames under which everything runs (start-up, the loop's own scheduling): not informative in a ranking
_PLUMBING = ("<frozen runpy>)", "(lambdad/__main__.py)", "(lambdad/cli.py)", "(asyncio/runners.py)",
             "(uvloop/__init__.py)", "(asyncio/base_events.py)", "(asyncio/events.py)") + tuple(
    f"(click/{m}.py)" for m in ("core",))
