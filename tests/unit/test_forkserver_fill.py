"""The fork server fills the allocators' holes before it forks (lambdad/sandbox/forkserver.py ``fill_pools`` and
``fill_heap``): after it, what a process allocates comes from fresh memory, densely, not from holes in pages it
would share with its parent. Run under every Python the fork server may run under (3.9 to 3.13), where present."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lambdad.runtimes.registry import RuntimeRegistry, RuntimeUnavailable

FORKSERVER = Path(__file__).resolve().parents[2] / "lambdad" / "sandbox" / "forkserver.py"

# Leaves holes all over the pools and the heap (every other object of many freed), fills them (or not), then
# allocates 200 bytes objects of one size and 50 malloc chunks, and prints how many of them came from where the
# holes were: obmalloc blocks not at consecutive addresses, malloc chunks below the top of the heap.
PROBE = r"""
import ctypes, importlib.util, sys
spec = importlib.util.spec_from_file_location("_fs", sys.argv[1])
fs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fs)
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.sbrk.restype, libc.sbrk.argtypes = ctypes.c_void_p, [ctypes.c_ssize_t]
keep = [bytes(100 + i % 300) for i in range(30000)]
del keep[::2]
chunks = [libc.malloc(600 + 64 * (i % 20)) for i in range(4000)]
for ptr in chunks[::2]:
    libc.free(ptr)
if sys.argv[2] == "fill":
    fillers = fs.fill_pools()
    fs.fill_heap()
new = [bytes(100) for _ in range(200)]
ids = sorted(id(b) for b in new)
scattered = sum(1 for a, b in zip(ids, ids[1:]) if b - a != 144)
top = libc.sbrk(0)
low = 0
for _ in range(50):
    ptr = libc.malloc(700)
    low += ptr < top - (1 << 20)
print(scattered, low)
"""


def _pythons() -> list[str]:
    """The interpreters lambdad runs Python functions (and so fork servers) with on this machine."""
    found = []
    registry = RuntimeRegistry()
    for version in ("3.9", "3.10", "3.11", "3.12", "3.13"):
        try:
            found.append(str(registry.get(f"python{version}").executable))
        except RuntimeUnavailable:  # not on this machine
            continue
    return found


def _probe(python: str, mode: str) -> tuple[int, int]:
    out = subprocess.run([python, "-I", "-S", "-c", PROBE, str(FORKSERVER), mode], capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    return int(out[0]), int(out[1])


@pytest.mark.parametrize("python", _pythons())
def test_after_filling_new_objects_come_from_fresh_memory(python: str) -> None:
    scattered, low = _probe(python, "nofill")
    assert scattered > 20 and low > 20, "the probe must leave holes for the fill to matter"
    scattered, low = _probe(python, "fill")
    assert scattered <= 10  # a fresh pool now and then: 28 blocks of 144 bytes in a pool up to 3.9, 113 after
    assert low <= 2  # the probe's own Python objects, freed after the fill, may leave a hole or two


def test_fill_heap_is_bounded() -> None:
    """fill_heap takes at most the free bytes below the top (plus the thread cache's): it cannot run away."""
    pythons = _pythons()
    if not pythons:
        pytest.skip("no Python runtime on this machine")
    python = pythons[-1]
    code = (f"import importlib.util\nspec = importlib.util.spec_from_file_location('_fs', {str(FORKSERVER)!r})\n"
            "fs = importlib.util.module_from_spec(spec); spec.loader.exec_module(fs)\n"
            "taken = fs.fill_heap()\nprint(taken, fs.fill_heap())\n")
    first, second = (int(x) for x in subprocess.run([python, "-I", "-S", "-c", code], capture_output=True, text=True,
                                                    check=True, timeout=60).stdout.split())
    assert first >= 0 and second < 64 * 1024  # the second fill finds (almost) nothing left to take


def test_filling_leaves_no_temporary_directory_for_environments_to_inherit() -> None:
    """The fills run in the fork server, whose modules every environment inherits: they must not leave ``tempfile``
    with the fork server's temporary directory cached (a function's ``tempfile.gettempdir()`` would then ignore the
    environment's own TMPDIR; an extension and its function lost each other's files that way)."""
    pythons = _pythons()
    if not pythons:
        pytest.skip("no Python runtime on this machine")
    code = (f"import importlib.util, sys\nspec = importlib.util.spec_from_file_location('_fs', {str(FORKSERVER)!r})\n"
            "fs = importlib.util.module_from_spec(spec); spec.loader.exec_module(fs)\n"
            "fs.fill_pools()\ntf = sys.modules.get('tempfile')\nprint(tf is None or tf.tempdir is None)\n")
    for python in pythons:
        out = subprocess.run([python, "-I", "-S", "-c", code], capture_output=True, text=True, check=True, timeout=60)
        assert out.stdout.strip() == "True", (python, out.stdout, out.stderr)
