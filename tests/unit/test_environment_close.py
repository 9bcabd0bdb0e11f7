"""An environment closed while it starts (sandbox/environment.py), or whose cold start's caller is cancelled (the
pool's ``acquire``): whatever its launch brings up is ended once the launch is over, and nothing of it outlives
``aclose``. Driven through the launcher seam (``EnvironmentLauncher``,
a Protocol) by a launcher whose launch waits until the test lets it go and then starts a real process."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from typing import Callable

import pytest

from lambdad.functions.model import FunctionConfig
from lambdad.runtimes.registry import RuntimeRegistry
from lambdad.sandbox.environment import Environment, EnvironmentSpec, EnvState
from lambdad.sandbox.launcher import LaunchedProcess, LaunchRequest
from lambdad.sandbox.pool import EnvironmentPool

CONFIG = FunctionConfig(name="f", version="1", runtime="python3.11", handler="app.handler", role="r",
                        code_sha256="", code_hash="", code_size=0, last_modified="", revision_id="rev")


class Sink:
    congested = False

    def emit(self, group: str, stream: str, message: str, timestamp_ms: int | None = None) -> None:
        pass

    def when_drained(self, callback: Callable[[], None]) -> None:
        callback()


class GatedLauncher:
    """Launches ``sleep 60`` in a process group of its own (as the fork server's children are), once ``go`` is
    set; ``launching`` is set when a launch has begun."""

    jailed = False
    cpu_proportional = False
    private_network = False
    network = None

    def __init__(self) -> None:
        self.launching = asyncio.Event()
        self.go = asyncio.Event()
        self.procs: list[subprocess.Popen[bytes]] = []

    async def launch(self, request: LaunchRequest) -> LaunchedProcess:
        self.launching.set()
        await self.go.wait()
        read_fd, write_fd = os.pipe()
        proc = subprocess.Popen(["sleep", "60"], stdout=write_fd, stderr=write_fd, start_new_session=True)
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        self.procs.append(proc)
        exited = asyncio.ensure_future(asyncio.to_thread(proc.wait))
        return LaunchedProcess(pid=proc.pid, output_fd=read_fd, cgroup=None, exited=exited)

    def reap(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def made_spec(tmp_path: Path) -> EnvironmentSpec:
    return EnvironmentSpec(config=CONFIG, runtime=RuntimeRegistry().get("python3.11"), task_root=str(tmp_path),
                           runtime_label="python:3.11", region="us-east-1", account_id="000000000000")


def environment(tmp_path: Path, launcher: GatedLauncher) -> Environment:
    return Environment(made_spec(tmp_path), launcher, Sink(), str(tmp_path / "run"), lambda env: None)


async def _close_during_launch(tmp_path: Path, launcher: GatedLauncher, cancel_start: bool) -> tuple[Environment, bool]:
    env = environment(tmp_path, launcher)
    starting = asyncio.get_running_loop().create_task(env.start())
    try:
        await asyncio.wait_for(launcher.launching.wait(), 5)
        if cancel_start:
            starting.cancel()  # as an acquire cancelled during its cold start
        closing = asyncio.get_running_loop().create_task(env.aclose())
        await asyncio.sleep(0.05)
        launcher.go.set()  # the launch finishes after the close was asked for
        await asyncio.wait_for(closing, 5)
        ended = bool(launcher.procs) and launcher.procs[0].poll() is not None
        await asyncio.gather(starting, return_exceptions=True)
        return env, ended
    finally:
        launcher.reap()  # before the loop ends: it waits for the thread waiting for the process


@pytest.mark.parametrize("cancel_start", [False, True], ids=["close", "cancel-then-close"])
def test_a_close_during_the_launch_ends_the_launched_process(tmp_path: Path, cancel_start: bool) -> None:
    launcher = GatedLauncher()
    try:
        env, ended = asyncio.run(_close_during_launch(tmp_path, launcher, cancel_start))
        # not interrupted: a fork server's spawn cancelled mid-flight leaves a process nobody knows of
        assert launcher.procs, "the launch was interrupted"
        assert ended, "aclose returned with the launched process still running"
        assert env.state is EnvState.DEAD
        assert not (tmp_path / "run" / env.id).exists()
    finally:
        launcher.reap()


def test_a_close_before_the_launch_launches_nothing(tmp_path: Path) -> None:
    launcher = GatedLauncher()

    async def run() -> None:
        launcher.go.set()
        env = environment(tmp_path, launcher)
        await env.aclose()
        try:
            with pytest.raises(RuntimeError, match="closed"):
                await env.start()
        finally:
            launcher.reap()

    try:
        asyncio.run(run())
        assert not launcher.procs
    finally:
        launcher.reap()


def test_an_acquire_cancelled_during_its_launch_leaves_no_process(tmp_path: Path) -> None:
    """The pool and a real environment together: the caller of a cold start goes away during the launch; the
    launch goes on, and once it is over the process it started is ended and the pool counts nothing."""
    launcher = GatedLauncher()

    async def run() -> None:
        made: list[Environment] = []

        def make(spec: EnvironmentSpec, on_dead: Callable[[Environment], None]) -> Environment:
            made.append(Environment(spec, launcher, Sink(), str(tmp_path / "run"), on_dead))
            return made[-1]

        pool = EnvironmentPool(make, account_limit=1, idle_timeout=60)
        try:
            acquiring = asyncio.get_running_loop().create_task(pool.acquire(made_spec(tmp_path)))
            await asyncio.wait_for(launcher.launching.wait(), 5)
            acquiring.cancel()
            with pytest.raises(asyncio.CancelledError):
                await acquiring
            assert pool.in_use == 0 and pool.unreserved_in_use == 0 and pool.environment_count == 0
            launcher.go.set()
            for _ in range(100):
                if launcher.procs and launcher.procs[0].poll() is not None:
                    break
                await asyncio.sleep(0.05)
            assert launcher.procs, "the launch was interrupted"  # see test_a_close_during_the_launch_...
            assert launcher.procs[0].poll() is not None, "the launched process outlived its start"
            assert made[0].state is EnvState.DEAD
        finally:
            await pool.aclose()
            launcher.reap()

    try:
        asyncio.run(run())
    finally:
        launcher.reap()
