"""The in-process app (tests/inprocess.py) is the whole lambdad: it creates, invokes and deletes a function."""

from __future__ import annotations

import json

from tests.server import create_python_function


def test_the_in_process_app_runs_functions(inproc, fname):
    lam = inproc.client()
    create_python_function(lam, fname, "def handler(event, context):\n    return {'got': event}\n")
    response = lam.invoke(FunctionName=fname, Payload=b'{"n": 1}')
    assert json.loads(response["Payload"].read()) == {"got": {"n": 1}}
    lam.delete_function(FunctionName=fname)
