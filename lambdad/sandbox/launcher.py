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
6. it runs the Python runtime in-process, or execs the runtime's program: node with our Node runtime (shown
   read-only at /var/runtime), or a custom runtime's own ``bootstrap``. A failed exec (no bootstrap, not
   executable, not a program) comes back through a close-on-exec pipe, in Lambda's words, as
   ``LaunchedProcess.exec_status_fd``.

``Containment`` says which of these are active here; the server prints it at start and ``lambdad doctor`` too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Mapping

from lambdad.runtimes.registry import RUNTIME_DIR, RuntimeSpec
from lambdad.runtimes.sdk import PythonSdk
from lambdad.sandbox.cgroups import CgroupRoot, EnvCgroup
from lambdad.sandbox.jail import DEFAULT_RO_BINDS, JailSpec
from lambdad.sandbox.zygote import SpawnError, Zygote

__all__ = ["Launcher", "LaunchedProcess", "Containment", "LaunchRequest", "SpawnError", "write_hosts_file"]

log = logging.getLogger(__name__)

# The unprivileged ids every jailed environment runs as (no user of the host has them; nothing on the host is
# owned by them). Environments cannot see each other (separate PID and mount namespaces), so one pair serves all.
SANDBOX_UID = 64993
SANDBOX_GID = 64993


@dataclass(frozen=True)
class Containment:
    """Which protections the launcher applies on this machine."""

    cgroups: bool
    jail: Mapping[str, bool | str] = field(default_factory=dict)  # probe results: a bool per protection, reasons

    def describe(self) -> list[tuple[str, bool, str]]:
        rows = [
            ("clean environment (no server variables), closed fds, own session", True, "always"),
            ("cgroups: memory limit = MemorySize, pids cap, freezer, CPU share", self.cgroups,
             "needs root and the cgroup v1 memory, pids, freezer and cpu controllers"),
        ]
        for name, what in JAIL_PROTECTIONS.items():
            ok = bool(self.jail.get(name))
            why = str(self.jail.get(f"{name}_error") or self.jail.get("error")
                      or "needs root (CAP_SYS_ADMIN) and kernel support")
            rows.append((what, ok, why))
        return rows

    @property
    def jailed(self) -> bool:
        """Every jail protection works: environments are jailed (otherwise none is, and the log says why)."""
        return all(self.jail.get(name) for name in JAIL_PROTECTIONS)


JAIL_PROTECTIONS = {
    "namespaces": "mount, UTS and IPC namespaces",
    "pid_namespace": "PID namespace (a function sees only its own processes)",
    "private_root": "private root: code read-only at /var/task, size-limited /tmp, nothing else of the host",
    "proc_and_dev": "private /proc and minimal /dev",
    "uid_drop": "unprivileged uid/gid, no capabilities",
    "seccomp": "no_new_privs and a seccomp filter (ptrace, mount, bpf, kexec, modules, ... refused)",
}


def probe_jail() -> dict[str, bool | str]:
    """Which jail protections work on this machine, tried in a fresh single-threaded process (not a fork of
    this multi-threaded server). Blocking: call from a thread."""
    code = (
        "import importlib.util, json, sys\n"
        "spec = importlib.util.spec_from_file_location('jail', sys.argv[1])\n"
        "jail = sys.modules['jail'] = importlib.util.module_from_spec(spec); spec.loader.exec_module(jail)\n"
        "print(json.dumps(jail.probe()))\n"
    )
    jail_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jail.py")
    try:
        out = subprocess.run([sys.executable, "-I", "-S", "-c", code, jail_path], capture_output=True, text=True,
                             timeout=60, check=True).stdout
        return json.loads(out)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        return {name: False for name in JAIL_PROTECTIONS} | {"error": str(exc)}


@dataclass(frozen=True)
class LaunchRequest:
    env_id: str
    runtime: RuntimeSpec
    environment: Mapping[str, str]
    memory_mb: int
    task_root: str  # the code tree on the host
    tmp_mb: int  # the size of /tmp (EphemeralStorage)
    root_dir: str  # an empty host directory the jail builds the environment's root in
    opt_dir: str | None = None  # the function's merged layers on the host: /opt in the jail, this path outside


@dataclass
class LaunchedProcess:
    pid: int
    output_fd: int  # read end of the stdout+stderr pipe, non-blocking
    cgroup: EnvCgroup | None
    exited: asyncio.Future[int]  # the exit status: code, or -signal
    listener_channel: socket.socket | None = None  # sends the Runtime API listener (own network namespace only)
    exec_status_fd: int = -1  # read end, non-blocking: EOF once the program is exec'd, or why the exec failed


def write_hosts_file(run_dir: str) -> str:
    """The hosts file environments see at /etc/hosts: the host's, plus ``sandbox.localdomain`` at 127.0.0.1 (where
    extensions listen for the Telemetry API). Written once per server, in its run dir."""
    try:
        with open("/etc/hosts") as f:
            text = f.read()
    except OSError:
        text = "127.0.0.1 localhost\n"
    path = os.path.join(run_dir, "hosts")
    with open(path, "w") as f:
        f.write(text + ("" if text.endswith("\n") or not text else "\n") + "127.0.0.1 sandbox.localdomain\n")
    os.chmod(path, 0o644)
    return path


# Inside a network namespace of its own an environment's Runtime API can have a fixed address.
PRIVATE_RUNTIME_API = "127.0.0.1:9001"


class Launcher:
    def __init__(self, cgroup_root: CgroupRoot | None, containment: Containment, *, jailed: bool = False,
                 cpu_proportional: bool = True, python_sdk: PythonSdk | None = None,
                 private_network: bool = False, hosts_file: str | None = None) -> None:
        self._cgroups = cgroup_root
        # the host's /etc/hosts plus ``127.0.0.1 sandbox.localdomain`` (the Telemetry API's destination host),
        # shown read-only at /etc/hosts in the jail
        self._hosts_file = hosts_file
        # with a network namespace per environment: no network at all, the Runtime API comes in by a listener
        # the environment opens inside its namespace
        self.private_network = private_network and jailed
        self._sdk = python_sdk
        self.containment = containment
        self.jailed = jailed
        self.cpu_proportional = cpu_proportional
        self._zygotes: dict[tuple[str, str], Zygote] = {}  # (interpreter, mode) -> its fork server
        self._exits: dict[int, asyncio.Future[int]] = {}
        self._early_exits: dict[int, int] = {}  # exits heard before ``launch`` got to see the pid

    def _zygote(self, runtime: RuntimeSpec) -> Zygote:
        key = interpreter, mode = runtime.fork_server
        zygote = self._zygotes.get(key)
        if zygote is None:
            args = (self._sdk.site_dir,) if self._sdk is not None and mode == "python" else ()
            zygote = self._zygotes[key] = Zygote(interpreter, mode, self._on_exit, args)
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
        entry = request.runtime.entrypoint(jailed=self.jailed, task_root=request.task_root,
                                           memory_mb=request.memory_mb,
                                           node_options=request.environment.get("NODE_OPTIONS", ""),
                                           opt_dir=request.opt_dir)
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        fds, fd_names = [write_fd], ["output"]
        channel = None
        if self.private_network:
            channel, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            fds.append(theirs.fileno())
            fd_names.append("listener")
        status_r = status_w = -1
        if entry.argv:
            status_r, status_w = os.pipe2(os.O_CLOEXEC)
            fds.append(status_w)
            fd_names.append("exec_status")
        try:
            spawn = {
                "env": dict(request.environment),
                "cgroup_procs": cgroup.procs_files() if cgroup is not None else [],
                "jail": self._jail_spec(request) if self.jailed else None,
                "fd_names": fd_names,
                "argv": list(entry.argv),
                "candidates": list(entry.candidates),
            }
            pid = await self._zygote(request.runtime).spawn(spawn, fds)
        except BaseException:
            os.close(read_fd)
            if status_r >= 0:
                os.close(status_r)
            if channel is not None:
                channel.close()
            if cgroup is not None:
                await asyncio.to_thread(cgroup.remove)
            raise
        finally:
            os.close(write_fd)
            if status_w >= 0:
                os.close(status_w)
            if channel is not None:
                theirs.close()
        os.set_blocking(read_fd, False)
        if status_r >= 0:
            os.set_blocking(status_r, False)
        exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if pid in self._early_exits:
            exited.set_result(self._early_exits.pop(pid))
        else:
            self._exits[pid] = exited
        return LaunchedProcess(pid=pid, output_fd=read_fd, cgroup=cgroup, exited=exited, listener_channel=channel,
                               exec_status_fd=status_r)

    def _sdk_binds(self, runtime: RuntimeSpec) -> tuple[str, ...]:
        return self._sdk.paths if self._sdk is not None and runtime.family == "python" else ()

    def _runtime_binds(self, runtime: RuntimeSpec) -> tuple[str, ...]:
        """The interpreter's own prefix (a pyenv Python, a node outside /usr), read-only at the same path."""
        prefix = runtime.prefix
        return (prefix,) if prefix else ()

    def _jail_spec(self, request: LaunchRequest) -> str:
        os.makedirs(request.root_dir, mode=0o700, exist_ok=True)
        spec = JailSpec(
            root_dir=request.root_dir,
            task_root=request.task_root,
            opt_dir=request.opt_dir,
            tmp_size_mb=request.tmp_mb,
            ro_binds=DEFAULT_RO_BINDS + self._runtime_binds(request.runtime) + self._sdk_binds(request.runtime),
            ro_mounts=(((request.runtime.runtime_dir, RUNTIME_DIR),) if request.runtime.runtime_dir else ())
            + (((self._hosts_file, "/etc/hosts"),) if self._hosts_file else ()),
            uid=SANDBOX_UID,
            gid=SANDBOX_GID,
            hostname=f"lambdad-{request.env_id[:12]}",
            pid_namespace=True,
            new_net=self.private_network,
            seccomp=True,
        )
        return spec.to_json()

    async def aclose(self) -> None:
        await asyncio.gather(*(z.aclose() for z in self._zygotes.values()), return_exceptions=True)
        self._zygotes.clear()
        for future in self._exits.values():
            if not future.done():
                future.set_result(-9)
        self._exits.clear()
