"""A function hoarding descriptors (issue 10 item 7): it gets Lambda's 1,024 and cannot raise them, and its
connections to the platform are capped, so the server and the next cold start are not starved."""

from __future__ import annotations

import json

from tests.server import create_python_function

HOARDER = """
import os, resource, socket
def handler(event, context):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard * 4, hard * 4))
        raised = True
    except (ValueError, OSError):
        raised = False
    files = []
    try:
        while len(files) < 100000:
            files.append(os.open("/dev/null", os.O_RDONLY))
    except OSError:
        pass
    opened = len(files)
    for fd in files:
        os.close(fd)
    host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
    conns, served = [], 0
    for _ in range(900):
        try:
            s = socket.create_connection((host, int(port)), timeout=2)
        except OSError:
            break
        conns.append(s)
    for s in conns:  # which of them the endpoint serves at once (all stay open until each was tried)
        try:
            s.sendall(b"GET /2018-06-01/runtime/nope HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
            if s.recv(12).startswith(b"HTTP/1.1"):
                served += 1
        except OSError:
            pass
    for s in conns:
        s.close()
    return {"soft": soft, "hard": hard, "raised": raised, "opened": opened, "connections": len(conns),
            "served": served}
"""


def test_function_gets_lambdas_descriptor_limit(lam, fname):
    create_python_function(lam, fname, HOARDER, Timeout=60, MemorySize=512)
    out = json.loads(lam.invoke(FunctionName=fname)["Payload"].read())
    assert (out["soft"], out["hard"], out["raised"]) == (1024, 1024, False), out
    assert out["opened"] < 1024
    assert out["served"] <= 64, out  # the endpoint serves a few connections, not all the function can open
    # the platform is not starved: a brand-new function cold-starts
    create_python_function(lam, fname + "-next", "def handler(e, c):\n    return 'fresh'\n")
    assert json.loads(lam.invoke(FunctionName=fname + "-next")["Payload"].read()) == "fresh"
