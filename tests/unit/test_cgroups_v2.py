"""The cgroup v2 groups (sandbox/cgroups.py) on a real v2 hierarchy. This machine is a hybrid host: its memory and
pids controllers are v1's, and its v2 hierarchy (/sys/fs/cgroup/unified) offers none, but it has v2's core files —
cgroup.procs, cgroup.freeze, cgroup.kill, cgroup.events — which the groups' freezing, killing, renaming, removal
and the sweep of a dead server's groups use. Those run here; the memory, pids and cpu files are exercised where a
v2 host offers the controllers (the server then chooses v2 by itself). Needs root."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from lambdad.sandbox.cgroups import CgroupV2Root, EnvCgroupV2, sweep_stale_v2

UNIFIED = Path("/sys/fs/cgroup/unified")
if Path("/sys/fs/cgroup/cgroup.controllers").exists():
    UNIFIED = Path("/sys/fs/cgroup")  # a v2-only host

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not (UNIFIED / "cgroup.freeze").parent.joinpath("cgroup.procs").exists()
    or not os.access(UNIFIED, os.W_OK),
    reason="needs root and a writable cgroup v2 hierarchy (/sys/fs/cgroup/unified or /sys/fs/cgroup)")


def wait(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@pytest.fixture
def root():
    base = UNIFIED / f"lambdad-test-{uuid.uuid4().hex[:8]}"
    made = CgroupV2Root.make(base, "unit", frozenset())  # no controllers: the core files only
    yield made
    made.remove()
    base.rmdir()


def sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "60"])


def state(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("State:"):
            return line.split()[1]
    return "?"


def test_an_environment_group_holds_freezes_thaws_and_kills_its_process(root) -> None:
    group = root.create("env1", 128)
    proc = sleeper()
    try:
        group.add(proc.pid)
        assert group.pids() == [proc.pid]
        group.freeze()
        assert wait(group.frozen)
        group.thaw()
        assert wait(lambda: not group.frozen())
        group.rename("env1-renamed")  # v2 renames no group (EPERM): a slot's group keeps its name, and its process
        assert group.paths["unified"].name == "env1" and group.pids() == [proc.pid]
        group.freeze()
        group.kill_all()  # frozen or not, cgroup.kill takes everything
        assert proc.wait(5) == -9
        group.remove()
        assert not group.paths["unified"].exists()
    finally:
        proc.kill()
        proc.wait()


def test_remove_kills_what_is_left_and_is_idempotent(root) -> None:
    group = root.create("env2", 128)
    procs = [sleeper() for _ in range(3)]
    for proc in procs:
        group.add(proc.pid)
    group.remove()
    assert [p.wait(5) for p in procs] == [-9, -9, -9]
    group.remove()
    assert group.peak_memory_bytes() == 0 and not group.oom_killed()  # no memory controller here: nothing to say


def test_the_groups_of_a_dead_server_are_swept(root) -> None:
    base = root.path.parent
    dead = base / "999999999-gone"  # no such pid: a server killed with kill -9
    dead.mkdir()
    (dead / "env").mkdir()
    proc = sleeper()
    try:
        (dead / "env" / "cgroup.procs").write_text(str(proc.pid))
        sweep_stale_v2(base)
        assert proc.wait(5) == -9
        assert not dead.exists()
        assert root.path.exists()  # a live server's groups stay
    finally:
        proc.kill()
        proc.wait()


def test_cpu_usage_is_the_kernels_count_for_the_group(root) -> None:
    """``cpu.stat``'s usage_usec, a core file of every v2 group: what the pacer (sandbox/pacing.py) charges."""
    group = root.create("env-cpu", 128)
    before = group.cpu_usage_ns()
    assert before == 0
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.2: pass"
    proc = subprocess.Popen(["python3", "-c", burn])
    try:
        group.add(proc.pid)
        assert proc.wait(10) == 0
        used = group.cpu_usage_ns()
        assert used is not None and used >= 0.15e9, used  # the loop's 0.2 s, less what ran before it joined
    finally:
        proc.kill()
        proc.wait()
        group.remove()
