"""The invoke service: from a function reference and a payload to a result, through the environment pool.

Hot path, memory only: resolve the version (in memory), look up the cached ``EnvironmentSpec``, lease an
environment, run, release. Nothing here touches the disk; log lines go to the batched sink.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass

from lambdad.arn import FunctionRef
from lambdad.functions.model import FunctionConfig
from lambdad.functions.service import FunctionService
from lambdad.runtimes.registry import RuntimeRegistry
from lambdad.sandbox.environment import EnvironmentSpec, Invocation, InvocationResult
from lambdad.sandbox.pool import EnvironmentPool

__all__ = ["InvokeService", "InvokeOutcome"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InvokeOutcome:
    request_id: str
    executed_version: str
    result: InvocationResult


class InvokeService:
    def __init__(self, functions: FunctionService, pool: EnvironmentPool, runtimes: RuntimeRegistry) -> None:
        self._functions = functions
        self._pool = pool
        self._runtimes = runtimes
        self._specs: dict[tuple[str, str, str], EnvironmentSpec] = {}
        functions.on_change(self._function_changed)

    async def _function_changed(self, name: str) -> None:
        for key in [k for k in self._specs if k[0] == name]:
            del self._specs[key]
        self._pool.retire(name)

    def resolve(self, ref: FunctionRef) -> FunctionConfig:
        return self._functions.resolve(ref)

    async def invoke(
        self,
        config: FunctionConfig,
        payload: bytes,
        *,
        request_id: str | None = None,
        client_context: str | None = None,
    ) -> InvokeOutcome:
        """Run ``config`` once with ``payload``. Raises TooManyRequestsException when no environment can be had."""
        spec = await self._spec(config)
        request_id = request_id or str(uuid.uuid4())
        invocation = Invocation(
            request_id=request_id,
            payload=payload,
            invoked_arn=config.arn(self._functions.region, self._functions.account_id, qualified=False),
            client_context=client_context,
        )
        env, _cold = await self._pool.acquire(spec)
        try:
            result = await env.invoke(invocation)
        finally:
            self._pool.release(env)
        return InvokeOutcome(request_id=request_id, executed_version=config.version, result=result)

    async def _spec(self, config: FunctionConfig) -> EnvironmentSpec:
        key = (config.name, config.version, config.revision_id)
        spec = self._specs.get(key)
        if spec is None:
            runtime = await asyncio.to_thread(self._runtimes.get, config.runtime)
            version = config.runtime.removeprefix("python")
            spec = EnvironmentSpec(
                config=config,
                runtime=runtime,
                task_root=self._functions.code_tree(config),
                runtime_label=f"python:{version}.lambdad" + ("" if runtime.exact else f" (on {runtime.executable})"),
                region=self._functions.region,
                account_id=self._functions.account_id,
            )
            self._specs[key] = spec
        return spec
