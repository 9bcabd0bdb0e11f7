"""Code that nothing references is collected (issue 10 item 8): blobs, unpacked trees and merged /opt trees,
after updates and deletes and after a crash; never a tree a running environment uses."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from tests.server import ROLE, create_python_function, make_zip, wait_until


def entries(data_dir: Path, sub: str) -> set[str]:
    return {p.name for p in (data_dir / sub).iterdir()}


def code(n: int) -> bytes:
    return make_zip({"app.py": f"import time\nN = {n}\ndef handler(e, c):\n    time.sleep(e.get('sleep', 0))\n"
                               f"    return [N, int(open(__file__).read().startswith('import time'))]\n",
                     "big.bin": bytes(range(256)) * 4096 * (n + 1)})


def test_updates_and_deletes_leave_nothing_behind(fresh_server, tmp_path):
    srv = fresh_server(data_dir=tmp_path / "data")
    lam = srv.client()
    lam.create_function(FunctionName="gc", Runtime="python3.11", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": code(0)})
    for n in range(1, 6):
        lam.update_function_code(FunctionName="gc", ZipFile=code(n))
        assert json.loads(lam.invoke(FunctionName="gc")["Payload"].read()) == [n, 1]
    # the environments of the older codes are retired; their trees and blobs go
    assert wait_until(lambda: len(entries(srv.data_dir, "code")) == 1 and len(entries(srv.data_dir, "tasks")) == 1, 15)
    version = lam.publish_version(FunctionName="gc")["Version"]
    lam.update_function_code(FunctionName="gc", ZipFile=code(9))
    assert wait_until(lambda: len(entries(srv.data_dir, "code")) == 2, 10)  # version 1 keeps its code
    lam.delete_function(FunctionName="gc", Qualifier=version)
    assert wait_until(lambda: len(entries(srv.data_dir, "code")) == 1, 10)
    lam.delete_function(FunctionName="gc")
    assert wait_until(lambda: not entries(srv.data_dir, "code") and not entries(srv.data_dir, "tasks"), 15)


def test_a_running_environment_keeps_its_tree(fresh_server, tmp_path):
    srv = fresh_server(data_dir=tmp_path / "data")
    lam = srv.client(read_timeout=60)
    lam.create_function(FunctionName="busy", Runtime="python3.11", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": code(1)}, Timeout=30)
    old_tree = entries(srv.data_dir, "tasks")
    result: dict = {}

    def call() -> None:
        result["out"] = json.loads(srv.client(read_timeout=60).invoke(
            FunctionName="busy", Payload=b'{"sleep": 4}')["Payload"].read())

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(1)
    lam.update_function_code(FunctionName="busy", ZipFile=code(2))
    lam.delete_function(FunctionName="busy")
    time.sleep(2)  # collection rounds have run meanwhile
    assert old_tree <= entries(srv.data_dir, "tasks")  # still there under the running invocation
    caller.join(30)
    assert result["out"] == [1, 1]  # it read its own file at the end: the tree was there
    assert wait_until(lambda: not entries(srv.data_dir, "tasks") and not entries(srv.data_dir, "code"), 15)


def test_layer_content_goes_when_nothing_uses_it(fresh_server, tmp_path):
    srv = fresh_server(data_dir=tmp_path / "data")
    lam = srv.client()
    layer = lam.publish_layer_version(LayerName="lib", Content={"ZipFile": make_zip({"python/lib.py": "V = 3"})})
    create_python_function(lam, "user", "import lib\ndef handler(e, c):\n    return lib.V\n",
                           Layers=[layer["LayerVersionArn"]])
    assert json.loads(lam.invoke(FunctionName="user")["Payload"].read()) == 3
    lam.delete_layer_version(LayerName="lib", VersionNumber=1)
    time.sleep(1.5)
    assert len(entries(srv.data_dir, "code")) == 2 and len(entries(srv.data_dir, "opt")) == 1  # still used
    lam.delete_function(FunctionName="user")
    assert wait_until(lambda: not entries(srv.data_dir, "code") and not entries(srv.data_dir, "opt")
                      and not entries(srv.data_dir, "tasks"), 15)


def test_what_a_crash_left_is_collected_at_start(fresh_server, tmp_path):
    data = tmp_path / "data"
    srv = fresh_server(data_dir=data)
    create_python_function(srv.client(), "keep", "def handler(e, c):\n    return 1\n")
    srv.stop()
    (data / "code" / ("ab" * 32 + ".zip")).write_bytes(b"PK orphan")
    (data / "code" / ("cd" * 32 + ".tmp123")).write_bytes(b"half written")
    (data / "tasks" / ".abcdef-half").mkdir()
    (data / "tasks" / ("ef" * 32)).mkdir()
    srv2 = fresh_server(data_dir=data)
    assert wait_until(lambda: len(entries(data, "code")) == 1 and len(entries(data, "tasks")) == 1, 10)
    assert json.loads(srv2.client().invoke(FunctionName="keep")["Payload"].read()) == 1
