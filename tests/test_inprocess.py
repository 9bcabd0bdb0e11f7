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
    """An invocation that began with a $LATEST an update then replaced may still be launching its environment (its
    first spec waits for a thread of a busy server): the code collector keeps that code until it is under way no
    more (a deploy's --watch saw the jail fail to mount /var/task, its tree collected meanwhile)."""
    import asyncio
    import threading

    from lambdad.arn import FunctionRef
    from tests.server import create_python_function, make_zip

    lam = inproc.client()
    create_python_function(lam, fname, "def handler(e, c):\n    return 'old'\n")
    app = inproc.app
    old = app.invoker.route(FunctionRef(fname, None))
    lam.update_function_code(FunctionName=fname, ZipFile=make_zip({"app.py": "def handler(e, c):\n    return 'new'\n"}))
    gate = threading.Event()

    async def scenario() -> tuple[bool, bool, bytes]:
        loop = asyncio.get_running_loop()
        blockers = [loop.run_in_executor(None, gate.wait, 30) for _ in range(64)]  # every default thread busy
        task = loop.create_task(app.invoker.invoke(old, b"{}"))
        await asyncio.sleep(0.3)
        launching = not task.done()
        kept = old.code_hash in (app.collector.referenced_blobs() or set())
        gate.set()
        await asyncio.gather(*blockers)
        outcome = await task
        return launching, kept, outcome.result.payload

    launching, kept, payload = inproc._run(scenario())
    assert launching
    assert kept, "the code of an invocation under way was not kept"
    assert payload == b'"old"'
    assert old.code_hash not in (app.collector.referenced_blobs() or set())  # once it ended
