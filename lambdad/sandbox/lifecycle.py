"""An execution environment's state machine: its states, the transitions allowed between them, and the one method
that makes a transition. Nothing else writes an environment's state: the environment moves it as its runtime
and invocations go, and the pool only asks (``Environment.lease``, ``settle``, ``fail``).

    STARTING --init done, nothing queued--> IDLE --lease | invoke--> BUSY --response | error--> IDLE ...
    STARTING --the first invocation handed to the runtime--> BUSY
    any state --timeout | runtime exit | init error | close()--> DEAD   (DEAD is final)

``warm`` is set once the init phase is over (the runtime and every extension called ``next``) or the environment
is dead, whichever comes first: a provisioned environment is ready once it is set and the environment is not DEAD.

Staying in a state is not a transition and is always allowed (an environment the pool leased is BUSY already when
its invocation is handed over). Anything the table does not allow, as leaving DEAD or going back to STARTING, is a
bug in the caller and raises ``RuntimeError``.
"""

from __future__ import annotations

import asyncio
from enum import Enum

__all__ = ["EnvState", "Lifecycle", "TRANSITIONS"]


class EnvState(Enum):
    STARTING = "starting"
    IDLE = "idle"
    BUSY = "busy"
    DEAD = "dead"

    # members are singletons, equal only to themselves: hashed by identity too, as Enum's own hash (a Python call)
    # costs four times as much, and ``become`` looks a state up twice per invocation
    __hash__ = object.__hash__


# the states each state may become, besides itself
TRANSITIONS: dict[EnvState, tuple[EnvState, ...]] = {
    # an invocation may complete while STARTING (an init error, an init timeout): IDLE, then DEAD
    EnvState.STARTING: (EnvState.IDLE, EnvState.BUSY, EnvState.DEAD),
    EnvState.IDLE: (EnvState.BUSY, EnvState.DEAD),
    EnvState.BUSY: (EnvState.IDLE, EnvState.DEAD),
    EnvState.DEAD: (),
}


class Lifecycle:
    """One environment's state and ``warm`` event. ``state`` is read freely and written only by ``become``."""

    __slots__ = ("state", "warm", "_onward", "_name")

    def __init__(self, name: str) -> None:
        self.state = EnvState.STARTING
        self.warm = asyncio.Event()
        self._onward = TRANSITIONS[EnvState.STARTING]  # the states this one may become (a tuple: no hashing)
        self._name = name  # the environment's id, for the error

    def become(self, state: EnvState) -> None:
        """Every transition goes through here. A dead environment stays dead, and is warm."""
        if state is self.state:
            return
        if state not in self._onward:
            raise RuntimeError(f"environment {self._name} is {self.state.value}: it cannot become {state.value}")
        self.state = state
        self._onward = TRANSITIONS[state]
        if state is EnvState.DEAD:
            self.warm.set()

    def initialised(self, idle: bool) -> None:
        """The init phase is over: warm; IDLE when ``idle`` (no invocation waits: it was initialised ahead of one,
        as provisioned concurrency does) and it is still STARTING."""
        self.warm.set()
        if idle and self.state is EnvState.STARTING:
            self.become(EnvState.IDLE)

    def lease(self) -> bool:
        """IDLE → BUSY for one invocation; False when it is not idle."""
        if self.state is not EnvState.IDLE:
            return False
        self.become(EnvState.BUSY)
        return True

    def settle(self) -> None:
        """An invocation is over: IDLE, waiting for the next one, unless it died."""
        if self.state is not EnvState.DEAD:
            self.become(EnvState.IDLE)
