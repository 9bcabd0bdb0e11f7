"""The launcher: starts an environment's runtime process, contained as well as this machine allows.

Steps, in order (docs/security.md lists the same):
1. a fresh environment built from nothing: only the variables Lambda defines and the function's own — never the
   server's (its credentials and settings stay out);
2. stdin from /dev/null; stdout and stderr to one pipe that the platform reads into the log stream;
3. every file descriptor of the server closed (close_fds), a new session and process group;
4. the working directory is the function's read-only code tree;
5. the process is moved into the environment's cgroups (memory limit, pids cap, freezer) when cgroups are available.

Isolation with namespaces, a dropped uid, seccomp and a private /tmp mount comes with the isolation work and is not
here yet; ``Containment`` says what is active.
"""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
from dataclasses import dataclass
from typing import Mapping, Sequence

from lambdad.sandbox.cgroups import CgroupRoot, EnvCgroup

__all__ = ["Launcher", "LaunchedProcess", "Containment"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Containment:
    """Which protections the launcher applies on this machine."""

    cgroups: bool

    def describe(self) -> list[tuple[str, bool, str]]:
        return [
            ("clean environment (no server variables)", True, "always"),
            ("closed file descriptors, own process group", True, "always"),
            ("read-only code tree", True, "always"),
            ("cgroup memory limit = MemorySize, pids cap, freezer", self.cgroups,
             "needs root and cgroup v1 memory/pids/freezer controllers"),
        ]


@dataclass
class LaunchedProcess:
    pid: int
    output_fd: int  # read end of the stdout+stderr pipe, non-blocking
    popen: subprocess.Popen[bytes]
    cgroup: EnvCgroup | None


class Launcher:
    def __init__(self, cgroup_root: CgroupRoot | None) -> None:
        self._cgroups = cgroup_root
        self.containment = Containment(cgroups=cgroup_root is not None)

    def launch(
        self,
        env_id: str,
        command: Sequence[str],
        environment: Mapping[str, str],
        cwd: str,
        memory_mb: int,
    ) -> LaunchedProcess:
        cgroup = self._cgroups.create(env_id, memory_mb) if self._cgroups is not None else None
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        try:
            popen = subprocess.Popen(
                list(command),
                env=dict(environment),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=write_fd,
                stderr=write_fd,
                close_fds=True,
                start_new_session=True,
            )
        except BaseException:
            os.close(read_fd)
            os.close(write_fd)
            if cgroup is not None:
                cgroup.remove()
            raise
        os.close(write_fd)
        flags = fcntl.fcntl(read_fd, fcntl.F_GETFL)
        fcntl.fcntl(read_fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        if cgroup is not None:
            try:
                cgroup.add(popen.pid)
            except OSError as exc:
                log.warning("could not move environment %s into its cgroup: %s", env_id, exc)
        return LaunchedProcess(pid=popen.pid, output_fd=read_fd, popen=popen, cgroup=cgroup)
