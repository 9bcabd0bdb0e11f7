"""The environment pool: warm environments per function version, concurrency accounting, idle recycling.

Contract:
- ``acquire(spec)`` returns an environment that is reserved for the caller (STARTING for a cold start, IDLE
  otherwise) and counts it against the function's reserved concurrency when it has one, else against the
  unreserved pool (the account limit minus every reservation). Beyond either it raises TooManyRequestsException
  (Reason ``ReservedFunctionConcurrentInvocationLimitExceeded`` or ``ConcurrentInvocationLimitExceeded``). An
  invocation is counted where it was admitted until its release, even if the reservation changes meanwhile.
- The caller runs one invocation and then calls ``release(env)`` exactly once, whatever happened. A cold start
  that fails or whose caller is cancelled is not the caller's to release: ``acquire`` gives its count back and
  closes the environment itself.
- Environments are keyed by (function name, version, revision id): a change to $LATEST gives a new key, so old
  environments are never reused; ``retire(name, version)`` closes the idle ones of that version (of every version
  when ``version`` is None) at once and the busy ones on release.
- Provisioned concurrency: ``provision(owner, spec, n, here)`` starts ``here`` environments (``n``, the config's
  whole request, unless a cluster spreads it over several nodes) ahead of any invocation for an
  owner (a function version or alias) and keeps them warm, never reaped for idleness nor retired with the
  version's on-demand environments; one that dies after it was warm is replaced. They are counted against the
  function's reservation (or the unreserved pool) whether busy or not: all ``n`` of them, wherever they run. ``acquire`` takes an idle provisioned
  environment of the version first, without further admission; beyond them it spills over to on-demand
  environments, admitted as above. ``unprovision(owner)`` closes them (busy ones on release).
- Idle environments live ``idle_timeout`` seconds after their last invocation, then are closed.
- ``aclose()`` closes every environment; nothing the pool started survives it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

from lambdad.errors import TooManyRequestsException
from lambdad.sandbox.environment import Environment, EnvironmentSpec, EnvState
from lambdad.tasks import cancel_and_wait

__all__ = ["EnvironmentPool", "ConcurrencyLimits"]

log = logging.getLogger(__name__)

PoolKey = tuple[str, str, str]
Owner = tuple[str, str]  # (function name, version or alias) of a provisioned concurrency config

PROVISION_TIMEOUT_SECONDS = 15.0  # a provisioned environment's init phase (Lambda limits init to 10 s)


@dataclass
class _Provision:
    spec: EnvironmentSpec  # initialization_type "provisioned-concurrency"
    requested: int  # the config's whole request (what the limits set aside)
    here: int  # how many of them this node runs
    envs: set[Environment] = field(default_factory=set)
    failure: str | None = None


class ConcurrencyLimits(Protocol):
    """Where the pool reads reservations (``functions.concurrency.ConcurrencyService``). Memory only."""

    def reserved(self, name: str) -> int | None: ...

    @property
    def reserved_total(self) -> int: ...


class Permits(Protocol):
    """Cluster mode (``cluster/permits.py``): the share of each limit this node may use. A scope is ``account``
    (the unreserved pool) or ``function:<name>`` (a reservation); ``cap`` is the whole limit of the scope, which
    the shares of all nodes together never pass."""

    def held(self, scope: str) -> int: ...

    async def grow(self, scope: str, cap: int, used: int) -> bool: ...


class _NoReservations:
    def reserved(self, name: str) -> int | None:
        return None

    @property
    def reserved_total(self) -> int:
        return 0


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
        limits: ConcurrencyLimits | None = None,
        on_gone: Callable[[], None] | None = None,
        permits: Permits | None = None,
    ) -> None:
        self._make = make_environment
        self._permits = permits  # None: this node's limits are the whole limits (a cluster of one)
        self._on_gone = on_gone  # told when an environment has died (what it ran from may be collected)
        self.account_limit = account_limit
        self.idle_timeout = idle_timeout
        self._idle: dict[PoolKey, list[Environment]] = {}
        self._all: set[Environment] = set()
        self._limits: ConcurrencyLimits = limits or _NoReservations()
        self.in_use = 0  # every busy environment
        self.unreserved_in_use = 0  # those of functions without a reservation
        self._busy_by_function: dict[str, int] = {}  # busy environments admitted under a reservation
        self._admitted_reserved: set[Environment] = set()
        self._provisions: dict[Owner, _Provision] = {}
        self._owner_of: dict[Environment, Owner] = {}  # every provisioned environment not yet closed
        self._provisioned_idle: dict[tuple[str, str], list[Environment]] = {}  # by (function, version)
        self._provisioned_busy: set[Environment] = set()
        self._provisioning: set[asyncio.Task[None]] = set()
        self._reaper: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._reaper = asyncio.get_running_loop().create_task(self._reap_idle(), name="idle-reaper")

    @property
    def environment_count(self) -> int:
        return len(self._all)

    def in_use_paths(self) -> set[str]:
        """The code and /opt trees (host paths) that live environments run from."""
        paths = {env.spec.task_root for env in self._all}
        return paths | {env.spec.opt_dir for env in self._all if env.spec.opt_dir}

    async def acquire(self, spec: EnvironmentSpec) -> tuple[Environment, bool]:
        """Reserve an environment for one invocation; returns it and whether this is a cold start."""
        name = spec.config.name
        warm = self._provisioned_idle.get((name, spec.config.version))
        while warm:
            env = warm.pop()
            if env.lease():
                self.in_use += 1
                self._provisioned_busy.add(env)
                return env, False
        try:
            reserved = self._admit(name)
        except TooManyRequestsException:
            if self._permits is None:
                raise
            reserved = await self._admit_growing(name)
        idle = self._idle.get(_key(spec))
        while idle:
            env = idle.pop()
            if env.lease():
                self._count(env, name, reserved)
                return env, False
        env = self._make(spec, self._forget)
        self._count(env, name, reserved)
        self._all.add(env)
        try:
            await env.start()
        except BaseException:  # it failed, or the caller was cancelled (its client went away) meanwhile
            self._uncount(env)
            self._all.discard(env)
            self._close_soon(env)  # whatever it launched, or launches yet, ends (``Environment.start``)
            raise
        return env, True

    def _admit(self, name: str) -> bool:
        """Check there is room for one more invocation of ``name``; returns whether it runs under a reservation."""
        reserved = self._limits.reserved(name)
        if reserved is not None:
            cap = reserved - self.provisioned_requested(name)
            if self._permits is not None:
                cap = min(cap, self._permits.held(f"function:{name}"))
            if self._busy_by_function.get(name, 0) >= cap:
                raise TooManyRequestsException("Rate Exceeded.", "ReservedFunctionConcurrentInvocationLimitExceeded")
            return True
        cap = self._unreserved_cap()
        if self._permits is not None:
            cap = min(cap, self._permits.held("account"))
        if self.unreserved_in_use >= cap:
            raise TooManyRequestsException("Rate Exceeded.", "ConcurrentInvocationLimitExceeded")
        return False

    async def _admit_growing(self, name: str) -> bool:
        """Cluster mode: admit ``name`` once this node's share of its limit has grown enough (the whole limit
        allows it), or throttle. Other invocations may take the permits a grant brings: ask again then."""
        assert self._permits is not None
        for _ in range(8):
            if not await self._permits.grow(*self._scope(name)):
                break
            try:
                return self._admit(name)
            except TooManyRequestsException:
                continue
        return self._admit(name)  # raises the throttle with its reason (or admits, if room was made meanwhile)

    def _unreserved_cap(self) -> int:
        provisioned = sum(p.requested for (fn, _), p in self._provisions.items() if self._limits.reserved(fn) is None)
        return self.account_limit - self._limits.reserved_total - provisioned

    def _scope(self, name: str) -> tuple[str, int, int]:
        """(scope, its whole limit, this node's use of it) of an invocation of ``name``."""
        reserved = self._limits.reserved(name)
        if reserved is not None:
            return f"function:{name}", reserved - self.provisioned_requested(name), self._busy_by_function.get(name, 0)
        return "account", self._unreserved_cap(), self.unreserved_in_use

    def has_idle(self, name: str, version: str, revision_id: str) -> bool:
        """Whether an idle warm environment (provisioned or not) of this exact function version waits here."""
        return bool(self._idle.get((name, version, revision_id)) or self._provisioned_idle.get((name, version)))

    def usage(self) -> dict[str, int]:
        """This node's use of each scope now (``Permits``: a share beyond it may be given back)."""
        used = {f"function:{name}": n for name, n in self._busy_by_function.items()}
        used["account"] = self.unreserved_in_use
        return used

    def _count(self, env: Environment, name: str, reserved: bool) -> None:
        self.in_use += 1
        if reserved:
            self._busy_by_function[name] = self._busy_by_function.get(name, 0) + 1
            self._admitted_reserved.add(env)
        else:
            self.unreserved_in_use += 1

    def _uncount(self, env: Environment) -> None:
        self.in_use -= 1
        if env in self._admitted_reserved:
            self._admitted_reserved.discard(env)
            name = env.config.name
            left = self._busy_by_function.get(name, 1) - 1
            if left:
                self._busy_by_function[name] = left
            else:
                self._busy_by_function.pop(name, None)
        else:
            self.unreserved_in_use -= 1

    def release(self, env: Environment) -> None:
        provisioned = env in self._provisioned_busy
        if provisioned:
            self._provisioned_busy.discard(env)
            self.in_use -= 1
        else:
            self._uncount(env)
        if env.state is EnvState.DEAD:
            return
        if env.retired:
            self._close_soon(env)
            return
        env.settle()
        if provisioned:
            self._provisioned_idle.setdefault((env.config.name, env.config.version), []).append(env)
        else:
            self._idle.setdefault(_key(env.spec), []).append(env)

    def retire(self, function_name: str, version: str | None = None) -> None:
        """Make every environment of ``function_name`` (of its ``version`` only, if given) unusable; close those
        not busy now."""
        for key in [k for k in self._idle if k[0] == function_name and (version is None or k[1] == version)]:
            for env in self._idle.pop(key):
                env.retired = True
                self._close_soon(env)
        for env in self._all:
            if env in self._owner_of:
                continue  # provisioned environments end with their config (``unprovision``)
            if env.config.name == function_name and (version is None or env.config.version == version):
                env.retired = True

    # -- provisioned concurrency -----------------------------------------------------------------------------

    def provision(self, owner: Owner, spec: EnvironmentSpec, requested: int, here: int | None = None) -> None:
        """Keep ``here`` (default: ``requested``) environments of ``spec`` initialised ahead of time for ``owner``,
        out of the ``requested`` its config sets aside. The same version as before keeps its environments (more
        are started, or the surplus closed, busy ones on release); another version replaces them."""
        here = requested if here is None else here
        current = self._provisions.get(owner)
        if current is None or _key(current.spec) != _key(spec):
            self.unprovision(owner)
            current = self._provisions[owner] = _Provision(spec, requested, here)
        current.requested, current.here = requested, here
        surplus = len(current.envs) - here
        if surplus > 0:  # the ones not warm yet first, then idle ones; busy ones on release
            idle = self._provisioned_idle.get((spec.config.name, spec.config.version), [])
            order = sorted(current.envs, key=lambda e: (e.warm.is_set(), e in self._provisioned_busy))
            for env in order[:surplus]:
                current.envs.discard(env)
                self._owner_of.pop(env, None)
                env.retired = True
                if env in idle:
                    idle.remove(env)
                if env not in self._provisioned_busy:
                    self._close_soon(env)
        for _ in range(here - len(current.envs)):
            self._start_provisioned(owner, current)

    def unprovision(self, owner: Owner) -> None:
        provision = self._provisions.pop(owner, None)
        if provision is None:
            return
        for env in list(provision.envs):
            env.retired = True
            idle = self._provisioned_idle.get((env.config.name, env.config.version))
            if idle and env in idle:
                idle.remove(env)
            if env not in self._provisioned_busy:
                self._close_soon(env)

    def provisioned_ready(self, owner: Owner) -> int:
        """How many of ``owner``'s provisioned environments are initialised (busy or not)."""
        provision = self._provisions.get(owner)
        if provision is None:
            return 0
        return sum(1 for env in provision.envs if env.warm.is_set() and env.state is not EnvState.DEAD)

    def provision_failure(self, owner: Owner) -> str | None:
        provision = self._provisions.get(owner)
        return provision.failure if provision is not None else None

    def provisioned_use(self, env: Environment) -> tuple[str, int, float] | None:
        """For a busy provisioned environment: its config's qualifier, how many of the config's environments are
        busy, and that as a share of what the config sets aside (metrics; walks the config's environments)."""
        owner = self._owner_of.get(env)
        provision = self._provisions.get(owner) if owner is not None else None
        if owner is None or provision is None:
            return None
        busy = sum(1 for e in provision.envs if e in self._provisioned_busy)
        return owner[1], busy, busy / max(provision.requested, 1)

    def has_provisioned(self, function_name: str, version: str) -> bool:
        """Whether provisioned concurrency is configured for this version (an on-demand invocation spilled over)."""
        return any(fn == function_name and p.spec.config.version == version
                   for (fn, _), p in self._provisions.items()) if self._provisions else False

    def provisioned_requested(self, function_name: str) -> int:
        return sum(p.requested for (fn, _), p in self._provisions.items() if fn == function_name)

    def _start_provisioned(self, owner: Owner, provision: _Provision) -> None:
        env = self._make(provision.spec, self._forget)
        self._all.add(env)
        self._owner_of[env] = owner
        provision.envs.add(env)
        task = asyncio.get_running_loop().create_task(self._warm_up(env, provision))
        self._provisioning.add(task)
        task.add_done_callback(self._provisioning.discard)

    async def _warm_up(self, env: Environment, provision: _Provision) -> None:
        try:
            await env.start()
            await asyncio.wait_for(env.warm.wait(), PROVISION_TIMEOUT_SECONDS)
        except Exception:
            log.warning("a provisioned environment of %s could not start", env.config.name, exc_info=True)
            env.fail()
        if env.state is EnvState.DEAD:
            provision.failure = "FUNCTION_ERROR_INIT_FAILURE"
            provision.envs.discard(env)
            self._owner_of.pop(env, None)
            self._all.discard(env)
            self._close_soon(env)
            return
        if env.retired:
            return
        self._provisioned_idle.setdefault((env.config.name, env.config.version), []).append(env)

    def _forget(self, env: Environment) -> None:
        """Called by an environment when it dies."""
        self._all.discard(env)
        if self._on_gone is not None:
            self._on_gone()
        idle = self._idle.get(_key(env.spec))
        if idle and env in idle:
            idle.remove(env)
        owner = self._owner_of.pop(env, None)
        if owner is not None:
            warm = self._provisioned_idle.get((env.config.name, env.config.version))
            if warm and env in warm:
                warm.remove(env)
            provision = self._provisions.get(owner)
            if provision is not None and env in provision.envs:
                provision.envs.discard(env)
                if env.init_duration_ms is not None and not env.retired:
                    self._start_provisioned(owner, provision)  # it was warm (then timed out or crashed): replace it

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
        for task in list(self._provisioning):
            task.cancel()
        if self._provisioning:
            await asyncio.gather(*self._provisioning, return_exceptions=True)
        self._provisions.clear()
        envs = list(self._all)
        self._idle.clear()
        await asyncio.gather(*(env.aclose() for env in envs), return_exceptions=True)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
