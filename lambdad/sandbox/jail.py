"""The jail: what a freshly forked execution environment does to itself before the function's first instruction.

Like Firecracker's jailer, but in-process and in Python. The launcher forks the fork server (a small, single-threaded
root process that has already imported the runtime); the child calls ``enter(spec)``; when it returns, the process
is contained, and it imports the user's handler or ``execve``s another runtime. The function's code is hostile from
its first instruction, so everything below happens before any of it runs.

Steps, in order (``enter`` follows this list one-to-one; docs/security.md copies it):
1. join the network namespace the server made for the environment when it passes one (setns(2); see
   sandbox/network.py), then unshare the mount, UTS and IPC namespaces, the network namespace when the spec asks
   and none was passed, and the PID namespace when the spec asks and the process is not PID 1 of one already
   (one unshare(2));
2. with a PID namespace, unless already PID 1, fork once more: the child is PID 1 of the new namespace and goes
   on with step 3; the parent stays outside as a waiter that ends as the child did (same exit code; same signal,
   re-raised — 128 + signal if re-raising fails), so whoever waits for it sees what the function did;
3. make every mount private (MS_REC|MS_PRIVATE on /): nothing done below propagates to the host;
4. build the new root in ``root_dir``: a small tmpfs; each existing ``ro_binds`` path bound read-only at the same
   path (a symlink is copied as a symlink and its target bound); ``ro_mounts`` likewise at their own places;
   ``masks`` (/etc/shadow, /etc/gshadow...) covered by an empty, unreadable file; the code read-only at /var/task,
   layers read-only at /opt (for a pre-started slot, both empty directories: ``attach`` mounts them later); a fresh
   /tmp: the ext4 ``tmp_device`` (disk, EphemeralStorage MB) or else a tmpfs of ``tmp_size_mb``; a fresh /proc; a minimal /dev (null, zero, full, random, urandom, tty, fd and std*
   links, a tmpfs /dev/shm); then the root itself remounted read-only.
   Read-only binds are bound, then remounted MS_RDONLY|MS_NOSUID|MS_NODEV (never MS_NOEXEC: code runs there);
5. pivot_root into it and detach the old root: nothing else of the host is reachable;
6. set the hostname (UTS namespace);
7. with a new network namespace, bring its loopback interface up (only ``lo`` exists there; one the server made
   has it up already);
8. drop privileges: empty the capability bounding set, clear ambient capabilities, setgroups([]), setresgid,
   setresuid — with every uid non-zero no capability is left; then, when step 2 left a waiter, set the
   parent-death signal to SIGKILL (changing ids clears it), so that the sandbox dies with its waiter;
9. set no_new_privs: nothing exec'd gains privileges (setuid bits, file capabilities);
10. install the seccomp filter (``SECCOMP_DENIED``): another architecture or the x32 ABI -> the process is killed;
    a denied syscall -> EPERM; ``clone``/``unshare`` with namespace flags -> EPERM; ``clone3`` and io_uring ->
    ENOSYS (glibc and libuv fall back); ``personality`` other than the usual ones -> EPERM;
11. chdir to ``workdir`` (/var/task).

Two ways in. ``os.fork()`` then ``enter(spec)``: step 2 forks again and a waiter stays outside the namespace.
``fork()`` (this module's) then ``enter(spec)``: the fork server's one fork already makes the child PID 1 of a new PID
namespace, so step 2 is skipped, no waiter exists, and a cold start is one fork cheaper (about 1.5-2 ms here).
Either way, after ``enter`` returns the process is PID 1 of its own PID namespace: ``os.getpid() == 1``; when it
exits the kernel kills everything else in the namespace; signals sent to it from inside the namespace are ignored
unless it installs a handler; orphans it does not reap stay zombies until it exits.

A pre-started slot (``sandbox/prewarm.py``) is jailed before it has a function: its spec names no ``task_root``
and no ``opt_dir``, so /var/task and /opt are empty directories of the read-only root. When it is assigned,
``attach`` (run by the fork server, as root, outside the jail) gives it its function: it clones the code tree (and
the layers) as detached mounts, read-only, nosuid, nodev and private, enters the slot's mount and UTS namespaces
itself, attaches them at /var/task and /opt, sets the slot's hostname, and returns to its own namespaces. Nothing is shared between the host and the
jail to do it (no mount propagation): every mount stays private, as in step 3, and goes with the namespace.

Errors: a step that fails raises ``JailError`` naming the step, in the process that called ``enter`` (steps 1-2)
or in PID 1 of the new namespace (steps 3-11); either way the caller reports it and ``os._exit``s — a half-built
jail is never used. The host is never changed: every mount lives in the jail's own mount namespace and goes with it.

Cost: it runs on every cold start, in a freshly forked process where each page of memory Python touches for the
first time is a copy-on-write fault; so the steps are plain syscalls and string work, and what can be computed once
(the seccomp program) is computed when the fork server imports this module.

Constraints: standard library only (ctypes for the syscalls Python lacks), no import from the lambdad package
(the fork server loads this file by path under the function's interpreter), Python 3.9 to 3.13, no subprocess.
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import fcntl
import json
import os
import select
import signal
import socket
import stat
import struct
import sys
import time
import types
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Tuple

__all__ = ["JailSpec", "JailError", "enter", "fork", "attach", "probe", "DEFAULT_RO_BINDS", "DEFAULT_MASKS",
           "SECCOMP_DENIED"]

DEFAULT_RO_BINDS = ("/bin", "/etc", "/lib", "/lib32", "/lib64", "/sbin", "/usr")
DEFAULT_MASKS = ("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-")


class JailError(Exception):
    """A jail step failed; the process must not run the function."""


# Loaded by path (as the fork server does), this module may not be in sys.modules, where dataclasses looks the defining
# module up to read string annotations: a stand-in serves while JailSpec is made, and goes after.
_stand_in = None if __name__ in sys.modules else sys.modules.setdefault(__name__, types.ModuleType(__name__))


@dataclass(frozen=True)
class JailSpec:
    """What ``enter`` builds. JSON-serialisable: the server sends it to the fork server with ``to_json()``."""

    root_dir: str  # an empty host directory, one per environment: the jail's root is built on a tmpfs there
    task_root: Optional[str]  # the function's code on the host -> /var/task, read-only; None: a slot's empty /var/task
    opt_dir: Optional[str] = None  # layers on the host -> /opt, read-only (an empty /opt when None)
    tmp_size_mb: int = 512  # a fresh tmpfs /tmp of this size (EphemeralStorage), when there is no tmp_device
    tmp_device: Optional[str] = None  # a formatted ext4 block device (sandbox/scratch.py) mounted at /tmp instead
    shm_size_mb: int = 64  # a tmpfs /dev/shm of this size; 0: none
    ro_binds: Tuple[str, ...] = DEFAULT_RO_BINDS  # host paths shown read-only at the same path; missing ones skipped
    ro_mounts: Tuple[Tuple[str, str], ...] = ()  # (host path, path inside) shown read-only; missing hosts skipped
    masks: Tuple[str, ...] = DEFAULT_MASKS  # paths inside covered by an empty, unreadable file (or directory)
    proc: bool = True  # a fresh /proc (needs pid_namespace: the host's would show every host process)
    dev: bool = True  # a minimal /dev
    uid: Optional[int] = None  # the unprivileged ids to drop to; None keeps root (only for probing)
    gid: Optional[int] = None
    hostname: Optional[str] = None
    pid_namespace: bool = True
    new_net: bool = False  # a network namespace with only a loopback interface
    no_new_privs: bool = True  # always set when seccomp is
    seccomp: bool = True
    workdir: str = "/var/task"

    def __post_init__(self) -> None:
        paths = [self.root_dir, self.workdir, *self.ro_binds, *self.masks]
        paths += [p for pair in self.ro_mounts for p in pair] + [p for p in (self.task_root, self.opt_dir) if p]
        for path in paths:
            if not path.startswith("/") or os.path.normpath(path) != path:
                raise ValueError(f"jail spec: {path!r} is not an absolute, normalised path")
        if (self.uid is None) != (self.gid is None):
            raise ValueError("jail spec: uid and gid go together")
        if self.uid is not None and (self.uid <= 0 or self.gid <= 0):  # type: ignore[operator]
            raise ValueError("jail spec: uid and gid must be unprivileged (non-zero)")
        if self.tmp_size_mb <= 0 or self.shm_size_mb < 0:
            raise ValueError("jail spec: tmp_size_mb must be positive and shm_size_mb not negative")
        if self.proc and not self.pid_namespace:
            raise ValueError("jail spec: a /proc without a PID namespace would show every process of the host")
        if self.hostname is not None and not 0 < len(self.hostname.encode()) <= 64:
            raise ValueError("jail spec: the hostname must be 1 to 64 bytes")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "JailSpec":
        data = json.loads(text)
        for name in ("ro_binds", "masks"):
            if name in data:
                data[name] = tuple(data[name])
        if "ro_mounts" in data:
            data["ro_mounts"] = tuple(tuple(pair) for pair in data["ro_mounts"])
        return cls(**data)


if _stand_in is not None and sys.modules.get(__name__) is _stand_in:
    del sys.modules[__name__]


# -- syscalls Python lacks (os.unshare arrived in 3.12) -------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.syscall.restype = ctypes.c_long
_libc.ptrace.restype = ctypes.c_long
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWUSER, CLONE_NEWCGROUP, CLONE_NEWTIME = (
    0x20000000, 0x40000000, 0x10000000, 0x02000000, 0x00000080)
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    1, 2, 4, 8, 32, 4096, 16384, 1 << 18)
MNT_DETACH = 2
PTRACE_DETACH = 17
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_SECCOMP, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = (
    1, 4, 22, 24, 38, 47)
PR_CAP_AMBIENT_CLEAR_ALL, SECCOMP_MODE_FILTER = 4, 2
_RO = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV


def _check(result: int, what: str) -> int:
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def _unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(_libc.mount(_b(source), target.encode(), _b(fstype), flags, _b(data)), f"mount {target}")


def _b(text: str | None) -> bytes | None:
    return None if text is None else text.encode()


def _prctl(option: int, arg2: int = 0, arg3: int = 0) -> int:
    return _check(_libc.prctl(option, arg2, arg3, 0, 0), f"prctl({option})")


# -- seccomp ------------------------------------------------------------------------------------------------------

# Denied with EPERM: no function needs them, and Lambda refuses them. name -> (x86_64, aarch64); None: absent there.
SECCOMP_DENIED: dict[str, tuple[int, int | None]] = {
    "ptrace": (101, 117), "process_vm_readv": (310, 270), "process_vm_writev": (311, 271), "kcmp": (312, 272),
    "pidfd_getfd": (438, 438), "mount": (165, 40), "umount2": (166, 39), "pivot_root": (155, 41),
    "chroot": (161, 51), "open_tree": (428, 428), "move_mount": (429, 429), "fsopen": (430, 430),
    "fsconfig": (431, 431), "fsmount": (432, 432), "fspick": (433, 433), "mount_setattr": (442, 442),
    "open_tree_attr": (467, 467), "setns": (308, 268), "swapon": (167, 224), "swapoff": (168, 225),
    "reboot": (169, 142), "kexec_load": (246, 104), "kexec_file_load": (320, 294), "init_module": (175, 105),
    "finit_module": (313, 273), "delete_module": (176, 106), "bpf": (321, 280), "perf_event_open": (298, 241),
    "keyctl": (250, 219), "add_key": (248, 217), "request_key": (249, 218), "acct": (163, 89),
    "settimeofday": (164, 170), "clock_settime": (227, 112), "clock_adjtime": (305, 266), "adjtimex": (159, 171),
    "quotactl": (179, 60), "quotactl_fd": (443, 443), "open_by_handle_at": (304, 265),
    "name_to_handle_at": (303, 264), "userfaultfd": (323, 282), "lookup_dcookie": (212, 18), "iopl": (172, None),
    "ioperm": (173, None), "syslog": (103, 116), "vhangup": (153, 58), "uselib": (134, None),
    "_sysctl": (156, None), "nfsservctl": (180, 42),
}
# Answered ENOSYS, so that callers fall back: glibc's clone3 -> clone (the filter cannot read clone3's flags, which
# sit behind a pointer), libuv's io_uring -> its thread pool (io_uring is a large attack surface).
SECCOMP_ENOSYS: dict[str, tuple[int, int | None]] = {"clone3": (435, 435), "io_uring_setup": (425, 425), "io_uring_enter": (426, 426),
                  "io_uring_register": (427, 427)}
# Checked against their first argument (the low 32 bits, which is all these syscalls read).
_CLONE = {"x86_64": 56, "aarch64": 220}
_UNSHARE = {"x86_64": 272, "aarch64": 97}
_PERSONALITY = {"x86_64": 135, "aarch64": 92}
_NS_FLAGS = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUSER | CLONE_NEWCGROUP
_PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)  # PER_LINUX, PER_LINUX32, UNAME26 of both, query
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_X32_SYSCALL_BIT = 0x40000000
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
_RET_KILL_PROCESS, _RET_ERRNO, _RET_ALLOW = 0x80000000, 0x00050000, 0x7FFF0000
_LD_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06  # BPF_LD|W|ABS, BPF_JMP|{JEQ,JGE,JSET}|K, BPF_RET|K


def _seccomp_program(machine: str) -> bytes | None:
    """The filter as classic BPF for this architecture (struct sock_filter[]), or None when there is no table."""
    if machine not in _AUDIT_ARCH:
        return None
    col = 0 if machine == "x86_64" else 1
    code: list[tuple[int, int | str, int | str, int]] = []  # (op, jt, jf, k); jt and jf may name a label
    labels: dict[str, int] = {}

    def op(o: int, k: int, jt: int | str = 0, jf: int | str = 0) -> None:
        code.append((o, jt, jf, k))

    op(_LD_ABS, 4)  # seccomp_data.arch
    op(_JEQ, _AUDIT_ARCH[machine], 0, "kill")
    op(_LD_ABS, 0)  # seccomp_data.nr
    if machine == "x86_64":
        op(_JGE, _X32_SYSCALL_BIT, "kill", 0)
    for table, target in ((SECCOMP_DENIED, "eperm"), (SECCOMP_ENOSYS, "enosys")):
        for numbers in table.values():
            number = numbers[col]
            if number is not None:
                op(_JEQ, number, target, 0)
    op(_JEQ, _CLONE[machine], "clone", 0)
    op(_JEQ, _UNSHARE[machine], "unshare", 0)
    op(_JEQ, _PERSONALITY[machine], "personality", 0)
    op(_RET, _RET_ALLOW)
    labels["clone"] = len(code)
    op(_LD_ABS, 16)  # args[0], low half (little-endian)
    op(_JSET, _NS_FLAGS, "eperm", "allow")
    labels["unshare"] = len(code)
    op(_LD_ABS, 16)
    op(_JSET, _NS_FLAGS | CLONE_NEWTIME, "eperm", "allow")
    labels["personality"] = len(code)
    op(_LD_ABS, 16)
    for value in _PERSONALITIES:
        op(_JEQ, value, "allow", 0)
    labels["eperm"] = len(code)
    op(_RET, _RET_ERRNO | errno.EPERM)
    labels["allow"] = len(code)
    op(_RET, _RET_ALLOW)
    labels["enosys"] = len(code)
    op(_RET, _RET_ERRNO | errno.ENOSYS)
    labels["kill"] = len(code)
    op(_RET, _RET_KILL_PROCESS)
    out = bytearray()
    for i, (o, jt, jf, k) in enumerate(code):
        skips = [labels[j] - i - 1 if isinstance(j, str) else j for j in (jt, jf)]  # jumps are relative
        assert all(0 <= n <= 255 for n in skips), "seccomp jump out of range"
        out += struct.pack("=HBBI", o, skips[0], skips[1], k)
    return bytes(out)


_MACHINE = os.uname().machine
_SECCOMP_FILTER = _seccomp_program(_MACHINE)  # built once, when the fork server imports this module


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _seccomp_prog() -> tuple[object, _SockFprog] | None:
    if _SECCOMP_FILTER is None:
        return None
    buf = ctypes.create_string_buffer(_SECCOMP_FILTER, len(_SECCOMP_FILTER))
    return buf, _SockFprog(len(_SECCOMP_FILTER) // 8, ctypes.addressof(buf))


_SECCOMP_PROG = _seccomp_prog()  # (the buffer, kept alive; the sock_fprog pointing at it): never written after


def _install_seccomp() -> None:
    if _SECCOMP_PROG is None:
        raise OSError(errno.ENOSYS, f"no seccomp syscall table for {_MACHINE} (x86_64 and aarch64 only)")
    prog = ctypes.addressof(_SECCOMP_PROG[1])
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog, 0, 0), "seccomp filter")


# -- enter --------------------------------------------------------------------------------------------------------


@contextmanager
def _step(number: int, what: str) -> Iterator[None]:
    try:
        yield
    except JailError:
        raise
    except (OSError, ValueError) as exc:
        raise JailError(f"jail step {number} ({what}) failed: {exc}") from exc


def enter(spec: JailSpec, net_fd: Optional[int] = None) -> None:
    """Contain the calling process as ``spec`` asks, in the order the module docstring lists.

    Call it in a freshly forked, single-threaded root process. With ``spec.pid_namespace``, unless the process is
    PID 1 already (forked by ``fork()``), it returns in a new process, PID 1 of a new PID namespace, while the
    calling process waits for it and never returns. ``net_fd``: a network namespace made for it by the server
    (sandbox/network.py) to join in step 1 instead of a new one; the descriptor is closed there."""
    fork_needed = spec.pid_namespace and os.getpid() != 1
    flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC
    flags |= (CLONE_NEWPID if fork_needed else 0) | (CLONE_NEWNET if spec.new_net and net_fd is None else 0)
    with _step(1, "unshare namespaces"):
        if net_fd is not None:
            try:
                _check(_libc.setns(net_fd, CLONE_NEWNET), "setns into the environment's network namespace")
            finally:
                os.close(net_fd)
        _unshare(flags)
    alive_fd = None
    if fork_needed:
        with _step(2, "fork into the PID namespace"):
            alive_fd = _fork_into_pid_namespace()
    with _step(3, "make mounts private"):
        _mount(None, "/", None, MS_REC | MS_PRIVATE)
    with _step(4, "build the root"):
        _build_root(spec)
    with _step(5, "pivot_root"):
        _pivot_root(spec.root_dir)
    if spec.hostname is not None:
        with _step(6, "set the hostname"):
            socket.sethostname(spec.hostname)
    if spec.new_net and net_fd is None:
        with _step(7, "bring the loopback up"):
            _loopback_up()
    with _step(8, "drop privileges"):
        if spec.uid is not None:
            _drop_privileges(spec.uid, spec.gid)  # type: ignore[arg-type]
        if alive_fd is not None:
            _die_with_parent(alive_fd)
    if spec.no_new_privs or spec.seccomp:
        with _step(9, "no_new_privs"):
            _prctl(PR_SET_NO_NEW_PRIVS, 1)
    if spec.seccomp:
        with _step(10, "seccomp filter"):
            _install_seccomp()
    with _step(11, "chdir"):
        os.chdir(spec.workdir)


def fork() -> int:
    """``os.fork()``, but the child is PID 1 of a new PID namespace: for the fork server, to spare every environment
    step 2's second fork and its waiter. The child then calls ``enter`` (which sees it is PID 1 and skips step 2);
    the caller waits for it as for any child. The caller must be root and single-threaded: its PID namespace for
    children is switched for this one fork and switched back before ``fork`` returns."""
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    pid = -1
    try:
        _unshare(CLONE_NEWPID)  # applies to the next child only: the caller itself stays where it is
        try:
            pid = os.fork()
        finally:
            if pid != 0:  # in the caller: the children it forks later go to its own namespace again
                _check(_libc.setns(own, CLONE_NEWPID), "setns back to the caller's PID namespace")
    finally:
        os.close(own)  # in the child too: no handle on the host's PID namespace stays in the sandbox
    return pid


# -- attach: a pre-started slot gets its function ------------------------------------------------------------------

_SYS_OPEN_TREE, _SYS_MOVE_MOUNT, _SYS_MOUNT_SETATTR = 428, 429, 442  # the same numbers on x86_64 and aarch64
OPEN_TREE_CLONE, AT_FDCWD, AT_EMPTY_PATH, MOVE_MOUNT_F_EMPTY_PATH = 1, -100, 0x1000, 0x4
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV = 0x1, 0x2, 0x4


def attach(pid: int, mounts: Tuple[Tuple[str, str], ...], hostname: str) -> None:
    """Give the jailed slot ``pid`` its function: each (host path, path inside) of ``mounts`` read-only, nosuid,
    nodev and private at its place, and ``hostname``. For the fork server (root, single-threaded, outside every
    jail), only while no code but ours has run in the slot: its root is read-only, so the places cannot have been
    replaced.

    The trees are cloned here, outside; then the caller itself enters the slot's mount and UTS namespaces
    (setns needs a single-threaded caller), attaches them, sets the hostname, and goes back to its own namespaces
    and working directory. Not a helper forked for it: a fork of the 35 MB Python fork server alone took
    1.2-2.2 ms of a 4-6 ms attach. While inside, the caller runs only the syscalls below, on paths of a read-only
    root it built itself; a way back that fails ends the caller (``os._exit``) rather than let it go on inside a
    slot's namespace."""
    trees: list[tuple[int, str]] = []  # (detached tree fd, path inside)
    fds: list[int] = []  # everything to close here
    try:
        for host, inside in mounts:
            trees.append((_detached_tree(host), inside))
            fds.append(trees[-1][0])
        for path in (f"/proc/{pid}/ns/mnt", f"/proc/{pid}/ns/uts", "/proc/self/ns/mnt", "/proc/self/ns/uts"):
            fds.append(os.open(path, os.O_RDONLY | os.O_CLOEXEC))
        fds.append(os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))
        slot_mnt, slot_uts, own_mnt, own_uts, cwd = fds[len(trees):]
        _check(_libc.setns(slot_uts, CLONE_NEWUTS), "setns into the slot's UTS namespace")
        try:
            socket.sethostname(hostname)
        finally:
            _back(own_uts, CLONE_NEWUTS, cwd)
        _check(_libc.setns(slot_mnt, CLONE_NEWNS), "setns into the slot's mount namespace")
        try:
            for fd, inside in trees:
                _move_mount(fd, inside)
        finally:
            _back(own_mnt, CLONE_NEWNS, cwd)
    except OSError as exc:
        raise OSError(exc.errno or errno.EIO, f"attach to slot {pid}: {exc}") from exc
    finally:
        for fd in fds:
            os.close(fd)


def _back(namespace: int, kind: int, cwd: int) -> None:
    """Return to the caller's own ``namespace`` (and, for a mount namespace, its working directory), or end it."""
    if _libc.setns(namespace, kind) == -1 or (kind == CLONE_NEWNS and _fchdir(cwd) != 0):
        os.write(2, b"lambdad fork server: could not return from a slot's namespace\n")
        os._exit(70)


def _fchdir(fd: int) -> int:
    try:
        os.fchdir(fd)
    except OSError:
        return -1
    return 0


def _detached_tree(host: str) -> int:
    """A detached clone of the host tree ``host`` (a mount of its own, in no namespace yet), read-only, nosuid,
    nodev and private."""
    fd = _check(_libc.syscall(ctypes.c_long(_SYS_OPEN_TREE), ctypes.c_int(AT_FDCWD), host.encode(),
                              ctypes.c_uint(OPEN_TREE_CLONE | os.O_CLOEXEC)), f"open_tree {host}")
    try:
        attr = ctypes.create_string_buffer(struct.pack(
            "=QQQQ", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0, MS_PRIVATE, 0), 32)
        _check(_libc.syscall(ctypes.c_long(_SYS_MOUNT_SETATTR), ctypes.c_int(fd), b"", ctypes.c_uint(AT_EMPTY_PATH),
                             attr, ctypes.c_size_t(32)), f"mount_setattr {host}")
    except OSError:
        os.close(fd)
        raise
    return fd


def _move_mount(fd: int, target: str) -> None:
    _check(_libc.syscall(ctypes.c_long(_SYS_MOVE_MOUNT), ctypes.c_int(fd), b"", ctypes.c_int(AT_FDCWD),
                         target.encode(), ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH)), f"move_mount {target}")


def _fork_into_pid_namespace() -> int:
    """Fork; the parent waits and exits as its child did. Returns, in the child, a fd that reports the parent's
    death (the read end of a pipe whose write end only the parent keeps)."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # an ignored SIGCHLD would reap the child behind waitpid's back
    alive_r, alive_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(alive_w)
        return alive_r
    try:
        os.close(alive_r)
        for interrupt in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(interrupt, signal.SIG_DFL)
        while True:
            _, status = os.waitpid(pid, 0)
            if not os.WIFSTOPPED(status):
                break
            # Only a tracee stops here (without seccomp, PTRACE_TRACEME makes this waiter its tracer): let it go.
            _libc.ptrace(PTRACE_DETACH, pid, 0, os.WSTOPSIG(status))
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            if sig not in (signal.SIGKILL, signal.SIGSTOP):
                signal.signal(sig, signal.SIG_DFL)
            _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # so that a re-raised SIGSEGV dumps no core of a root process
            os.kill(os.getpid(), sig)
            os._exit(128 + sig)
        os._exit(os.WEXITSTATUS(status))
    finally:  # never return into the caller's code
        try:
            os.kill(pid, signal.SIGKILL)
        finally:
            os._exit(1)


def _die_with_parent(alive_fd: int) -> None:
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    gone = select.select([alive_fd], [], [], 0)[0]  # the waiter died before the line above: EOF on its pipe
    os.close(alive_fd)
    if gone:
        os._exit(1)


def _path(root: str, path: str, kind: str | None) -> str | None:
    """``root + path``, creating what is missing (the last component a ``kind``: "dir" or "file"), never through a
    symlink. With ``kind`` None nothing is created and a missing path gives None. A directory created on the way
    gets the host's permissions for the same path, plus search: the /root on the way to a runtime bound under
    /root/.pyenv can be crossed but not listed, as on the host."""
    current = root
    parts = path.split("/")[1:] if path != "/" else []
    last = len(parts) - 1
    for i, part in enumerate(parts):
        current = f"{current}/{part}"
        if kind is not None:  # the root is a fresh tmpfs: most components are new, so create first, look after
            try:
                if i == last:
                    if kind == "file":
                        os.close(os.open(current, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644))
                    else:
                        os.mkdir(current, 0o755)
                else:
                    os.mkdir(current, _crossing_mode(current[len(root):]))
                continue
            except FileExistsError:
                pass
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(st.st_mode):
            raise OSError(errno.ELOOP, f"{path}: {current[len(root):]} is a symlink inside the jail")
    return current


def _crossing_mode(path: str) -> int:
    try:
        return (os.stat(path).st_mode & 0o755) | 0o111
    except OSError:
        return 0o755


def _bind_ro(source: str, root: str, target: str) -> None:
    kind = "dir" if os.path.isdir(source) else "file"
    dest = _path(root, target, kind)
    assert dest is not None
    _mount(source, dest, None, MS_BIND)
    _mount(None, dest, None, _RO)


def _ro_bind_plan(paths: Tuple[str, ...]) -> tuple[list[tuple[str, str]], list[str]]:
    """(symlinks to copy, as (path, link text); paths to bind), parents first, nested duplicates dropped. A path
    that is itself a symlink is copied as one and its target bound instead. (Plain string work: this runs on
    every cold start, in a freshly forked process where each new line of Python costs page faults.)"""
    links, binds = [], []
    for path in paths:
        try:
            if stat.S_ISLNK(os.lstat(path).st_mode):
                text = os.readlink(path)
                links.append((path, text))
                path = text if text.startswith("/") else path[: path.rindex("/") + 1] + text
                if "/." in path or "//" in path:
                    path = os.path.normpath(path)
                os.stat(path)
        except FileNotFoundError:
            continue
        binds.append(path)
    binds.sort()
    kept: list[str] = []
    for path in binds:
        if not kept or (path != kept[-1] and not any(path.startswith(k + "/") for k in kept)):
            kept.append(path)
    return links, kept


def _build_root(spec: JailSpec) -> None:
    root = spec.root_dir
    if not os.path.isdir(root):
        raise OSError(errno.ENOENT, f"root_dir {root} is not a directory")
    old_umask = os.umask(0)
    try:
        _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
        links, binds = _ro_bind_plan(spec.ro_binds)
        for path in binds:
            _bind_ro(path, root, path)
        for path, text in links:
            dest = f"{root}{path}"
            if not os.path.lexists(dest):
                _path(root, os.path.dirname(path), "dir")
                os.symlink(text, dest)
        for host, inside in spec.ro_mounts:
            if os.path.exists(host):
                _bind_ro(host, root, inside)
        _mask(root, spec.masks)
        for source, inside in ((spec.task_root, "/var/task"), (spec.opt_dir, "/opt")):
            if source is not None:
                _bind_ro(source, root, inside)
            else:
                _path(root, inside, "dir")
        tmp = _path(root, "/tmp", "dir")
        if spec.tmp_device:  # disk, sized by EphemeralStorage, owned by the sandbox user
            _mount(spec.tmp_device, tmp, "ext4", MS_NOSUID | MS_NODEV, None)  # type: ignore
        else:
            _mount("tmpfs", tmp, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={spec.tmp_size_mb}m")  # type: ignore
        if spec.proc:
            _mount("proc", _path(root, "/proc", "dir"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)  # type: ignore
        if spec.dev:
            _build_dev(root, spec.shm_size_mb)
        _mount(None, root, None, _RO)
    finally:
        os.umask(old_umask)


def _mask(root: str, masks: Tuple[str, ...]) -> None:
    """Cover each existing path with an empty, unreadable file or directory, bound from the root tmpfs and then
    unlinked there (the binds keep it; nothing shows at the root)."""
    blanks: dict[bool, str] = {}
    for path in masks:
        dest = _path(root, path, None)
        if dest is None:
            continue
        is_dir = os.path.isdir(dest)
        if is_dir not in blanks:
            blanks[is_dir] = f"{root}/.mask-{'dir' if is_dir else 'file'}"
            if is_dir:
                os.mkdir(blanks[is_dir], 0)
            else:
                os.close(os.open(blanks[is_dir], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0))
        _mount(blanks[is_dir], dest, None, MS_BIND)
    for is_dir, blank in blanks.items():
        (os.rmdir if is_dir else os.unlink)(blank)


_DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0))
_DEV_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
              ("stderr", "/proc/self/fd/2"))


def _build_dev(root: str, shm_size_mb: int) -> None:
    dev = _path(root, "/dev", "dir")
    assert dev is not None
    _mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k")
    for name, major, minor in _DEVICES:
        os.mknod(f"{dev}/{name}", 0o666 | stat.S_IFCHR, os.makedev(major, minor))
    for name, target in _DEV_LINKS:
        os.symlink(target, f"{dev}/{name}")
    if shm_size_mb:
        os.mkdir(f"{dev}/shm", 0o755)
        _mount("tmpfs", f"{dev}/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, f"mode=1777,size={shm_size_mb}m")
    _mount(None, dev, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC)  # device nodes still work


def _pivot_root(root: str) -> None:
    number = _SYS_PIVOT_ROOT.get(_MACHINE)
    if number is None:
        raise OSError(errno.ENOSYS, f"pivot_root: no syscall number for {_MACHINE} (x86_64 and aarch64 only)")
    os.chdir(root)
    _check(_libc.syscall(ctypes.c_long(number), b".", b"."), "pivot_root")
    _check(_libc.umount2(b".", MNT_DETACH), "detach the old root")  # the old root was stacked on top of "."
    os.chdir("/")


_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS, struct.pack("16sH22x", b"lo", 0))
        flags = struct.unpack("16sH22x", ifreq)[1]
        fcntl.ioctl(s.fileno(), _SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | _IFF_UP))


def _last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 63  # the loop below stops at the first capability the kernel does not know


_LAST_CAP = _last_cap()


def _drop_privileges(uid: int, gid: int) -> None:
    prctl = _libc.prctl
    for cap in range(_LAST_CAP + 1):
        if prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == -1:
            if ctypes.get_errno() == errno.EINVAL:  # past the last capability this kernel knows
                break
            _check(-1, "drop the capability bounding set")
    if _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == -1 and ctypes.get_errno() != errno.EINVAL:
        _check(-1, "clear ambient capabilities")  # EINVAL: a kernel before 4.3, which has none
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
        raise OSError(errno.EPERM, "the ids did not change")


# -- probe --------------------------------------------------------------------------------------------------------


def probe(uid: int = 65534, timeout: float = 10.0) -> dict[str, bool | str]:
    """Which protections work on this machine. Each is tried in a throwaway forked child, so probing changes
    nothing here. Keys: one bool per protection; ``<protection>_error`` says why one failed; ``machine``."""
    import tempfile

    result: dict[str, bool | str] = {"machine": _MACHINE, "root": os.geteuid() == 0}
    root_dir, task_root = tempfile.mkdtemp(prefix="jail-probe-"), tempfile.mkdtemp(prefix="jail-probe-")
    try:
        bare = JailSpec(root_dir=root_dir, task_root=task_root, seccomp=False, no_new_privs=False, proc=False,
                        dev=False, pid_namespace=False)

        def full(**changes: object) -> JailSpec:
            return dataclasses.replace(bare, **changes)  # type: ignore[arg-type]

        checks: dict[str, Callable[[], object]] = {
            "namespaces": lambda: _unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC),
            "pid_namespace": _probe_pid_namespace,
            "net_namespace": _probe_net_namespace,
            "private_root": lambda: enter(full(hostname="probe")),
            "proc_and_dev": lambda: enter(full(pid_namespace=True, proc=True, dev=True)),
            "uid_drop": lambda: _probe_uid_drop(uid),
            "seccomp": _probe_seccomp,
            "attach": lambda: _probe_attach(task_root),
        }
        for name, check in checks.items():
            error = _in_child(check, timeout)
            result[name] = error is None
            if error is not None:
                result[f"{name}_error"] = error
    finally:
        os.rmdir(root_dir)  # the mounts were the children's, gone with them: the directories are empty
        os.rmdir(task_root)
    return result


def _probe_attach(tree: str) -> None:
    """The mount API ``attach`` needs (Linux 5.12): a tree cloned read-only and attached, in a private mount
    namespace of this throwaway child."""
    _unshare(CLONE_NEWNS)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    fd = _detached_tree(tree)
    _move_mount(fd, tree)
    if not os.statvfs(tree).f_flag & os.ST_RDONLY:
        raise OSError(errno.EINVAL, "the attached tree is not read-only")


def _probe_pid_namespace() -> None:
    for expect_pid_1 in (True, False):  # ``fork()``'s child is PID 1; the next plain fork's child is not
        pid = fork() if expect_pid_1 else os.fork()
        if pid == 0:
            os._exit(0 if (os.getpid() == 1) == expect_pid_1 else 1)
        if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0:
            raise OSError(errno.EINVAL, "fork() did not give PID 1 of a new PID namespace, then the caller's own")


def _probe_net_namespace() -> None:
    _unshare(CLONE_NEWNET)
    _loopback_up()


def _probe_uid_drop(uid: int) -> None:
    _drop_privileges(uid, uid)
    with open("/proc/self/status") as f:
        caps = [line.split()[1] for line in f if line.startswith(("CapEff", "CapPrm"))]
    if any(int(c, 16) for c in caps):
        raise OSError(errno.EPERM, "capabilities remain after the uid drop")


def _probe_seccomp() -> None:
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _install_seccomp()
    ptrace = _libc.ptrace(0, 0, None, None)  # PTRACE_TRACEME: allowed to any process without the filter
    if ptrace != -1 or ctypes.get_errno() != errno.EPERM:
        raise OSError(errno.EINVAL, "the filter did not refuse ptrace")


def _in_child(check: Callable[[], object], timeout: float) -> str | None:
    """Run ``check`` in a forked child; None when it succeeded, else why not."""
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    with warnings.catch_warnings():  # Python 3.12+ warns when a multi-threaded process forks; this child only
        warnings.simplefilter("ignore", DeprecationWarning)  # makes syscalls and writes to a pipe
        pid = os.fork()
    if pid == 0:
        message = b""
        try:
            os.close(read_fd)
            check()
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            message = f"{type(exc).__name__}: {exc}".encode() or b"failed"
        finally:
            try:
                os.write(write_fd, message or b"ok")
            finally:
                os._exit(0)
    os.close(write_fd)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([read_fd], [], [], left)[0]:
                chunks = [b"timed out"]
                os.kill(pid, signal.SIGKILL)
                break
            data = os.read(read_fd, 4096)
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(read_fd)
        os.waitpid(pid, 0)
    text = b"".join(chunks).decode(errors="replace")
    return None if text == "ok" else (text or "the probe died")


if __name__ == "__main__":  # ``python jail.py``: what works here, as JSON
    print(json.dumps(probe(), indent=2, sort_keys=True))
