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
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

from lambdad.arn import FunctionRef, function_arn
from lambdad.errors import InvalidRuntimeException, ServiceException, TooManyRequestsException
from lambdad.functions.model import FunctionConfig
from lambdad.functions.service import FunctionService
from lambdad.ids import random_hex
from lambdad.metrics.recorder import MetricsRecorder
from lambdad.runtimes.registry import RuntimeRegistry, RuntimeUnavailable
from lambdad.sandbox.environment import EnvironmentLost, EnvironmentSpec, Invocation, InvocationResult
from lambdad.sandbox.pool import EnvironmentPool
from lambdad.sandbox.response_stream import ResponseStream
from lambdad.traces import ACTIVE, continue_trace

if TYPE_CHECKING:
    from lambdad.spans import InvocationSpans, Traces

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
                     want_log: bool = False, lineage: int = 0, trace: str | None = None,
                     stream: ResponseStream | None = None) -> InvokeOutcome: ...


class InvokeService:
    def __init__(self, functions: FunctionService, pool: EnvironmentPool, runtimes: RuntimeRegistry,
                 traces: Traces | None = None, metrics: MetricsRecorder | None = None) -> None:
        self._functions = functions
        self._traces = traces  # the OTLP exporter (LAMBDAD_OTLP_ENDPOINT), or None
        self._metrics = metrics  # None: LAMBDAD_METRICS=off
        self._pool = pool
        self._runtimes = runtimes
        self._specs: dict[tuple[str, str, str], EnvironmentSpec] = {}
        # the configs of the invocations under way, by id, with their count: the code collector keeps their code
        # (an update may replace a config between its invocation's start and its environment's launch)
        self._running: dict[int, tuple[FunctionConfig, int]] = {}
        functions.on_change(self._function_changed)

    def running_configs(self) -> list[FunctionConfig]:
        """The configs invocations are running (or launching environments for) now."""
        return [config for config, _ in self._running.values()]

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
        trace: str | None = None,
        stream: ResponseStream | None = None,
    ) -> InvokeOutcome:
        """Run ``config`` once with ``payload``. Raises TooManyRequestsException when no environment can be had.

        ``invoked_arn`` is the ARN the caller used (default: the unqualified function ARN); with ``want_log`` the
        result carries the invocation's log lines (for LogType=Tail); ``trace`` is the caller's X-Amzn-Trace-Id,
        continued as the function's TracingConfig says (traces.py). With ``stream`` the caller reads the
        response as the function writes it, when the function streams it (``sandbox/response_stream.py``); the
        stream is ended when the invocation completes, whatever ends it."""
        running = self._running  # the collector keeps this code while the invocation is under way
        key = id(config)
        held = running.get(key)
        running[key] = (config, held[1] + 1 if held is not None else 1)
        try:
            spec = await self.spec(config)
            request_id = request_id or str(uuid.uuid4())
            invocation = Invocation(
                request_id=request_id,
                payload=payload,
                invoked_arn=invoked_arn or config.arn(self._functions.region, self._functions.account_id,
                                                      qualified=False),
                client_context=client_context,
                want_log=want_log,
                lineage=lineage,
                stream=stream,
            )
            traced = False
            if trace is not None or config.tracing_mode == ACTIVE:  # else the environment makes an unsampled one
                invocation.trace_header, traced = continue_trace(config.tracing_mode, trace)
            begun = time.time_ns() if traced else 0
            metrics = self._metrics
            if metrics is None:
                result = await self._run(spec, config, invocation, traced, trace, begun)
            else:
                # the qualifier the caller named (the Resource dimension): the 8th part of a qualified ARN
                arn = invocation.invoked_arn
                qualifier = arn.rsplit(":", 1)[1] if arn.count(":") == 7 else ""
                metrics.started(config.name, qualifier)
                try:
                    result = await self._run(spec, config, invocation, traced, trace, begun, metrics, qualifier)
                except BaseException:
                    metrics.abandoned(config.name, qualifier)
                    raise
            return InvokeOutcome(request_id=request_id, executed_version=config.version, result=result)
        finally:
            held = running[key]
            if held[1] == 1:
                del running[key]
            else:
                running[key] = (config, held[1] - 1)

    async def _run(self, spec: EnvironmentSpec, config: FunctionConfig, invocation: Invocation, traced: bool,
                   trace: str | None, begun: int, metrics: MetricsRecorder | None = None,
                   qualifier: str = "") -> InvocationResult:
        """Lease an environment, run ``invocation`` there, release it. A ``traced`` invocation gets its span (from
        ``begun``) once its environment is known; with ``metrics``, the invocation (or its throttle) is recorded
        before the environment is released."""
        for _ in range(_MAX_ENVIRONMENTS_LOST):
            try:
                env, cold = await self._pool.acquire(spec)
            except TooManyRequestsException:
                if metrics is not None:
                    metrics.throttled(config.name, qualifier)
                raise
            if traced:
                self._trace(invocation, config, trace, begun, cold)
            try:
                result = await env.invoke(invocation)
                if metrics is not None:
                    pool = self._pool
                    provisioned = (pool.provisioned_use(env)
                                   if env.spec.initialization_type == "provisioned-concurrency" else None)
                    started = invocation.started  # 0 when it never reached the runtime (an init failure)
                    metrics.finished(config.name, qualifier, config.version,
                                     (time.monotonic() - started) * 1000.0 if started else 0.0,
                                     result.function_error is not None, pool.unreserved_in_use, provisioned,
                                     provisioned is None and pool.has_provisioned(config.name, config.version))
                return result
            except EnvironmentLost:
                continue  # a warm environment ended before it took the invocation: nothing ran, run it elsewhere
            finally:
                self._pool.release(env)
        raise ServiceException(f"{_MAX_ENVIRONMENTS_LOST} environments of {config.name} ended before they "
                               "could take the invocation")

    def _trace(self, invocation: Invocation, config: FunctionConfig, caller: str | None, begun: int,
               cold: bool) -> None:
        """A traced invocation's header gets its Parent: the id of its span (which starts at ``begun``; spans.py)
        when spans are exported, else a random one."""
        if invocation.spans is not None:  # a second environment, the first having ended before it took it
            cast("InvocationSpans", invocation.spans).cold_start(cold)
            return
        assert invocation.trace_header is not None
        if self._traces is None:
            invocation.trace_header = f"{invocation.trace_header};Parent={random_hex(16)};Sampled=1"
            return
        spans = self._traces.begin(
            invocation.trace_header, caller, request_id=invocation.request_id, start_ns=begun,
            function_arn=config.arn(self._functions.region, self._functions.account_id, qualified=True),
            name=config.name, version=config.version)
        spans.cold_start(cold)
        invocation.spans = spans
        invocation.trace_header = spans.header

    async def provisioned_spec(self, config: FunctionConfig) -> EnvironmentSpec:
        """The spec of an environment initialised ahead of time for provisioned concurrency."""
        return dataclasses.replace(await self.spec(config), initialization_type="provisioned-concurrency")

    async def spec(self, config: FunctionConfig) -> EnvironmentSpec:
        """How an environment of ``config`` starts (its code unpacked here first), made once per revision."""
        key = (config.name, config.version, config.revision_id)
        spec = self._specs.get(key)
        if spec is None:
            await self._functions.ensure_code_tree(config)  # in a cluster, code uploaded on another node
            # a thread only the first time a runtime is asked for (it may run the interpreter): a cold start of a
            # new function pays no thread's round trip (~0.2 ms) for a lookup
            runtime = self._runtimes.resolved(config.runtime)
            if runtime is None:
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
