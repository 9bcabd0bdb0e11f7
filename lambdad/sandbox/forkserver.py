"""The fork server: one small, single-threaded root process per interpreter that forks environments.

Started by the server as ``<interpreter> -I -S forkserver.py <control fd> <mode> [<sdk dir>]`` (mode ``python``:
the Python runtime and the AWS SDK (boto3, from ``<sdk dir>``, last on sys.path) are imported once, here, so that
every environment is a fork that skips interpreter start-up and the runtime's imports; mode ``exec``: environments
exec another program after the jail — node and our Node runtime, or a custom runtime's ``bootstrap``). It imports
nothing from the lambdad package (it runs under the function's interpreter, 3.9 to 3.13), only its two siblings:
``jail.py`` (the sandbox steps) and ``runtimes/python/bootstrap.py``.

Protocol, over a SOCK_SEQPACKET socket pair, one JSON document per message:
    server -> {"op": "spawn", "id", "env", "cgroup_procs", "jail", "fd_names", "argv", "candidates"}
              + SCM_RIGHTS [the descriptors ``fd_names`` names, in order]
    fork server -> {"op": "spawned", "id", "pid"} | {"op": "failed", "id", "message"}
    server -> {"op": "attach", "id", "pid", "mounts", "hostname", "cgroup_procs"}   (a slot gets its function;
              cgroup_procs: where its cgroups will be once renamed after its environment)
    fork server -> {"op": "attached", "id"} | {"op": "failed", "id", "message"}
    fork server -> {"op": "exit", "pid", "status"}    (status: exit code, or -signal, like subprocess)
    fork server -> {"op": "ready"} once, after start-up.
Passed descriptors (``fd_names``; default ["output", "listener"]): "output", the write end of the stdout+stderr
pipe; "listener", a channel to hand the server a Runtime API listener (own network namespace only); "exec_status",
the write end of a close-on-exec pipe: a successful exec closes it unwritten, a failed one writes why (Lambda's
words: "Couldn't find valid bootstrap(s): [...]" or "fork/exec PATH: permission denied") before the child exits 127;
"assignment" (a pre-started slot, ``sandbox/prewarm.py``): the read end of the pipe its assignment arrives on, kept
open at fd 3; "runtime_api" (python mode): one end of a socketpair, the Python runtime's Runtime API connection
(kept close-on-exec, handed to the runtime as ``RUNTIME_API_FD``); "netns", a network namespace the server made
for the environment (sandbox/network.py), joined in the jail's first step and closed there. ``argv`` (exec mode): the program and its arguments; ``candidates``: paths of which the first that
exists replaces argv[0] (a custom runtime's /var/task/bootstrap, /opt/bootstrap).
A forked environment, in order: new session; stdin /dev/null, stdout+stderr to the pipe; every other fd closed;
default signal dispositions; joins its cgroups (while still root, so there is no moment outside them); enters
the jail (jail.enter); with a network namespace of its own, opens its Runtime API listener there and hands it to the
server over a second passed descriptor; starts each executable in /opt/extensions (Lambda's external extensions,
forked and exec'd with exactly the environment's variables); then runs the Python runtime in-process, or execs
with exactly its environment variables.
A slot (passed an "assignment" descriptor, jailed with an empty /var/task and /opt) stops before the function: a
Node slot execs node with the variables node reads at start, and our runtime waits for its assignment on fd 3; a
custom runtime's slot waits here, on fd 3, for {"env", "argv", "candidates"}, then goes on as above (extensions,
exec). Between the two, the server asks for ``attach``: this process enters the slot's namespaces, mounts its code,
and comes back (only for a live child of this fork server: an unreaped pid cannot have been reused).
"""

from __future__ import annotations

import fcntl
import gc
import json
import os
import resource
import select
import signal
import socket
import sys
from types import ModuleType
from typing import Any, Iterable

_HERE = os.path.dirname(os.path.abspath(__file__))
_PYTHON_RUNTIME = os.path.join(os.path.dirname(_HERE), "runtimes", "python")
_MAX_MESSAGE = 1 << 20
FUNCTION_NOFILE = 1024  # open descriptors per process of an environment, as on Lambda


def _load(name: str, path: str) -> ModuleType:
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    ctrl_fd, mode = int(sys.argv[1]), sys.argv[2]
    jail_path = os.path.join(_HERE, "jail.py")
    jail = _load("_lambdad_jail", jail_path) if os.path.exists(jail_path) else None
    runtime = None
    if mode == "python":
        runtime = _load("_lambdad_bootstrap", os.path.join(_PYTHON_RUNTIME, "bootstrap.py"))
        runtime.prepare()
        if len(sys.argv) > 3:
            _preload_sdk(sys.argv[3], sys.argv[4:], jail)
        runtime.prepare_shared()
    # Everything imported so far is shared with every environment, copy-on-write. Move it out of the garbage
    # collector's reach: a collection in an environment would otherwise write to (and so copy) every page of it.
    gc.collect()
    # Then, where environments go on in Python (not exec), fill the allocators' holes, so that what an environment
    # allocates goes to fresh memory of its own instead of copying a shared page per object (benchmarks/
    # idle_memory.py: 3.6 -> 3.0 MB of private memory per idle python3.11 environment). Held until this ends.
    _pool_fillers = fill_pools() if mode == "python" else []
    if mode == "python":
        fill_heap()
    gc.freeze()
    ctrl = socket.socket(fileno=ctrl_fd)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _send(ctrl, {"op": "ready", "pid": os.getpid()})
    children: set[int] = set()  # forked and not reaped yet
    cgroups_of: dict[int, list[str]] = {}  # child pid -> the cgroup.procs files it joined
    while True:
        try:
            readable, _, _ = select.select([ctrl.fileno(), wake_r], [], [])
        except InterruptedError:
            continue
        if wake_r in readable:
            os.read(wake_r, 4096)
        _reap(ctrl, children)
        if ctrl.fileno() in readable:
            try:
                data, fds, _, _ = socket.recv_fds(ctrl, _MAX_MESSAGE, 8)
            except InterruptedError:
                continue
            if not data:
                # the server is gone (even killed with -9): its environments go with it, then so do we
                _kill_children(children, cgroups_of)
                return
            request = json.loads(data)
            try:
                if request.get("op") == "attach":
                    # the slot's cgroups are renamed after its environment: its new paths beside the old (the
                    # rename may not have happened yet, or failed), so that a kill finds them either way
                    pid = request.get("pid")
                    cgroups_of[pid] = cgroups_of.get(pid, []) + list(request.get("cgroup_procs") or ())
                    _attach(request, children, jail)
                    answer = {"op": "attached", "id": request.get("id")}
                else:
                    pid = _spawn(request, fds, ctrl, wake_r, wake_w, jail, runtime)
                    children.add(pid)
                    cgroups_of[pid] = list(request.get("cgroup_procs") or ())
                    answer = {"op": "spawned", "id": request.get("id"), "pid": pid}
            except OSError as exc:
                answer = {"op": "failed", "id": request.get("id"), "message": str(exc)}
            finally:
                for fd in fds:
                    os.close(fd)
            _send(ctrl, answer)


def pool_holes() -> dict[int, int]:
    """Free blocks in obmalloc's partly used pools, by block size (``sys._debugmallocstats``, which CPython writes
    to the C stderr: caught here in a memory file). Not ``tempfile``: its ``gettempdir`` caches the fork server's
    temporary directory in a module every environment inherits, and a function's ``tempfile`` would then ignore its
    own TMPDIR."""
    saved = os.dup(2)
    out = os.memfd_create("lambdad-mallocstats", os.MFD_CLOEXEC)
    try:
        sys.stderr.flush()
        os.dup2(out, 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        size = os.lseek(out, 0, os.SEEK_END)
        text = os.pread(out, size, 0).decode("ascii", "replace")
    finally:
        os.close(out)
    holes = {}
    for line in text.splitlines():  # "class  size  num pools  blocks in use  avail blocks"
        fields = line.split()
        if len(fields) == 5 and all(field.isdigit() for field in fields):
            holes[int(fields[1])] = int(fields[4])
    return holes


def _filler(size: int, i: int) -> object:
    """An object that obmalloc serves from its ``size``-byte blocks, never a cached singleton: a bytes object of
    ``size - 33`` bytes (its header and NUL take 33), or for 32-byte blocks an int of two digits."""
    return 10**12 + i if size == 32 else bytes(size - 33)


def fill_pools() -> list[object]:
    """Fill every free block of obmalloc's partly used pools (all but the 16-byte class, which no object uses)
    with an object held by the returned list, so that an environment's own small objects are carved from fresh
    pools, densely, instead of one here and one there in the holes the imports left all over the shared arenas,
    each hole a shared page copied. A few rounds: the bookkeeping of a round leaves a few holes of its own."""
    fillers: list[object] = []
    for _ in range(3):
        for size, free in pool_holes().items():
            if size >= 32:
                fillers.extend(_filler(size, i) for i in range(free))
    return fillers


def fill_heap() -> int:
    """The same for glibc's malloc (objects over 512 bytes, buffers): allocate, and never free, the free chunks
    of the heap, largest requests first, until a request comes from the top of the heap, so that an environment's
    allocations come from the top, fresh pages, rather than from holes in pages shared with every environment.
    Returns the bytes taken; 0 where the C library has no ``mallinfo2`` (glibc before 2.33, musl)."""
    import ctypes

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                          "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL(None)
    if not hasattr(libc, "mallinfo2"):
        return 0
    libc.mallinfo2.restype = Mallinfo2
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.restype, libc.free.argtypes = None, [ctypes.c_void_p]
    libc.sbrk.restype, libc.sbrk.argtypes = ctypes.c_void_p, [ctypes.c_ssize_t]

    info = libc.mallinfo2()
    top = int(libc.sbrk(0)) - int(info.keepcost)  # where the top chunk (the heap's never used end) starts
    # bytes in free chunks below it, plus what the per-thread cache may hold (counted as in use): a bound
    free = int(info.fordblks) - int(info.keepcost) + (1 << 20)
    taken = 0
    for size in (1 << 16, 1 << 14, 1 << 12, 1 << 10, 512, 256, 128, 64, 32, 16):
        while taken + size <= free:
            ptr = libc.malloc(size)
            if not ptr:
                break
            if ptr >= top:  # from the top: the holes of this size are filled
                libc.free(ptr)
                break
            taken += size
    return taken


_SDK_MODULES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six", "certifi")


SDK_DIR = "/var/runtime"  # where Lambda's Python runtimes keep boto3, and where jailed functions find it


def _preload_sdk(site_dir: str, packages: list[str], jail: ModuleType | None) -> None:
    """Import boto3 once, so that every environment forked from here has it for free (copy-on-write): from
    /var/runtime where this fork server can jail (``_stage_sdk``), else from the server's own ``site_dir``."""
    staged = _stage_sdk(packages, jail) if packages and jail is not None and os.geteuid() == 0 else None
    sys.path.append(staged or site_dir)
    try:
        import boto3  # noqa: F401
        import boto3.session  # noqa: F401
        import botocore.session  # noqa: F401
    except Exception as exc:  # e.g. a boto3 too new for this interpreter: functions just import it themselves
        sys.stderr.write(f"lambdad fork server: boto3 not preloaded under Python {sys.version.split()[0]}: {exc}\n")
        _forget_sdk()


def _stage_sdk(packages: list[str], jail: ModuleType) -> str | None:
    """Show the SDK's packages at /var/runtime/<package>, in a mount namespace of this fork server's own (private:
    nothing of it reaches the host, which keeps at most an empty /var/runtime directory as a mount point), so that
    what is imported here carries the paths a jailed function sees (its jail binds each /var/runtime/<package>),
    never the server's own paths (a server installed under /tmp would have its SDK hidden by each function's
    own /tmp). Returns the directory, or None when it could not be done (the server's paths are used then)."""
    try:
        os.makedirs(SDK_DIR, exist_ok=True)
        jail._unshare(jail.CLONE_NEWNS)
        jail._mount(None, "/", None, jail.MS_REC | jail.MS_PRIVATE)
        jail._mount("tmpfs", SDK_DIR, "tmpfs", jail.MS_NOSUID | jail.MS_NODEV, "mode=755,size=64k")
        for path in packages:
            target = os.path.join(SDK_DIR, os.path.basename(path))
            if os.path.isdir(path):
                os.mkdir(target)
            else:
                open(target, "x").close()
            jail._mount(path, target, None, jail.MS_BIND)
    except OSError as exc:
        sys.stderr.write(f"lambdad fork server: the SDK stays at the server's paths ({exc})\n")
        return None
    return SDK_DIR


def _forget_sdk() -> None:
    for name in list(sys.modules):
        if name.split(".", 1)[0] in _SDK_MODULES:
            del sys.modules[name]


def _bundles_own_sdk(task_root: str) -> bool:
    return any(os.path.exists(os.path.join(task_root, name)) for name in ("boto3", "botocore"))


def _send_runtime_api_listener(channel_fd: int, address: str) -> None:
    """In an environment with a network namespace of its own (no way out, not even to the host's loopback), the
    Runtime API must listen inside it: open the listener here and hand it to the server, which serves it."""
    host, _, port = address.rpartition(":")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((host, int(port)))
    listener.listen(64)
    channel = socket.socket(fileno=channel_fd)
    socket.send_fds(channel, [b"listener"], [listener.fileno()])
    channel.close()
    listener.close()


def _attach(request: dict[str, Any], children: set[int], jail: ModuleType | None) -> None:
    """Mount a slot's function into it (``jail.attach``), if the slot is a live child of this fork server."""
    pid = request["pid"]
    if jail is None or pid not in children:
        raise OSError(f"no slot {pid} to attach to")
    jail.attach(pid, tuple(tuple(pair) for pair in request["mounts"]), request["hostname"])


def _await_assignment(fd: int) -> dict[str, Any]:
    """A slot: wait for its assignment ({"env", "argv", "candidates"}, then EOF: the code is attached), and enter
    the code now mounted at /var/task (the working directory was the empty directory under it). What came before
    EOF, when ``_read_line`` has not read it already."""
    chunks = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    assignment: dict[str, Any] = json.loads(b"".join(chunks)) if chunks else {}
    os.chdir("/var/task")
    return assignment


def _read_line(fd: int) -> dict[str, Any]:
    """A Python slot's assignment, up to its newline (sent before its code is attached; EOF follows)."""
    chunks: list[bytes] = []
    while not chunks or not chunks[-1].endswith(b"\n"):
        chunk = os.read(fd, 65536)
        if not chunk:
            raise OSError("the slot's assignment ended before its newline")
        chunks.append(chunk)
    assignment: dict[str, Any] = json.loads(b"".join(chunks))
    return assignment


def _send(ctrl: socket.socket, message: dict[str, Any]) -> None:
    ctrl.send(json.dumps(message).encode())


def _kill_children(children: set[int], cgroups_of: dict[int, list[str]]) -> None:
    """Kill every environment and slot this fork server made, with everything in their cgroups: SIGKILL first
    (a frozen task keeps it pending: nothing can fork in between), then thaw the freezer so that it is
    delivered. Without cgroups, the child is killed (PID 1 of its namespace: the namespace goes with it)."""
    for pid in children:
        for procs in cgroups_of.get(pid, ()):
            try:
                with open(procs) as f:
                    for line in f:
                        try:
                            os.kill(int(line), signal.SIGKILL)
                        except (ProcessLookupError, ValueError):
                            pass
            except OSError:
                pass
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in children:
        for procs in cgroups_of.get(pid, ()):
            for state, thawed in (("freezer.state", "THAWED"), ("cgroup.freeze", "0")):  # v1, v2
                path = os.path.join(os.path.dirname(procs), state)
                if os.path.exists(path):
                    try:
                        with open(path, "w") as f:
                            f.write(thawed)
                    except OSError:
                        pass


def _reap(ctrl: socket.socket, children: set[int]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        _send(ctrl, {"op": "exit", "pid": pid, "status": code})


def _spawn(request: dict[str, Any], fds: list[int], ctrl: socket.socket, wake_r: int, wake_w: int,
           jail: ModuleType | None, runtime: ModuleType | None) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    # With a jail, the child is forked straight into a new PID namespace (PID 1 there): no second fork needed.
    pid = jail.fork() if request.get("jail") and jail is not None else os.fork()
    if pid:
        return pid
    # -- the child: nothing here may return into the fork server's loop --
    try:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        os.setsid()
        # each passed descriptor first to a number above the low ones it may collide with, close-on-exec
        named = {name: fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
                 for name, fd in zip(request.get("fd_names") or ("output", "listener"), fds)}
        devnull = os.open("/dev/null", os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(named["output"], 1)
        os.dup2(named["output"], 2)
        if "listener" in named and "assignment" in named:
            raise OSError("a slot has no listener channel")  # slots are never in a network namespace of their own
        channel = os.dup2(named["listener"], 3) if "listener" in named else None
        assignment = os.dup2(named["assignment"], 3) if "assignment" in named else None  # inherited by node
        exec_status = named.get("exec_status")
        runtime_api = named.get("runtime_api")  # the Python runtime's Runtime API connection (close-on-exec)
        netns = named.get("netns")  # the network namespace to join (closed once joined)
        first_free = 4 if channel is not None or assignment is not None else 3
        for keep in sorted(fd for fd in (exec_status, runtime_api, netns) if fd is not None):
            os.closerange(first_free, keep)
            first_free = keep + 1
        os.closerange(first_free, 65536)
        # Lambda's limits, hard as well as soft so that the function cannot raise them: 1,024 descriptors (the
        # server's own, far higher, limit is not inherited); processes and threads are capped by the pids cgroup
        resource.setrlimit(resource.RLIMIT_NOFILE, (FUNCTION_NOFILE, FUNCTION_NOFILE))
        ctrl.detach()
        for path in request.get("cgroup_procs", ()):
            with open(path, "w") as f:
                f.write("0")  # "0": the writing process itself (its pid may be 1 of its own namespace)
        if request.get("jail"):
            if jail is None:
                raise OSError("this fork server cannot jail (jail.py is missing)")
            jail.enter(jail.JailSpec.from_json(request["jail"]), net_fd=netns)
        elif netns is not None:
            os.close(netns)
        if channel is not None:
            _send_runtime_api_listener(channel, request["env"]["AWS_LAMBDA_RUNTIME_API"])
        environ_set = False
        if assignment is not None and not request.get("argv"):  # a Python or custom runtime's slot
            if runtime is None:
                request = dict(request, **_await_assignment(assignment))
            else:
                runtime.rehearse()  # what the cold start runs next, on throwaway values (bootstrap.py)
                # a Python slot's variables come while the fork server attaches its code: the runtime's start that
                # needs no code is done meanwhile (bootstrap.begin), then EOF says the code is there
                request = dict(request, **_read_line(assignment))
                os.environ.clear()
                os.environ.update(request["env"])
                environ_set = True
                setattr(runtime, "RUNTIME_API_FD", runtime_api)
                runtime.begin()
                _await_assignment(assignment)
        opt_dir = request["env"].get("LAMBDAD_OPT_DIR") or ("/opt" if request.get("jail") else None)
        if opt_dir:
            _start_extensions(opt_dir, request["env"])
        argv = request.get("argv")
        if argv:
            if not request.get("jail"):  # the jail's last step enters /var/task; without one, the code tree
                os.chdir(request["env"].get("LAMBDA_TASK_ROOT", "/"))
            _exec(argv, request.get("candidates") or (), request["env"], exec_status)
        if runtime is None:
            raise OSError("this fork server execs: the request names no program")
        if not environ_set:
            os.environ.clear()
            os.environ.update(request["env"])
        if _bundles_own_sdk(request["env"].get("LAMBDA_TASK_ROOT", "/var/task")):
            _forget_sdk()  # the function's own boto3 must win over the preloaded one
        sys.argv = ["bootstrap"]
        setattr(runtime, "RUNTIME_API_FD", runtime_api)
        runtime.main()
        os._exit(0)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
        _flush_quietly()
        os._exit(code)
    except BaseException as exc:  # the environment must never fall back into the fork server's loop
        try:
            sys.stderr.write(f"lambdad: could not start the environment: {type(exc).__name__}: {exc}\n")
        except BaseException:
            pass
        _flush_quietly()
        os._exit(127)


def extension_programs(opt_dir: str) -> list[str]:
    """The external extensions of an environment: every executable file in <opt>/extensions, in name order."""
    directory = os.path.join(opt_dir, "extensions")
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    found = []
    for name in names:
        path = os.path.join(directory, name)
        try:
            st = os.stat(path)
        except OSError:
            continue
        if (st.st_mode & 0o170000) == 0o100000 and st.st_mode & 0o111:
            found.append(path)
    return found


def _start_extensions(opt_dir: str, env: dict[str, str]) -> None:
    """Lambda's external extensions: each executable in /opt/extensions starts before the runtime, in the same
    jail, cgroups and environment, and becomes the runtime's child (its output goes to the same log pipe)."""
    for path in extension_programs(opt_dir):
        pid = os.fork()
        if pid:
            continue
        try:
            os.execve(path, [path], env)
        except BaseException as exc:
            try:
                os.write(2, ("lambdad: could not start extension %s: %s\n" % (path, exc)).encode("utf-8", "replace"))
            finally:
                os._exit(127)


def _exec(argv: list[str], candidates: Iterable[str], env: dict[str, str], exec_status: int | None) -> None:
    """Replace this process with ``argv`` (argv[0] the first existing of ``candidates``, when given). Returns
    never: a failure is written to ``exec_status`` in Lambda's words (as its Go init process words them) and the
    process exits 127."""
    argv = list(argv)
    if candidates:
        for path in candidates:
            try:
                os.stat(path)
            except OSError:
                continue
            argv[0] = path
            break
        else:
            _exec_failed(exec_status, "Couldn't find valid bootstrap(s): [%s]" % " ".join(candidates))
    try:
        os.execve(argv[0], argv, env)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        _exec_failed(exec_status, "fork/exec %s: %s" % (argv[0], reason[:1].lower() + reason[1:]))


def _exec_failed(exec_status: int | None, message: str) -> None:
    data = message.encode("utf-8", "replace")
    try:
        if exec_status is not None:
            os.write(exec_status, data)
        else:
            os.write(2, b"lambdad: " + data + b"\n")
    finally:
        os._exit(127)


def _flush_quietly() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass


if __name__ == "__main__":
    main()
