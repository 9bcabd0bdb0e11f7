"""The environment pool's accounting (issue 11 item 6), read off the real pool of the in-process app while real
invocations run: what is counted busy, against which limit, and that every path out of an invocation (an answer,
a function error, a timeout, a crash, a throttle) gives its count back."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from tests.server import create_python_function, wait_until

CODE = """
import os, time
def handler(event, context):
    if event.get("crash"):
        os._exit(3)
    if event.get("fail"):
        raise ValueError("on purpose")
    time.sleep(event.get("sleep", 0))
    return "ok"
"""


@pytest.fixture
def lam(inproc):
    """A client of the in-process app, closed after the test (its pooled connections would otherwise be
    garbage-collected, unclosed, in the middle of another test)."""
    client = inproc.client(read_timeout=30, max_pool_connections=4)
    yield client
    client.close()


def _settled(pool, name: str) -> bool:
    return pool.in_use == 0 and pool.unreserved_in_use == 0 and pool.usage().get(f"function:{name}", 0) == 0


def test_every_way_out_of_an_invocation_gives_its_count_back(inproc, lam, fname) -> None:
    pool = inproc.app.pool
    create_python_function(lam, fname, CODE, Timeout=1)
    for event in ({}, {"fail": True}, {"sleep": 3}, {"crash": True}):
        lam.invoke(FunctionName=fname, Payload=json.dumps(event).encode())["Payload"].read()  # read: its connection
        assert wait_until(lambda: _settled(pool, fname), timeout=5), (event, pool.in_use, pool.unreserved_in_use)


def test_busy_environments_count_against_the_reservation_and_free_it_after(inproc, lam, fname) -> None:
    pool = inproc.app.pool
    create_python_function(lam, fname, CODE, Timeout=10)
    lam.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=2)
    unreserved_before = pool.unreserved_in_use
    with ThreadPoolExecutor(2) as threads:
        running = [threads.submit(lam.invoke, FunctionName=fname, Payload=b'{"sleep": 2}') for _ in range(2)]
        assert wait_until(lambda: pool.usage().get(f"function:{fname}") == 2, timeout=10)
        assert pool.unreserved_in_use == unreserved_before  # counted against its reservation, not the pool's
        with pytest.raises(ClientError) as third:
            lam.invoke(FunctionName=fname, Payload=b"{}")
        assert third.value.response["Error"]["Code"] == "TooManyRequestsException"
        assert pool.usage().get(f"function:{fname}") == 2  # a throttled invocation took nothing
        for future in running:
            answer = future.result()
            answer["Payload"].read()  # an unread body keeps its connection out of the pool, unclosed
            assert answer["StatusCode"] == 200
    assert wait_until(lambda: _settled(pool, fname), timeout=5)
    lam.delete_function_concurrency(FunctionName=fname)
    lam.invoke(FunctionName=fname, Payload=b"{}")["Payload"].read()  # without a reservation: the pool's, and back
    assert wait_until(lambda: _settled(pool, fname), timeout=5)


def test_an_idle_environment_is_reused_and_counted_once(inproc, lam, fname) -> None:
    pool = inproc.app.pool
    create_python_function(lam, fname, CODE)
    lam.invoke(FunctionName=fname, Payload=b"{}")["Payload"].read()

    def mine() -> int:  # this function's environments (the pool is shared with other tests' functions)
        return sum(1 for env in list(pool._all) if env.config.name == fname)

    assert mine() == 1
    revision = lam.get_function_configuration(FunctionName=fname)["RevisionId"]
    for _ in range(5):
        # once the runtime asked for its next invocation the environment is idle in the pool (until then it is
        # still finishing the last one, and an invocation arriving meanwhile gets another environment, as on Lambda)
        assert wait_until(lambda: pool.has_idle(fname, "$LATEST", revision), timeout=5)
        lam.invoke(FunctionName=fname, Payload=b"{}")["Payload"].read()
    assert mine() == 1  # warm: no new environment


def test_a_cold_start_cancelled_half_way_leaves_no_environment(inproc, lam, fname) -> None:
    """The caller of a cold start goes away (its task is cancelled) while the environment starts, at several
    moments: the pool counts nothing, and the half-started environment is closed — its process and cgroups gone —
    rather than left running outside the pool's books."""
    import asyncio

    from lambdad.arn import FunctionRef

    app = inproc.app
    if app.cgroups is None:
        pytest.skip("the in-process app runs without cgroups here: an environment's cgroup is what shows it lives")
    create_python_function(lam, fname, CODE)
    groups = app.cgroups.dirs.get("freezer") or app.cgroups.dirs["unified"]  # v1, or v2

    async def cancel_after(delay: float) -> None:
        spec = await app.invoker.spec(app.functions.resolve(FunctionRef(fname, None)))
        task = asyncio.get_running_loop().create_task(app.pool.acquire(spec))
        await asyncio.sleep(delay)
        task.cancel()
        try:
            env, _cold = await task
        except asyncio.CancelledError:
            return
        app.pool.release(env)  # it started before the cancel came: an ordinary idle environment now
        app.pool.retire(fname)

    def environments() -> set[str]:  # the app is shared: other tests' idle environments may be there too
        # (the prewarm pool's waiting slots are no environment's: they come and go as it refills)
        return {d.name for d in groups.iterdir() if d.is_dir()} - app.launcher.waiting_slots()

    for delay in (0.0, 0.002, 0.005, 0.01, 0.02):
        before = environments()
        inproc._run(cancel_after(delay))
        assert wait_until(lambda: _settled(app.pool, fname), timeout=5)
        assert wait_until(lambda: not environments() - before, timeout=10), (delay, environments() - before)
