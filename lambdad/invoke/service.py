"""The invoke service: from a function reference and a payload to a result, through the environment pool.

Hot path, memory only: resolve the version (in memory; an alias with routing weights is decided by a random
draw per invocation), look up the cached ``EnvironmentSpec``, lease an environment, run, release. Nothing here
touches the disk; log lines go to the batched sink. Each published version has its own specs and environments;
a change to one version (or $LATEST) retires only that version's environments.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from dataclasses import dataclass
from typing import Protocol

from lambdad.arn import FunctionRef, function_arn
from lambdad.errors import InvalidRuntimeException, ServiceException
from lambdad.functions.model import FunctionConfig
from lambdad.functions.service import FunctionService
from lambdad.runtimes.registry import RuntimeRegistry, RuntimeUnavailable
from lambdad.sandbox.environment import EnvironmentLost, EnvironmentSpec, Invocation, InvocationResult
from lambdad.sandbox.pool import EnvironmentPool
from lambdad.sandbox.response_stream import ResponseStream

__all__ = ["InvokeService", "InvokeOutcome", "Invoker"]

log = logging.getLogger(__name__)

_MAX_ENVIRONMENTS_LOST = 3  # warm environments that may end under one invocation before it fails


@dataclass(slots=True)  # built per invocation: not frozen, which costs ~1 µs more per instance
class InvokeOutcome:
    request_id: str
    executed_version: str
    result: InvocationResult


class Invoker(Protocol):
    """What the API and the async queue need to run an invocation: ``InvokeService`` on one node, and in a
    cluster ``cluster/routing.py``'s router, which may run it on another node."""

    def route(self, ref: FunctionRef) -> FunctionConfig: ...

    def invoked_arn(self, ref: FunctionRef) -> str: ...

    async def invoke(self, config: FunctionConfig, payload: bytes, *, request_id: str | None = None,
                     client_context: str | None = None, invoked_arn: str | None = None,
                     want_log: bool = False, lineage: int = 0, stream: ResponseStream | None = None) -> InvokeOutcome: ...


class InvokeService:
    def __init__(self, functions: FunctionService, pool: EnvironmentPool, runtimes: RuntimeRegistry) -> None:
        self._functions = functions
        self._pool = pool
        self._runtimes = runtimes
        self._specs: dict[tuple[str, str, str], EnvironmentSpec] = {}
        functions.on_change(self._function_changed)

    async def _function_changed(self, name: str, version: str | None) -> None:
        for key in [k for k in self._specs if k[0] == name and (version is None or k[1] == version)]:
            del self._specs[key]
        self._pool.retire(name, version)

    def route(self, ref: FunctionRef) -> FunctionConfig:
        """The version one invocation of ``ref`` runs (an alias's weights decide between its two versions)."""
        return self._functions.route(ref)

    def invoked_arn(self, ref: FunctionRef) -> str:
        """The ARN the caller invoked, as the function's context sees it (qualified when the caller qualified it)."""
        return function_arn(self._functions.region, self._functions.account_id, ref.name, ref.qualifier)

    async def invoke(
        self,
        config: FunctionConfig,
        payload: bytes,
        *,
        request_id: str | None = None,
        client_context: str | None = None,
        invoked_arn: str | None = None,
        want_log: bool = False,
        lineage: int = 0,
        stream: ResponseStream | None = None,
    ) -> InvokeOutcome:
        """Run ``config`` once with ``payload``. Raises TooManyRequestsException when no environment can be had.

        ``invoked_arn`` is the ARN the caller used (default: the unqualified function ARN); with ``want_log`` the
        result carries the invocation's log lines (for LogType=Tail). With ``stream`` the caller reads the response
        as the function writes it, when the function streams it (``sandbox/response_stream.py``); the stream is
        ended when the invocation completes, whatever ends it."""
        spec = await self._spec(config)
        request_id = request_id or str(uuid.uuid4())
        invocation = Invocation(
            request_id=request_id,
            payload=payload,
            invoked_arn=invoked_arn or config.arn(self._functions.region, self._functions.account_id, qualified=False),
            client_context=client_context,
            want_log=want_log,
            lineage=lineage,
            stream=stream,
        )
        for _ in range(_MAX_ENVIRONMENTS_LOST):
            env, _cold = await self._pool.acquire(spec)
            try:
                result = await env.invoke(invocation)
                break
            except EnvironmentLost:
                continue  # a warm environment ended before it took the invocation: nothing ran, run it elsewhere
            finally:
                self._pool.release(env)
        else:
            raise ServiceException(f"{_MAX_ENVIRONMENTS_LOST} environments of {config.name} ended before they "
                                   "could take the invocation")
        return InvokeOutcome(request_id=request_id, executed_version=config.version, result=result)

    async def provisioned_spec(self, config: FunctionConfig) -> EnvironmentSpec:
        """The spec of an environment initialised ahead of time for provisioned concurrency."""
        return dataclasses.replace(await self._spec(config), initialization_type="provisioned-concurrency")

    async def _spec(self, config: FunctionConfig) -> EnvironmentSpec:
        key = (config.name, config.version, config.revision_id)
        spec = self._specs.get(key)
        if spec is None:
            await self._functions.ensure_code_tree(config)  # in a cluster, code uploaded on another node
            try:
                runtime = await asyncio.to_thread(self._runtimes.get, config.runtime)
            except RuntimeUnavailable as exc:
                raise InvalidRuntimeException(str(exc)) from exc
            spec = EnvironmentSpec(
                config=config,
                runtime=runtime,
                task_root=self._functions.code_tree(config),
                runtime_label=runtime.label,
                region=self._functions.region,
                account_id=self._functions.account_id,
                opt_dir=self._functions.opt_tree(config),  # built when the function's layers were set
            )
            self._specs[key] = spec
        return spec
