"""The runtime registry's pure logic: what each runtime execs, with which variables, under which label."""

from __future__ import annotations

import pytest

from lambdad.runtimes.registry import (
    NODE_RUNTIME_DIR,
    NODE_RUNTIMES,
    PROVIDED_RUNTIMES,
    PYTHON_RUNTIMES,
    RuntimeRegistry,
    RuntimeSpec,
)

NODE = RuntimeSpec("nodejs22.x", "nodejs", "/usr/bin/node", exact=False, version="20.20.2",
                   runtime_dir=NODE_RUNTIME_DIR,
                   node_flags=("--no-experimental-require-module", "--no-experimental-detect-module"))
PROVIDED = RuntimeSpec("provided.al2023", "provided", "", exact=True)
PYTHON = RuntimeSpec("python3.12", "python", "/opt/py/bin/python3.12", exact=True, version="3.12.1")


def test_every_family_is_accepted():
    names = RuntimeRegistry().names
    assert set(PYTHON_RUNTIMES) | set(NODE_RUNTIMES) | set(PROVIDED_RUNTIMES) == set(names)
    assert {"nodejs18.x", "nodejs20.x", "nodejs22.x", "provided", "provided.al2", "provided.al2023"} <= set(names)


def test_labels_say_what_stands_in():
    assert PYTHON.label == "python:3.12.lambdad"
    assert NODE.label == "nodejs:22.lambdad (on node v20.20.2)"
    assert RuntimeSpec("nodejs20.x", "nodejs", "/usr/bin/node", exact=True, version="20.1.0").label == "nodejs:20.lambdad"
    assert PROVIDED.label == "provided:al2023.lambdad"
    assert RuntimeSpec("provided", "provided", "", exact=True).label == "provided:al1.lambdad"


def test_fork_servers():
    assert PYTHON.fork_server == ("/opt/py/bin/python3.12", "python")
    assert NODE.fork_server[1] == "exec" and PROVIDED.fork_server[1] == "exec"
    assert NODE.fork_server == PROVIDED.fork_server  # one exec-mode fork server serves both
    assert PROVIDED.prefix is None and PYTHON.prefix == "/opt/py"


def test_node_entrypoint_follows_memory_and_node_options():
    entry = NODE.entrypoint(jailed=True, task_root="/host/code", memory_mb=1024)
    assert entry.argv == ("/usr/bin/node", "--max-semi-space-size=34", "--max-old-space-size=922",
                          "--no-experimental-require-module", "--no-experimental-detect-module", "/var/runtime/index.js")
    assert entry.candidates == ()
    entry = NODE.entrypoint(jailed=True, task_root="/host/code", memory_mb=128,
                            node_options="--max-old-space-size=64 --experimental-require-module")
    assert entry.argv == ("/usr/bin/node", "--no-experimental-detect-module", "/var/runtime/index.js")
    # without a jail the runtime is where the package is installed
    assert NODE.entrypoint(jailed=False, task_root="/host/code", memory_mb=128).argv[-1] == f"{NODE_RUNTIME_DIR}/index.js"


def test_provided_entrypoint_looks_where_lambda_looks():
    entry = PROVIDED.entrypoint(jailed=True, task_root="/host/code", memory_mb=128)
    assert entry.candidates == ("/var/task/bootstrap", "/opt/bootstrap")
    assert PROVIDED.entrypoint(jailed=False, task_root="/host/code", memory_mb=128).candidates == ("/host/code/bootstrap",)
    assert PYTHON.entrypoint(jailed=True, task_root="/host/code", memory_mb=128).argv == ()  # in-process


@pytest.mark.parametrize("jailed, task, runtime_dir", [(True, "/var/task", "/var/runtime"),
                                                       (False, "/host/code", NODE_RUNTIME_DIR)])
def test_defaults(jailed, task, runtime_dir):
    env = NODE.defaults(jailed=jailed, task_root="/host/code")
    assert env["NODE_PATH"] == (f"/opt/nodejs/node22/node_modules:/opt/nodejs/node_modules:"
                                f"{runtime_dir}/node_modules:{runtime_dir}:{task}")
    assert env["LD_LIBRARY_PATH"].endswith(f":{task}:{task}/lib:/opt/lib")
    assert NODE.runtime_dir_inside(jailed) == runtime_dir
    assert "NODE_PATH" not in PROVIDED.defaults(jailed=jailed, task_root="/host/code")
    assert PYTHON.defaults(jailed=jailed, task_root="/host/code") == {}


def test_the_python_runtime_recognises_the_servers_202_byte_for_byte() -> None:
    """The Python runtime skips parsing the Runtime API's 202 when it is exactly what lambdad sends."""
    import importlib.util
    from pathlib import Path

    import lambdad.runtime_api.server as api

    path = Path(api.__file__).parent.parent / "runtimes" / "python" / "bootstrap.py"
    spec = importlib.util.spec_from_file_location("lambdad_runtime_bootstrap", path)
    assert spec is not None and spec.loader is not None
    bootstrap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bootstrap)
    assert api._render(202, api._ACCEPTED_BODY) == bootstrap._ACCEPTED
