"""The launcher: starts an environment's runtime process, contained as well as this machine allows.

Every environment is forked by a fork server (``forkserver.py``) that runs the function's interpreter
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

An environment may instead be a pre-started slot that has taken steps 1-4 (and, for Node, the exec) before its
function was known (``prewarm.py``); ``launch`` assigns it when one fits, and starts
the environment as above otherwise.

``Containment`` says which of these are active here; the server prints it at start and ``lambdad doctor`` too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from typing import Mapping

from lambdad.runtimes.registry import RUNTIME_DIR, TASK_ROOT, Entrypoint, RuntimeSpec
from lambdad.runtimes.sdk import PythonSdk
from lambdad.sandbox.cgroups import CgroupRoot, CgroupV2Root, EnvCgroup
from lambdad.sandbox.forkserver import SDK_DIR
from lambdad.sandbox.jail import DEFAULT_RO_BINDS, JailSpec
from lambdad.sandbox.scratch import Scratch, ScratchPool
from lambdad.sandbox.network import FunctionNetwork, Namespace
from lambdad.sandbox.prewarm import ASSIGNMENT_FD, SLOT_MEMORY_MB, PrewarmPool, Slot, SlotKey, misfit, slot_key
from lambdad.sandbox.forkclient import ForkServerClient, SpawnError

__all__ = ["Launcher", "LaunchedProcess", "Containment", "LaunchRequest", "SpawnError", "write_etc_files"]

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
    scratch_error: str | None = "not probed"  # why /tmp cannot be disk-backed here (None: it can)
    network_error: str | None = "not probed"  # why environments do not get a network namespace each (None: they do)

    def describe(self) -> list[tuple[str, bool, str]]:
        rows = [
            ("clean environment (no server variables), closed fds, own session", True, "always"),
            ("cgroups: memory limit = MemorySize, pids cap, freezer, CPU share", self.cgroups,
             "needs root and the cgroup v1 memory, pids and freezer controllers, or cgroup v2 with memory and pids"),
        ]
        for name, what in JAIL_PROTECTIONS.items():
            ok = bool(self.jail.get(name))
            why = str(self.jail.get(f"{name}_error") or self.jail.get("error")
                      or "needs root (CAP_SYS_ADMIN) and kernel support")
            rows.append((what, ok, why))
        rows.append(("disk-backed /tmp of EphemeralStorage MB (ext4 on a loop device), not charged as memory",
                     self.jailed and self.scratch_error is None,
                     self.scratch_error or "needs the jail (a tmpfs /tmp instead, counted as the function's memory)"))
        rows.append(("own network namespace: the outside world, of the host only the Runtime API and allow-listed "
                     "services", self.jailed and self.network_error is None,
                     self.network_error or "needs the jail"))
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
        result: dict[str, bool | str] = json.loads(out)
        return result
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
    # the Python runtime's Runtime API connection, made ahead: our end of a socketpair whose other end the runtime
    # starts with (no TCP connect, no loopback TCP on every exchange; AWS_LAMBDA_RUNTIME_API still works)
    runtime_api_socket: socket.socket | None = None
    exec_status_fd: int = -1  # read end, non-blocking: EOF once the program is exec'd, or why the exec failed
    scratch_fd: int = -1  # the server's hold on its disk-backed /tmp (sandbox/scratch.py): closed once it is gone
    network: Namespace | None = None  # its network namespace (sandbox/network.py), given up once it is gone


SANDBOX_USER = "sbx_user1051"  # the name Lambda's sandbox user goes by


def write_etc_files(run_dir: str) -> dict[str, str]:
    """The files environments see over the host's, each written once per server in its run dir, read-only:
    /etc/hosts, the host's plus ``sandbox.localdomain`` at 127.0.0.1 (where extensions listen for the Telemetry
    API); /etc/passwd and /etc/group, the host's plus the sandbox user (home /tmp, no login shell), so that
    ``getpwuid`` finds it (Node's os.homedir(), the AWS SDK for JavaScript, ``~`` in Python)."""
    def host(path: str, fallback: str) -> str:
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            text = fallback
        return text if text.endswith("\n") or not text else text + "\n"

    files = {
        "/etc/hosts": host("/etc/hosts", "127.0.0.1 localhost\n") + "127.0.0.1 sandbox.localdomain\n",
        "/etc/passwd": host("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
        + f"{SANDBOX_USER}:x:{SANDBOX_UID}:{SANDBOX_GID}::/tmp:/sbin/nologin\n",
        "/etc/group": host("/etc/group", "root:x:0:\n") + f"{SANDBOX_USER}:x:{SANDBOX_GID}:\n",
    }
    written = {}
    for inside, text in files.items():
        path = os.path.join(run_dir, inside.rsplit("/", 1)[1])
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
        written[inside] = path
    return written


# Inside a network namespace of its own an environment's Runtime API can have a fixed address.
PRIVATE_RUNTIME_API = "127.0.0.1:9001"


class _ChildFds:
    """The descriptors a spawn passes to its child, each one end of a pipe or socketpair: the child's ends
    ("theirs") are closed here once the fork server has them (``with``); ours are kept, or closed too when the
    spawn fails (``abandon``)."""

    def __init__(self) -> None:
        self._ours, self._theirs = contextlib.ExitStack(), contextlib.ExitStack()
        self.fds: list[int] = []
        self.names: list[str] = []

    def __enter__(self) -> "_ChildFds":
        return self

    def __exit__(self, *exc: object) -> None:
        self._theirs.close()

    def _pass(self, name: str, fd: int) -> None:
        self.fds.append(fd)
        self.names.append(name)

    def pipe(self, name: str, child_reads: bool = False) -> int:
        """A pipe the child writes to (or, with ``child_reads``, reads from); returns our end."""
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        mine, child = (write_fd, read_fd) if child_reads else (read_fd, write_fd)
        self._ours.callback(os.close, mine)
        self._theirs.callback(os.close, child)
        self._pass(name, child)
        return mine

    def share(self, name: str, fd: int) -> None:
        """A descriptor we keep (and close ourselves), passed as well."""
        self._pass(name, fd)

    def socket_pair(self, name: str, kind: int) -> socket.socket:
        mine, child = socket.socketpair(socket.AF_UNIX, kind)
        self._ours.enter_context(mine)
        self._theirs.enter_context(child)
        self._pass(name, child.fileno())
        return mine

    def abandon(self) -> None:
        self._ours.close()

    def keep(self) -> None:
        """The child runs: our ends are its environment's now."""
        self._ours.pop_all()


class Launcher:
    def __init__(self, cgroup_root: CgroupRoot | CgroupV2Root | None, containment: Containment, *, jailed: bool = False,
                 cpu_proportional: bool = True, python_sdk: PythonSdk | None = None,
                 private_network: bool = False, etc_files: Mapping[str, str] | None = None, prewarm_size: int = 0,
                 slot_dir: str | None = None, idle_timeout: float = 600.0, scratch_dir: str | None = None,
                 network: FunctionNetwork | None = None) -> None:
        self._cgroups = cgroup_root
        # a network namespace of its own for every environment and slot, with a route out (isolated)
        self.network = network if jailed and not private_network else None
        # /etc/hosts, /etc/passwd and /etc/group as environments see them (``write_etc_files``): path inside ->
        # file on the host, shown read-only in the jail
        self._etc_files = dict(etc_files or {})
        # with a network namespace per environment: no network at all, the Runtime API comes in by a listener
        # the environment opens inside its namespace
        self.private_network = private_network and jailed
        self._sdk = python_sdk
        self._scratch = (ScratchPool(scratch_dir, (SANDBOX_UID, SANDBOX_GID))
                         if jailed and scratch_dir is not None and containment.scratch_error is None else None)
        self.containment = containment
        self.jailed = jailed
        self.cpu_proportional = cpu_proportional
        self._fork_servers: dict[tuple[str, str], ForkServerClient] = {}  # (interpreter, mode) -> its fork server
        self._exits: dict[int, asyncio.Future[int]] = {}
        self._early_exits: dict[int, int] = {}  # exits heard before ``launch`` got to see the pid
        self._cleanups: set[asyncio.Task[None]] = set()  # removals of what a cancelled start made
        # pre-started slots: only where they are exactly as contained as any
        # environment (jail, cgroups) and the mount API lets the fork server give them their code afterwards
        self._slot_dir = slot_dir
        self._prewarm = (PrewarmPool(self._start_slot, prewarm_size, idle_timeout)
                         if prewarm_size > 0 and slot_dir and cgroup_root is not None and self.jailed
                         and not self.private_network and containment.jail.get("attach") else None)

    @property
    def prewarm_size(self) -> int:
        """Slots kept per key (0: no prewarm pool here)."""
        return self._prewarm.size if self._prewarm is not None else 0

    def _fork_server(self, runtime: RuntimeSpec) -> ForkServerClient:
        key = interpreter, mode = runtime.fork_server
        client = self._fork_servers.get(key)
        if client is None:
            args = tuple(self._sdk.as_args()) if self._sdk is not None and mode == "python" else ()
            client = self._fork_servers[key] = ForkServerClient(interpreter, mode, self._on_exit, args)
        return client

    def _on_exit(self, pid: int, status: int) -> None:
        future = self._exits.pop(pid, None)
        if future is None:
            self._early_exits[pid] = status
        elif not future.done():
            future.set_result(status)

    async def launch(self, request: LaunchRequest) -> LaunchedProcess:
        entry = self._entrypoint(request.runtime, request.environment, request.memory_mb, request.task_root,
                                 request.opt_dir)
        slot = self._take_slot(request, entry)
        if slot is not None:
            try:
                return await self._assign(slot, request, entry)
            except BaseException as exc:
                assert self._prewarm is not None
                await self._prewarm.discard(slot)
                if not isinstance(exc, (SpawnError, OSError)):
                    raise
                log.debug("environment %s: slot %s not assigned (%s); starting it without", request.env_id, slot.id,
                          exc)
        return await self._start(request, entry)

    async def _network_for(self) -> Namespace | None:
        return await self.network.take() if self.network is not None else None

    async def _start(self, request: LaunchRequest, entry: Entrypoint) -> LaunchedProcess:
        cgroup = None
        if self._cgroups is not None:
            making = asyncio.ensure_future(asyncio.to_thread(self._cgroups.create, request.env_id, request.memory_mb))
            try:
                cgroup = await asyncio.shield(making)
            except asyncio.CancelledError:  # the caller went away: the groups are made all the same, and go
                making.add_done_callback(self._remove_made_cgroup)
                raise
        try:
            scratch = await self._scratch_for(request.tmp_mb)
        except BaseException:
            if cgroup is not None:
                await asyncio.shield(asyncio.to_thread(cgroup.remove))
            raise
        net = None
        with _ChildFds() as passed:
            try:
                net = await self._network_for()
                if net is not None:
                    passed.share("netns", net.fd)
                read_fd = passed.pipe("output")
                channel = passed.socket_pair("listener", socket.SOCK_SEQPACKET) if self.private_network else None
                status_r, api_socket = -1, None
                if entry.argv:
                    status_r = passed.pipe("exec_status")
                else:  # lambdad's Python runtime, forked: its Runtime API connection comes ready-made
                    api_socket = passed.socket_pair("runtime_api", socket.SOCK_STREAM)
                spawn = {
                    "env": dict(request.environment),
                    "cgroup_procs": cgroup.procs_files() if cgroup is not None else [],
                    "jail": self._jail_spec(request.runtime, request.root_dir, request.task_root, request.opt_dir,
                                            request.tmp_mb, request.env_id, scratch) if self.jailed else None,
                    "fd_names": passed.names,
                    "argv": list(entry.argv),
                    "candidates": list(entry.candidates),
                }
                pid = await self._fork_server(request.runtime).spawn(spawn, passed.fds)
            except BaseException:
                passed.abandon()
                if net is not None:
                    net.close()
                if scratch is not None:
                    self._scratch.release(scratch)  # type: ignore[union-attr]
                if cgroup is not None:
                    await asyncio.to_thread(cgroup.remove)
                raise
            passed.keep()
        os.set_blocking(read_fd, False)
        if status_r >= 0:
            os.set_blocking(status_r, False)
        return LaunchedProcess(pid=pid, output_fd=read_fd, cgroup=cgroup, exited=self._exit_future(pid),
                               listener_channel=channel, exec_status_fd=status_r, runtime_api_socket=api_socket,
                               scratch_fd=scratch.fd if scratch is not None else -1, network=net)

    def _remove_made_cgroup(self, making: "asyncio.Future[EnvCgroup]") -> None:
        """Remove the groups a cancelled start made (``_start``), once made."""
        if making.cancelled() or making.exception() is not None:
            return
        task = asyncio.get_running_loop().create_task(asyncio.to_thread(making.result().remove))
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def _scratch_for(self, tmp_mb: int) -> Scratch | None:
        """A disk-backed /tmp for a jailed environment or slot, where this machine can make one."""
        if self._scratch is None or not self.jailed:
            return None
        return await self._scratch.take(tmp_mb)

    def _exit_future(self, pid: int) -> asyncio.Future[int]:
        exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if pid in self._early_exits:
            exited.set_result(self._early_exits.pop(pid))
        else:
            self._exits[pid] = exited
        return exited

    # -- pre-started slots (prewarm.py) ------------------------------------------------------------------------

    def waiting_slots(self) -> frozenset[str]:
        """The ids of the prewarm pool's slots not taken by any environment (also the names of their cgroups)."""
        return self._prewarm.waiting() if self._prewarm is not None else frozenset()

    def expect(self, runtime: RuntimeSpec, *, environment: Mapping[str, str], memory_mb: int, task_root: str,
               tmp_mb: int, opt_dir: str | None) -> None:
        """A function was created, updated or loaded: have slots of its key ready for its first cold start. The
        arguments are those of its ``LaunchRequest``; of ``environment`` only the variables read at start
        (``prewarm.AT_START_*``) and NODE_OPTIONS matter, so values known only at launch (the Runtime API's address,
        the log stream, credentials) may be left out."""
        if self._prewarm is None:
            return
        entry = self._entrypoint(runtime, environment, memory_mb, task_root, opt_dir)
        key = self._slot_key(runtime, entry, environment, task_root, tmp_mb, opt_dir)
        if isinstance(key, SlotKey):
            self._prewarm.expect(key)

    def _entrypoint(self, runtime: RuntimeSpec, environment: Mapping[str, str], memory_mb: int, task_root: str,
                    opt_dir: str | None) -> Entrypoint:
        """What an environment execs (for Node: node's argv, with heap flags from MemorySize and NODE_OPTIONS): the
        same at launch and when a function's slots are expected, so an expected Node key is the one launch asks."""
        return runtime.entrypoint(jailed=self.jailed, task_root=task_root, memory_mb=memory_mb,
                                  node_options=environment.get("NODE_OPTIONS", ""), opt_dir=opt_dir)

    @staticmethod
    def _slot_key(runtime: RuntimeSpec, entry: Entrypoint, environment: Mapping[str, str], task_root: str,
                  tmp_mb: int, opt_dir: str | None) -> SlotKey | str:
        """The key of the slots an environment can start from, or why it cannot start from one."""
        why = misfit(runtime, task_root, opt_dir)
        return why if why is not None else slot_key(runtime, entry, dict(environment), tmp_mb)

    def _take_slot(self, request: LaunchRequest, entry: Entrypoint) -> Slot | None:
        if self._prewarm is None:
            return None
        key = self._slot_key(request.runtime, entry, request.environment, request.task_root, request.tmp_mb,
                             request.opt_dir)
        if not isinstance(key, SlotKey):
            log.debug("environment %s starts without a slot: %s", request.env_id, key)
            return None
        slot = self._prewarm.take(key)
        if slot is None:
            log.debug("environment %s starts without a slot: none is waiting for its key", request.env_id)
        return slot

    async def _start_slot(self, key: SlotKey) -> Slot:
        """Start a slot for ``key``: forked, in cgroups of its own, jailed with an empty /var/task and /opt, and (Node)
        node exec'd; returns once it waits for its assignment on fd 3."""
        assert self._cgroups is not None and self._slot_dir is not None and self._prewarm is not None
        slot_id = f"slot-{uuid.uuid4().hex}"
        directory = os.path.join(self._slot_dir, slot_id)
        os.makedirs(directory, mode=0o700)
        try:
            cgroup = await asyncio.to_thread(self._cgroups.create, slot_id, SLOT_MEMORY_MB)
        except BaseException:
            os.rmdir(directory)
            raise
        env = dict(key.environment)
        if key.argv:  # a Node slot: where its assignment comes, and (its own network namespace) its Runtime API,
            # which it connects to ahead (index.js); the connection is served once the environment serves the listener
            env["LAMBDAD_ASSIGNMENT_FD"] = str(ASSIGNMENT_FD)
            if self.network is not None:
                env["LAMBDAD_RUNTIME_API"] = PRIVATE_RUNTIME_API
        scratch = await self._scratch_for(key.tmp_mb)
        net = None
        with _ChildFds() as passed:
            try:
                net = await self._network_for()
                if net is not None:
                    passed.share("netns", net.fd)
                output_r = passed.pipe("output")
                assignment_w = passed.pipe("assignment", child_reads=True)
                status_r, api_socket = -1, None
                if key.runtime.family == "python":  # forked, never exec'd: its Runtime API connection made ahead
                    api_socket = passed.socket_pair("runtime_api", socket.SOCK_STREAM)
                else:
                    status_r = passed.pipe("exec_status")
                spawn = {
                    "env": env,
                    "cgroup_procs": cgroup.procs_files(),
                    "jail": self._jail_spec(key.runtime, os.path.join(directory, "root"), None, None, key.tmp_mb,
                                            slot_id, scratch),
                    "fd_names": passed.names,
                    "argv": list(key.argv),
                    "candidates": [],
                }
                pid = await self._fork_server(key.runtime).spawn(spawn, passed.fds)
            except BaseException:
                passed.abandon()
                if net is not None:
                    net.close()
                if scratch is not None:
                    self._scratch.release(scratch)  # type: ignore[union-attr]
                await asyncio.to_thread(cgroup.remove)
                os.rmdir(directory)
                raise
            passed.keep()
        os.set_blocking(output_r, False)
        if status_r >= 0:
            os.set_blocking(status_r, False)
        slot = Slot(slot_id, key, pid, cgroup, output_r, assignment_w, status_r, self._exit_future(pid), directory,
                    scratch_fd=scratch.fd if scratch is not None else -1, network=net, runtime_api_socket=api_socket)
        if key.argv:
            try:
                await _exec_done(slot)
            except BaseException:
                await self._prewarm.discard(slot)
                raise
        return slot

    async def _assign(self, slot: Slot, request: LaunchRequest, entry: Entrypoint) -> LaunchedProcess:
        """Make ``slot`` the environment of ``request``: its cgroups renamed after the environment and limited to
        its MemorySize, the code (and layers) mounted read-only at /var/task (and /opt) with the environment's
        hostname (``jail.attach``, by the fork server), then its variables written to fd 3."""
        mounts = [(request.task_root, TASK_ROOT)] + ([(request.opt_dir, "/opt")] if request.opt_dir else [])
        renamed = [str(path.with_name(request.env_id) / "cgroup.procs") for path in slot.cgroup.paths.values()]
        assignment: dict[str, object] = {"env": dict(request.environment)}
        if entry.argv and not slot.key.argv:  # a custom runtime's slot execs its program now
            assignment.update(argv=list(entry.argv), candidates=list(entry.candidates))
        message = json.dumps(assignment).encode() + b"\n"  # a few KB: within the pipe's buffer
        # The fork server attaches while the cgroups are adopted here (a quarter of a millisecond of cgroupfs
        # writes, less than a thread's round trip would cost) and while a Python slot, given its variables now,
        # starts what needs no code (bootstrap.begin); EOF tells the slot its code is there
        attaching = asyncio.ensure_future(
            self._fork_server(request.runtime).attach(slot.pid, mounts, _hostname(request.env_id), renamed))
        await asyncio.sleep(0)  # the attach request goes out
        try:
            _adopt_cgroup(slot.cgroup, request.env_id, request.memory_mb)
            if request.runtime.family == "python":
                os.write(slot.assignment_fd, message)
        finally:
            await attaching
        if request.runtime.family != "python":
            os.write(slot.assignment_fd, message)
        os.close(slot.assignment_fd)
        slot.assignment_fd = -1
        process = LaunchedProcess(pid=slot.pid, output_fd=slot.output_fd, cgroup=slot.cgroup, exited=slot.exited,
                                  exec_status_fd=slot.exec_status_fd, scratch_fd=slot.scratch_fd,
                                  network=slot.network, runtime_api_socket=slot.runtime_api_socket)
        slot.scratch_fd = -1  # the environment's now
        slot.network = None
        slot.runtime_api_socket = None
        return process

    def _sdk_binds(self, runtime: RuntimeSpec) -> tuple[str, ...]:
        """The SDK's packages as the Python fork server shows them (forkserver.SDK_DIR), never at the server's
        own paths."""
        if self._sdk is None or runtime.family != "python":
            return ()
        return tuple(f"{SDK_DIR}/{os.path.basename(path)}" for path in self._sdk.paths)

    def _runtime_binds(self, runtime: RuntimeSpec) -> tuple[str, ...]:
        """The interpreter's own prefix (a pyenv Python, a node outside /usr), read-only at the same path."""
        prefix = runtime.prefix
        return (prefix,) if prefix else ()

    def _jail_spec(self, runtime: RuntimeSpec, root_dir: str, task_root: str | None, opt_dir: str | None,
                   tmp_mb: int, env_id: str, scratch: Scratch | None = None) -> str:
        """The jail of an environment; a slot's has no ``task_root`` and no ``opt_dir`` yet."""
        os.makedirs(root_dir, mode=0o700, exist_ok=True)
        spec = JailSpec(
            root_dir=root_dir,
            task_root=task_root,
            opt_dir=opt_dir,
            tmp_size_mb=tmp_mb,
            tmp_device=scratch.device if scratch is not None else None,
            ro_binds=DEFAULT_RO_BINDS + self._runtime_binds(runtime) + self._sdk_binds(runtime),
            ro_mounts=(((runtime.runtime_dir, RUNTIME_DIR),) if runtime.runtime_dir else ())
            + tuple((host, inside) for inside, host in self._etc_files.items()),
            uid=SANDBOX_UID,
            gid=SANDBOX_GID,
            hostname=_hostname(env_id),
            pid_namespace=True,
            new_net=self.private_network,
            seccomp=True,
        )
        return spec.to_json()

    async def aclose(self) -> None:
        if self._prewarm is not None:
            await self._prewarm.aclose()  # before the fork servers: their exit reports end the slots' waits
        if self._scratch is not None:
            await self._scratch.aclose()
        await asyncio.gather(*(z.aclose() for z in self._fork_servers.values()), return_exceptions=True)
        self._fork_servers.clear()
        for future in self._exits.values():
            if not future.done():
                future.set_result(-9)
        self._exits.clear()


def _hostname(env_id: str) -> str:
    return f"lambdad-{env_id.removeprefix('slot-')[:12]}"


def _adopt_cgroup(cgroup: EnvCgroup, env_id: str, memory_mb: int) -> None:
    """A slot's cgroups become its environment's: named after it, limited to its MemorySize."""
    cgroup.rename(env_id)
    cgroup.limit_memory(memory_mb)


async def _exec_done(slot: Slot) -> None:
    """Wait until a Node slot's node runs: EOF on its exec status pipe, or why the exec failed (SpawnError)."""
    loop = asyncio.get_running_loop()
    readable: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not readable.done():
            readable.set_result(None)

    loop.add_reader(slot.exec_status_fd, ready)
    try:
        await asyncio.wait_for(readable, 10.0)
    finally:
        loop.remove_reader(slot.exec_status_fd)
    data = os.read(slot.exec_status_fd, 4096)
    os.close(slot.exec_status_fd)
    slot.exec_status_fd = -1
    if data:
        raise SpawnError(f"the slot's runtime did not start: {data.decode('utf-8', 'replace')}")
