"""The environment state machine (sandbox/lifecycle.py): the transitions its table allows and no others; a dead
environment stays dead and is warm; the pool's lease and settle."""

from __future__ import annotations

import asyncio

import pytest

from lambdad.sandbox.lifecycle import TRANSITIONS, EnvState, Lifecycle

STARTING, IDLE, BUSY, DEAD = EnvState.STARTING, EnvState.IDLE, EnvState.BUSY, EnvState.DEAD


def at(state: EnvState) -> Lifecycle:
    life = Lifecycle("e1")
    path = {STARTING: [], IDLE: [IDLE], BUSY: [BUSY], DEAD: [DEAD]}[state]
    for step in path:
        life.become(step)
    assert life.state is state
    return life


def test_every_state_is_in_the_table_and_nothing_leads_back_to_starting() -> None:
    assert set(TRANSITIONS) == set(EnvState)
    assert all(STARTING not in onward for onward in TRANSITIONS.values())
    assert TRANSITIONS[DEAD] == ()


@pytest.mark.parametrize("start", list(EnvState))
@pytest.mark.parametrize("target", list(EnvState))
def test_a_transition_is_allowed_exactly_when_the_table_says(start: EnvState, target: EnvState) -> None:
    life = at(start)
    if target is start or target in TRANSITIONS[start]:
        life.become(target)
        assert life.state is target
    else:
        with pytest.raises(RuntimeError, match=f"environment e1 is {start.value}: it cannot become {target.value}"):
            life.become(target)
        assert life.state is start


def test_a_dead_environment_is_warm_and_stays_dead() -> None:
    life = at(BUSY)
    assert not life.warm.is_set()
    life.become(DEAD)
    assert life.warm.is_set()
    life.settle()
    assert not life.lease()
    assert life.state is DEAD


def test_init_done_makes_it_warm_and_idle_only_when_nothing_waits() -> None:
    ahead = Lifecycle("e1")
    ahead.initialised(idle=True)
    assert ahead.warm.is_set() and ahead.state is IDLE
    queued = Lifecycle("e2")
    queued.initialised(idle=False)
    assert queued.warm.is_set() and queued.state is STARTING  # its invocation is handed over next: BUSY


def test_lease_takes_only_an_idle_environment_and_settle_returns_it() -> None:
    assert not at(STARTING).lease()
    life = at(IDLE)
    assert life.lease() and life.state is BUSY
    assert not life.lease()
    life.settle()
    assert life.state is IDLE


def test_warm_can_be_awaited() -> None:
    async def main() -> None:
        life = Lifecycle("e1")
        asyncio.get_running_loop().call_soon(life.initialised, False)
        await asyncio.wait_for(life.warm.wait(), 1)

    asyncio.run(main())
