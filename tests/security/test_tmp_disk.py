"""/tmp is disk, sized by EphemeralStorage, not memory (issue 10 item 3): a 128 MB function writes 300 MB to its
512 MB /tmp and succeeds (a tmpfs would have been charged to its memory and OOM-killed it); past its size it
gets ENOSPC; it persists between invocations of one environment and starts empty in a new one; a stop leaves no
loop device behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.server import create_python_function, wait_until

WRITER = """
import os
def handler(event, context):
    written = 0
    chunk = b"x" * (1 << 20)
    try:
        with open("/tmp/big", "ab") as f:
            while written < event["mb"] << 20:
                f.write(chunk)
                written += len(chunk)
            f.flush()
            os.fsync(f.fileno())
        outcome = "ok"
    except OSError as e:
        outcome = os.strerror(e.errno)
    st = os.statvfs("/tmp")
    return {"outcome": outcome, "written_mb": written >> 20, "size_mb": st.f_blocks * st.f_frsize >> 20,
            "listing": sorted(os.listdir("/tmp")), "existing_mb": os.path.getsize("/tmp/big") >> 20}
"""


def loops_of(data_dir: Path) -> list[str]:
    """The loop devices backed by the server's scratch files (under <data dir>/scratch, unlinked once attached)."""
    out = subprocess.run(["losetup", "-l", "-n", "-O", "NAME,BACK-FILE"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if f"{data_dir}/scratch/" in line]


@pytest.fixture
def disk_tmp(fresh_server):
    if os.geteuid() != 0 or not os.path.exists("/dev/loop-control") or shutil.which("mkfs.ext4") is None:
        pytest.skip("disk-backed /tmp needs root, loop devices and mkfs.ext4, which this machine lacks")
    srv = fresh_server()
    if not any("isolation: on  private root" in line for line in srv.output):
        pytest.skip("the jail is not active here")
    return srv


def test_small_function_writes_more_than_its_memory_to_tmp(disk_tmp):
    lam = disk_tmp.client(read_timeout=120)
    create_python_function(lam, "writer", WRITER, MemorySize=128, Timeout=120)
    out = json.loads(lam.invoke(FunctionName="writer", Payload=b'{"mb": 300}')["Payload"].read())
    assert out["outcome"] == "ok" and out["written_mb"] == 300, out
    assert 480 <= out["size_mb"] <= 512 and out["listing"] == ["big"]
    # the same environment keeps its /tmp; past EphemeralStorage the disk is full
    out = json.loads(lam.invoke(FunctionName="writer", Payload=b'{"mb": 400}')["Payload"].read())
    assert out["outcome"] == "No space left on device" and out["existing_mb"] > 300, out
    assert loops_of(disk_tmp.data_dir)
    # a new environment starts with an empty /tmp
    lam.update_function_configuration(FunctionName="writer", Description="new environment")
    out = json.loads(lam.invoke(FunctionName="writer", Payload=b'{"mb": 1}')["Payload"].read())
    assert out["listing"] == ["big"] and out["existing_mb"] == 1


def test_a_stop_leaves_no_loop_device(disk_tmp):
    lam = disk_tmp.client()
    create_python_function(lam, "one", WRITER)
    lam.invoke(FunctionName="one", Payload=b'{"mb": 1}')
    assert loops_of(disk_tmp.data_dir)
    disk_tmp.stop()
    out = subprocess.run(["losetup", "-l", "-n", "-O", "BACK-FILE"], capture_output=True, text=True).stdout
    assert wait_until(lambda: not loops_of(disk_tmp.data_dir), 5), out
