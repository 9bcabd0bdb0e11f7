"""Cluster mode on this machine: the routing hop, and throughput with 1, 2 and 4 nodes (docs/cluster.md).

Needs PostgreSQL (127.0.0.1:5432) and NATS with JetStream (127.0.0.1:4222); every run uses a database and a
cluster name of its own and removes them after.

1. **Routing hop**: warm p50 of sequential invokes sent to the node that holds the warm environment (no hop)
   against the same invokes sent to another node, which forwards each to it over NATS (one hop). Printed as a
   ratio, both measured in the same run with the same client.
2. **Throughput** with 1, 2 and 4 nodes: the same client processes (``--procs`` × ``--conns`` keep-alive
   connections, each process talking to one node in turn) for ``--seconds`` after a warm-up, against an echo
   function; beside it the floor: one embedded node (SQLite, no NATS) with the same clients. On a machine with
   fewer cores than nodes + clients the figure stops growing where the cores run out; the machine's core count
   is printed with it.
3. **Throughput with a CPU budget per node** (``--node-cpu``, a fraction of one core; 0.25 by default): the same,
   with each node's server process held to that much CPU by a cgroup CPU quota (v1 ``cpu`` controller or v2
   ``cpu.max``; root only, else skipped and said so), as if each node had a machine of its own that small. This is
   what shows whether throughput grows with nodes on a machine with fewer cores than nodes + clients +
   PostgreSQL + NATS: the node's event loop is the ceiling the issue names, and the budget makes it the
   bottleneck rather than the shared cores. The floor is one embedded node on the same budget.

    python3 benchmarks/cluster.py [--seconds 5] [--procs 4] [--conns 2] [--latency-n 500] [--node-cpu 0.25]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness import (  # noqa: E402
    ECHO_CODE, IDLE_TIMEOUT, PRESIGNED_BATCH, RUNTIME, WARM_MEMORY_MB, _tput_worker, pct, say, sequential,
    signed_invoke)
from lambdad.cluster.routing import home_of  # noqa: E402
from tests.server import Server, create_python_function  # noqa: E402
from tests.services import NATS, nats_cluster_name, postgres_database  # noqa: E402

FUNCTION = "bench-echo"


CPU_V1 = Path("/sys/fs/cgroup/cpu")
CPU_V2 = Path("/sys/fs/cgroup")


def cpu_budget_available() -> str | None:
    """None when a node's server process can be given a CPU quota here, else why not."""
    if os.geteuid() != 0:
        return "not root"
    if (CPU_V1 / "cgroup.procs").exists() or "cpu" in _read(CPU_V2 / "cgroup.subtree_control").split():
        return None
    return "no cgroup cpu controller (v1 cpu, or cpu enabled in the v2 root's subtree_control)"


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


@contextlib.contextmanager
def cpu_budget(pid: int, fraction: float) -> Iterator[None]:
    """Hold process ``pid`` (all its threads) to ``fraction`` of one core while inside."""
    period = 100_000
    quota = max(1000, int(period * fraction))
    v1 = (CPU_V1 / "cgroup.procs").exists()
    group = (CPU_V1 if v1 else CPU_V2) / f"lambdad-bench-{pid}"
    group.mkdir()
    try:
        if v1:
            (group / "cpu.cfs_period_us").write_text(str(period))
            (group / "cpu.cfs_quota_us").write_text(str(quota))
        else:
            (group / "cpu.max").write_text(f"{quota} {period}")
        (group / "cgroup.procs").write_text(str(pid))
        yield
    finally:
        with contextlib.suppress(OSError):
            ((CPU_V1 if v1 else CPU_V2) / "cgroup.procs").write_text(str(pid))
        for _ in range(50):
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)


@contextlib.contextmanager
def nodes(root: Path, count: int, clustered: bool = True, node_cpu: float | None = None) -> Iterator[list[Server]]:
    """``count`` nodes of a new cluster (or one embedded node), each held to ``node_cpu`` of a core when given,
    stopped afterwards."""
    with contextlib.ExitStack() as stack:
        env = {"LAMBDAD_IDLE_TIMEOUT_SECONDS": IDLE_TIMEOUT, "PYTHONPATH": str(REPO)}
        if clustered:
            env.update(LAMBDAD_DATABASE_URL=stack.enter_context(postgres_database()), LAMBDAD_NATS_URL=NATS,
                       LAMBDAD_CLUSTER_NAME=stack.enter_context(nats_cluster_name()))
        started: list[Server] = []
        try:
            for i in range(count):
                started.append(Server(root / f"node{i}", env=env).start())
                if node_cpu is not None:
                    assert started[-1].proc is not None
                    stack.enter_context(cpu_budget(started[-1].proc.pid, node_cpu))
            yield started
        finally:
            for server in started:
                server.stop()


def node_ids(servers: list[Server]) -> dict[str, Server]:
    """node id -> server, from each node's own log line ``cluster NAME: node ID at ENDPOINT``."""
    ids = {}
    for server in servers:
        deadline = time.time() + 10
        while time.time() < deadline:
            m = next((re.search(r": node (\w+) at (\S+)", line) for line in server.output
                      if re.search(r": node (\w+) at (\S+)", line)), None)
            if m:
                ids[m.group(1)] = server
                break
            time.sleep(0.1)
    return ids


def routing_hop(root: Path, n: int) -> dict[str, float]:
    with nodes(root, 2) as servers:
        create_python_function(servers[0].client(), FUNCTION, ECHO_CODE, runtime=RUNTIME, MemorySize=WARM_MEMORY_MB)
        ids = node_ids(servers)
        time.sleep(3)  # each node has seen the other's heartbeat
        home = ids[home_of(list(ids), FUNCTION, "$LATEST")]
        other = next(s for s in servers if s is not home)
        local = sequential(home.port, FUNCTION, n)
        remote = sequential(other.port, FUNCTION, n)
        local2 = sequential(home.port, FUNCTION, n)  # again: drift over the run hits both sides
        local_all = local + local2
        return {"local_p50": pct(local_all, 50), "remote_p50": pct(remote, 50), "local_p99": pct(local_all, 99),
                "remote_p99": pct(remote, 99)}


def throughput(servers: list[Server], seconds: float, procs: int, conns: int, warmup: float) -> float:
    create_python_function(servers[0].client(), FUNCTION, ECHO_CODE, runtime=RUNTIME, MemorySize=WARM_MEMORY_MB)
    time.sleep(1.0)  # the others have heard of it
    ctx = mp.get_context("fork")
    results: Any = ctx.Queue()
    t_start = time.monotonic() + 0.5 + warmup
    t_end = t_start + seconds
    workers = []
    cpus = set(range(os.cpu_count() or 1))
    for i in range(procs):
        port = servers[i % len(servers)].port
        requests = [signed_invoke(port, FUNCTION) for _ in range(PRESIGNED_BATCH)]
        p = ctx.Process(target=_tput_worker, args=(port, requests, conns, t_start, t_end, cpus, results))
        p.start()
        workers.append(p)
    got = [results.get(timeout=seconds + warmup + 60) for _ in workers]
    for p in workers:
        p.join(10)
    errors = sum(g[1] for g in got)
    if errors:
        raise RuntimeError(f"{errors} invokes did not answer 200")
    return sum(g[0] for g in got) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument("--conns", type=int, default=2)
    parser.add_argument("--latency-n", type=int, default=500)
    parser.add_argument("--node-cpu", type=float, default=0.25,
                        help="the CPU budget of each node's server process in the third part, in cores (0: skip it)")
    args = parser.parse_args()
    no_budget = cpu_budget_available() if args.node_cpu > 0 else "--node-cpu 0"
    with tempfile.TemporaryDirectory(prefix="lambdad-cluster-bench-") as tmp:
        root = Path(tmp)
        say("routing hop: 2 nodes")
        hop = routing_hop(root / "hop", args.latency_n)
        rates = {}
        with nodes(root / "embedded", 1, clustered=False) as servers:
            say("throughput: 1 embedded node (the floor)")
            rates["embedded"] = throughput(servers, args.seconds, args.procs, args.conns, args.warmup)
        for count in (1, 2, 4):
            with nodes(root / f"n{count}", count) as servers:
                say(f"throughput: {count} cluster node{'s' if count > 1 else ''}")
                rates[str(count)] = throughput(servers, args.seconds, args.procs, args.conns, args.warmup)
        budget = {}
        if no_budget is None:
            with nodes(root / "embedded-budget", 1, clustered=False, node_cpu=args.node_cpu) as servers:
                say(f"throughput: 1 embedded node held to {args.node_cpu} core (the floor)")
                budget["embedded"] = throughput(servers, args.seconds, args.procs, args.conns, args.warmup)
            for count in (1, 2, 4):
                with nodes(root / f"b{count}", count, node_cpu=args.node_cpu) as servers:
                    say(f"throughput: {count} cluster node{'s' if count > 1 else ''} held to {args.node_cpu} core each")
                    budget[str(count)] = throughput(servers, args.seconds, args.procs, args.conns, args.warmup)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    print(f"lambdad cluster benchmark at {commit}, {os.cpu_count()} cores, "
          f"{args.procs} client processes x {args.conns} connections, {args.seconds:.0f} s windows")
    print(f"routing hop: warm p50 {hop['remote_p50']:.3f} ms through another node vs {hop['local_p50']:.3f} ms "
          f"at the warm node = {hop['remote_p50'] / hop['local_p50']:.2f}x (p99 {hop['remote_p99']:.3f} vs "
          f"{hop['local_p99']:.3f} ms)")
    floor = rates["embedded"]
    print(f"throughput, embedded node (floor): {floor:,.0f} invokes/s")
    for count in ("1", "2", "4"):
        print(f"throughput, {count} cluster node{'s' if count != '1' else ''}: {rates[count]:,.0f} invokes/s "
              f"= {rates[count] / floor:.2f}x the embedded node, {rates[count] / rates['1']:.2f}x one cluster node")
    if no_budget is not None:
        print(f"throughput with a CPU budget per node: skipped ({no_budget})")
        return
    floor = budget["embedded"]
    print(f"throughput, embedded node held to {args.node_cpu} core (floor): {floor:,.0f} invokes/s")
    for count in ("1", "2", "4"):
        print(f"throughput, {count} cluster node{'s' if count != '1' else ''} held to {args.node_cpu} core each: "
              f"{budget[count]:,.0f} invokes/s = {budget[count] / floor:.2f}x the embedded node, "
              f"{budget[count] / budget['1']:.2f}x one cluster node")


if __name__ == "__main__":
    main()
