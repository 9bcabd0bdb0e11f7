"""The jail (lambdad/sandbox/jail.py) against hostile code: a forked child enters it and tries to get out.

Each jailed child reports what it saw through a pipe, as JSON; the tests assert on that report. No server needed;
the jailed tests need root and a kernel with namespaces, and are skipped (with the reason) otherwise.
"""

from __future__ import annotations

import ctypes
import errno
import glob
import json
import mmap
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import warnings
from pathlib import Path
from typing import Callable, Iterator

import pytest

from lambdad.sandbox import jail

UID = GID = 993
TMP_MB = 1
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


@pytest.fixture(scope="module")
def jail_works() -> dict:
    if os.geteuid() != 0:
        pytest.skip("the jail needs root (CAP_SYS_ADMIN)")
    probed = jail.probe(uid=UID)
    missing = {k: probed.get(f"{k}_error") for k in ("namespaces", "pid_namespace", "private_root", "proc_and_dev",
                                                     "uid_drop") if not probed.get(k)}
    if missing:
        pytest.skip(f"this machine cannot build a jail: {missing}")
    return probed


def _make_tree(base: Path) -> dict[str, Path]:
    """A code tree the host leaves writable (so that only the read-only mount stops writes), an empty root_dir,
    and a secret the jail must not show."""
    tree = {"code": base / "code", "root": base / "root", "secret": base / "secret" / "data.txt"}
    for d in ("code", "root", "secret"):
        (base / d).mkdir()
    (tree["code"] / "handler.py").write_text("def handler(event, context):\n    return 42\n")
    os.chmod(tree["code"] / "handler.py", 0o666)
    os.chmod(tree["code"], 0o777)
    tree["secret"].write_text("do not read")
    return tree


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    return _make_tree(tmp_path)


def _spec(tree: dict[str, Path], **changes: object) -> jail.JailSpec:
    prefixes = tuple(sorted({sys.base_prefix, sys.prefix}))
    fields = dict(root_dir=str(tree["root"]), task_root=str(tree["code"]), tmp_size_mb=TMP_MB,
                  ro_binds=jail.DEFAULT_RO_BINDS + prefixes, uid=UID, gid=GID, hostname="lambdad-test", new_net=True)
    fields.update(changes)
    return jail.JailSpec(**fields)  # type: ignore[arg-type]


def _fork() -> int:
    with warnings.catch_warnings():  # Python 3.12+ warns about forking a process that has threads (pytest-xdist)
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


def _fork_jailed(spec: jail.JailSpec, body: Callable[[], None]) -> int:
    """Fork a child that enters the jail and runs ``body``, then exits 0; returns its pid."""
    pid = _fork()
    if pid == 0:
        try:
            jail.enter(spec)
            body()
        finally:
            os._exit(0)
    return pid


def _jail_fork() -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return jail.fork()


def _run_jailed(spec: jail.JailSpec, look: Callable[[], dict], fork: Callable[[], int] = _fork) -> tuple[dict, int]:
    """Fork; the child enters the jail and reports ``look()``. Returns the report and the child's wait status."""
    read_fd, write_fd = os.pipe()
    pid = fork()
    if pid == 0:
        report: dict = {}
        try:
            os.close(read_fd)
            started = time.perf_counter()
            jail.enter(spec)
            report["enter_ms"] = (time.perf_counter() - started) * 1000
            report.update(look())
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            report["error"] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
        finally:
            try:
                os.write(write_fd, json.dumps(report).encode())
            finally:
                os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    report = json.loads(data)
    assert "error" not in report, report["error"]
    return report, status


def _errno(action: Callable[[], object]) -> str:
    """The errno name an action fails with, or "ok"."""
    try:
        action()
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, str(exc))
    return "ok"


def _libc_errno(result: int) -> str:
    return "ok" if result != -1 else errno.errorcode[ctypes.get_errno()]


def _death(action: Callable[[], object]) -> str:
    """Run ``action`` in a forked child: how it ended ("exit N" or the signal's name)."""
    pid = os.fork()
    if pid == 0:
        try:
            action()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return signal.Signals(os.WTERMSIG(status)).name if os.WIFSIGNALED(status) else f"exit {os.WEXITSTATUS(status)}"


def _i386_getpid() -> None:
    """Make a 32-bit system call (int 0x80) from 64-bit code: a way around a filter that checks no architecture."""
    code = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    code.write(bytes.fromhex("b814000000" "cd80" "c3"))  # mov eax, 20 (getpid); int 0x80; ret
    ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(code)))()


def _fill_tmp() -> None:
    with open("/tmp/fill", "wb") as f:
        for _ in range(TMP_MB * 2):
            f.write(b"x" * (1 << 20))
            f.flush()
            os.fsync(f.fileno())


def _loopback_echo() -> str:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=5) as client:
            conn, _ = server.accept()
            with conn:
                client.sendall(b"ping")
                return conn.recv(4).decode()


def _thread_runs() -> bool:
    ran = []
    t = threading.Thread(target=lambda: ran.append(True))
    t.start()
    t.join(5)
    return ran == [True]


def _clone_newuser() -> None:
    """clone(CLONE_NEWUSER | SIGCHLD), fork-like: both processes exit 100 if it worked, else the errno."""
    result = _libc.syscall(56 if os.uname().machine == "x86_64" else 220, 0x10000000 | signal.SIGCHLD, 0, 0, 0, 0)
    os._exit(100 if result >= 0 else ctypes.get_errno())


def _status_caps() -> dict[str, int]:
    with open("/proc/self/status") as f:
        return {k: int(v, 16) for k, v in (line.split(":") for line in f) if k in ("CapEff", "CapPrm", "CapBnd")}


def _look_around(host_paths: list[str]) -> Callable[[], dict]:
    def look() -> dict:
        x86 = os.uname().machine == "x86_64"
        return {
            "pid": os.getpid(),
            "uids": os.getresuid(), "gids": os.getresgid(), "groups": os.getgroups(), "caps": _status_caps(),
            "cwd": os.getcwd(),
            "task_read": open("/var/task/handler.py").read(),
            "task_write": _errno(lambda: open("/var/task/handler.py", "a")),
            "task_create": _errno(lambda: open("/var/task/new.py", "w")),
            "root_create": _errno(lambda: open("/new", "w")),
            "tmp_write": _errno(lambda: Path("/tmp/small").write_text("ok")),
            "tmp_fill": _errno(_fill_tmp),
            "root_listing": sorted(os.listdir("/")),
            "root_home": _errno(lambda: os.listdir("/root")),
            "pyenv_versions": sorted(os.listdir("/root/.pyenv/versions")) if os.path.isdir("/root/.pyenv") else [],
            "host_paths_visible": [p for p in host_paths if os.path.lexists(p)],
            "proc_pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
            "dev": sorted(os.listdir("/dev")),
            "dev_null": _errno(lambda: open("/dev/null", "w").write("x")),
            "urandom": len(open("/dev/urandom", "rb").read(16)),
            "shadow_size": os.stat("/etc/shadow").st_size if os.path.exists("/etc/shadow") else None,
            "shadow_read": _errno(lambda: open("/etc/shadow").read()),
            "passwd_read": _errno(lambda: open("/etc/passwd").read()),
            "hostname": socket.gethostname(),
            "interfaces": sorted(name for _, name in socket.if_nameindex()),
            "loopback": _loopback_echo(),
            "thread": _thread_runs(),
            "subprocess": subprocess.run(["/bin/echo", "hi"], capture_output=True, check=True).stdout.decode(),
            "setuid_root": _errno(lambda: os.setuid(0)),
            "chroot": _errno(lambda: os.chroot("/tmp")),
            "ptrace_traceme": _libc_errno(_libc.ptrace(0, 0, 0, 0)),
            "mount": _libc_errno(_libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, None)),
            "clone_newuser": _death(_clone_newuser),  # before unshare_user, which would change its answer
            "unshare_user": _libc_errno(_libc.unshare(0x10000000)),
            "unshare_files": _libc_errno(_libc.unshare(0x00000400)),  # CLONE_FILES: harmless, allowed
            "clone3": _libc_errno(_libc.syscall(435, None, 0)),
            "x32_syscall": _death(lambda: _libc.syscall(0x40000000 | 39)) if x86 else None,  # x86_64 only
            "i386_syscall": _death(_i386_getpid) if x86 else None,
            "mountinfo": [line.split()[4] for line in open("/proc/self/mountinfo")],
        }
    return look


@pytest.fixture(scope="module", params=["os.fork", "jail.fork"])
def seen(request: pytest.FixtureRequest, jail_works: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """One jailed child looks around; the tests below check what it saw. It is forked both ways: by ``os.fork``
    (``enter`` forks again and leaves a waiter) and by ``jail.fork`` (the child is PID 1 at once)."""
    t = _make_tree(tmp_path_factory.mktemp("jail"))
    host_paths = [str(t["secret"]), str(t["root"]), str(t["code"]), "/work", "/root/.bashrc", "/home",
                  "/root/.pyenv/shims", "/var/lib", "/sys/fs/cgroup", str(Path(__file__).resolve())]
    before = Path("/proc/self/mountinfo").read_text()
    fork = _jail_fork if request.param == "jail.fork" else _fork
    report, status = _run_jailed(_spec(t), _look_around(host_paths), fork)
    report["host_mounts_unchanged"] = Path("/proc/self/mountinfo").read_text() == before
    report["host_root_dir"] = os.listdir(t["root"])  # the jail's root was a tmpfs in its own namespace
    report["status"] = status
    yield report


def test_code_is_read_only_at_var_task(seen: dict) -> None:
    assert seen["cwd"] == "/var/task"
    assert "return 42" in seen["task_read"]
    assert seen["task_write"] == "EROFS" and seen["task_create"] == "EROFS"
    assert seen["root_create"] in ("EROFS", "EACCES")


def test_tmp_is_private_writable_and_limited(seen: dict) -> None:
    assert seen["tmp_write"] == "ok"
    assert seen["tmp_fill"] == "ENOSPC"


def test_nothing_else_of_the_host_is_visible(seen: dict) -> None:
    assert seen["host_paths_visible"] == []
    assert set(seen["root_listing"]) <= {"bin", "dev", "etc", "lib", "lib32", "lib64", "opt", "proc", "root", "sbin",
                                         "tmp", "usr", "var"}
    assert seen["root_home"] in ("EACCES", "ENOENT")  # crossed to reach a runtime bound under it, never listed
    assert seen["pyenv_versions"] in ([], [os.path.basename(sys.base_prefix)])
    assert seen["mountinfo"][0] == "/"
    assert not any(m.startswith(("/work", "/home", "/sys")) for m in seen["mountinfo"])


def test_host_mounts_are_unchanged_after_the_child_exits(seen: dict) -> None:
    assert seen["host_mounts_unchanged"]
    assert seen["host_root_dir"] == []
    assert os.WIFEXITED(seen["status"]) and os.WEXITSTATUS(seen["status"]) == 0


def test_runs_unprivileged_without_capabilities(seen: dict) -> None:
    assert seen["uids"] == [UID] * 3 and seen["gids"] == [GID] * 3 and seen["groups"] == []
    assert seen["caps"] == {"CapEff": 0, "CapPrm": 0, "CapBnd": 0}
    assert seen["setuid_root"] == "EPERM" and seen["chroot"] == "EPERM"


def test_pid_namespace_and_proc(seen: dict) -> None:
    assert seen["pid"] == 1
    assert seen["proc_pids"] == [1]


def test_minimal_dev(seen: dict) -> None:
    assert set(seen["dev"]) == {"fd", "full", "null", "random", "shm", "stderr", "stdin", "stdout", "tty", "urandom",
                                "zero"}
    assert seen["dev_null"] == "ok" and seen["urandom"] == 16


def test_etc_shadow_is_masked(seen: dict) -> None:
    assert seen["shadow_read"] == "EACCES"
    assert seen["shadow_size"] in (None, 0)
    assert seen["passwd_read"] == "ok"


def test_uts_and_network_namespaces(seen: dict) -> None:
    assert seen["hostname"] == "lambdad-test"
    assert seen["interfaces"] == ["lo"]
    assert seen["loopback"] == "ping"


def test_seccomp_refuses_escapes(seen: dict) -> None:
    assert seen["ptrace_traceme"] == "EPERM"  # allowed to any process without the filter
    assert seen["mount"] == "EPERM"
    assert seen["unshare_user"] == "EPERM"  # allowed to an unprivileged process without the filter
    assert seen["clone_newuser"] == f"exit {errno.EPERM}"
    assert seen["clone3"] == "ENOSYS"
    assert seen["x32_syscall"] in ("SIGSYS", None) and seen["i386_syscall"] in ("SIGSYS", None)  # killed


def test_seccomp_keeps_threads_fork_and_exec(seen: dict) -> None:
    assert seen["thread"] is True
    assert seen["subprocess"] == "hi\n"
    assert seen["unshare_files"] == "ok"


# -- the waiter outside the PID namespace ---------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _blocked_jail(tree: dict[str, Path]) -> tuple[int, int, int]:
    """A jailed child that signals it is ready and then blocks. Returns (waiter pid, sandbox host pid, ready fd)."""
    ready_r, ready_w = os.pipe()
    pid = _fork()
    if pid == 0:
        try:
            os.close(ready_r)
            jail.enter(_spec(tree, new_net=False))
            os.write(ready_w, b"r")
            time.sleep(60)
        finally:
            os._exit(3)
    os.close(ready_w)
    assert os.read(ready_r, 1) == b"r"
    (inner,) = _children(pid)
    return pid, inner, ready_r


def test_the_waiter_ends_as_the_function_did(jail_works: dict, tree: dict[str, Path]) -> None:
    _, status = os.waitpid(_fork_jailed(_spec(tree, new_net=False), lambda: os._exit(7)), 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 7
    waiter, inner, fd = _blocked_jail(tree)
    os.kill(inner, signal.SIGKILL)  # e.g. the OOM killer
    _, status = os.waitpid(waiter, 0)
    os.close(fd)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def test_killing_the_waiter_kills_the_sandbox(jail_works: dict, tree: dict[str, Path]) -> None:
    waiter, inner, fd = _blocked_jail(tree)
    os.kill(waiter, signal.SIGKILL)
    os.waitpid(waiter, 0)
    deadline = time.monotonic() + 5
    while _alive(inner) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.close(fd)
    assert not _alive(inner)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for the host's init to reap it is dead)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def test_fork_leaves_the_callers_namespace_alone(jail_works: dict) -> None:
    first = _jail_fork()
    if first == 0:
        os._exit(0 if os.getpid() == 1 else 1)
    second = _fork()
    if second == 0:
        os._exit(0 if os.getpid() != 1 else 1)
    assert os.waitstatus_to_exitcode(os.waitpid(first, 0)[1]) == 0, "jail.fork's child is PID 1"
    assert os.waitstatus_to_exitcode(os.waitpid(second, 0)[1]) == 0, "the next plain fork's child is not"
    assert os.readlink("/proc/self/ns/pid") == os.readlink("/proc/self/ns/pid_for_children")


def test_a_failed_step_is_named(jail_works: dict, tree: dict[str, Path]) -> None:
    spec = _spec(tree, task_root=str(tree["code"] / "missing"), new_net=False)
    assert "jail step 4 (build the root)" in _jail_error(spec)


def _jail_error(spec: jail.JailSpec) -> str:
    """What ``enter`` raised in a forked child (or "entered")."""
    read_fd, write_fd = os.pipe()
    pid = _fork()
    if pid == 0:
        try:
            os.close(read_fd)
            jail.enter(spec)
            os.write(write_fd, b"entered")
        except jail.JailError as exc:
            os.write(write_fd, str(exc).encode())
        finally:
            os._exit(1)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as f:
        text = f.read().decode()
    os.waitpid(pid, 0)
    return text


# -- values and probing (no root needed) ----------------------------------------------------------------------------


def test_spec_round_trips_through_json() -> None:
    spec = jail.JailSpec(root_dir="/r", task_root="/code", opt_dir="/layers", ro_binds=("/usr",),
                         ro_mounts=(("/srv/runtime", "/var/runtime"),), uid=993, gid=993, hostname="h")
    assert jail.JailSpec.from_json(spec.to_json()) == spec


@pytest.mark.parametrize("changes", [{"root_dir": "relative"}, {"task_root": "/a/../b"}, {"uid": 0, "gid": 0},
                                     {"uid": 993}, {"proc": True, "pid_namespace": False}, {"tmp_size_mb": 0}])
def test_spec_refuses_unsafe_values(changes: dict) -> None:
    fields = dict(root_dir="/r", task_root="/code")
    fields.update(changes)
    with pytest.raises(ValueError):
        jail.JailSpec(**fields)  # type: ignore[arg-type]


def test_probe_reports_every_protection() -> None:
    probed = jail.probe()
    for key in ("namespaces", "pid_namespace", "net_namespace", "private_root", "proc_and_dev", "uid_drop",
                "seccomp"):
        assert isinstance(probed[key], bool)
        assert probed[key] or isinstance(probed[f"{key}_error"], str)


# -- other interpreters: the fork server imports jail.py by path under the function's Python (3.9 to 3.13) ---------------

_SMOKE = r"""
import ctypes, importlib.util, json, os, subprocess, sys, threading, time
spec = importlib.util.spec_from_file_location("_jail", sys.argv[1]); jail = importlib.util.module_from_spec(spec)
sys.modules["_jail"] = jail; spec.loader.exec_module(jail)
r, w = os.pipe()
if (jail.fork() if sys.argv[3] == "jail.fork" else os.fork()) == 0:
    t = time.perf_counter()
    jail.enter(jail.JailSpec.from_json(sys.argv[2]))
    ms = (time.perf_counter() - t) * 1000
    libc = ctypes.CDLL(None, use_errno=True)
    th = threading.Thread(target=lambda: None); th.start(); th.join()
    out = {"ms": ms, "pid": os.getpid(), "uid": os.getuid(), "code": open("handler.py").read(),
           "ptrace": (libc.ptrace(0, 0, 0, 0), ctypes.get_errno()),
           "echo": subprocess.run(["/bin/echo", "hi"], capture_output=True).stdout.decode()}
    os.write(w, json.dumps(out).encode()); os._exit(0)
os.close(w); print(os.read(r, 65536).decode())
"""


def _other_pythons() -> list[str]:
    """pyenv's CPython 3.9 to 3.13, when installed."""
    found = []
    for path in glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin/python3")):
        version = path.split("/")[-3].split(".")
        if len(version) >= 2 and version[1].isdigit() and 9 <= int(version[1]) <= 13:
            found.append(path)
    return sorted(found)


@pytest.mark.parametrize("forker", ["os.fork", "jail.fork"])
@pytest.mark.parametrize("python", _other_pythons() or [sys.executable], ids=lambda p: p.split("/")[-3])
def test_enter_under_each_interpreter(jail_works: dict, tree: dict[str, Path], python: str, forker: str) -> None:
    prefix = str(Path(python).resolve().parent.parent)
    spec = _spec(tree, ro_binds=jail.DEFAULT_RO_BINDS + (prefix,), new_net=False)
    out = subprocess.run([python, "-I", "-S", "-c", _SMOKE, jail.__file__, spec.to_json(), forker],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen["pid"] == 1 and seen["uid"] == UID and "return 42" in seen["code"]
    assert seen["ptrace"] == [-1, errno.EPERM] and seen["echo"] == "hi\n"
