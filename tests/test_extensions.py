"""External extensions and the Extensions API end to end: a layer's /opt/extensions/recorder registers, gets an
INVOKE event per invocation (with the invocation's request id) and SHUTDOWN when its environment is retired; an
extension that never registers fails the init phase."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest

from tests.server import create_python_function, make_zip

RECORDER = r'''#!/usr/bin/python3
import json, os, sys, urllib.error, urllib.request
base = "http://%s/2020-01-01/extension" % os.environ["AWS_LAMBDA_RUNTIME_API"]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
req = urllib.request.Request(base + "/register", data=json.dumps({"events": ["INVOKE", "SHUTDOWN"]}).encode(),
                             headers={"Lambda-Extension-Name": "recorder"}, method="POST")
with opener.open(req) as r:
    ident = r.headers["Lambda-Extension-Identifier"]
    info = json.load(r)
print("recorder registered", info["functionName"], info["functionVersion"], info["handler"], flush=True)
try:
    opener.open(urllib.request.Request(base + "/event/next", headers={"Lambda-Extension-Identifier": "nope"}))
except urllib.error.HTTPError as exc:
    print("recorder unknown id", exc.code, json.load(exc)["errorType"], flush=True)
while True:
    with opener.open(urllib.request.Request(base + "/event/next", headers={"Lambda-Extension-Identifier": ident})) as r:
        event = json.load(r)
    if event["eventType"] == "INVOKE":
        print("recorder INVOKE", event["requestId"], event["tracing"]["type"], event["invokedFunctionArn"], flush=True)
    else:
        print("recorder SHUTDOWN", event["shutdownReason"], flush=True)
        sys.exit(0)
'''

HANDLER = "def handler(event, context):\n    print('handler ran')\n    return {'answer': event['x']}\n"


def layer(lam, name: str, files: dict) -> str:
    modes = {path: 0o755 for path in files}
    return lam.publish_layer_version(LayerName=name, Content={"ZipFile": make_zip(files, modes)})["LayerVersionArn"]


@pytest.mark.parametrize("isolation", ["auto", "none"])  # jailed (/opt mounted) and not (the layer tree on the host)
def test_extension_gets_invoke_and_shutdown_events(fresh_server, tmp_path, fname, isolation):
    data = tmp_path / "data"
    srv = fresh_server(data_dir=data, env={"LAMBDAD_ISOLATION": isolation})
    lam = srv.client()
    arn = layer(lam, fname, {"extensions/recorder": RECORDER})
    create_python_function(lam, fname, HANDLER, Layers=[arn])
    rids = []
    for x in (1, 2):
        resp = lam.invoke(FunctionName=fname, Payload=json.dumps({"x": x}).encode(), LogType="Tail")
        assert "FunctionError" not in resp
        assert json.loads(resp["Payload"].read()) == {"answer": x}
        rid = resp["ResponseMetadata"]["RequestId"]
        rids.append(rid)
        tail = base64.b64decode(resp["LogResult"]).decode()
        assert f"recorder INVOKE {rid} X-Amzn-Trace-Id arn:aws:lambda:us-east-1:" in tail, tail
        assert tail.index("recorder INVOKE") < tail.index(f"END RequestId: {rid}")
    # a configuration update retires the environment: its extension gets SHUTDOWN first
    lam.update_function_configuration(FunctionName=fname, Description="retire the environment")
    lam.get_waiter("function_updated_v2").wait(FunctionName=fname)
    resp = lam.invoke(FunctionName=fname, Payload=b'{"x": 3}')
    assert json.loads(resp["Payload"].read()) == {"answer": 3}
    srv.stop()
    result = subprocess.run([sys.executable, "-m", "lambdad", "logs", fname, "--data-dir", str(data)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines.count(f"recorder registered {fname} $LATEST app.handler") == 2, lines
    assert "recorder unknown id 403 Extension.UnknownExtensionIdentifier" in lines
    for rid in rids:
        assert sum(l.startswith(f"recorder INVOKE {rid} ") for l in lines) == 1
    assert lines.count("recorder SHUTDOWN spindown") == 2, lines
    first_shutdown = lines.index("recorder SHUTDOWN spindown")
    assert first_shutdown > lines.index(f"END RequestId: {rids[1]}")


def test_extension_that_never_registers_fails_init(lam, fname):
    arn = layer(lam, fname, {"extensions/silent": "#!/bin/sh\nexec sleep 60\n"})
    create_python_function(lam, fname, HANDLER, Layers=[arn])
    resp = lam.invoke(FunctionName=fname, Payload=b'{"x": 1}', LogType="Tail")
    assert resp["FunctionError"] == "Unhandled"
    error = json.loads(resp["Payload"].read())
    assert error["errorType"] == "Extension.InitTimeout"
    assert "[silent]" in error["errorMessage"]
    tail = base64.b64decode(resp["LogResult"]).decode()
    assert "\tStatus: error\tError Type: Extension.InitTimeout" in tail
    assert "did not register and call event/next within the init timeout" in tail
