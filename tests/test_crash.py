"""A kill -9 of the server (issue 10 item 6): its environments die with it, and what a crash leaves behind never
holds up the next start by more than a second or two.

Needs cgroups (root on Linux); skipped, saying so, where the server runs without them."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.server import CGROUP_ROOT, GROUPS_RENAMED, create_python_function, make_zip, wait_until

FREEZER = CGROUP_ROOT  # v1's freezer groups, or v2's groups (tests/server.py)


def server_cgroups(pid: int) -> list[Path]:
    return list(FREEZER.glob(f"{pid}-*"))


def tasks_in(server_dirs: list[Path]) -> list[int]:
    pids: list[int] = []
    for server_dir in server_dirs:
        for procs in server_dir.glob("*/cgroup.procs"):
            try:
                pids += [int(x) for x in procs.read_text().split()]
            except OSError:
                pass
    return pids


def with_environments(fresh_server, data: Path, count: int):
    srv = fresh_server(data_dir=data)
    if not any("isolation: on  cgroups" in line for line in srv.output):
        pytest.skip("the server runs without cgroups here: " + "".join(l for l in srv.output if "cgroups" in l))
    lam = srv.client()
    for i in range(count):
        create_python_function(lam, f"f{i}", "def handler(e, c):\n    return 1\n")
        lam.invoke(FunctionName=f"f{i}")
    time.sleep(0.3)  # idle, so frozen
    dirs = server_cgroups(srv.proc.pid)
    assert len(tasks_in(dirs)) >= count
    return srv, dirs


def test_environments_die_with_their_server(fresh_server, tmp_path):
    srv, dirs = with_environments(fresh_server, tmp_path / "data", 12)
    srv.stop(signal.SIGKILL)  # the server alone: its fork servers see it go
    assert wait_until(lambda: not tasks_in(dirs), 5), tasks_in(dirs)


NODE = "exports.handler = async () => 1;\n"


def test_environments_from_pre_started_slots_die_with_their_server(fresh_server, tmp_path):
    """A Node.js environment made from a pre-started slot: its cgroups were renamed after the environment when it
    was assigned, and the fork server must still find them to thaw the frozen environment after the kill
    (before: it thawed the slot's old path, and the environment stayed frozen, alive, after its server died)."""
    srv, _ = with_environments(fresh_server, tmp_path / "data", 0)
    lam = srv.client()

    def create(name: str) -> None:
        lam.create_function(FunctionName=name, Runtime="nodejs20.x", Role="arn:aws:iam::000000000000:role/r",
                            Handler="index.handler", Code={"ZipFile": make_zip({"index.js": NODE})})

    def slots() -> set[str]:
        return {p.name for d in server_cgroups(srv.proc.pid) for p in d.glob("slot-*")}

    create("first")
    lam.invoke(FunctionName="first")  # the first cold start of its kind asks for slots
    assert wait_until(lambda: len(slots()) >= 2, 20), "the pool did not fill"
    time.sleep(0.3)
    waiting = slots()
    for name in ("second", "third"):
        create(name)
        lam.invoke(FunctionName=name)
    if GROUPS_RENAMED:  # v2 keeps a taken slot's group name
        assert len(waiting - slots()) >= 1, "no slot was taken"  # taken: renamed after its environment
    time.sleep(0.3)  # idle, so frozen
    dirs = server_cgroups(srv.proc.pid)
    srv.stop(signal.SIGKILL)
    assert wait_until(lambda: not tasks_in(dirs), 5), tasks_in(dirs)


def test_a_restart_after_a_crash_is_not_held_up(fresh_server, tmp_path):
    data = tmp_path / "data"
    srv, dirs = with_environments(fresh_server, data, 12)
    os.killpg(srv.proc.pid, signal.SIGKILL)  # the server and its fork servers: nothing cleans up
    srv.stop(signal.SIGKILL)
    assert tasks_in(dirs)  # left behind, frozen
    t0 = time.monotonic()
    again = fresh_server(data_dir=data)
    assert time.monotonic() - t0 < 4.5, "".join(again.output)
    assert wait_until(lambda: not tasks_in(dirs) and not any(d.exists() for d in dirs), 5)
    assert again.client().invoke(FunctionName="f0")["StatusCode"] == 200


def run_dir_of(pid: int) -> Path:
    """The server's run dir: the parent of the ``alive`` file it holds open."""
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.endswith("/alive"):
            return Path(target).parent
    raise AssertionError(f"server {pid} holds no run dir lock")


def test_run_dirs_of_dead_servers_are_removed_and_live_ones_kept(fresh_server, tmp_path):
    """A kill -9 leaves the server's run dir (jail roots, slot dirs, /etc copies) in the temp dir; the next start
    removes it, in the background, and never the run dir of a server that is still running."""
    live = fresh_server(data_dir=tmp_path / "live")
    live_dir = run_dir_of(live.proc.pid)
    dead = fresh_server(data_dir=tmp_path / "dead")
    dead_dir = run_dir_of(dead.proc.pid)
    os.killpg(dead.proc.pid, signal.SIGKILL)
    dead.stop(signal.SIGKILL)
    assert dead_dir.exists()
    fresh_server(data_dir=tmp_path / "next")
    assert wait_until(lambda: not dead_dir.exists(), 10), dead_dir
    assert live_dir.exists()
    assert live.client().list_functions()["Functions"] == []
