"""The Telemetry API end to end: a layer's extension listens on 127.0.0.1 (reached as sandbox.localdomain),
subscribes to platform and function telemetry, and appends every batch it receives to a file in the environment's
/tmp; the function reads that file back on its next invocation."""

from __future__ import annotations

import base64
import json
import time

import pytest

from tests.server import create_python_function, make_zip

LISTENER = r'''#!/usr/bin/python3
import http.server, json, os, socket, tempfile, threading, urllib.error, urllib.request
out = os.path.join(tempfile.gettempdir(), "telemetry.jsonl")
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open(out, "a") as f:
            for event in json.loads(body):
                f.write(json.dumps(event) + "\n")
        self.send_response(200); self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
port = server.server_address[1]
try:  # the jail's /etc/hosts names it; without the jail the host's /etc/hosts usually does not
    print("listener resolves", socket.gethostbyname("sandbox.localdomain"), flush=True)
except OSError:
    print("listener resolves nothing", flush=True)
base = "http://%s" % os.environ["AWS_LAMBDA_RUNTIME_API"]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
req = urllib.request.Request(base + "/2020-01-01/extension/register", data=json.dumps({"events": []}).encode(),
                             headers={"Lambda-Extension-Name": "listener"}, method="POST")
with opener.open(req) as r:
    ident = r.headers["Lambda-Extension-Identifier"]
def subscribe(body):
    req = urllib.request.Request(base + "/2022-07-01/telemetry", data=json.dumps(body).encode(), method="PUT",
                                 headers={"Lambda-Extension-Identifier": ident, "Content-Type": "application/json"})
    try:
        with opener.open(req) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)["errorType"]
good = {"schemaVersion": "2022-12-13", "types": ["platform", "function"],
        "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:%d/telemetry" % port},
        "buffering": {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25}}
print("listener bad types", *subscribe(dict(good, types=["platform", "nope"])), flush=True)
print("listener bad buffering", *subscribe(dict(good, buffering={"timeoutMs": 5})), flush=True)
print("listener tcp", *subscribe(dict(good, destination={"protocol": "TCP", "URI": "http://x:1"})), flush=True)
print("listener subscribed", *subscribe(good), flush=True)
with opener.open(urllib.request.Request(base + "/2020-01-01/extension/event/next",
                                        headers={"Lambda-Extension-Identifier": ident})) as r:
    pass
'''

HANDLER = r'''import json, os, tempfile, time
def handler(event, context):
    if event.get("read"):
        path = os.path.join(tempfile.gettempdir(), "telemetry.jsonl")
        deadline = time.time() + 10
        while time.time() < deadline:
            events = []
            if os.path.exists(path):
                with open(path) as f:
                    events = [json.loads(line) for line in f if line.strip()]
            if any(e["type"] == "platform.report" and e["record"]["requestId"] == event["read"] for e in events):
                return events
            time.sleep(0.05)
        return events
    print("hello telemetry", event["x"])
    return "ok"
'''


@pytest.mark.parametrize("isolation", ["auto", "none"])
def test_extension_receives_function_and_platform_telemetry(fresh_server, tmp_path, fname, isolation):
    srv = fresh_server(data_dir=tmp_path / "data", env={"LAMBDAD_ISOLATION": isolation})
    lam = srv.client()
    arn = lam.publish_layer_version(
        LayerName=fname, Content={"ZipFile": make_zip({"extensions/listener": LISTENER},
                                                      {"extensions/listener": 0o755})})["LayerVersionArn"]
    create_python_function(lam, fname, HANDLER, Layers=[arn])
    resp = lam.invoke(FunctionName=fname, Payload=b'{"x": 7}', LogType="Tail")
    assert json.loads(resp["Payload"].read()) == "ok"
    tail = base64.b64decode(resp["LogResult"]).decode()
    if isolation == "auto":
        assert "listener resolves 127.0.0.1" in tail, tail
    assert "listener bad types 400 ValidationError" in tail, tail
    assert "listener bad buffering 400 ValidationError" in tail
    assert "listener tcp 400 ValidationError" in tail
    assert "listener subscribed 200 OK" in tail
    rid = resp["ResponseMetadata"]["RequestId"]
    resp = lam.invoke(FunctionName=fname, Payload=json.dumps({"read": rid}).encode())
    events = json.loads(resp["Payload"].read())
    assert {"function"} <= {e["type"] for e in events}, events
    assert any(e["type"] == "function" and e["record"] == "hello telemetry 7" for e in events), events
    start = [e for e in events if e["type"] == "platform.start" and e["record"]["requestId"] == rid]
    assert start and start[0]["record"]["version"] == "$LATEST"
    done = [e for e in events if e["type"] == "platform.runtimeDone" and e["record"]["requestId"] == rid]
    assert done and done[0]["record"]["status"] == "success"
    report = [e for e in events if e["type"] == "platform.report" and e["record"]["requestId"] == rid]
    assert report, events
    metrics = report[0]["record"]["metrics"]
    assert report[0]["record"]["status"] == "success"
    assert metrics["memorySizeMB"] == 128 and metrics["billedDurationMs"] >= 1 and "initDurationMs" in metrics
    assert all(e["time"].endswith("Z") for e in events)
    srv.stop()


def test_subscription_refused_without_a_shared_network(fresh_server, fname):
    # LAMBDAD_FUNCTION_NETWORK=none: the server cannot reach a listener inside the environment's own namespace
    srv = fresh_server(env={"LAMBDAD_FUNCTION_NETWORK": "none"})
    lam = srv.client()
    arn = lam.publish_layer_version(
        LayerName=fname, Content={"ZipFile": make_zip({"extensions/listener": LISTENER},
                                                      {"extensions/listener": 0o755})})["LayerVersionArn"]
    create_python_function(lam, fname, HANDLER, Layers=[arn])
    resp = lam.invoke(FunctionName=fname, Payload=b'{"x": 1}', LogType="Tail")
    assert json.loads(resp["Payload"].read()) == "ok"
    tail = base64.b64decode(resp["LogResult"]).decode()
    assert "listener subscribed 400 ValidationError" in tail, tail
    srv.stop()


def test_a_stalled_destination_does_not_slow_invocations(lam, fname):
    # the extension's listener never answers: batches time out and are dropped, invocations go on at full speed
    stalled = LISTENER.replace("    def do_POST(self):\n", "    def do_POST(self):\n        time.sleep(60)\n", 1)
    stalled = stalled.replace("import http.server,", "import time, http.server,", 1)
    arn = lam.publish_layer_version(
        LayerName=fname, Content={"ZipFile": make_zip({"extensions/listener": stalled},
                                                      {"extensions/listener": 0o755})})["LayerVersionArn"]
    create_python_function(lam, fname, HANDLER, Layers=[arn])
    assert json.loads(lam.invoke(FunctionName=fname, Payload=b'{"x": 0}')["Payload"].read()) == "ok"
    began = time.monotonic()
    for x in range(1, 6):
        assert json.loads(lam.invoke(FunctionName=fname, Payload=json.dumps({"x": x}).encode())["Payload"].read()) == "ok"
    assert time.monotonic() - began < 3.0
