"""Control groups for execution environments: cgroup v1 controllers (as on these machines), or cgroup v2.

**v1** (chosen where the memory, pids and freezer controllers are mounted, hybrid hosts included). Each
environment gets one group per controller under ``<mount>/<controller>/lambdad/<server id>/<env id>``:
- memory: ``memory.limit_in_bytes`` = the function's MemorySize; the kernel OOM-kills past it; its peak is REPORT's
  Max Memory Used (the environment's peak so far, as on Lambda);
- pids: a cap on processes and threads (Lambda allows 1,024);
- freezer: stops every task of the group at once: an idle environment is frozen between invocations (it gets
  no CPU), and a kill cannot race a fork;
- cpu (optional): a CFS quota proportional to MemorySize (1,769 MB = one vCPU), as Lambda allocates CPU, over a
  short period with a burst allowance (``cpu_bandwidth``: why);
- cpuacct (optional; where it is mounted with cpu, cpu's own group serves): the CPU time the group has used
  (``cpuacct.usage``), by which the server paces a small environment's invocations (sandbox/pacing.py).

**v2** (chosen on a unified-only host whose root offers the memory and pids controllers): one group per
environment, ``<mount>/lambdad/<server id>/<env id>``, with the controllers enabled down the tree
(``cgroup.subtree_control``; the groups above the environments hold no process, as v2 requires):
``memory.max`` (and ``memory.swap.max`` 0, so the limit is memory alone, as v1's memory+swap limit makes it),
``pids.max``, ``cpu.max`` (where the cpu controller is offered; ``cpu.stat``'s ``usage_usec`` is the CPU time
used), ``cgroup.freeze`` for freezing, ``cgroup.kill``
(kernel 5.14+; before, freeze, SIGKILL each task, thaw), ``memory.peak`` for Max Memory Used (kernel 5.19+; 0
before), and ``memory.events``'s ``oom_kill`` count. v2 does not rename groups: a pre-started slot's group keeps
its ``slot-…`` name when an environment takes it. Without root, a v2 host needs the subtree delegated to the
server's user (systemd's ``Delegate=yes``); lambdad does not ask for it.

Where the controllers are missing or not writable (not root, no cgroupfs), ``CgroupRoot.probe`` returns None and the
caller runs without them, saying so. The owner of an ``EnvCgroup`` calls ``remove()``; it kills what is left.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path
from typing import Iterable

__all__ = ["CgroupRoot", "EnvCgroup", "CgroupV2Root", "EnvCgroupV2", "PIDS_MAX"]

log = logging.getLogger(__name__)

PIDS_MAX = 1024
_CONTROLLERS = ("memory", "pids", "freezer")
_OPTIONAL = ("cpu", "cpuacct")
MB_PER_VCPU = 1769
MIN_QUOTA_US = 1000  # the kernel refuses a CFS quota (and a period) under 1 ms
SMALL_QUOTA_US = 2000
MIN_PERIOD_US = 10_000


def cpu_bandwidth(memory_mb: int) -> tuple[int, int, int]:
    """(quota, period, burst) in microseconds: a share of one CPU of ``memory_mb`` / 1,769, as Lambda gives.

    A group that has spent its quota waits for the next period: with the kernel's default 100 ms period, a 128 MB
    function (7.2 ms per period) that had a few invocations in a row stalled for up to 93 ms. The period is
    therefore short: the one that gives a quota of 2 ms (27.6 ms at 128 MB, so no stall is longer than 25.6 ms),
    and at least 10 ms (354 MB and up; shorter periods only add timer interrupts to every busy group). Not the
    kernel's minimum quota of 1 ms: the first CPU a group runs on takes its whole quota as a local slice and keeps
    1 ms of it when it goes idle, so a 1 ms quota strands on one CPU and a thread that wakes on the other (Node.js
    runs several) is throttled though the group spent nothing. Measured at 128 MB (docs/performance.md, issue 21):
    300 invocations of a Node.js function 2 ms apart, well within its share, were throttled 3 and 34 times with a
    1 ms quota, 1 and 0 times with 2 ms.

    The burst (``cpu.cfs_burst_us`` / ``cpu.max.burst``, kernel 5.14+; the kernel caps it at the quota) lets a
    group that was idle spend what it saved, up to one more quota: one invocation that needs up to 4 ms of CPU
    after an idle spell runs without a stall. The long-run average stays quota / period: the burst only spends
    unused quota."""
    period = max(MIN_PERIOD_US, -(-SMALL_QUOTA_US * MB_PER_VCPU // memory_mb))
    quota = max(MIN_QUOTA_US, period * memory_mb // MB_PER_VCPU)
    return quota, period, quota


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _read(path: Path) -> str:
    with open(path) as f:
        return f.read()


class CgroupRoot:
    """The server's own subtree in each controller. Remove it with ``remove()`` at shutdown."""

    def __init__(self, dirs: dict[str, Path]) -> None:
        self.dirs = dirs

    @classmethod
    def probe(cls, server_id: str, mount: Path = Path("/sys/fs/cgroup")) -> "CgroupRoot | CgroupV2Root | None":
        """Create this server's subtree, named ``<pid>-<server id>``, after sweeping away the subtrees of servers
        that died without cleaning up (kill -9): their environments are killed and their groups removed."""
        sweep_stale(mount)
        sweep_stale_v2(mount / "lambdad")
        server_id = f"{os.getpid()}-{server_id}"
        dirs: dict[str, Path] = {}
        try:
            for controller in _CONTROLLERS:
                base = mount / controller
                if not (base / "cgroup.procs").exists():
                    log.info("cgroup v1 controller %s is not mounted at %s", controller, base)
                    _remove_dirs(dirs.values())
                    return CgroupV2Root.probe(server_id, mount)
                path = base / "lambdad" / server_id
                path.mkdir(parents=True, exist_ok=True)
                dirs[controller] = path
            for controller in _OPTIONAL:
                if controller == "cpuacct" and "cpu" in dirs and (
                        (mount / "cpuacct").resolve() == (mount / "cpu").resolve()):
                    continue  # mounted together (cpu,cpuacct): cpu's group counts the usage
                if (mount / controller / "cgroup.procs").exists():
                    try:
                        path = mount / controller / "lambdad" / server_id
                        path.mkdir(parents=True, exist_ok=True)
                        dirs[controller] = path
                    except OSError as exc:
                        log.info("cgroup controller %s is not usable: %s", controller, exc)
            if (dirs["memory"].parent / "memory.use_hierarchy").exists():
                try:
                    _write(dirs["memory"].parent / "memory.use_hierarchy", "1")
                except OSError:
                    pass
        except OSError as exc:
            log.info("cgroups are not available to this process: %s", exc)
            _remove_dirs(dirs.values())
            return None
        return cls(dirs)

    def create(self, env_id: str, memory_mb: int) -> "EnvCgroup":
        paths = {c: d / env_id for c, d in self.dirs.items()}
        for p in paths.values():
            p.mkdir(exist_ok=True)
        group = EnvCgroup(paths)
        group.limit_memory(memory_mb)
        _write(paths["pids"] / "pids.max", str(PIDS_MAX))
        return group

    def remove(self) -> None:
        for d in self.dirs.values():
            for child in d.iterdir() if d.exists() else ():
                if child.is_dir():
                    EnvCgroup({"x": child}).remove()
        _remove_dirs(self.dirs.values())


_SWEEP_WAIT_SECONDS = 1.5


def sweep_stale(mount: Path) -> None:
    """Remove the cgroups of lambdad servers that died without cleaning up (kill -9), killing what they hold.

    All controllers of an environment are handled together, so that its freezer is thawed after the kill (a
    frozen task cannot die); every environment is killed first, then the sweep waits for all of them at once, at
    most ``_SWEEP_WAIT_SECONDS`` whatever their number: start-up is never held up longer. A group still busy then
    is left for the next start (and said so)."""
    stale: dict[str, dict[str, Path]] = {}  # "<server dir>/<env>" -> controller -> path
    servers: list[Path] = []
    for controller in _CONTROLLERS + _OPTIONAL:
        base = mount / controller / "lambdad"
        if not base.is_dir():
            continue
        for server_dir in base.iterdir():
            pid = server_dir.name.split("-", 1)[0]
            if not server_dir.is_dir() or not pid.isdigit() or Path(f"/proc/{pid}").exists():
                continue
            servers.append(server_dir)
            for child in server_dir.iterdir():
                if child.is_dir():
                    stale.setdefault(f"{server_dir.name}/{child.name}", {})[controller] = child
    if not servers:
        return
    log.warning("removing the cgroups of lambdad servers that are gone: %d environments in %s", len(stale),
                ", ".join(sorted({s.name for s in servers})))
    groups = [EnvCgroup(paths) for paths in stale.values()]
    for group in groups:
        group.kill_all()
    deadline = time.monotonic() + _SWEEP_WAIT_SECONDS
    while time.monotonic() < deadline and any(group.pids() for group in groups):
        time.sleep(0.02)
    left = 0
    for group in groups:
        if group.pids():
            left += 1
            group._close_fds()
            continue
        group.remove()
    if left:
        log.warning("%d environments of a gone server did not die in %.1f s; their cgroups are left for the next "
                    "start", left, _SWEEP_WAIT_SECONDS)
    _remove_dirs(servers)


def _remove_dirs(dirs: Iterable[Path]) -> None:
    for d in dirs:
        try:
            d.rmdir()
        except OSError:
            pass


class EnvCgroup:
    """One environment's groups. ``remove()`` is idempotent and kills whatever still runs in them."""

    def __init__(self, paths: dict[str, Path]) -> None:
        self.paths = paths
        # The files read or written on every invocation stay open: opening a cgroup file by path costs tens of
        # microseconds, a pread/pwrite on an open descriptor about one.
        self._fds: dict[str, int] = {}

    def _fd(self, controller: str, name: str, flags: int) -> int | None:
        key = f"{controller}/{name}"
        fd = self._fds.get(key)
        if fd is None:
            if controller not in self.paths:
                return None
            fd = self._fds[key] = os.open(self.paths[controller] / name, flags | os.O_CLOEXEC)
        return fd

    def _close_fds(self) -> None:
        fds, self._fds = self._fds, {}
        for fd in fds.values():
            os.close(fd)

    def limit_memory(self, memory_mb: int) -> None:
        """memory.limit_in_bytes (and memory+swap, where swap is accounted) = ``memory_mb``. The kernel keeps
        memory+swap at least memory: a raise writes it first, a cut last."""
        memory = self.paths["memory"]
        value = memory_mb * 1024 * 1024
        order = [memory / "memory.limit_in_bytes"]
        memsw = memory / "memory.memsw.limit_in_bytes"
        if memsw.exists():
            order = [memsw, order[0]] if int(_read(order[0])) < value else [order[0], memsw]
        for path in order:
            _write(path, str(value))

    def rename(self, name: str) -> None:
        """Name the groups ``name`` (a pre-started slot's groups become its environment's): cgroup v1 renames a
        group in place, with its tasks and limits; the descriptors kept open stay valid."""
        for controller, path in list(self.paths.items()):
            self.paths[controller] = path.rename(path.with_name(name))

    def procs_files(self) -> list[str]:
        """The files a process writes its pid to, to join every group of this environment."""
        return [str(p / "cgroup.procs") for p in self.paths.values()]

    def add(self, pid: int) -> None:
        for p in self.paths.values():
            _write(p / "cgroup.procs", str(pid))

    def pids(self) -> list[int]:
        any_path = self.paths.get("freezer") or next(iter(self.paths.values()))
        try:
            return [int(x) for x in _read(any_path / "cgroup.procs").split()]
        except OSError:
            return []

    def peak_memory_bytes(self) -> int:
        try:
            fd = self._fd("memory", "memory.max_usage_in_bytes", os.O_RDONLY)
            return int(os.pread(fd, 64, 0)) if fd is not None else 0
        except (OSError, ValueError):
            return 0

    def oom_killed(self) -> bool:
        path = self.paths.get("memory")
        if path is None:
            return False
        try:
            for line in _read(path / "memory.oom_control").splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and int(value) > 0:
                    return True
            return int(_read(path / "memory.failcnt")) > 0 and not self.pids()
        except (OSError, ValueError):
            return False

    def cpu_usage_ns(self) -> int | None:
        """The CPU time every task of the group has used so far, in nanoseconds, as the kernel counts it (a
        function cannot make it smaller); None without the cpuacct controller. One pread on a descriptor kept
        open."""
        controller = "cpuacct" if "cpuacct" in self.paths else "cpu"
        try:
            fd = self._fd(controller, "cpuacct.usage", os.O_RDONLY)
            return int(os.pread(fd, 32, 0)) if fd is not None else None
        except (OSError, ValueError):
            return None

    def limit_cpu(self, memory_mb: int) -> bool:
        """Give the group CPU in proportion to its memory, as Lambda does; False when there is no cpu controller."""
        path = self.paths.get("cpu")
        if path is None:
            return False
        quota, period, burst = cpu_bandwidth(memory_mb)
        has_burst = (path / "cpu.cfs_burst_us").exists()
        if has_burst:
            _write(path / "cpu.cfs_burst_us", "0")  # the kernel refuses a quota under the burst
        _write(path / "cpu.cfs_period_us", str(period))
        _write(path / "cpu.cfs_quota_us", str(quota))
        if has_burst:
            _write(path / "cpu.cfs_burst_us", str(burst))
        return True

    def freeze(self) -> None:
        fd = self._fd("freezer", "freezer.state", os.O_WRONLY)
        if fd is not None:
            os.pwrite(fd, b"FROZEN", 0)

    def thaw(self) -> None:
        fd = self._fd("freezer", "freezer.state", os.O_WRONLY)
        if fd is not None:
            os.pwrite(fd, b"THAWED", 0)

    def kill_all(self) -> None:
        """SIGKILL every task in the group; frozen first, so nothing forks in between."""
        try:
            self.freeze()
        except OSError:
            pass
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.thaw()
        except OSError:
            pass

    def remove(self) -> None:
        for _ in range(100):
            if not self.pids():
                break
            self.kill_all()
            time.sleep(0.005)
        self._close_fds()
        for p in self.paths.values():
            try:
                p.rmdir()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("could not remove cgroup %s: %s", p, exc)


# -- cgroup v2 -----------------------------------------------------------------------------------------------

_V2_REQUIRED = ("memory", "pids")


class CgroupV2Root:
    """The server's own subtree of a cgroup v2 hierarchy, ``<base>/<pid>-<server id>``."""

    def __init__(self, path: Path, controllers: frozenset[str]) -> None:
        self.path = path
        self.controllers = controllers  # those enabled for the environments' groups
        self.dirs = {"unified": path}

    @classmethod
    def probe(cls, server_id: str, mount: Path = Path("/sys/fs/cgroup")) -> "CgroupV2Root | None":
        offered = set(_read_or_empty(mount / "cgroup.controllers").split())
        if not (mount / "cgroup.controllers").exists():
            return None
        missing = [c for c in _V2_REQUIRED if c not in offered]
        if missing:
            log.info("cgroup v2 at %s does not offer the %s controller(s)", mount, ", ".join(missing))
            return None
        try:
            return cls.make(mount / "lambdad", server_id, frozenset(offered & {"memory", "pids", "cpu"}))
        except OSError as exc:
            log.info("cgroup v2 is not available to this process: %s", exc)
            return None

    @classmethod
    def make(cls, base: Path, server_id: str, controllers: frozenset[str]) -> "CgroupV2Root":
        """Make ``base/<pid>-<server id>`` with ``controllers`` enabled down to the environments' groups."""
        sweep_stale_v2(base)
        path = base / f"{os.getpid()}-{server_id}"
        enable = " ".join(f"+{c}" for c in sorted(controllers))
        if enable:
            _write(base.parent / "cgroup.subtree_control", enable)
        base.mkdir(exist_ok=True)
        if enable:
            _write(base / "cgroup.subtree_control", enable)
        path.mkdir(exist_ok=True)
        if enable:
            _write(path / "cgroup.subtree_control", enable)
        return cls(path, controllers)

    def create(self, env_id: str, memory_mb: int) -> "EnvCgroupV2":
        path = self.path / env_id
        path.mkdir(exist_ok=True)
        group = EnvCgroupV2({"unified": path}, self.controllers)
        group.limit_memory(memory_mb)
        if "pids" in self.controllers:
            _write(path / "pids.max", str(PIDS_MAX))
        return group

    def remove(self) -> None:
        for child in self.path.iterdir() if self.path.exists() else ():
            if child.is_dir():
                EnvCgroupV2({"unified": child}, self.controllers).remove()
        _remove_dirs([self.path])


class EnvCgroupV2(EnvCgroup):
    """One environment's group in a v2 hierarchy: the same face as the v1 groups (``EnvCgroup``)."""

    def __init__(self, paths: dict[str, Path], controllers: frozenset[str] = frozenset()) -> None:
        super().__init__(paths)
        self.controllers = controllers

    @property
    def _path(self) -> Path:
        return self.paths["unified"]

    def limit_memory(self, memory_mb: int) -> None:
        if "memory" not in self.controllers:
            return
        _write(self._path / "memory.max", str(memory_mb * 1024 * 1024))
        if (self._path / "memory.swap.max").exists():
            _write(self._path / "memory.swap.max", "0")

    def limit_cpu(self, memory_mb: int) -> bool:
        if "cpu" not in self.controllers:
            return False
        quota, period, burst = cpu_bandwidth(memory_mb)
        has_burst = (self._path / "cpu.max.burst").exists()
        if has_burst:
            _write(self._path / "cpu.max.burst", "0")  # the kernel refuses a quota under the burst
        _write(self._path / "cpu.max", f"{quota} {period}")
        if has_burst:
            _write(self._path / "cpu.max.burst", str(burst))
        return True

    def cpu_usage_ns(self) -> int | None:
        """``cpu.stat``'s ``usage_usec`` (its first line, kept by every v2 group, cpu controller or not), in
        nanoseconds."""
        try:
            fd = self._fd("unified", "cpu.stat", os.O_RDONLY)
            if fd is None:
                return None
            key, _, value = os.pread(fd, 64, 0).partition(b"\n")[0].partition(b" ")
            return int(value) * 1000 if key == b"usage_usec" else None
        except (OSError, ValueError):
            return None

    def peak_memory_bytes(self) -> int:
        try:
            fd = self._fd("unified", "memory.peak", os.O_RDONLY)
            return int(os.pread(fd, 64, 0)) if fd is not None else 0
        except (OSError, ValueError):
            return 0

    def oom_killed(self) -> bool:
        try:
            for line in _read(self._path / "memory.events").splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and int(value) > 0:
                    return True
        except (OSError, ValueError):
            pass
        return False

    def freeze(self) -> None:
        fd = self._fd("unified", "cgroup.freeze", os.O_WRONLY)
        if fd is not None:
            os.pwrite(fd, b"1", 0)

    def thaw(self) -> None:
        fd = self._fd("unified", "cgroup.freeze", os.O_WRONLY)
        if fd is not None:
            os.pwrite(fd, b"0", 0)

    def rename(self, name: str) -> None:
        """v2 refuses to rename a group (EPERM: it is not a migration): a pre-started slot's group keeps its
        name when its environment takes it; only its limits change."""

    def frozen(self) -> bool:
        """Whether every task of the group is frozen now (``cgroup.events``)."""
        return "frozen 1" in _read_or_empty(self._path / "cgroup.events")

    def kill_all(self) -> None:
        """SIGKILL every task: ``cgroup.kill`` where the kernel has it (one write, no race with a fork), else as
        v1 does (frozen first)."""
        kill = self._path / "cgroup.kill"
        if kill.exists():
            try:
                _write(kill, "1")
                return
            except OSError:
                pass
        super().kill_all()


def sweep_stale_v2(base: Path) -> None:
    """Remove the groups of lambdad servers under ``base`` that died without cleaning up, killing what they hold."""
    if not base.is_dir():
        return
    for server_dir in base.iterdir():
        pid = server_dir.name.split("-", 1)[0]
        if not server_dir.is_dir() or not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        log.warning("removing the cgroups of a lambdad server that is gone: %s", server_dir.name)
        groups = [EnvCgroupV2({"unified": child}) for child in server_dir.iterdir() if child.is_dir()]
        for group in groups:
            group.kill_all()
        deadline = time.monotonic() + _SWEEP_WAIT_SECONDS
        while time.monotonic() < deadline and any(group.pids() for group in groups):
            time.sleep(0.02)
        for group in groups:
            if not group.pids():
                group.remove()
            else:
                group._close_fds()
        _remove_dirs([server_dir])


def _read_or_empty(path: Path) -> str:
    try:
        return _read(path)
    except OSError:
        return ""
