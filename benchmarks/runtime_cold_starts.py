"""Cold starts of the Node.js and custom runtimes, each beside a floor measured in the same run, with the prewarm
pool on and off.

    python3 benchmarks/runtime_cold_starts.py [--samples N] [--memory MB] [--interval S] [--ric]

Starts its own ``lambdad serve`` twice, one after the other (port 0, temp data dir, SIGTERM at the end): with the
prewarm pool on (``LAMBDAD_PREWARM_POOL_SIZE=2``, the default) and off (``0``). For each runtime it creates a new
function per sample and times, client-side, its first invoke (boto3; its own ~1 ms per call is noise at this
scale), interleaved with a fresh start of the program that runtime runs, as the floor; ``--interval`` seconds
between samples (default 1) give the pool time to refill, as cold starts spread over time would (a burst of cold
starts beyond the pool's size starts the rest as before). The floors:

- python3.11 ``return event`` (for reference)     floor: a fresh ``python3.11 -c "import json"``
- nodejs20.x ``async (event) => event``             floor: a fresh ``node -e 0`` (a clean environment)
- provided.al2023, a sh + curl ``bootstrap``        floor: a fresh ``sh -c 'curl --version'``
- provided.al2023, awslambdaric from PyPI (--ric)   floor: a fresh ``/usr/bin/python3 -c "import awslambdaric"``

The server-reported Init Duration (fork, jail, exec, the runtime's own start, the handler's import; with a slot:
its assignment, the rest of the runtime's start, the handler's import) is printed beside the client-side figure,
and the private memory (USS) of the waiting slots at the end of the pooled run. Nothing is asserted: machines are
noisy; compare the ratios.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.server import ROLE, Server, make_zip  # noqa: E402
from tests.test_custom_runtime import SHELL_BOOTSTRAP  # noqa: E402
from tests.test_custom_runtime import ric_zip as shared_ric_zip  # noqa: E402

NODE_CODE = {"index.mjs": "export const handler = async (event) => event;\n"}
PYTHON_CODE = {"app.py": "def handler(event, context):\n    return event\n"}


def ric_zip(tree: Path) -> bytes:
    return shared_ric_zip(tree, app=PYTHON_CODE["app.py"], python="/usr/bin/python3")


def measure(server: Server, label: str, runtime: str, handler: str, code: bytes, floor: list[str], samples: int,
            memory: int, interval: float) -> dict[str, list[float]]:
    print(f"[cold] {label}: {samples} new functions vs {samples} x {' '.join(floor)}", file=sys.stderr, flush=True)
    lam = server.client()
    out: dict[str, list[float]] = {"client": [], "init": [], "floor": []}
    for i in range(samples + 1):  # sample 0 warms the page cache and the server's code paths; it is dropped
        time.sleep(interval)
        name = f"cold-{re.sub(r'[^a-z0-9]', '-', label)}-{i}"
        lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler, Code={"ZipFile": code},
                            MemorySize=memory)
        t0 = time.perf_counter()
        resp = lam.invoke(FunctionName=name, Payload=b'{"hello": "world"}', LogType="Tail")
        elapsed = (time.perf_counter() - t0) * 1000
        body = resp["Payload"].read()
        if resp.get("FunctionError"):
            raise SystemExit(f"{label}: the function failed: {body[:500]!r}")
        tail = base64.b64decode(resp["LogResult"]).decode()
        m = re.search(r"Init Duration: ([\d.]+) ms", tail)
        t0 = time.perf_counter()
        subprocess.run(floor, check=True, stdout=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin"})
        floor_ms = (time.perf_counter() - t0) * 1000
        if i:
            out["client"].append(elapsed)
            out["init"].append(float(m.group(1)) if m else float("nan"))
            out["floor"].append(floor_ms)
        lam.delete_function(FunctionName=name)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--memory", type=int, default=128, help="MemorySize of the functions (default 128)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between samples (default 1)")
    parser.add_argument("--ric", action="store_true", help="also awslambdaric (pip-installs it for /usr/bin/python3)")
    args = parser.parse_args()

    node = shutil.which("node")
    cases = [("python3.11", "python3.11", "app.handler", make_zip(PYTHON_CODE),
              [shutil.which("python3.11") or sys.executable, "-c", "import json"])]
    if node:
        cases.append(("nodejs20.x", "nodejs20.x", "index.handler", make_zip(NODE_CODE), [node, "-e", "0"]))
    if shutil.which("curl"):
        cases.append(("provided sh+curl", "provided.al2023", "function.handler",
                      make_zip({"bootstrap": SHELL_BOOTSTRAP}, {"bootstrap": 0o755}), ["sh", "-c", "curl --version"]))
    tmp = Path(tempfile.mkdtemp(prefix="lambdad-cold-"))
    if args.ric:
        tree = tmp / "ric"
        subprocess.run(["/usr/bin/python3", "-m", "pip", "install", "--quiet", "--target", str(tree), "awslambdaric"],
                       check=True)
        cases.append(("provided awslambdaric", "provided.al2023", "app.handler", ric_zip(tree),
                      ["/usr/bin/python3", "-c", f"import sys; sys.path.insert(0, {str(tree)!r}); import awslambdaric.bootstrap"]))
    results: dict[str, dict[str, dict[str, list[float]]]] = {}
    slots: dict[str, float] = {}
    try:
        for pool, size in (("on", "2"), ("off", "0")):
            server = Server(tmp / f"data-{pool}", env={"LAMBDAD_IDLE_TIMEOUT_SECONDS": "3600",
                                                      "LAMBDAD_PREWARM_POOL_SIZE": size}).start()
            try:
                for label, runtime, handler, code, floor in cases:
                    print(f"[pool {pool}]", end=" ", file=sys.stderr)
                    results.setdefault(label, {})[pool] = measure(server, label, runtime, handler, code, floor,
                                                                  args.samples, args.memory, args.interval)
                if pool == "on":
                    time.sleep(2)  # the last refill
                    slots = slot_uss_mb(server)
            finally:
                server.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"cold starts, {args.samples} new functions each, MemorySize {args.memory} MB, {args.interval} s apart, "
          "medians (p90); prewarm pool on | off:")
    print("| runtime | first invoke, pool on | Init Duration, pool on | first invoke, pool off | "
          "Init Duration, pool off | floor | first invoke / floor, on | off |")
    print("|---|---|---|---|---|---|---|---|")
    for label, by_pool in results.items():
        on, off = (_summary(by_pool[pool]) for pool in ("on", "off"))
        floor = statistics.median(by_pool["on"]["floor"] + by_pool["off"]["floor"])
        print(f"| {label} | {on['client']} | {on['init']} | {off['client']} | {off['init']} | {floor:.1f} ms "
              f"| {on['median_client'] / floor:.2f}× | {off['median_client'] / floor:.2f}× |")
    for kind, uss in slots.items():
        print(f"USS of a waiting slot, {kind}: {uss:.1f} MB")
    print(json.dumps(results), file=sys.stderr)


def _summary(r: dict[str, list[float]]) -> dict:
    med = {k: statistics.median(v) for k, v in r.items()}
    p90 = {k: sorted(v)[int(0.9 * (len(v) - 1))] for k, v in r.items()}
    return {"client": f"{med['client']:.1f} ms ({p90['client']:.1f})",
            "init": f"{med['init']:.1f} ms ({p90['init']:.1f})", "median_client": med["client"]}


def slot_uss_mb(server: Server) -> dict[str, float]:
    """Mean USS (Private_Clean + Private_Dirty) of the server's waiting slots, per kind (their program)."""
    found: dict[str, list[float]] = {}
    for group in Path("/sys/fs/cgroup/memory/lambdad").glob(f"{server.proc.pid}-*/slot-*"):
        for pid in (group / "cgroup.procs").read_text().split():
            try:
                kind = "Node.js" if b"node" in Path(f"/proc/{pid}/cmdline").read_bytes() else "custom runtime"
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            except OSError:
                continue
            kb = sum(int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Private_"))
            found.setdefault(kind, []).append(kb / 1024)
    return {kind: statistics.mean(values) for kind, values in found.items()}


if __name__ == "__main__":
    main()
