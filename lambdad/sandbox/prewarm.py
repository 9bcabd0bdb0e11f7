"""The prewarm pool: pre-started, not yet assigned environments ("slots") for Python, Node.js and custom runtimes.

A Node.js cold start is mostly node's own start-up, and every cold start pays a fork, its cgroups, its jail (and
for an exec'd runtime the exec). A slot has done all of that before a function asks for one. It is forked by the exec-mode
fork server like any environment, joins cgroups of its own (memory limit 128 MB, the smallest a function has)
and enters a jail whose /var/task and /opt are empty directories of the read-only root; a Node slot then execs
``node [heap flags] /var/runtime/index.js``, which loads our runtime, warms the ES module loader, connects to the
Runtime API ahead where the slot's network namespace fixes its address, and blocks reading fd 3; a custom runtime's
slot blocks reading fd 3 before any exec; a Python slot, a fork of the Python fork server (interpreter, our runtime
and boto3 already imported), blocks reading fd 3 with its Runtime API connection (a socketpair, as any Python
environment has) made ahead, and imports the function's handler once assigned. A cold start that fits a slot takes it (the launcher's ``_assign``):
the slot's cgroups are renamed after the environment and limited to its MemorySize, the fork server mounts the
code (and the layers) read-only into the slot's mount namespace (``jail.attach``) and sets its hostname, and the
environment's variables are written to fd 3. From then on the slot is the environment's process, exactly as if
it had been started for it; it never returns to the pool.

Keys. A slot stands in only for a start it reproduces exactly: what is fixed when the jail is built (the size of
/tmp, the runtime's read-only binds) and, for Node, when node is exec'd: its argv (heap flags from MemorySize and
NODE_OPTIONS, the experiment flags) and the variables read at start (``AT_START``: NODE_*, LD_* for the dynamic
loader, LANG and LC_* for ICU, OpenSSL's...). The rest of the environment (the function's own variables, Lambda's,
credentials) arrives with the assignment; so a slot holds nothing of any function until it is assigned.
A function does not fit, and starts as before, when it is a Node function with external extensions (they must start
before the runtime) or with shared libraries in its code or layers (``lib/``, ``*.so*`` at the top: the dynamic
loader, run when node was exec'd, took those directories for missing). No pool at all without the jail, cgroups, the
mount API (``jail.attach``), or with a network namespace per environment (the Runtime API listener is opened
inside it at start).

Refill and bounds. A key is kept after a cold start asked for it, or (``expect``) after a function of it was
created, updated or loaded (the launcher computes its key then as a launch does, from the same entrypoint and
variables, so a new function's very first cold start finds a slot, Node's too): ``size`` slots, started one at a time
``REFILL_DELAY`` after that cold start (so they do not compete with the init it follows). At most ``MAX_KEYS``
keys are kept (the least recently asked goes), and a key nobody asked for within the idle timeout is emptied.
Python keys are refilled sooner (``PYTHON_REFILL_DELAY``): their init from a slot is a few milliseconds.

Ownership: the pool owns every slot until it is taken; a slot that dies while waiting is dropped (its cgroups
removed); ``aclose()`` kills every waiting slot and removes its cgroups and directory.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
from dataclasses import dataclass
from typing import Awaitable, Callable

from lambdad.runtimes.registry import Entrypoint, RuntimeSpec
from lambdad.sandbox.cgroups import EnvCgroup
from lambdad.sandbox.forkserver import extension_programs
from lambdad.sandbox.network import Namespace
from lambdad.tasks import cancel_and_wait

__all__ = ["PrewarmPool", "Slot", "SlotKey", "slot_key", "misfit", "SLOT_MEMORY_MB", "ASSIGNMENT_FD", "MAX_KEYS"]

log = logging.getLogger(__name__)

SLOT_MEMORY_MB = 128  # a waiting slot's memory limit: the smallest MemorySize, raised at assignment
ASSIGNMENT_FD = 3  # where a slot reads its assignment
# How long after a cold start took a slot (or a function was created) its key is refilled: after the init it
# follows, so as not to compete with it for the CPU. A Python init from a slot takes ~3 ms and a burst of new
# functions can ask for a slot every few tens of milliseconds (bench.py's loop: one per ~35 ms), so Python refills
# after 20 ms; Node's init from a slot takes ~25 ms, a custom runtime's its own program's start.
REFILL_DELAY = 0.25
PYTHON_REFILL_DELAY = 0.02
MAX_KEYS = 4
SLOT_EXIT_WAIT = 2.0
# Variables node, V8, ICU, OpenSSL, libc and the dynamic loader read when node starts: a Node slot is exec'd with
# the function's values of these, so they are part of its key.
AT_START_PREFIXES = ("NODE_", "LD_", "UV_", "OPENSSL_", "SSL_", "LC_", "MALLOC_", "GLIBC_")
AT_START_NAMES = frozenset({"LANG", "LANGUAGE", "TZ", "ICU_DATA"})


@dataclass(frozen=True)
class SlotKey:
    runtime: RuntimeSpec
    argv: tuple[str, ...]  # exec'd when the slot starts (Node); empty for a custom runtime, exec'd at assignment
    environment: tuple[tuple[str, str], ...]  # the variables it is exec'd with (Node)
    tmp_mb: int


@dataclass(eq=False)
class Slot:
    id: str
    key: SlotKey
    pid: int
    cgroup: EnvCgroup
    output_fd: int  # read end of the stdout+stderr pipe, non-blocking
    assignment_fd: int  # write end of the pipe the slot reads its assignment from
    exec_status_fd: int  # a custom runtime's exec status pipe (see ``launcher.LaunchedProcess``); -1 for Node, Python
    exited: asyncio.Future[int]
    directory: str  # on the host, holding the (empty) directory the jail built its root on
    scratch_fd: int = -1  # the server's hold on the slot's disk-backed /tmp (sandbox/scratch.py), if it has one
    network: Namespace | None = None  # its network namespace (sandbox/network.py), if it has one
    runtime_api_socket: socket.socket | None = None  # a Python slot's Runtime API connection, our end
    assigned: bool = False


def misfit(runtime: RuntimeSpec, task_root: str, opt_dir: str | None) -> str | None:
    """Why an environment of this function cannot start from a slot, or None when it can. Reads the top of the
    code and layer trees (a few directory entries)."""
    if runtime.family not in ("python", "nodejs", "provided"):
        return f"no slots for {runtime.family} environments"
    if runtime.family == "nodejs":
        if opt_dir and extension_programs(opt_dir):
            return "external extensions start before the Node runtime"
        if any(_has_shared_libraries(tree) for tree in (task_root, opt_dir) if tree):
            return "the code or the layers bring shared libraries, which the dynamic loader looks for at node's start"
    return None


def _has_shared_libraries(tree: str) -> bool:
    try:
        names = os.listdir(tree)
    except OSError:
        return False
    return "lib" in names or any(".so" in name for name in names)


def slot_key(runtime: RuntimeSpec, entry: Entrypoint, environment: dict[str, str], tmp_mb: int) -> SlotKey:
    if runtime.family != "nodejs":
        return SlotKey(runtime, (), (), tmp_mb)
    at_start = sorted((name, value) for name, value in environment.items()
                      if name in AT_START_NAMES or name.startswith(AT_START_PREFIXES))
    return SlotKey(runtime, entry.argv, tuple(at_start), tmp_mb)


class PrewarmPool:
    """Waiting slots per key. ``start_slot(key)`` (the launcher's) starts one and returns it once it waits for its
    assignment (a Node slot: once node is exec'd), or raises."""

    def __init__(self, start_slot: Callable[[SlotKey], Awaitable[Slot]], size: int, idle_timeout: float) -> None:
        self._start_slot = start_slot
        self.size = size
        self._idle_timeout = idle_timeout
        self._slots: dict[SlotKey, list[Slot]] = {}  # waiting, oldest first
        self._keepers: dict[SlotKey, asyncio.Task[None]] = {}  # least recently asked first
        self._asked: dict[SlotKey, asyncio.Event] = {}
        self._waiting: set[Slot] = set()  # every live slot not taken yet, pooled or being dropped
        self._starting: set[asyncio.Task[Slot]] = set()
        self._cleanups: set[asyncio.Task[None]] = set()
        self._closed = False

    def take(self, key: SlotKey) -> Slot | None:
        """A waiting slot for ``key``, now the caller's (never back in the pool), or None; either way the key is
        kept filled from now on."""
        if self._closed:
            return None
        self._keep(key)
        slots = self._slots.get(key)
        if not slots:
            return None
        slot = slots.pop(0)
        slot.assigned = True
        self._waiting.discard(slot)
        return slot

    def waiting(self) -> frozenset[str]:
        """The ids of the slots started and not taken (waiting, or being dropped): no environment's."""
        return frozenset(slot.id for slot in self._waiting)

    def expect(self, key: SlotKey) -> None:
        """A cold start of ``key`` is likely soon (its function was created, updated or loaded): keep it filled, as
        if a cold start had asked."""
        if not self._closed:
            self._keep(key)

    def _keep(self, key: SlotKey) -> None:
        keeper = self._keepers.pop(key, None)
        if keeper is None:
            self._asked[key] = asyncio.Event()
            keeper = asyncio.get_running_loop().create_task(self._keeper(key))
            if len(self._keepers) >= MAX_KEYS:
                next(iter(self._keepers.values())).cancel()  # the least recently asked key goes
        self._keepers[key] = keeper  # (re)inserted last: the most recently asked
        self._asked[key].set()

    async def _keeper(self, key: SlotKey) -> None:
        """Keep ``key`` filled until nobody asked for it within the idle timeout (or the pool closes)."""
        asked = self._asked[key]
        try:
            while True:
                asked.clear()
                await asyncio.sleep(PYTHON_REFILL_DELAY if key.runtime.family == "python" else REFILL_DELAY)
                await self._fill(key)
                try:
                    await asyncio.wait_for(asked.wait(), self._idle_timeout)
                except asyncio.TimeoutError:
                    return
        finally:
            if self._keepers.get(key) is asyncio.current_task():
                del self._keepers[key]
                del self._asked[key]
            for slot in self._slots.pop(key, []):
                _kill(slot)

    async def _fill(self, key: SlotKey) -> None:
        for _ in range(self.size - len(self._slots.setdefault(key, []))):
            start = asyncio.ensure_future(self._start_slot(key))
            self._starting.add(start)
            start.add_done_callback(lambda task: self._started(key, task))
            try:
                await asyncio.shield(start)  # a cancelled keeper leaves the start running: ``_started`` kills it
            except Exception as exc:  # e.g. a node that does not start: try again when the key is next asked for
                log.debug("could not start a slot for %s: %s", key.runtime.name, exc)
                return

    def _started(self, key: SlotKey, start: asyncio.Task[Slot]) -> None:
        self._starting.discard(start)
        if start.cancelled() or start.exception() is not None:
            return
        slot = start.result()
        self._waiting.add(slot)
        slot.exited.add_done_callback(lambda _: self._gone(slot))
        if self._closed or key not in self._keepers or slot.exited.done():
            _kill(slot)
        else:
            self._slots.setdefault(key, []).append(slot)

    def _gone(self, slot: Slot) -> None:
        """A slot's process ended: a waiting one is dropped with its cgroups; a taken one belongs to its
        environment, which removes the cgroups. Its directory goes either way."""
        slots = self._slots.get(slot.key)
        if slots is not None and slot in slots:
            slots.remove(slot)
        if not slot.assigned:
            self._waiting.discard(slot)
            _close_fds(slot)
        task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(_clean, slot.directory, None if slot.assigned else slot.cgroup))
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def discard(self, slot: Slot) -> None:
        """Kill a taken slot that could not be assigned, and release what it held; the caller then starts the
        environment the usual way (whose cgroups may have the name the slot's were given)."""
        _kill(slot)
        try:
            await asyncio.wait_for(asyncio.shield(slot.exited), SLOT_EXIT_WAIT)
        except asyncio.TimeoutError:
            log.warning("slot %s: process %d did not exit after SIGKILL", slot.id, slot.pid)
        _close_fds(slot)
        await asyncio.to_thread(_clean, slot.directory, slot.cgroup)

    async def aclose(self) -> None:
        """Kill every waiting slot; return once they are gone with their cgroups and directories."""
        self._closed = True
        await asyncio.gather(*(cancel_and_wait(task) for task in list(self._keepers.values())),
                             return_exceptions=True)
        await asyncio.gather(*self._starting, return_exceptions=True)
        waiting = list(self._waiting)
        for slot in waiting:
            _kill(slot)
        if waiting:
            await asyncio.wait([slot.exited for slot in waiting], timeout=SLOT_EXIT_WAIT)
        await asyncio.gather(*self._cleanups, return_exceptions=True)


def _kill(slot: Slot) -> None:
    """SIGKILL the slot: its cgroups (everything in them, frozen first) and its process, which may not have joined
    them yet. (Its pid cannot have been reused before its exit was reported.)"""
    slot.cgroup.kill_all()
    if not slot.exited.done():
        try:
            os.kill(slot.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _close_fds(slot: Slot) -> None:
    for name in ("output_fd", "assignment_fd", "exec_status_fd", "scratch_fd"):
        fd = getattr(slot, name)
        if fd >= 0:
            os.close(fd)
            setattr(slot, name, -1)
    if slot.network is not None:
        slot.network.close()
        slot.network = None
    if slot.runtime_api_socket is not None:
        slot.runtime_api_socket.close()
        slot.runtime_api_socket = None


def _clean(directory: str, cgroup: EnvCgroup | None) -> None:
    if cgroup is not None:
        cgroup.remove()
    shutil.rmtree(directory, ignore_errors=True)
