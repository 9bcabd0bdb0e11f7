"""The environment pool: warm environments per function version, concurrency accounting, idle recycling.

Contract:
- ``acquire(spec)`` returns an environment that is reserved for the caller (STARTING for a cold start, IDLE
  otherwise) and counts it against the account's concurrency; at the limit it raises TooManyRequestsException.
- The caller runs one invocation and then calls ``release(env)`` exactly once, whatever happened.
- Environments are keyed by (function name, version, revision id): a change to $LATEST gives a new key, so old
  environments are never reused; ``retire(name, version)`` closes the idle ones of that version (of every version
  when ``version`` is None) at once and the busy ones on release.
- Idle environments live ``idle_timeout`` seconds after their last invocation, then are closed.
- ``aclose()`` closes every environment; nothing the pool started survives it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from lambdad.errors import TooManyRequestsException
from lambdad.sandbox.environment import Environment, EnvironmentSpec, EnvState
from lambdad.tasks import cancel_and_wait

__all__ = ["EnvironmentPool"]

log = logging.getLogger(__name__)

PoolKey = tuple[str, str, str]


def _key(spec: EnvironmentSpec) -> PoolKey:
    c = spec.config
    return (c.name, c.version, c.revision_id)


class EnvironmentPool:
    def __init__(
        self,
        make_environment: Callable[[EnvironmentSpec, Callable[[Environment], None]], Environment],
        *,
        account_limit: int,
        idle_timeout: float,
    ) -> None:
        self._make = make_environment
        self.account_limit = account_limit
        self.idle_timeout = idle_timeout
        self._idle: dict[PoolKey, list[Environment]] = {}
        self._all: set[Environment] = set()
        self.in_use = 0
        self._reaper: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._reaper = asyncio.get_running_loop().create_task(self._reap_idle(), name="idle-reaper")

    @property
    def environment_count(self) -> int:
        return len(self._all)

    async def acquire(self, spec: EnvironmentSpec) -> tuple[Environment, bool]:
        """Reserve an environment for one invocation; returns it and whether this is a cold start."""
        if self.in_use >= self.account_limit:
            raise TooManyRequestsException("Rate Exceeded.", "ConcurrentInvocationLimitExceeded")
        idle = self._idle.get(_key(spec))
        while idle:
            env = idle.pop()
            if env.state is EnvState.IDLE and not env.retired:
                self.in_use += 1
                env.state = EnvState.BUSY
                return env, False
        self.in_use += 1
        env = self._make(spec, self._forget)
        self._all.add(env)
        try:
            await env.start()
        except BaseException:
            self.in_use -= 1
            self._all.discard(env)
            raise
        return env, True

    def release(self, env: Environment) -> None:
        self.in_use -= 1
        if env.state is EnvState.DEAD:
            return
        if env.retired:
            self._close_soon(env)
            return
        env.state = EnvState.IDLE
        self._idle.setdefault(_key(env.spec), []).append(env)

    def retire(self, function_name: str, version: str | None = None) -> None:
        """Make every environment of ``function_name`` (of its ``version`` only, if given) unusable; close those
        not busy now."""
        for key in [k for k in self._idle if k[0] == function_name and (version is None or k[1] == version)]:
            for env in self._idle.pop(key):
                env.retired = True
                self._close_soon(env)
        for env in self._all:
            if env.config.name == function_name and (version is None or env.config.version == version):
                env.retired = True

    def _forget(self, env: Environment) -> None:
        """Called by an environment when it dies."""
        self._all.discard(env)
        idle = self._idle.get(_key(env.spec))
        if idle and env in idle:
            idle.remove(env)

    def _close_soon(self, env: Environment) -> None:
        task = asyncio.get_running_loop().create_task(env.aclose())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _reap_idle(self) -> None:
        interval = max(0.05, min(1.0, self.idle_timeout / 4))
        while True:
            await asyncio.sleep(interval)
            cutoff = time.monotonic() - self.idle_timeout
            for key, envs in list(self._idle.items()):
                expired = [e for e in envs if e.last_used < cutoff]
                for env in expired:
                    envs.remove(env)
                    self._close_soon(env)
                if not envs:
                    self._idle.pop(key, None)

    async def aclose(self) -> None:
        await cancel_and_wait(self._reaper)
        envs = list(self._all)
        self._idle.clear()
        await asyncio.gather(*(env.aclose() for env in envs), return_exceptions=True)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
