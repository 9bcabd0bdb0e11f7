"""The environment pool's accounting (sandbox/pool.py), on the real pool, issue 11: what acquire and release count,
the account and reserved limits, idle reaping, provisioned environments, retirement, and that a cold start that
fails or is cancelled gives its count back and closes its environment.

The pool is given its environments by a factory (its ``make_environment`` parameter); the one here makes
``FakeEnvironment``\\ s, which have what the pool uses of an ``Environment`` and no process: their state is
lifecycle.py's ``Lifecycle``, as a real environment's, and the test plays the runtime (its start, its init, an
invocation, its death). An environment closed while it launches is tests/unit/test_environment_close.py's.

The pool keeps no queue of waiting acquires (beyond a limit it throttles at once, as Lambda does), so there is no
waiter order to test: ``test_a_throttled_acquire_takes_nothing_and_waits_for_nothing`` checks that instead."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any, Awaitable, Callable

import pytest

from lambdad.errors import TooManyRequestsException
from lambdad.functions.model import FunctionConfig
from lambdad.runtimes.registry import RuntimeRegistry
from lambdad.sandbox.environment import EnvironmentSpec
from lambdad.sandbox.lifecycle import EnvState, Lifecycle
from lambdad.sandbox.pool import EnvironmentPool

RUNTIME = RuntimeRegistry().get("python3.11")
ACCOUNT = "ConcurrentInvocationLimitExceeded"
RESERVED = "ReservedFunctionConcurrentInvocationLimitExceeded"
_ids = itertools.count()


def spec(name: str = "f", version: str = "$LATEST", revision: str = "r1") -> EnvironmentSpec:
    config = FunctionConfig(name=name, version=version, runtime="python3.11", handler="app.handler", role="r",
                            code_sha256="", code_hash="", code_size=0, last_modified="", revision_id=revision)
    return EnvironmentSpec(config=config, runtime=RUNTIME, task_root=f"/tasks/{name}", runtime_label="python:3.11",
                           region="us-east-1", account_id="000000000000")


class FakeEnvironment:
    """What the pool uses of ``Environment``. ``start`` returns once ``launched`` is settled (at once when the
    factory says so); ``aclose`` counts its calls in ``closed`` and tells the pool it is gone, as a real one does."""

    def __init__(self, spec: EnvironmentSpec, on_dead: Callable[[Any], None], launched: bool) -> None:
        self.id = f"e{next(_ids)}"
        self.spec = spec
        self.config = spec.config
        self._life = Lifecycle(self.id)
        self._on_dead = on_dead
        self.retired = False
        self.last_used = time.monotonic()
        self.init_duration_ms: float | None = None
        self.closed = 0
        self.launched: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if launched:
            self.launched.set_result(None)

    @property
    def state(self) -> EnvState:
        return self._life.state

    @property
    def warm(self) -> asyncio.Event:
        return self._life.warm

    def lease(self) -> bool:
        return not self.retired and self._life.lease()

    def settle(self) -> None:
        self._life.settle()

    def fail(self) -> None:
        self._life.become(EnvState.DEAD)

    async def start(self) -> None:
        await self.launched

    async def aclose(self) -> None:
        self.closed += 1
        if self.closed == 1:
            self._life.become(EnvState.DEAD)
            self._on_dead(self)

    # -- the test plays the runtime
    def initialised(self) -> None:
        """Its runtime called next for the first time, no invocation waiting (a provisioned environment)."""
        self.init_duration_ms = 1.0
        self._life.initialised(idle=True)

    def run(self) -> None:
        """An invocation is handed to its runtime (the cold start's first, or a warm one)."""
        self._life.become(EnvState.BUSY)
        self.last_used = time.monotonic()

    def die(self) -> None:
        """Its runtime exited: it is dead and releases itself (a real one schedules its own ``_release``)."""
        self._life.become(EnvState.DEAD)
        self.closed += 1
        self._on_dead(self)


class Factory:
    def __init__(self, launched: bool = True) -> None:
        self.launched = launched
        self.made: list[FakeEnvironment] = []

    def __call__(self, spec: EnvironmentSpec, on_dead: Callable[[Any], None]) -> Any:
        env = FakeEnvironment(spec, on_dead, self.launched)
        self.made.append(env)
        return env


class Limits:
    """Reservations, as ``ConcurrencyService`` keeps them."""

    def __init__(self, **reserved: int) -> None:
        self.by_name = dict(reserved)

    def reserved(self, name: str) -> int | None:
        return self.by_name.get(name)

    @property
    def reserved_total(self) -> int:
        return sum(self.by_name.values())


def run(test: Callable[..., Awaitable[None]], factory: Factory | None = None, **pool_args: Any) -> None:
    """Run ``test(pool, factory)`` on a pool of its own, closed after it."""
    async def main() -> None:
        made = factory or Factory()
        args = {"account_limit": 10, "idle_timeout": 60.0, **pool_args}
        pool = EnvironmentPool(made, **args)
        pool.start()
        try:
            await test(pool, made)
        finally:
            await pool.aclose()
        assert all(env.closed for env in made.made), "the pool's aclose closes everything it made"

    asyncio.run(main())


async def invoke(pool: EnvironmentPool, s: EnvironmentSpec) -> tuple[Any, bool]:
    env, cold = await pool.acquire(s)
    env.run()
    return env, cold


def counts(pool: EnvironmentPool) -> tuple[int, int, dict[str, int]]:
    return pool.in_use, pool.unreserved_in_use, pool.usage()


async def turns(n: int = 5) -> None:
    """Let the loop run what was scheduled (a close soon)."""
    for _ in range(n):
        await asyncio.sleep(0)


# -- acquire and release ---------------------------------------------------------------------------------------


def test_acquire_counts_busy_release_makes_it_idle_and_a_warm_acquire_reuses_it() -> None:
    async def test(pool: EnvironmentPool, factory: Factory) -> None:
        f = spec()
        env, cold = await invoke(pool, f)
        assert cold and env.state is EnvState.BUSY
        assert counts(pool) == (1, 1, {"account": 1}) and pool.environment_count == 1
        assert not pool.has_idle("f", "$LATEST", "r1")
        pool.release(env)
        assert counts(pool) == (0, 0, {"account": 0})
        assert env.state is EnvState.IDLE and pool.has_idle("f", "$LATEST", "r1")
        for _ in range(3):
            again, cold = await invoke(pool, f)
            assert again is env and not cold
            assert counts(pool) == (1, 1, {"account": 1})  # counted once
            pool.release(again)
        assert len(factory.made) == 1 and pool.environment_count == 1 and not env.closed

    run(test)


def test_each_busy_invocation_has_its_own_environment_and_keys_keep_versions_apart() -> None:
    async def test(pool: EnvironmentPool, factory: Factory) -> None:
        a, _ = await invoke(pool, spec())
        b, cold = await invoke(pool, spec())  # a is busy: a second environment
        assert cold and b is not a
        pool.release(a)
        c, cold = await invoke(pool, spec(revision="r2"))  # $LATEST changed: a's environment is not reused
        assert cold and c not in (a, b)
        d, cold = await invoke(pool, spec(version="1"))
        assert cold and d not in (a, b, c)
        assert counts(pool) == (3, 3, {"account": 3}) and pool.environment_count == 4
        for env in (b, c, d):
            pool.release(env)
        assert counts(pool) == (0, 0, {"account": 0})

    run(test)


def test_a_dead_environment_is_given_back_but_never_reused() -> None:
    async def test(pool: EnvironmentPool, factory: Factory) -> None:
        env, _ = await invoke(pool, spec())
        env.die()  # its runtime exited during the invocation
        assert pool.environment_count == 0  # the pool was told
        pool.release(env)
        assert counts(pool) == (0, 0, {"account": 0}) and not pool.has_idle("f", "$LATEST", "r1")
        other, cold = await invoke(pool, spec())
        assert cold and other is not env
        pool.release(other)

    run(test)


# -- limits ----------------------------------------------------------------------------------------------------


def test_the_account_limit_throttles_and_a_release_makes_room() -> None:
    async def test(pool: EnvironmentPool, factory: Factory) -> None:
        a, _ = await invoke(pool, spec("f"))
        b, _ = await invoke(pool, spec("g"))
        with pytest.raises(TooManyRequestsException) as throttled:
            await pool.acquire(spec("f"))
        assert throttled.value.reason == ACCOUNT and throttled.value.status == 429
        assert counts(pool) == (2, 2, {"account": 2}) and len(factory.made) == 2  # the throttled one took nothing
        pool.release(a)
        again, cold = await invoke(pool, spec("f"))
        assert again is a and not cold
        pool.release(again)
        pool.release(b)
        assert counts(pool) == (0, 0, {"account": 0})

    run(test, account_limit=2)


def test_a_throttled_acquire_takes_nothing_and_waits_for_nothing() -> None:
    async def test(pool: EnvironmentPool, factory: Factory) -> None:
        env, _ = await invoke(pool, spec())
        for _ in range(3):  # no queue of waiters: each is refused at once, none is left behind
            with pytest.raises(TooManyRequestsException):
                await asyncio.wait_for(pool.acquire(spec()), 1)
        pool.release(env)
        assert counts(pool) == (0, 0, {"account": 0}) and len(factory.made) == 1

    run(test, account_limit=1)


def test_a_reservation_caps_its_function_and_is_kept_from_the_others() -> None:
    async def test(pool: EnvironmentPool, factory: Factory) -> None:
        mine = [(await invoke(pool, spec("f")))[0] for _ in range(2)]
        with pytest.raises(TooManyRequestsException) as throttled:
            await pool.acquire(spec("f"))
        assert throttled.value.reason == RESERVED
        assert counts(pool) == (2, 0, {"function:f": 2, "account": 0})  # against its reservation only
        others = [(await invoke(pool, spec("g")))[0] for _ in range(3)]  # the account's 5 less f's 2
        with pytest.raises(TooManyRequestsException) as throttled:
            await pool.acquire(spec("g"))
        assert throttled.value.reason == ACCOUNT
        assert counts(pool) == (5, 3, {"function:f": 2, "account": 3})
        pool.release(mine[0])
        assert counts(pool) == (4, 3, {"function:f": 1, "account": 3})
        again, cold = await invoke(pool, spec("f"))
        assert again is mine[0] and not cold
        for env in [again, mine[1], *others]:
            pool.release(env)
        assert counts(pool) == (0, 0, {"account": 0})

    run(test, account_limit=5, limits=Limits(f=2))


@pytest.mark.parametrize("before, after", [({}, {"f": 1}), ({"f": 1}, {})], ids=["reserved-meanwhile", "unreserved-meanwhile"])
def test_an_invocation_is_given_back_where_it_was_admitted(before: dict[str, int], after: dict[str, int]) -> None:
    limits = Limits(**before)

    async def test(pool: EnvironmentPool, factory: Factory) -> None:
        env, _ = await invoke(pool, spec("f"))
        limits.by_name = dict(after)  # PutFunctionConcurrency / DeleteFunctionConcurrency meanwhile
        pool.release(env)
        assert counts(pool) == (0, 0, {"account": 0})
        warm, cold = await invoke(pool, spec("f"))  # admitted under the new rule now
        assert not cold
        assert counts(pool) == ((1, 0, {"function:f": 1, "account": 0}) if after else (1, 1, {"account": 1}))
        pool.release(warm)
        assert counts(pool) == (0, 0, {"account": 0})

    run(test, limits=limits)


# -- a cold start that does not complete -----------------------------------------------------------------------


@pytest.mark.parametrize("reserved", [False, True], ids=["unreserved", "reserved"])
def test_a_failed_cold_start_gives_its_slot_back_and_is_closed(reserved: bool) -> None:
    async def test(pool: EnvironmentPool, factory: Factory) -> None:
        acquiring = asyncio.get_running_loop().create_task(pool.acquire(spec("f")))
        await turns()
        env = factory.made[0]
        assert env.state is EnvState.STARTING and pool.in_use == 1
        env.launched.set_exception(RuntimeError("could not start the runtime: no such file"))
        with pytest.raises(RuntimeError, match="could not start the runtime"):
            await acquiring
        assert counts(pool) == (0, 0, {"account": 0}) and pool.environment_count == 0
        await turns()
        assert env.closed == 1, "the pool left the failed environment open"
        factory.launched = True
        other, cold = await invoke(pool, spec("f"))  # its slot is free again
        assert cold and other is not env
        pool.release(other)

    run(test, factory=Factory(launched=False), account_limit=1, limits=Limits(f=1) if reserved else None)


@pytest.mark.parametrize("reserved", [False, True], ids=["unreserved", "reserved"])
def test_a_cancelled_cold_start_gives_its_slot_back_and_closes_its_environment(reserved: bool) -> None:
    async def test(pool: EnvironmentPool, factory: Factory) -> None:
        acquiring = asyncio.get_running_loop().create_task(pool.acquire(spec("f")))
        await turns()
        env = factory.made[0]
        acquiring.cancel()  # the caller went away during the cold start
        with pytest.raises(asyncio.CancelledError):
            await acquiring
        assert counts(pool) == (0, 0, {"account": 0}) and pool.environment_count == 0
        await turns()
        assert env.closed == 1, "the pool left the cancelled cold start's environment open"
        factory.launched = True
        other, cold = await invoke(pool, spec("f"))  # its slot is free again
        assert cold and other is not env
        pool.release(other)

    run(test, factory=Factory(launched=False), account_limit=1, limits=Limits(f=1) if reserved else None)


# -- idle reaping, retirement ----------------------------------------------------------------------------------


def test_an_idle_environment_is_closed_after_the_idle_timeout_and_a_busy_one_is_not() -> None:
    async def test(pool: EnvironmentPool, factory: Factory) -> None:
        idle, _ = await invoke(pool, spec("f"))
        busy, _ = await invoke(pool, spec("g"))
        pool.release(idle)
        await asyncio.sleep(0.5)
        assert idle.closed == 1 and not pool.has_idle("f", "$LATEST", "r1")
        assert not busy.closed and busy.state is EnvState.BUSY
        assert pool.environment_count == 1 and counts(pool) == (1, 1, {"account": 1})
        pool.release(busy)
        await asyncio.sleep(0.5)
        assert busy.closed == 1 and pool.environment_count == 0

    run(test, idle_timeout=0.1)


def test_an_idle_environment_used_again_lives_idle_timeout_after_its_last_use() -> None:
    async def test(pool: EnvironmentPool, factory: Factory) -> None:
        env, _ = await invoke(pool, spec())
        pool.release(env)
        for _ in range(6):  # 0.6 s in all, the timeout 0.3 s after each use
            await asyncio.sleep(0.1)
            again, _ = await invoke(pool, spec())
            assert again is env
            pool.release(again)
        assert not env.closed

    run(test, idle_timeout=0.3)


def test_retire_closes_the_idle_environments_at_once_and_the_busy_ones_on_release() -> None:
    async def test(pool: EnvironmentPool, factory: Factory) -> None:
        idle, _ = await invoke(pool, spec("f"))
        busy, _ = await invoke(pool, spec("f"))
        other, _ = await invoke(pool, spec("g"))
        pool.release(idle)
        pool.release(other)
        pool.retire("f")
        await turns()
        assert idle.closed == 1 and not busy.closed and not other.closed
        pool.release(busy)
        await turns()
        assert busy.closed == 1 and counts(pool) == (0, 0, {"account": 0})
        fresh, cold = await invoke(pool, spec("f"))
        assert cold and fresh not in (idle, busy)
        pool.release(fresh)

    run(test)


# -- provisioned concurrency -----------------------------------------------------------------------------------


async def _provisioned(pool: EnvironmentPool, factory: Factory, owner: tuple[str, str], s: EnvironmentSpec,
                       n: int) -> list[FakeEnvironment]:
    before = len(factory.made)
    pool.provision(owner, s, n)
    await turns()
    envs = factory.made[before:]
    assert len(envs) == n
    for env in envs:
        env.initialised()
    await turns()
    assert pool.provisioned_ready(owner) == n
    return envs


def test_provisioned_environments_are_never_reaped_and_serve_first() -> None:
    async def test(pool: EnvironmentPool, factory: Factory) -> None:
        v1 = spec(version="1")
        warm = await _provisioned(pool, factory, ("f", "1"), v1, 2)
        on_demand, _ = await invoke(pool, spec("g"))
        pool.release(on_demand)
        await asyncio.sleep(0.5)
        assert on_demand.closed == 1  # reaped
        assert not any(env.closed for env in warm) and pool.provisioned_ready(("f", "1")) == 2
        env, cold = await invoke(pool, v1)
        assert env in warm and not cold
        assert pool.in_use == 1 and pool.unreserved_in_use == 0  # counted already, as provisioned
        pool.release(env)
        assert pool.in_use == 0 and pool.provisioned_ready(("f", "1")) == 2
        await asyncio.sleep(0.5)
        assert not any(env.closed for env in warm)
        pool.unprovision(("f", "1"))
        await turns()
        assert all(env.closed == 1 for env in warm) and pool.environment_count == 0

    run(test, idle_timeout=0.1)


def test_provisioned_environments_count_against_the_account_whether_busy_or_not() -> None:
    async def test(pool: EnvironmentPool, factory: Factory) -> None:
        await _provisioned(pool, factory, ("f", "1"), spec(version="1"), 2)
        only, _ = await invoke(pool, spec("g"))  # 3 less the 2 provisioned: room for one on-demand
        with pytest.raises(TooManyRequestsException) as throttled:
            await pool.acquire(spec("g"))
        assert throttled.value.reason == ACCOUNT
        pool.release(only)

    run(test, account_limit=3)


def test_a_provisioned_environment_that_dies_warm_is_replaced() -> None:
    async def test(pool: EnvironmentPool, factory: Factory) -> None:
        first, second = await _provisioned(pool, factory, ("f", "1"), spec(version="1"), 2)
        first.die()
        await turns()
        assert len(factory.made) == 3 and pool.provisioned_ready(("f", "1")) == 1
        factory.made[2].initialised()
        await turns()
        assert pool.provisioned_ready(("f", "1")) == 2

    run(test)
