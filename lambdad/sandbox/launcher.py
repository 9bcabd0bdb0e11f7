"""The launcher: starts an environment's runtime process, contained as well as this machine allows.

Every environment is forked by a fork server ("zygote", ``forkserver.py``) that runs the function's interpreter
and has already imported the Python runtime; a cold start is a fork, not an interpreter start. The child then
takes these steps, in order (docs/security.md lists the same):

1. a new session; stdin from /dev/null; stdout and stderr to one pipe that the server reads into the log stream;
2. every other file descriptor closed; default signal dispositions;
3. it joins the environment's cgroups while still privileged, so no instruction of the function runs outside
   them (memory limit = MemorySize, a pids cap, the freezer, a CPU share);
4. it enters its jail (``jail.py``: namespaces, a private root with the code read-only at /var/task and a
   size-limited /tmp, an unprivileged uid, no_new_privs, a seccomp filter), when this machine allows it;
5. it gets exactly its environment variables — Lambda's and the function's, never the server's;
6. it runs the Python runtime in-process (or execs the runtime's program).

``Containment`` says which of these are active here; the server prints it at start and ``lambdad doctor`` too.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from typing import Mapping

from lambdad.runtimes.registry import RuntimeSpec
from lambdad.sandbox.cgroups import CgroupRoot, EnvCgroup
from lambdad.sandbox.zygote import SpawnError, Zygote

__all__ = ["Launcher", "LaunchedProcess", "Containment", "LaunchRequest", "SpawnError"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Containment:
    """Which protections the launcher applies on this machine."""

    cgroups: bool
    jail: Mapping[str, bool] = field(default_factory=dict)

    def describe(self) -> list[tuple[str, bool, str]]:
        rows = [
            ("clean environment (no server variables), closed fds, own session", True, "always"),
            ("cgroups: memory limit = MemorySize, pids cap, freezer, CPU share", self.cgroups,
             "needs root and the cgroup v1 memory, pids, freezer and cpu controllers"),
        ]
        for name, ok in self.jail.items():
            rows.append((name, ok, "needs root (CAP_SYS_ADMIN) and a kernel with namespaces and seccomp"))
        return rows


@dataclass(frozen=True)
class LaunchRequest:
    env_id: str
    runtime: RuntimeSpec
    environment: Mapping[str, str]
    memory_mb: int
    task_root: str  # the code tree on the host
    tmp_mb: int  # the size of /tmp (EphemeralStorage)
    root_dir: str  # an empty host directory the jail builds the environment's root in


@dataclass
class LaunchedProcess:
    pid: int
    output_fd: int  # read end of the stdout+stderr pipe, non-blocking
    cgroup: EnvCgroup | None
    exited: asyncio.Future[int]  # the exit status: code, or -signal


class Launcher:
    def __init__(self, cgroup_root: CgroupRoot | None, containment: Containment, *, jailed: bool = False,
                 cpu_proportional: bool = True) -> None:
        self._cgroups = cgroup_root
        self.containment = containment
        self.jailed = jailed
        self.cpu_proportional = cpu_proportional
        self._zygotes: dict[tuple[str, str], Zygote] = {}
        self._exits: dict[int, asyncio.Future[int]] = {}
        self._early_exits: dict[int, int] = {}  # exits heard before ``launch`` got to see the pid

    def _zygote(self, runtime: RuntimeSpec) -> Zygote:
        key = (runtime.executable, runtime.family)
        zygote = self._zygotes.get(key)
        if zygote is None:
            zygote = self._zygotes[key] = Zygote(runtime.executable, runtime.family, self._on_exit)
        return zygote

    def _on_exit(self, pid: int, status: int) -> None:
        future = self._exits.pop(pid, None)
        if future is None:
            self._early_exits[pid] = status
        elif not future.done():
            future.set_result(status)

    async def launch(self, request: LaunchRequest) -> LaunchedProcess:
        cgroup = None
        if self._cgroups is not None:
            cgroup = await asyncio.to_thread(self._cgroups.create, request.env_id, request.memory_mb)
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        try:
            spawn = {
                "env": dict(request.environment),
                "cgroup_procs": cgroup.procs_files() if cgroup is not None else [],
                "jail": self._jail_spec(request) if self.jailed else None,
            }
            pid = await self._zygote(request.runtime).spawn(spawn, write_fd)
        except BaseException:
            os.close(read_fd)
            if cgroup is not None:
                await asyncio.to_thread(cgroup.remove)
            raise
        finally:
            os.close(write_fd)
        os.set_blocking(read_fd, False)
        exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if pid in self._early_exits:
            exited.set_result(self._early_exits.pop(pid))
        else:
            self._exits[pid] = exited
        return LaunchedProcess(pid=pid, output_fd=read_fd, cgroup=cgroup, exited=exited)

    def _jail_spec(self, request: LaunchRequest) -> str:
        raise NotImplementedError

    async def aclose(self) -> None:
        await asyncio.gather(*(z.aclose() for z in self._zygotes.values()), return_exceptions=True)
        self._zygotes.clear()
        for future in self._exits.values():
            if not future.done():
                future.set_result(-9)
        self._exits.clear()
