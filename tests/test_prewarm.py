"""The prewarm pool end to end: Python, Node.js and custom-runtime cold starts take a pre-started slot when one fits.

A slot's process was started before its function existed, so a function that runs in one sees its process older
than the function itself: that is how these tests know a slot was used (and, with the pool off, that none was).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from tests.server import CGROUP_ROOT, GROUPS_RENAMED, ROLE, Server, env_id, make_zip, wait_until

pytestmark = [
    pytest.mark.skipif(shutil.which("node") is None, reason="needs node on PATH"),
    pytest.mark.skipif(os.geteuid() != 0 or not CGROUP_ROOT.parent.is_dir(), reason="needs root and cgroups (v1 or v2)"),
]

# Reports what a jailed environment looks like from inside, and how old its process is.
NODE_PROBE = """
const fs = require("node:fs");
const os = require("node:os");
exports.handler = async () => {
  let write = "written";
  try { fs.writeFileSync("/var/task/x", "x"); } catch (err) { write = err.code; }
  const taskMounts = fs.readFileSync("/proc/self/mountinfo", "utf8").split("\\n")
    .filter((line) => line.split(" ")[4] === "/var/task").map((line) => line.split(" ")[5]);
  return {
    age: process.uptime(), env: process.env, cwd: process.cwd(), hostname: os.hostname(), write, taskMounts,
    files: fs.readdirSync("/var/task").sort(), uid: process.getuid(), pid: process.pid,
    environ: fs.readFileSync("/proc/self/environ", "utf8"),
  };
};
"""

# A custom runtime in sh: answers each event with its process's age (from /proc) and what it sees.
SHELL_PROBE = r"""#!/bin/sh
set -eu
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  HEADERS="$(mktemp)"
  curl -sS -D "$HEADERS" -o /dev/null "$API/invocation/next"
  RID="$(grep -i '^Lambda-Runtime-Aws-Request-Id:' "$HEADERS" | cut -d: -f2 | tr -d '[:space:]')"
  START="$(cut -d' ' -f22 /proc/1/stat)"
  UPTIME="$(cut -d' ' -f1 /proc/uptime)"
  if touch /var/task/x 2>/dev/null; then WRITE=written; else WRITE=refused; fi
  curl -sS -o /dev/null -X POST "$API/invocation/$RID/response" -d "{\"start_ticks\": $START, \"uptime\": $UPTIME, \"pid\": $$, \"hostname\": \"$(hostname)\", \"secret\": \"${SECRET:-}\", \"other\": \"${OTHER:-}\", \"write\": \"$WRITE\", \"cwd\": \"$(pwd)\"}"
  rm -f "$HEADERS"
done
"""
FAST = {"MemorySize": 1769}  # enough CPU that sh and curl start quickly


# Reports what a jailed Python environment looks like from inside, and how old its process is.
PYTHON_PROBE = """
import os

def handler(event, context):
    ticks = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])
    uptime = float(open("/proc/uptime").read().split()[0])
    try:
        open("/var/task/x", "w").close()
        write = "written"
    except OSError as exc:
        write = exc.__class__.__name__
    import boto3
    import logging
    import sys
    return {"age": uptime - ticks / os.sysconf("SC_CLK_TCK"), "env": dict(os.environ), "cwd": os.getcwd(),
            "root_handlers": len(logging.getLogger().handlers), "loggers": sorted(logging.root.manager.loggerDict),
            "rehearsal": [name for name in sys.modules if "rehearsal" in name],
            "files": sorted(os.listdir("/var/task")), "uid": os.getuid(), "pid": os.getpid(), "write": write,
            "hostname": os.uname().nodename, "boto3": boto3.__name__}
"""


def create(lam, name: str, runtime: str = "nodejs20.x", env: dict | None = None, files: dict | None = None,
           **kwargs) -> float:
    """Create a function; returns when (time.time()) it was created."""
    if runtime.startswith("python"):
        code = make_zip(files or {"app.py": PYTHON_PROBE})
        handler = "app.handler"
    elif runtime.startswith("nodejs"):
        code = make_zip(files or {"index.js": NODE_PROBE})
        handler = "index.handler"
    else:
        code = make_zip(files or {"bootstrap": SHELL_PROBE}, {"bootstrap": 0o755})
        handler = "function.handler"
    lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler, Code={"ZipFile": code},
                        Environment={"Variables": env or {}}, **kwargs)
    return time.time()


def invoke(lam, name: str) -> tuple[dict, str]:
    resp = lam.invoke(FunctionName=name, LogType="Tail")
    body = json.loads(resp["Payload"].read())
    assert "FunctionError" not in resp, body
    return body, base64.b64decode(resp["LogResult"]).decode()


def shell_age(body: dict) -> float:
    """How long the custom runtime's PID 1 has existed (its start time in clock ticks since boot)."""
    return body["uptime"] - body["start_ticks"] / os.sysconf("SC_CLK_TCK")


def slot_groups(server: Server) -> list[Path]:
    """The cgroups of this server's waiting slots (v1's freezer groups, or v2's)."""
    return [p for p in CGROUP_ROOT.glob("*/slot-*") if _server_pid(p) == server.proc.pid]


def _server_pid(group: Path) -> int:
    return int(group.parent.name.split("-", 1)[0])


def mount_points() -> set[str]:
    return {line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()}


def wait_for_started_slots(server: Server, count: int) -> None:
    """``count`` slots whose process has joined its cgroups, and a moment more (node gets to its wait)."""
    def started() -> int:
        return sum(1 for group in slot_groups(server) if _procs(group))

    assert wait_until(lambda: started() >= count, timeout=20), "no slots for the new function"
    time.sleep(0.5)


def _procs(group: Path) -> str:
    try:
        return (group / "cgroup.procs").read_text().strip()
    except OSError:
        return ""


def wait_for_slots(server: Server, count: int) -> None:
    assert wait_until(lambda: len(slot_groups(server)) >= count, timeout=20), "the pool did not fill"
    time.sleep(0.3)  # node in the newest slot gets to its wait


@pytest.fixture(scope="module")
def pooled(tmp_path_factory: pytest.TempPathFactory):
    srv = Server(tmp_path_factory.mktemp("prewarm")).start()
    yield srv
    srv.stop()


@pytest.fixture
def fresh(tmp_path: Path):
    """A server of its own, whose slots are only those of the functions a test creates (the pool keeps a few keys:
    in the shared server a new one makes an old one go)."""
    srv = Server(tmp_path / "data").start()
    yield srv
    srv.stop()


def test_node_cold_start_takes_a_slot_and_sees_only_its_own_function(pooled):
    lam = pooled.client()
    create(lam, "node-first", env={"SECRET": "first"})
    body, _ = invoke(lam, "node-first")  # the first of its key starts as before, and asks for slots
    assert body["env"]["SECRET"] == "first"
    wait_for_slots(pooled, 2)

    created = create(lam, "node-second", env={"OTHER": "second"})
    body, log = invoke(lam, "node-second")
    assert body["age"] > time.time() - created, "the runtime process is not older than its function: no slot"
    assert re.search(r"Init Duration: [\d.]+ ms", log)
    # exactly its own environment: the other function's variable is not there, nor the slot's own
    assert body["env"]["OTHER"] == "second" and "SECRET" not in body["env"]
    assert "LAMBDAD_ASSIGNMENT_FD" not in body["env"] and "first" not in body["environ"]
    assert body["env"]["AWS_LAMBDA_FUNCTION_NAME"] == "node-second"
    # its code, read-only (nosuid, nodev), its working directory; its hostname; unprivileged
    assert body["files"] == ["index.js"] and body["cwd"] == "/var/task"
    assert body["write"] in ("EROFS", "EACCES")
    assert len(body["taskMounts"]) == 1 and {"ro", "nosuid", "nodev"} <= set(body["taskMounts"][0].split(","))
    stream = body["env"]["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert body["hostname"] == f"lambdad-{env_id(stream)[:12]}"
    assert body["uid"] == 64993 and body["pid"] == 1
    # the slot's cgroups are the environment's now, named after it (v1; v2 renames no group)
    assert any(CGROUP_ROOT.glob(f"*/{env_id(stream)}")) or not GROUPS_RENAMED


def test_the_pool_refills_and_each_slot_serves_once(pooled):
    lam = pooled.client()
    create(lam, "node-refill-0")
    invoke(lam, "node-refill-0")
    wait_for_slots(pooled, 2)
    before = {p.name for p in slot_groups(pooled)}
    pids = set()
    for i in (1, 2):
        created = create(lam, f"node-refill-{i}")
        body, _ = invoke(lam, f"node-refill-{i}")
        assert body["age"] > time.time() - created
        pids.add(body["env"]["AWS_LAMBDA_LOG_STREAM_NAME"])
    assert len(pids) == 2
    wait_for_slots(pooled, 2)
    assert not before & {p.name for p in slot_groups(pooled)}, "a slot that was taken is waiting again"


def test_node_function_that_does_not_fit_starts_as_before(pooled):
    lam = pooled.client()
    create(lam, "node-fit-0")
    invoke(lam, "node-fit-0")
    wait_for_slots(pooled, 2)
    # shared libraries in its code: the dynamic loader looked for lib/ when the slot's node started
    created = create(lam, "node-with-lib", files={"index.js": NODE_PROBE, "lib/readme.txt": "a native addon's .so"})
    body, _ = invoke(lam, "node-with-lib")
    assert body["age"] < time.time() - created
    assert body["files"] == ["index.js", "lib"]


def test_a_new_node_function_finds_a_slot_for_its_first_cold_start(fresh):
    """Creating a Node function asks for slots of its key, computed as its launch computes it: node's heap flags
    from its MemorySize and NODE_OPTIONS, the start-up variables of its Environment and of Lambda's base."""
    lam = fresh.client()
    create(lam, "node-new-kind", MemorySize=1024, env={"NODE_OPTIONS": "--max-old-space-size=600", "TZ": "Europe/Paris"})
    wait_for_started_slots(fresh, 2)
    asked = time.time()
    body, _ = invoke(lam, "node-new-kind")
    assert body["age"] > time.time() - asked + 0.2, "the first cold start did not take a slot"
    assert body["files"] == ["index.js"] and body["env"]["AWS_LAMBDA_FUNCTION_NAME"] == "node-new-kind"
    assert body["env"]["TZ"] == "Europe/Paris" and body["env"]["NODE_OPTIONS"] == "--max-old-space-size=600"

    # an ES module handler, from the other slot of that key (the slot imported warm.mjs before it was assigned)
    esm = NODE_PROBE.replace('const fs = require("node:fs");\nconst os = require("node:os");\n',
                             'import fs from "node:fs";\nimport os from "node:os";\n')
    esm = esm.replace("exports.handler =", "export const handler =")
    asked = time.time()
    create(lam, "node-new-esm", MemorySize=1024, env={"NODE_OPTIONS": "--max-old-space-size=600",
                                                      "TZ": "Europe/Paris"}, files={"index.mjs": esm})
    body, _ = invoke(lam, "node-new-esm")
    assert body["age"] > time.time() - asked, "the ES module function did not take a slot"
    assert body["files"] == ["index.mjs"] and body["env"]["AWS_LAMBDA_FUNCTION_NAME"] == "node-new-esm"


def test_a_node_function_loaded_at_start_finds_a_slot_for_its_first_cold_start(tmp_path):
    """A server started on a data dir with a Node function asks for slots of its key before any invocation."""
    server = Server(tmp_path / "data").start()
    try:
        create(server.client(), "node-loaded", MemorySize=256)
    finally:
        server.stop()
    server = Server(tmp_path / "data").start()
    try:
        wait_for_started_slots(server, 2)
        asked = time.time()
        body, _ = invoke(server.client(), "node-loaded")
        assert body["age"] > time.time() - asked + 0.2, "the first cold start did not take a slot"
        assert body["env"]["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    finally:
        server.stop()


def test_a_node_function_that_does_not_fit_asks_for_no_slots(fresh):
    """Shared libraries in its code: no slot would serve it, so creating it starts none."""
    lam = fresh.client()
    create(lam, "node-lib-new", files={"index.js": NODE_PROBE, "libfoo.so.1": "not really"})
    time.sleep(2.0)
    assert not slot_groups(fresh), "slots started for a function no slot fits"


def test_python_cold_start_takes_a_slot_and_sees_only_its_own_function(pooled):
    lam = pooled.client()
    create(lam, "py-first", runtime="python3.11", env={"SECRET": "first"})
    body, _ = invoke(lam, "py-first")  # the first of its key starts as before, and asks for slots
    assert body["env"]["SECRET"] == "first"
    wait_for_slots(pooled, 2)

    created = create(lam, "py-second", runtime="python3.11", env={"OTHER": "second"})
    body, log = invoke(lam, "py-second")
    assert body["age"] > time.time() - created, "the runtime process is not older than its function: no slot"
    assert re.search(r"Init Duration: [\d.]+ ms", log)
    assert body["env"]["OTHER"] == "second" and "SECRET" not in body["env"]
    assert not [name for name in body["env"] if "LAMBDAD" in name], body["env"]  # nothing of the server's or the slot's
    # the slot's rehearsal (bootstrap.rehearse) left nothing: one root handler, no module or logger of its own
    assert body["root_handlers"] == 1 and body["rehearsal"] == [], body
    assert not [name for name in body["loggers"] if "rehearsal" in name], body["loggers"]
    assert body["env"]["AWS_LAMBDA_FUNCTION_NAME"] == "py-second"
    assert body["files"] == ["app.py"] and body["cwd"] == "/var/task"
    assert body["write"] in ("OSError", "PermissionError")  # EROFS, EACCES
    stream = body["env"]["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert body["hostname"] == f"lambdad-{env_id(stream)[:12]}"
    assert body["uid"] == 64993 and body["pid"] == 1 and body["boto3"] == "boto3"
    assert any(CGROUP_ROOT.glob(f"*/{env_id(stream)}")) or not GROUPS_RENAMED

    # a handler that fails to import, from a slot: the error travels as Lambda words it
    wait_for_slots(pooled, 2)
    create(lam, "py-broken", runtime="python3.11", files={"app.py": "def handler(:\n"})
    resp = lam.invoke(FunctionName="py-broken")
    error = json.loads(resp["Payload"].read())
    assert resp["FunctionError"] == "Unhandled" and error["errorType"] == "Runtime.UserCodeSyntaxError", error


def _fork_servers(server: Server) -> dict[int, tuple[str, str, str]]:
    """The server's fork servers: pid -> (mount namespace, UTS namespace, working directory)."""
    out = {}
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit() or b"forkserver.py" not in (proc / "cmdline").read_bytes():
                continue
            if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) != server.proc.pid:
                continue
            out[int(proc.name)] = (os.readlink(proc / "ns/mnt"), os.readlink(proc / "ns/uts"), os.readlink(proc / "cwd"))
        except OSError:
            continue
    return out


def test_attaching_a_slot_leaves_the_fork_server_where_it_was(pooled):
    """The fork server enters a slot's namespaces to attach its function, and must come back: its mount and UTS
    namespaces and working directory stay its own, and the next slot's function does not see the last one's."""
    lam = pooled.client()
    create(lam, "py-attach-warmup", runtime="python3.11")
    invoke(lam, "py-attach-warmup")
    wait_for_slots(pooled, 2)
    before = _fork_servers(pooled)
    assert before, "no fork server found"
    for name, secret in (("py-attach-a", "a"), ("py-attach-b", "b")):
        created = create(lam, name, runtime="python3.11", env={"SECRET": secret})
        body, _ = invoke(lam, name)
        assert body["age"] > time.time() - created, "no slot"
        assert body["env"]["SECRET"] == secret and body["files"] == ["app.py"]
        wait_for_slots(pooled, 2)
    after = _fork_servers(pooled)
    assert {pid: after.get(pid) for pid in before} == before


def test_a_new_python_function_finds_a_slot_for_its_first_cold_start(fresh):
    """Creating a function asks for slots of its kind (here a /tmp size no function had): its very first cold
    start takes one."""
    lam = fresh.client()
    create(lam, "py-new-kind", runtime="python3.11", EphemeralStorage={"Size": 777})
    wait_for_started_slots(fresh, 2)
    asked = time.time()
    body, _ = invoke(lam, "py-new-kind")
    # the slots started after the function was created, but its process is older than the invocation
    assert body["age"] > time.time() - asked + 0.2, "the first cold start did not take a slot"
    assert body["files"] == ["app.py"] and body["env"]["AWS_LAMBDA_FUNCTION_NAME"] == "py-new-kind"


def test_custom_runtime_cold_start_takes_a_slot(pooled):
    if not os.access("/usr/bin/curl", os.X_OK):
        pytest.skip("needs /usr/bin/curl")
    lam = pooled.client()
    create(lam, "custom-first", runtime="provided.al2023", env={"SECRET": "first"}, **FAST)
    body, _ = invoke(lam, "custom-first")
    assert body["secret"] == "first"
    wait_for_slots(pooled, 2)

    created = create(lam, "custom-second", runtime="provided.al2023", env={"OTHER": "second"}, **FAST)
    body, log = invoke(lam, "custom-second")
    assert shell_age(body) > time.time() - created, "the bootstrap's process is not older than its function"
    assert body["secret"] == "" and body["other"] == "second"
    assert body["write"] == "refused" and body["cwd"] == "/var/task" and body["pid"] == 1
    assert re.search(r"Init Duration: [\d.]+ ms", log)

    # a slot that finds no program: Lambda's Runtime.InvalidEntrypoint, worded as always
    wait_for_slots(pooled, 2)
    create(lam, "custom-empty", runtime="provided.al2023", files={"README": "no bootstrap"})
    resp = lam.invoke(FunctionName="custom-empty")
    error = json.loads(resp["Payload"].read())
    assert resp["FunctionError"] == "Unhandled" and error["errorType"] == "Runtime.InvalidEntrypoint"
    assert error["errorMessage"].endswith("Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]")


def test_a_new_custom_runtime_function_finds_a_slot_for_its_first_cold_start(fresh):
    if not os.access("/usr/bin/curl", os.X_OK):
        pytest.skip("needs /usr/bin/curl")
    lam = fresh.client()
    create(lam, "custom-new-kind", runtime="provided.al2023", EphemeralStorage={"Size": 778}, **FAST)
    wait_for_started_slots(fresh, 2)
    asked = time.time()
    body, _ = invoke(lam, "custom-new-kind")
    assert shell_age(body) > time.time() - asked + 0.2, "the first cold start did not take a slot"
    assert body["write"] == "refused" and body["cwd"] == "/var/task" and body["pid"] == 1


def test_pool_off_starts_every_environment_afresh(tmp_path):
    server = Server(tmp_path / "data", env={"LAMBDAD_PREWARM_POOL_SIZE": "0"}).start()
    try:
        lam = server.client()
        create(lam, "off-0")
        invoke(lam, "off-0")
        time.sleep(1.0)
        assert not slot_groups(server)
        created = create(lam, "off-1")
        body, _ = invoke(lam, "off-1")
        assert body["age"] < time.time() - created
    finally:
        server.stop()


def test_shutdown_leaves_no_slot_process_cgroup_or_mount(tmp_path):
    mounts_before = mount_points()
    server = Server(tmp_path / "data").start()
    try:
        lam = server.client()
        create(lam, "bye-0")
        invoke(lam, "bye-0")
        create(lam, "bye-1", runtime="provided.al2023", files={"bootstrap": "#!/bin/sh\nsleep 60\n"})
        lam.invoke(FunctionName="bye-1", InvocationType="Event")
        wait_for_slots(server, 3)
        pids = [int(pid) for group in slot_groups(server) for pid in (group / "cgroup.procs").read_text().split()]
        assert pids
        server_dirs = {group.parent for group in slot_groups(server)}
    finally:
        server.stop()
    assert wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in pids), timeout=5), "a slot survived"
    assert not any(d.exists() for d in server_dirs), "the server's cgroups survived"
    assert mount_points() <= mounts_before, "the server left mounts behind"
