"""The runtime registry: which runtimes lambdad can run here, and with what.

Three families, each started by a fork server (``sandbox/forkserver.py``) in its own way:

- ``python3.9`` … ``python3.13``: our Python runtime, run in-process by a fork server that runs the matching
  interpreter (found on PATH, pyenv shims resolved once to the real binary, to spare every cold start the shim's
  cost); when it is missing we fall back to the server's own Python and say so in the log, once.
- ``nodejs18.x``, ``nodejs20.x``, ``nodejs22.x``: our Node.js runtime (``runtimes/node/index.js``, shown at
  /var/runtime) exec'd with this machine's ``node``. One binary serves every name; when its major version is not
  the one a name asks for, the INIT_START line says which node ran.
- ``provided``, ``provided.al2``, ``provided.al2023``: the function's own executable ``bootstrap``, exec'd from
  /var/task/bootstrap or /opt/bootstrap (the first that exists, as on Lambda).

Node and custom runtimes are exec'd by a fork server running the server's own Python in "exec" mode.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from lambdad.errors import LambdadError

__all__ = [
    "RuntimeSpec", "RuntimeRegistry", "RuntimeUnavailable", "Entrypoint",
    "PYTHON_RUNTIMES", "NODE_RUNTIMES", "PROVIDED_RUNTIMES", "RUNTIME_DIR", "NODE_RUNTIME_DIR",
]

log = logging.getLogger(__name__)

PYTHON_RUNTIMES = ("python3.9", "python3.10", "python3.11", "python3.12", "python3.13")
NODE_RUNTIMES = ("nodejs18.x", "nodejs20.x", "nodejs22.x")
PROVIDED_RUNTIMES = ("provided", "provided.al2", "provided.al2023")

RUNTIME_DIR = "/var/runtime"  # LAMBDA_RUNTIME_DIR inside a jailed environment
TASK_ROOT = "/var/task"
NODE_RUNTIME_DIR = str(Path(__file__).resolve().parent / "node")  # our Node runtime, shown at /var/runtime
NODE_ENTRY = "index.js"
# Where Lambda looks for a custom runtime's program, in order (the first that exists is exec'd).
BOOTSTRAP_CANDIDATES = (f"{TASK_ROOT}/bootstrap", "/opt/bootstrap")
# Flags Lambda's Node runtimes pass to disable experimental module features (a function re-enables one by
# naming the opposite flag in NODE_OPTIONS).
_NODE_EXPERIMENT_FLAGS = ("--no-experimental-require-module", "--no-experimental-detect-module")


class RuntimeUnavailable(LambdadError):
    """This machine lacks what a runtime needs (e.g. no ``node`` on PATH)."""


@dataclass(frozen=True)
class Entrypoint:
    """What the fork server execs after the jail. ``candidates``: paths of which the first that exists becomes
    ``argv[0]`` (a custom runtime's bootstrap); none existing is Runtime.InvalidEntrypoint. Empty ``argv`` and
    ``candidates``: run the Python runtime in-process."""

    argv: tuple[str, ...] = ()
    candidates: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuntimeSpec:
    name: str
    family: str  # "python" | "nodejs" | "provided"
    executable: str  # the interpreter (python, node); "" for provided: the function brings its own program
    exact: bool  # False when the executable is a stand-in for a missing version
    version: str = ""  # of the executable, e.g. "3.12.1" or "20.19.2"
    runtime_dir: str | None = None  # host directory shown read-only at /var/runtime (our runtime's files)
    node_flags: tuple[str, ...] = ()  # the experiment flags this node accepts

    @property
    def prefix(self) -> str | None:
        """The interpreter's installation prefix (what a jail must show read-only), if it has one."""
        if not self.executable:
            return None
        return str(Path(self.executable).resolve().parent.parent)

    @property
    def fork_server(self) -> tuple[str, str]:
        """(interpreter, mode) of the fork server that starts this runtime's environments."""
        if self.family == "python":
            return self.executable, "python"
        return sys.executable, "exec"

    @property
    def label(self) -> str:
        """The ``INIT_START Runtime Version:`` of this runtime, saying what stands in for what."""
        if self.family == "python":
            version = self.name.removeprefix("python")
            return f"python:{version}.lambdad" + ("" if self.exact else f" (on {self.executable})")
        if self.family == "nodejs":
            major = self.name.removeprefix("nodejs").removesuffix(".x")
            return f"nodejs:{major}.lambdad" + ("" if self.exact else f" (on node v{self.version})")
        suffix = self.name.partition(".")[2] or "al1"
        return f"provided:{suffix}.lambdad"

    def runtime_dir_inside(self, jailed: bool) -> str:
        """LAMBDA_RUNTIME_DIR as the function sees it."""
        if jailed or self.runtime_dir is None:
            return RUNTIME_DIR
        return self.runtime_dir

    def defaults(self, *, jailed: bool, task_root: str) -> dict[str, str]:
        """Variables this runtime sets unless the function sets them itself."""
        if self.family == "python":
            return {}
        runtime_dir = self.runtime_dir_inside(jailed)
        task = TASK_ROOT if jailed else task_root
        # Lambda's library path: programs a function brings (a custom runtime, a native addon) find their shared
        # libraries in lib/ of the code or of a layer
        env = {"LD_LIBRARY_PATH": f"/lib64:/usr/lib64:{runtime_dir}:{runtime_dir}/lib:{task}:{task}/lib:/opt/lib"}
        if self.family == "nodejs":
            major = self.name.removeprefix("nodejs").removesuffix(".x")
            # Lambda's order: layer modules for this major, layer modules, the runtime's own modules, the runtime,
            # the code
            env["NODE_PATH"] = (f"/opt/nodejs/node{major}/node_modules:/opt/nodejs/node_modules:"
                                f"{runtime_dir}/node_modules:{runtime_dir}:{task}")
        return env

    def entrypoint(self, *, jailed: bool, task_root: str, memory_mb: int, node_options: str = "",
                   opt_dir: str | None = None) -> Entrypoint:
        if self.family == "python":
            return Entrypoint()
        if self.family == "provided":
            # /var/task/bootstrap, then /opt/bootstrap (from a layer), as on Lambda
            candidates = BOOTSTRAP_CANDIDATES if jailed else (
                os.path.join(task_root, "bootstrap"), *([os.path.join(opt_dir, "bootstrap")] if opt_dir else []))
            return Entrypoint(argv=(candidates[0],), candidates=candidates)
        argv = [self.executable]
        # As Lambda's Node bootstrap: the V8 heap follows MemorySize (young generation 10%, old generation the
        # rest) unless NODE_OPTIONS sets either; the experimental module features are off unless re-enabled.
        if not any(flag in node_options for flag in ("max-semi-space-size", "max_semi_space_size",
                                                     "max-old-space-size", "max_old_space_size")):
            new_space = memory_mb // 10
            argv += [f"--max-semi-space-size={max(1, new_space // 3)}", f"--max-old-space-size={memory_mb - new_space}"]
        for flag in self.node_flags:
            if flag.replace("--no-", "--") not in node_options:
                argv.append(flag)
        argv.append(f"{self.runtime_dir_inside(jailed)}/{NODE_ENTRY}")
        return Entrypoint(argv=tuple(argv))


class RuntimeRegistry:
    def __init__(self) -> None:
        self._specs: dict[str, RuntimeSpec] = {}

    @property
    def names(self) -> tuple[str, ...]:
        return PYTHON_RUNTIMES + NODE_RUNTIMES + PROVIDED_RUNTIMES

    def supports(self, runtime: str) -> bool:
        return runtime in self.names

    def resolved(self, runtime: str) -> RuntimeSpec | None:
        """``runtime``'s spec if ``get`` has resolved it already (no blocking: for the event loop), else None."""
        return self._specs.get(runtime)

    def get(self, runtime: str) -> RuntimeSpec:
        """How to run ``runtime`` here. Blocking (may run the interpreter once): call from a thread.
        Raises RuntimeUnavailable when this machine cannot run it."""
        spec = self._specs.get(runtime)
        if spec is None:
            if runtime in PYTHON_RUNTIMES:
                spec = _resolve_python(runtime)
            elif runtime in NODE_RUNTIMES:
                spec = _resolve_node(runtime)
            elif runtime in PROVIDED_RUNTIMES:
                spec = RuntimeSpec(runtime, "provided", "", exact=True)
            else:
                raise RuntimeUnavailable(f"lambdad does not know the runtime {runtime}")
            self._specs[runtime] = spec
        return spec


def _candidates(version: str) -> list[str]:
    """Interpreters that may be pythonX.Y: on PATH, then pyenv's installs (whose shims only work for the
    selected version), then the usual system places."""
    found = [p for p in [shutil.which(f"python{version}")] if p]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found += sorted(str(p) for p in pyenv_root.glob(f"versions/{version}.*/bin/python{version}"))
    found += [f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    return found


def _resolve_python(runtime: str) -> RuntimeSpec:
    version = runtime.removeprefix("python")
    for candidate in _candidates(version):
        try:
            real = subprocess.run(
                [candidate, "-c", "import sys; print(sys.executable, '%d.%d' % sys.version_info[:2], '%d.%d.%d' % sys.version_info[:3])"],
                capture_output=True, text=True, timeout=30, check=True,
            ).stdout.split()
        except (OSError, subprocess.SubprocessError):
            continue
        if len(real) == 3 and real[1] == version:
            return RuntimeSpec(runtime, "python", real[0], exact=True, version=real[2])
    log.warning(
        "runtime %s: no python%s on this machine; running it with the server's own Python %d.%d (%s)",
        runtime, version, sys.version_info.major, sys.version_info.minor, sys.executable,
    )
    return RuntimeSpec(runtime, "python", sys.executable, exact=False, version="%d.%d.%d" % sys.version_info[:3])


def _resolve_node(runtime: str) -> RuntimeSpec:
    """This machine's ``node`` (one binary for every nodejsN.x), with the flags it accepts."""
    node = shutil.which("node") or next((p for p in ("/usr/bin/node", "/usr/local/bin/node") if os.access(p, os.X_OK)), None)
    if node is None:
        raise RuntimeUnavailable(f"runtime {runtime}: there is no node on this machine (install Node.js 18 or later)")
    node = os.path.realpath(node)
    try:
        version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30,
                                 check=True).stdout.strip().removeprefix("v")
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeUnavailable(f"runtime {runtime}: {node} does not run: {exc}") from exc
    flags = tuple(flag for flag in _NODE_EXPERIMENT_FLAGS if _node_accepts(node, flag))
    wanted = runtime.removeprefix("nodejs").removesuffix(".x")
    exact = version.split(".")[0] == wanted
    if not exact:
        log.info("runtime %s: running it with node v%s (%s)", runtime, version, node)
    return RuntimeSpec(runtime, "nodejs", node, exact=exact, version=version, runtime_dir=NODE_RUNTIME_DIR,
                       node_flags=flags)


def _node_accepts(node: str, flag: str) -> bool:
    try:
        return subprocess.run([node, flag, "-e", "0"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False
