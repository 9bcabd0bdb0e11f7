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


def test_an_invocation_under_way_keeps_its_code_from_the_collector(inproc, fname):
    """An invocation that began with a $LATEST an update then replaced is under way (launching its environment, or
    running, as here: its handler sleeps): the code collector keeps that code until it is under way no more (a
    deploy's --watch saw the jail fail to mount /var/task, its tree collected meanwhile). Fails without
    ``InvokeService.running_configs``: the replaced $LATEST is no function's config any more."""
    import asyncio

    from lambdad.arn import FunctionRef
    from tests.server import create_python_function, make_zip

    lam = inproc.client()
    create_python_function(lam, fname, "import time\n\ndef handler(e, c):\n    time.sleep(1)\n    return 'old'\n")
    app = inproc.app
    old = app.invoker.route(FunctionRef(fname, None))
    lam.update_function_code(FunctionName=fname, ZipFile=make_zip({"app.py": "def handler(e, c):\n    return 'new'\n"}))

    async def scenario() -> tuple[bool, bool, bytes]:
        task = asyncio.get_running_loop().create_task(app.invoker.invoke(old, b"{}"))
        await asyncio.sleep(0.3)
        under_way = not task.done()
        kept = old.code_hash in (app.collector.referenced_blobs() or set())
        outcome = await task
        return under_way, kept, outcome.result.payload

    under_way, kept, payload = inproc._run(scenario())
    assert under_way
    assert kept, "the code of an invocation under way was not kept"
    assert payload == b'"old"'
    assert old.code_hash not in (app.collector.referenced_blobs() or set())  # once it ended
