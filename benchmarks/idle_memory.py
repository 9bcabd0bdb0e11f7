"""Private memory per idle warm Python environment, at many environments of one function (issue 21, item 5).

    python3 benchmarks/idle_memory.py [-k 500] [--json]       (bench.py calls ``idle_uss`` with its plan's k)

What is counted: an environment is every process in its cgroup (the runtime, and any process it or the sandbox
started), found through ``/proc/<pid>/cgroup``; its USS is the sum of its processes' Private_Clean + Private_Dirty
(``/proc/<pid>/smaps_rollup``): the pages that only it maps, which would be freed if it went. Pre-started slots
(cgroups named ``slot-*``: no function yet) and the fork server (no cgroup of an environment) are not environments
and are left out. Without an environment cgroup (a server that cannot make them) each process counts as one.

How: ``k`` concurrent invokes of a handler that sleeps until one moment shared by all of them, far enough ahead
that every invoke has its own environment by then; then the environments are left idle (and frozen) a second
before they are measured. Beside the figure: the USS of a bare ``python -I`` of the runtime's interpreter, idle,
and the average environment's private pages split by mapping (the interpreter's data segment, obmalloc arenas and
other anonymous mappings, the malloc heap, stacks, the rest), to show where they are.

``--pages`` (root: it reads ``/proc/<pid>/pagemap`` and ``/proc/kpagecount``) also compares one environment's private
pages with the fork server's pages at the same addresses, of which each is a copy: how many are still byte for byte
the same (written and restored: a reference taken and dropped), and how many 8-byte words differ in the others.
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness import RUNTIME, Connection, descendants, say, signed_invoke, uss_bytes

from tests.server import Server, create_python_function

UNTIL_CODE = ("import time\n\ndef handler(event, context):\n"
              "    time.sleep(max(0.0, event['until'] - time.time()))\n    return event\n")


def _environment_of(pid: int) -> str | None:
    """The lambdad cgroup ``pid`` is in (``/lambdad/<server>-<id>/<environment or slot-id>``), or None."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        path = line.split(":", 2)[2]
        if path.startswith("/lambdad/"):
            return path
    return None


def environments(server_pid: int) -> dict[str, list[int]]:
    """The server's environments (slots left out), each with all its processes."""
    out: dict[str, list[int]] = {}
    for pid in descendants(server_pid):
        group = _environment_of(pid)
        if group is None:
            cmdline = _cmdline(pid)
            if b"bootstrap.py" not in cmdline and b"forkserver.py" not in cmdline:
                continue
            if not _in_own_pid_namespace(pid):  # the fork server itself
                continue
            group = f"pid {pid}"
        if group.rsplit("/", 1)[-1].startswith("slot-"):
            continue
        out.setdefault(group, []).append(pid)
    return out


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _in_own_pid_namespace(pid: int) -> bool:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return len(line.split()) > 2
    except OSError:
        pass
    return False


def _kind(name: str, perms: str) -> str:
    if name == "[heap]":
        return "malloc heap"
    if name.startswith("[stack"):
        return "stack"
    if name == "":
        return "anonymous (obmalloc arenas, big allocations)"
    if "libpython" in name or name.endswith(("/python3", "python3.9", "python3.10", "python3.11", "python3.12",
                                            "python3.13")):
        return "interpreter data" if "w" in perms else "interpreter text"
    return "other files' data" if "w" in perms else "other files"


def private_by_kind(pid: int) -> Counter[str]:
    """Private (Clean + Dirty) bytes of ``pid`` by kind of mapping, from /proc/<pid>/smaps."""
    out: Counter[str] = Counter()
    kind = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if not fields[0].endswith(":"):
            kind = _kind(fields[5] if len(fields) > 5 else "", fields[1])
        elif fields[0] in ("Private_Clean:", "Private_Dirty:"):
            out[kind] += int(fields[1]) * 1024
    return out


def idle_uss(server: Server, port: int, python: str, k: int, function: str = "bench-idle",
             runtime: str = RUNTIME) -> dict[str, Any]:
    say(f"memory: {k} idle warm environments of one {runtime} function")
    create_python_function(server.client(), function, UNTIL_CODE, runtime=runtime, Timeout=900)
    server_pid = server.proc.pid  # type: ignore[union-attr]
    before = set(environments(server_pid))
    # every invoke holds its environment until the same moment: room for k cold starts on this machine first
    until = time.time() + 10.0 + 0.06 * k
    reqs = [signed_invoke(port, function, json.dumps({"until": until}).encode()) for _ in range(k)]
    errors: list[str] = []

    def one(req: bytes) -> None:
        conn = Connection(port)
        status, _, body = conn.roundtrip(req)
        if status != 200 or b"errorType" in body:
            errors.append(body.decode(errors="replace"))
        conn.close()

    threads = [threading.Thread(target=one, args=(r,)) for r in reqs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"idle environments: {len(errors)} invokes failed, the first: {errors[0]}")
    late = time.time() - until
    time.sleep(1.0)
    envs = {name: pids for name, pids in environments(server_pid).items() if name not in before}
    per_env: list[int] = []
    kinds: Counter[str] = Counter()
    processes = 0
    for pids in envs.values():
        total = 0
        for pid in pids:
            try:
                total += uss_bytes(pid)
                kinds.update(private_by_kind(pid))
            except OSError:
                continue
            processes += 1
        per_env.append(total)
    bare = subprocess.Popen([python, "-I", "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    time.sleep(0.5)
    bare_uss = uss_bytes(bare.pid)
    bare.communicate(b"")
    n = len(per_env)
    return {"asked": k, "envs": n, "processes": processes, "late_s": late,
            "uss_mb": sum(per_env) / n / 2**20 if n else float("nan"),
            "uss_max_mb": max(per_env) / 2**20 if n else float("nan"),
            "bare_mb": bare_uss / 2**20,
            "by_kind_mb": {kind: b / n / 2**20 for kind, b in kinds.most_common()} if n else {}}


PAGE = 4096


def _pagemap(pid: int, start: int, end: int) -> tuple[int, ...]:
    with open(f"/proc/{pid}/pagemap", "rb") as f:
        f.seek(start // PAGE * 8)
        data = f.read((end - start) // PAGE * 8)
    return struct.unpack(f"{len(data) // 8}Q", data)


def copied_pages(pid: int) -> dict[str, dict[str, int]]:
    """By kind of mapping: ``pid``'s private pages (present, mapped once), how many of them are byte for byte the
    fork server's page at the same address (its parent, of which the environment is a fork), and the 8-byte
    words that differ in the rest."""
    parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    out: dict[str, dict[str, int]] = {}
    with open(f"/proc/{pid}/mem", "rb") as mine, open(f"/proc/{parent}/mem", "rb") as theirs, \
            open("/proc/kpagecount", "rb") as counts:
        for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
            fields = line.split()
            if "w" not in fields[1]:
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            kind = out.setdefault(_kind(fields[5] if len(fields) > 5 else "", fields[1]),
                                  {"private": 0, "identical": 0, "words_changed": 0})
            entries = _pagemap(pid, start, end)
            try:
                parents = _pagemap(parent, start, end)
            except OSError:
                parents = (0,) * len(entries)
            for i, entry in enumerate(entries):
                if not entry >> 63:  # not present
                    continue
                counts.seek((entry & ((1 << 55) - 1)) * 8)
                if struct.unpack("Q", counts.read(8))[0] != 1:  # shared
                    continue
                kind["private"] += 1
                if i >= len(parents) or not parents[i] >> 63:
                    continue  # a page the fork server does not have: new
                address = start + i * PAGE
                mine.seek(address)
                theirs.seek(address)
                a, b = mine.read(PAGE), theirs.read(PAGE)
                changed = sum(a[j:j + 8] != b[j:j + 8] for j in range(0, PAGE, 8))
                kind["identical"] += changed == 0
                kind["words_changed"] += changed
    return {name: kind for name, kind in out.items() if kind["private"]}


def report(mem: dict[str, Any]) -> str:
    lines = [(f"USS per idle warm environment: {mem['uss_mb']:.2f} MB (max {mem['uss_max_mb']:.2f}) over "
              f"{mem['envs']} environments ({mem['asked']} asked; {mem['processes']} processes); a bare idle "
              f"python -I: {mem['bare_mb']:.2f} MB")]
    lines += [f"  {kind}: {mb:.2f} MB" for kind, mb in mem["by_kind_mb"].items()]
    if "pages" in mem:
        pages = mem["pages"]
        private = sum(kind["private"] for kind in pages.values())
        identical = sum(kind["identical"] for kind in pages.values())
        words = sum(kind["words_changed"] for kind in pages.values())
        lines.append(f"one environment's {private} private pages against the fork server's at the same addresses: "
                     f"{identical} ({identical / max(private, 1):.0%}) byte for byte the same, {words} 8-byte words "
                     f"({words * 8 / 1024:.0f} KB) differ in all")
        lines += [f"  {name}: {kind['private']} pages, {kind['identical']} the same, {kind['words_changed']} words "
                  f"differ" for name, kind in pages.items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", type=int, default=500, help="idle environments of one function (default 500)")
    parser.add_argument("--runtime", default=RUNTIME, help=f"the function's runtime (default {RUNTIME})")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--pages", action="store_true",
                        help="compare one environment's private pages with the fork server's (root)")
    args = parser.parse_args()
    from bench import runtime_python  # benchmarks/bench.py

    data_dir = Path(tempfile.mkdtemp(prefix="lambdad-idle-memory-"))
    server = Server(data_dir, env={"LAMBDAD_IDLE_TIMEOUT_SECONDS": "3600", "PYTHONPATH": str(REPO)})
    try:
        server.start()
        mem = idle_uss(server, server.port, runtime_python(args.runtime), args.k, runtime=args.runtime)
        if args.pages:
            env = next(iter(environments(server.proc.pid).values()))  # type: ignore[union-attr]
            mem["pages"] = copied_pages(env[0])
    finally:
        if server.proc is not None:
            server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    print(json.dumps(mem, indent=2) if args.json else report(mem))


if __name__ == "__main__":
    main()
