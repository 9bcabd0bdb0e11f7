"""The runtime registry: which runtimes lambdad can run here, and with what.

A runtime is usable when its interpreter exists on this machine. For pythonX.Y we use the matching interpreter on
PATH (pyenv shims are resolved once to the real binary, to spare every cold start the shim's cost); when it is
missing we fall back to the server's own Python and say so in the log, once.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RuntimeSpec", "RuntimeRegistry", "PYTHON_RUNTIMES"]

log = logging.getLogger(__name__)

PYTHON_RUNTIMES = ("python3.9", "python3.10", "python3.11", "python3.12", "python3.13")


@dataclass(frozen=True)
class RuntimeSpec:
    name: str
    family: str  # "python"
    executable: str  # the interpreter that runs the runtime
    exact: bool  # False when the executable is a stand-in for a missing interpreter

    @property
    def prefix(self) -> str:
        """The interpreter's installation prefix (what a jail must show read-only)."""
        return str(Path(self.executable).resolve().parent.parent)


class RuntimeRegistry:
    def __init__(self) -> None:
        self._specs: dict[str, RuntimeSpec] = {}

    @property
    def names(self) -> tuple[str, ...]:
        return PYTHON_RUNTIMES

    def supports(self, runtime: str) -> bool:
        return runtime in PYTHON_RUNTIMES

    def get(self, runtime: str) -> RuntimeSpec:
        spec = self._specs.get(runtime)
        if spec is None:
            spec = self._specs[runtime] = _resolve_python(runtime)
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
                [candidate, "-c", "import sys; print(sys.executable, '%d.%d' % sys.version_info[:2])"],
                capture_output=True, text=True, timeout=30, check=True,
            ).stdout.split()
        except (OSError, subprocess.SubprocessError):
            continue
        if len(real) == 2 and real[1] == version:
            return RuntimeSpec(runtime, "python", real[0], exact=True)
    log.warning(
        "runtime %s: no python%s on this machine; running it with the server's own Python %d.%d (%s)",
        runtime, version, sys.version_info.major, sys.version_info.minor, sys.executable,
    )
    return RuntimeSpec(runtime, "python", sys.executable, exact=False)
