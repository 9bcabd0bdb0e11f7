"""One execution environment: a runtime process, its Runtime API endpoint, and the invocations it serves.

The environment drives its parts, each a module of its own:

    lifecycle.py       its state and ``warm``: the transition table, and the one method that makes a transition
    invocation_log.py  what it writes: START/END/REPORT, the function's output, the caller's tail, telemetry
    json_log.py        the same in Lambda's JSON format (LoggingConfig LogFormat JSON), filtered by level
    extensions.py      its external extensions and the Extensions API they call
    endpoint.py        the Runtime API's listeners (and those in its network namespace), and who may connect
    variables.py       the runtime's environment variables        timers.py   its deadline and its freeze
    pacing.py          under 1,769 MB, when its next invocation may go: its CPU share, spread evenly
    spec.py            what it is given (its spec, a launcher, a log writer) and what it gives back

    STARTING --first GET /next--> IDLE/BUSY --response|error--> IDLE --invoke--> BUSY ...
        any state --timeout | runtime exit | init error | close()--> DEAD   (DEAD is final)

``invoke`` hands an invocation to the runtime (the runtime's long-polling ``GET /next`` receives it) and waits for
the runtime's response or error. The environment, not its caller, enforces the deadline: at the deadline it kills
the whole environment and answers with Lambda's ``Sandbox.Timedout`` error. A runtime that exits while an invocation
is open answers it with ``Runtime.ExitError`` (or ``Runtime.OutOfMemory`` when the kernel's OOM killer ended it);
but when a warm environment's runtime ends before it took the invocation (a Node runtime exits after reporting
an uncaught exception), ``invoke`` raises ``EnvironmentLost``: nothing ran, and the invoker runs it elsewhere.
A runtime program that cannot be exec'd (a custom runtime's missing or non-executable ``bootstrap``) is Lambda's
``Runtime.InvalidEntrypoint``, worded with each invocation's request id. Everything the function printed before it
answered is in that invocation's log: its output is drained before END.

External extensions talk to the same endpoint: init ends once they too have called ``event/next``, and an
invocation completes (END/REPORT, the caller's answer, readiness) once the runtime answered and each of them has
called ``event/next`` again; an idle environment being released sends them SHUTDOWN first.

Error policy: any failure of the process or of the protocol makes the environment DEAD; the pool never reuses a
DEAD environment, and ``aclose`` (idempotent) releases the process, cgroups, listener and temp dir.

What stays here is the protocol itself: the callbacks of one invocation, from hand-over to answer, that read and
write the same few fields (its open invocation, its deadline, its extensions' readiness). Split further, each part
would reach into the others' state; so this one module stays a little over the project's ~600 lines.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import shutil
import signal
import time
import uuid
from typing import Callable

from lambdad.ids import LINEAGE_HASH, trace_header
from lambdad.runtime_api.server import MAX_RESPONSE_BYTES, Deliver, NextInvocation, RuntimeApiError
from lambdad.sandbox.cgroups import EnvCgroup
from lambdad.sandbox.launcher import PRIVATE_RUNTIME_API, LaunchedProcess, LaunchRequest
from lambdad.sandbox.network import PLATFORM_API_ADDRESS
from lambdad.sandbox.endpoint import Endpoint
from lambdad.sandbox.extensions import Extensions
from lambdad.sandbox.json_log import invocation_log
from lambdad.sandbox.lifecycle import EnvState, Lifecycle
from lambdad.sandbox.pacing import CpuPacer, pacer_for
from lambdad.sandbox.response_stream import StreamSink
from lambdad.sandbox.telemetry import iso_time
from lambdad.sandbox.spec import (
    Credentials,
    EnvironmentLauncher,
    EnvironmentLost,
    EnvironmentSpec,
    FunctionVersion,
    Invocation,
    InvocationResult,
    LogWriter,
    Meter,
    PlatformAccess,
)
from lambdad.sandbox.timers import _LazyTimer
from lambdad.sandbox.variables import runtime_variables

__all__ = ["Credentials", "Environment", "EnvironmentLauncher", "EnvironmentLost", "EnvironmentSpec", "EnvState",
           "FunctionVersion", "Invocation", "InvocationResult", "LogWriter", "PlatformAccess"]

log = logging.getLogger(__name__)

INIT_TIMEOUT_SECONDS = 10.0
FREEZE_DELAY_SECONDS = 0.05


def _error_payload(error_type: str, message: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type}).encode()


class Environment:
    """One environment, made by the pool (which asks it for invocations) and served by its Runtime API server
    (of which it is the ``RuntimeApiTarget``)."""

    def __init__(
        self,
        spec: EnvironmentSpec,
        launcher: EnvironmentLauncher,
        log_sink: LogWriter,
        run_dir: str,
        on_dead: Callable[["Environment"], None],
        platform: PlatformAccess | None = None,
        meter: Meter | None = None,
    ) -> None:
        self.id = uuid.uuid4().hex
        self._platform = platform
        self._credentials = platform.issue(self.id, spec) if platform is not None else None
        self.spec = spec
        self.config = spec.config
        self._life = Lifecycle(self.id)  # its state and ``warm``: the one place they change
        self.last_used = time.monotonic()
        self.retired = False
        self._launcher = launcher
        self._run_dir = os.path.join(run_dir, self.id)
        self._on_dead = on_dead
        self._endpoint = Endpoint(self, self.id, platform)  # the Runtime API's listeners, and who may connect
        self._proc: LaunchedProcess | None = None
        self._queued: collections.deque[Invocation] = collections.deque()  # for the runtime's next GET /next
        self._parked: Deliver | None = None  # the runtime's GET /next, waiting for an invocation
        self._current: Invocation | None = None
        # the invocation's deadline (init or function timeout), and the freeze of an idle environment
        self._deadline = _LazyTimer(self._deadline_passed)
        self._deadline_of: tuple[Invocation, float] | None = None  # the invocation and its timeout, in seconds
        self._freeze = _LazyTimer(lambda: self._set_frozen(True))
        self._spawned_at = 0.0
        self.init_duration_ms: float | None = None
        self._init_reported = False
        # START/END/REPORT, the function's output, the tail, telemetry
        self._log = invocation_log(log_sink, self.id, spec, lambda: self._current, meter)
        # external extensions (executables in /opt/extensions) and the Extensions API; idle without them
        self._extensions = Extensions(spec.opt_dir, spec.config, self._life, self._log,
                                      telemetry_reachable=not launcher.private_network,
                                      on_settled=self._extensions_settled, on_init_error=self._extension_init_failed)
        self._init_error: tuple[str, bytes] | None = None
        self._init_fault: str | None = None  # a platform-detected init failure (bad entrypoint), worded per request
        self._closing: asyncio.Task[None] | None = None
        self._starting: asyncio.Task[bool] | None = None  # ``_start``: what ``_release`` waits for first
        self._exit_status: int | None = None
        self._frozen = False
        self._deferred: tuple[Invocation, bytes, str | None, str] | None = None  # an answer held for extensions
        self._runtime_parked = False
        self._killed = False
        self._traced: tuple[Invocation, float] | None = None  # answered, its spans open until the runtime is ready
        self._pacer: CpuPacer | None = None  # under 1,769 MB: when the next invocation may go (pacing.py)
        self._pacing: tuple[Invocation, Deliver, asyncio.TimerHandle] | None = None  # one waiting for its turn

    # -- start -----------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the endpoint and launch the runtime. The work runs as a task of its own, which neither a cancelled
        caller nor a close interrupts (a process half-launched would be nobody's): a close meanwhile is carried
        out once it is over (``_release`` waits for it), ending what it launched. Raises RuntimeError when the
        runtime could not be launched or the environment was closed before it was."""
        if self._starting is None:
            self._starting = asyncio.get_running_loop().create_task(self._start(), name=f"start-{self.id}")
        if await asyncio.shield(self._starting):
            raise RuntimeError(f"environment {self.id} was closed while it started")

    async def _start(self) -> bool:
        """``start``'s work; returns whether the environment was closed meanwhile."""
        loop = asyncio.get_running_loop()
        if self._closing is not None:
            return True  # closed before it started: nothing to launch
        private_network = self._launcher.private_network
        own_network = private_network or self._launcher.network is not None
        address = PRIVATE_RUNTIME_API if own_network else await self._endpoint.start()
        if self._closing is not None:
            return True  # closed meanwhile: ``_release`` closes the endpoint once this returns
        jailed = self._launcher.jailed
        os.makedirs(self._run_dir, mode=0o700)
        if not jailed:
            os.makedirs(os.path.join(self._run_dir, "tmp"), mode=0o700)
        self._log.init_start(self.spec.runtime_label,
                             f"arn:aws:lambda:{self.spec.region}::runtime:lambdad-{self.config.runtime}")
        self._spawned_at = time.monotonic()
        request = LaunchRequest(
            env_id=self.id,
            runtime=self.spec.runtime,
            environment=self._environment(address, jailed),
            memory_mb=self.config.memory_size,
            task_root=self.spec.task_root,
            tmp_mb=self.config.ephemeral_storage,
            root_dir=os.path.join(self._run_dir, "root"),
            opt_dir=self.spec.opt_dir,
        )
        try:
            self._proc = await self._launcher.launch(request)
        except Exception as exc:
            self._log.init_failed(0.0, "Runtime.InvalidEntrypoint")
            await self._endpoint.aclose()
            shutil.rmtree(self._run_dir, ignore_errors=True)
            self._life.become(EnvState.DEAD)
            raise RuntimeError(f"could not start the runtime: {exc}") from exc
        # closed while launching (nothing else ends it before its process is wired below): the process is wired
        # all the same, and ``_release``, which waits for this, ends it and everything that came with it
        closed = self._closing is not None
        self._log.attach(self._proc)
        await self._endpoint.serve(self._proc)
        self._log.read_output()
        if self._proc.exec_status_fd >= 0:
            loop.add_reader(self._proc.exec_status_fd, self._read_exec_status)
        self._proc.exited.add_done_callback(self._on_exit)
        if self._proc.listener_channel is not None:
            self._endpoint.receive_listener(self._proc.listener_channel)
        return closed

    def _environment(self, runtime_api: str, jailed: bool) -> dict[str, str]:
        endpoint = None
        if self._credentials is not None and self._platform is not None:
            endpoint = (f"http://{PLATFORM_API_ADDRESS[0]}:{PLATFORM_API_ADDRESS[1]}"
                        if self._launcher.network is not None else self._platform.endpoint_url)
        return runtime_variables(
            self.spec, runtime_api=runtime_api, jailed=jailed, log_stream=self._log.stream,
            tmp_dir=os.path.join(self._run_dir, "tmp"),
            credentials=self._credentials.as_environment() if self._credentials is not None else None,
            endpoint_url=endpoint)

    # -- invoke ----------------------------------------------------------------------------------------------

    async def invoke(self, invocation: Invocation) -> InvocationResult:
        """Run one invocation. Never raises for function faults: they come back as a result."""
        loop = asyncio.get_running_loop()
        invocation.future = loop.create_future()
        invocation.completed = False  # a retry, after an environment ended before taking it, starts over
        self._current = invocation
        state = self._life.state
        if self._init_error is not None:
            # the runtime reported an init error (possibly before this call): that is this invocation's answer
            self._finish_with_init_error(invocation)
        elif state is EnvState.DEAD and self._init_reported:
            self._current = None
            raise EnvironmentLost(f"environment {self.id} ended before it took the invocation")
        elif state is EnvState.DEAD:
            # the runtime died before it took this invocation
            self._log.start_unrun(invocation)
            status = self._exit_status if self._exit_status is not None else -9
            reason = f"signal: {_signal_name(-status)}" if status < 0 else f"exit status {status}"
            message = f"RequestId: {invocation.request_id} Error: Runtime exited with error: {reason}"
            self._log.system_line(invocation, message)
            self._complete(invocation, _error_payload("Runtime.ExitError", message), "Unhandled", "crash")
        else:
            if state is EnvState.STARTING:
                # Lambda limits the init phase to 10 s; the function's own timeout starts when the runtime takes
                # the event.
                self._arm_deadline(invocation, INIT_TIMEOUT_SECONDS)
            else:
                self._life.become(EnvState.BUSY)
            self._set_frozen(False)
            deliver = self._parked
            if deliver is not None and self._init_reported:
                self._parked = None
                self._runtime_parked = False
                self._hand_over_paced(invocation, deliver)
            else:
                self._queued.append(invocation)
        try:
            # not shielded: a cancelled caller cancels only this future; the environment goes by ``completed``
            return await invocation.future
        finally:
            self.last_used = time.monotonic()

    # -- state: the pool asks (lifecycle.py makes every transition) -----------------------------------------

    @property
    def state(self) -> EnvState:
        return self._life.state

    @property
    def warm(self) -> asyncio.Event:
        """Set once the init phase is over or the environment is dead."""
        return self._life.warm

    def lease(self) -> bool:
        """The pool asks for this environment for one invocation: IDLE → BUSY. False when it is not idle, or is
        retired (the pool then tries another)."""
        return not self.retired and self._life.lease()

    def settle(self) -> None:
        """The pool returns it after an invocation: BUSY → IDLE, waiting for the next one (unless it died)."""
        self._life.settle()

    def fail(self) -> None:
        """The pool gives up on it (a provisioned environment that did not start): → DEAD."""
        self._life.become(EnvState.DEAD)

    def accepts_peer(self, host: str, port: int) -> bool:
        return self._endpoint.accepts_peer(host, port)

    def want_next(self, deliver: Deliver) -> None:
        """The runtime's ``GET /next``: ``deliver`` gets the next invocation — now if one is waiting, else from
        ``invoke`` the moment one comes, in the same call (no queue, task or loop iteration in between) — or a
        RuntimeApiError. ``cancel_next`` withdraws it (the runtime's connection closed)."""
        if self._traced is not None:  # the runtime is ready again after a sampled invocation
            self._end_spans(time.monotonic())
        if not self._init_reported and self._extensions.wait_init(lambda: self._after_extensions_init(deliver)):
            self._parked = deliver  # the init phase ends when the runtime and every extension have called next
            return
        if not self._init_reported:
            self._init_reported = True
            self._life.initialised(idle=not self._queued)  # idle: initialised ahead of any invocation
            self.init_duration_ms = (time.monotonic() - self._spawned_at) * 1000.0
            self._log.initialised(self.init_duration_ms)
            cgroup = self._proc.cgroup if self._proc is not None else None
            if cgroup is not None and self._launcher.cpu_proportional:
                # init ran at full speed; from the first invocation on, CPU follows memory as on Lambda, spread
                # evenly over the invocations. Right after this callback has handed the first invocation over:
                # its cgroupfs writes (~0.15 ms) are not in the way of a cold start's answer
                asyncio.get_running_loop().call_soon(self._limit_cpu, cgroup)
        if self._life.state is EnvState.DEAD:
            deliver(RuntimeApiError(403, "InvalidStateTransition", "The environment is shutting down."))
            return
        if self._queued:
            self._hand_over_paced(self._queued.popleft(), deliver)
            return
        if self._proc is not None and self._proc.cgroup is not None and not self._extensions.busy():
            # parked in /next with nothing to do: frozen until the next invocation (no CPU between invocations).
            # Not at once: an environment that is invoked again within FREEZE_DELAY is never frozen, which spares
            # a busy environment two cgroup writes per invocation.
            self._freeze.set(FREEZE_DELAY_SECONDS)
        self._parked = deliver
        self._runtime_parked = True

    def cancel_next(self, deliver: Deliver) -> None:
        if self._parked == deliver:
            self._parked = None
            self._runtime_parked = False
        elif self._pacing is not None and self._pacing[1] == deliver:
            # the runtime's GET /next closed while its invocation waited for its turn: it waits for the next one
            invocation, _, handle = self._pacing
            self._pacing = None
            handle.cancel()
            self._queued.appendleft(invocation)

    def _after_extensions_init(self, deliver: Deliver) -> None:
        if self._parked != deliver:
            return  # withdrawn meanwhile
        self._parked = None
        if self._life.state is EnvState.DEAD:
            deliver(RuntimeApiError(403, "InvalidStateTransition", "The environment is shutting down."))
        else:
            self.want_next(deliver)

    def _limit_cpu(self, cgroup: EnvCgroup) -> None:
        """The quota from the first invocation on, and the pacer that spreads it (pacing.py); an environment that
        cannot be limited does not run on."""
        if self._life.state is EnvState.DEAD:
            return  # ended meanwhile: its groups are being removed
        try:
            limited = cgroup.limit_cpu(self.config.memory_size)
        except OSError as exc:
            log.warning("environment %s: its CPU could not be limited (%s): it is ended", self.id, exc)
            cgroup.kill_all()
            return
        if limited:
            self._pacer = pacer_for(cgroup, self.config.memory_size, time.monotonic())

    def _hand_over_paced(self, invocation: Invocation, deliver: Deliver) -> None:
        """Hand ``invocation`` over now, or, when the environment has spent more than its CPU share (pacing.py),
        once it has paid that back. The wait comes before the hand-over: it is not in the invocation's Duration
        nor its timeout, which start there. One read of the cgroup's CPU usage, under 1,769 MB only."""
        pacer, proc = self._pacer, self._proc
        if pacer is not None and proc is not None and proc.cgroup is not None:
            usage = proc.cgroup.cpu_usage_ns()
            wait = pacer.wait(time.monotonic(), usage) if usage is not None else 0.0
            if wait > 0.0:
                handle = asyncio.get_running_loop().call_later(wait, self._paced)
                self._pacing = (invocation, deliver, handle)
                return
        self._hand_over(invocation, deliver)

    def _paced(self) -> None:
        """The invocation's turn has come: hand it over, unless the environment ended meanwhile (its invocation is
        then answered by ``_on_exit`` or ``_release``, which also cancels this)."""
        assert self._pacing is not None
        invocation, deliver, _ = self._pacing
        self._pacing = None
        if self._life.state is EnvState.DEAD:
            deliver(RuntimeApiError(403, "InvalidStateTransition", "The environment is shutting down."))
            return
        self._hand_over(invocation, deliver)

    def _hand_over(self, invocation: Invocation, deliver: Deliver) -> None:
        """Give ``invocation`` to the runtime: its clock starts now. The event goes out first; the bookkeeping
        after it (deadline, START line, telemetry, extensions' INVOKE) overlaps with the runtime's work."""
        self._life.become(EnvState.BUSY)
        timeout = self.config.timeout
        now_wall = time.time()
        invocation.started = time.monotonic()
        deadline_ms = int((now_wall + timeout) * 1000)
        trace = invocation.trace_header or trace_header(now_wall)
        if invocation.lineage:  # the SDK sends it on with the function's own calls (loops are counted)
            trace = f"{trace};Lineage={LINEAGE_HASH}:{invocation.lineage}"
        headers = {
            "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
            "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": invocation.invoked_arn,
            "Lambda-Runtime-Trace-Id": trace,
        }
        if invocation.client_context:
            headers["Lambda-Runtime-Client-Context"] = invocation.client_context
        deliver(NextInvocation(invocation.request_id, invocation.payload, headers))
        self._arm_deadline(invocation, float(timeout))
        self._log.start(invocation)
        self._extensions.invoke(invocation, deadline_ms, trace)

    def _open_invocation(self, request_id: str) -> Invocation:
        inv = self._current
        if (inv is None or inv.request_id != request_id or inv.future is None or inv.completed or not inv.started
                or inv.answered):
            raise RuntimeApiError(400, "InvalidRequestID", f"Invalid request ID: {request_id}")
        return inv

    def post_response(self, request_id: str, body: bytes, too_large: bool) -> None:
        inv = self._open_invocation(request_id)
        if too_large:
            self._answered(inv, _error_payload(
                "Function.ResponseSizeTooLarge",
                "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
            ), "Unhandled", "error")
        else:
            self._answered(inv, body, None, "success")

    def open_stream(self, request_id: str, content_type: str | None) -> StreamSink:
        """The runtime began a streamed answer (``Lambda-Runtime-Function-Response-Mode: streaming``): its body goes
        to the caller's stream as it arrives, or is gathered into one buffered answer for a caller that did not ask
        for a stream (response_stream.py)."""
        inv = self._open_invocation(request_id)
        inv.answered = True  # no other answer is taken for it meanwhile
        return StreamSink(inv.stream, content_type,
                          lambda payload, error, status: self._answered(inv, payload, error, status),
                          MAX_RESPONSE_BYTES)

    def post_error(self, request_id: str, error_type: str | None, body: bytes) -> None:
        inv = self._open_invocation(request_id)
        if not body:
            body = _error_payload(error_type or "Runtime.Unknown", "Unknown application error occurred")
        self._answered(inv, body, "Unhandled", "error")

    def _answered(self, inv: Invocation, payload: bytes, function_error: str | None, status: str) -> None:
        """The runtime answered: complete the invocation, or, while an extension still works on its INVOKE
        event, once every extension has called event/next again (bounded by the function's timeout)."""
        inv.answered = True
        if self._extensions.busy():
            self._deferred = (inv, payload, function_error, status)
            return
        self._complete(inv, payload, function_error, status, report_later=True)

    def _flush_deferred(self) -> None:
        if self._deferred is not None:
            inv, payload, function_error, status = self._deferred
            self._deferred = None
            self._complete(inv, payload, function_error, status)

    # -- Extensions API (extensions.py) ----------------------------------------------------------------------

    def register_extension(self, name: str | None, body: bytes) -> tuple[str, bytes]:
        return self._extensions.register(name, body)

    async def extension_next(self, identifier: str | None) -> bytes:
        return await self._extensions.next_event(identifier)

    def extension_error(self, identifier: str | None, kind: str, error_type: str | None, body: bytes) -> None:
        self._extensions.error(identifier, kind, error_type, body)

    def subscribe_telemetry(self, identifier: str | None, body: bytes) -> None:
        self._extensions.subscribe_telemetry(identifier, body)

    def _extensions_settled(self) -> None:
        """No extension is busy any more: the runtime's answer held for them goes out."""
        if self._deferred is not None:
            self._flush_deferred()
            if self._runtime_parked and self._traced is not None:  # it asked for the next event meanwhile
                self._end_spans(time.monotonic())
            proc = self._proc
            if (self._runtime_parked and not self._queued and proc is not None and proc.cgroup is not None
                    and self._life.state is not EnvState.DEAD):
                self._freeze.set(FREEZE_DELAY_SECONDS)

    def _extension_init_failed(self, name: str, error_type: str) -> None:
        if not self._init_reported and self._init_error is None:
            self._init_fault = f"Extension {name} reported an init error: {error_type}"
            self._fail_init(error_type, b"")

    def post_init_error(self, error_type: str | None, body: bytes) -> None:
        if self._init_error is not None or self._life.state is EnvState.DEAD:
            raise RuntimeApiError(403, "InvalidStateTransition", "State transition from Ready to InitError failed for runtime.")
        error_type = error_type or "Runtime.Unknown"
        self._fail_init(error_type, body or _error_payload(error_type, "Init error"))

    def _fail_init(self, error_type: str, body: bytes) -> None:
        """The init phase failed: report it, answer the open invocation with the error, and end the environment."""
        self._init_error = (error_type, body)
        duration = (time.monotonic() - self._spawned_at) * 1000.0
        self._log.init_failed(duration, error_type)
        inv = self._current
        if inv is not None and inv.future is not None and not inv.completed:
            self._finish_with_init_error(inv)
        self._die()

    def _finish_with_init_error(self, inv: Invocation) -> None:
        assert self._init_error is not None
        self._log.start_unrun(inv)
        error_type, body = self._init_error
        if self._init_fault is not None:  # Lambda words a platform-detected init failure with the request id
            message = f"RequestId: {inv.request_id} Error: {self._init_fault}"
            self._log.system_line(inv, message)
            self._log.system_line(inv, error_type)
            body = _error_payload(error_type, message)
            self._complete(inv, body, "Unhandled", "error", report_error=error_type)
            return
        self._complete(inv, body, "Unhandled", "error")

    def _read_exec_status(self) -> None:
        """The exec pipe: EOF once the runtime's program runs; otherwise why it could not be exec'd."""
        proc = self._proc
        if proc is None or proc.exec_status_fd < 0:
            return
        try:
            data = os.read(proc.exec_status_fd, 4096)
        except BlockingIOError:
            return  # not exec'd yet
        except OSError:
            data = b""
        self._close_exec_status()
        if data:
            self._entrypoint_failed(data.decode("utf-8", "replace"))

    def _close_exec_status(self) -> None:
        proc = self._proc
        if proc is None or proc.exec_status_fd < 0:
            return
        asyncio.get_running_loop().remove_reader(proc.exec_status_fd)
        os.close(proc.exec_status_fd)
        proc.exec_status_fd = -1

    def _entrypoint_failed(self, message: str) -> None:
        """The runtime's program could not be exec'd: Lambda's Runtime.InvalidEntrypoint."""
        if self._init_error is not None:
            return
        self._init_fault = message
        self._fail_init("Runtime.InvalidEntrypoint", b"")

    def _arm_deadline(self, inv: Invocation, seconds: float) -> None:
        self._deadline_of = (inv, seconds)
        self._deadline.set(seconds)

    def _disarm_deadline(self) -> None:
        self._deadline.clear()

    def _deadline_passed(self) -> None:
        assert self._deadline_of is not None
        self._on_timeout(*self._deadline_of)

    def _set_frozen(self, frozen: bool) -> None:
        self._freeze.clear()
        proc = self._proc
        if proc is None or proc.cgroup is None or self._frozen == frozen:
            return
        if frozen and self._extensions.busy():
            return  # an extension is still working on its event
        try:
            proc.cgroup.freeze() if frozen else proc.cgroup.thaw()
            self._frozen = frozen
        except OSError as exc:
            log.warning("environment %s: could not %s: %s", self.id, "freeze" if frozen else "thaw", exc)

    # -- completion ------------------------------------------------------------------------------------------

    def _complete(self, inv: Invocation, payload: bytes, function_error: str | None, status: str,
                  report_error: str | None = None, *, report_later: bool = False) -> None:
        """Decide ``inv``'s result. Its END and REPORT lines are written first — or, with ``report_later`` and
        when the caller did not ask for the log (LogType=Tail), right after the caller has its answer: one loop
        callback later, still before anything else can reach this environment."""
        if inv.future is None or inv.completed:
            return
        self._disarm_deadline()
        duration = (time.monotonic() - inv.started) * 1000.0
        later = report_later and not inv.want_log
        if not later:
            self._log.report(inv, duration, status, report_error)
        self._current = None
        self._life.settle()
        inv.completed = True
        if inv.spans is not None:
            if self._traced is not None:
                self._end_spans(None)
            self._traced = (inv, time.monotonic())
        if inv.stream is not None:  # a timeout, a crash, a buffered answer: the stream's reader stops waiting
            inv.stream.end()
        if not inv.future.done():  # the caller may have been cancelled (server shutdown): nobody to tell
            log_text = "\n".join(inv.log_lines) + "\n" if inv.want_log else ""
            inv.future.set_result(InvocationResult(payload, function_error, log_text, status))
        if later:  # queued after the caller's wake-up, which set_result has just queued
            asyncio.get_running_loop().call_soon(self._log.report, inv, duration, status, report_error)

    def _end_spans(self, ready: float | None) -> None:
        """End the spans of the sampled invocation last answered: the runtime is ready again (at ``ready``), or
        the environment ended (None)."""
        assert self._traced is not None
        inv, answered = self._traced
        self._traced = None
        assert inv.spans is not None
        init = (self._spawned_at, self.init_duration_ms) if self.init_duration_ms is not None else None
        inv.spans.ended(inv.started, answered, ready, init)

    def _on_timeout(self, inv: Invocation, seconds: float) -> None:
        if inv.future is None or inv.completed:
            return
        if self._deferred is not None and self._deferred[0] is inv:
            # the runtime answered, an extension did not call next again in time: answer, and end the environment
            self._log.emit(f"EXTENSION timed out after {seconds:.2f} seconds: {self._extensions.busy_names()}")
            self._flush_deferred()
            self._kill()
            self._die()
            return
        missing = None if self._init_reported or self._init_error is not None else self._extensions.missing()
        if missing is not None:
            self._kill()
            self._log.drain()
            self._init_fault = (f"Extension(s) did not register and call event/next within the init timeout "
                                f"({seconds:.2f} seconds): [{' '.join(missing)}]")
            self._fail_init("Extension.InitTimeout", b"")
            return
        self._log.start_unrun(inv)
        message = f"RequestId: {inv.request_id} Error: Task timed out after {seconds:.2f} seconds"
        self._kill()
        self._log.drain()
        self._log.system_line(inv, f"{iso_time()} {inv.request_id} Task timed out after {seconds:.2f} seconds")
        self._complete(inv, _error_payload("Sandbox.Timedout", message), "Unhandled", "timeout")
        self._die()

    # -- process ---------------------------------------------------------------------------------------------

    def _on_exit(self, exited: asyncio.Future[int]) -> None:
        proc = self._proc
        if proc is None or exited.cancelled():
            return
        status = exited.result()
        self._exit_status = status
        self._read_exec_status()  # a failed exec wrote why before the exit: that is the answer, not ExitError
        self._log.drain()
        self._flush_deferred()
        inv = self._current
        if inv is not None and inv.future is not None and not inv.completed:
            if self._init_error is not None:
                self._finish_with_init_error(inv)
            elif not inv.started and self._init_reported:
                # warm, and the runtime never took this invocation: the invoker runs it elsewhere
                self._current = None
                self._disarm_deadline()
                if not inv.future.done():  # not completed: the invoker runs it again, elsewhere
                    inv.future.set_exception(
                        EnvironmentLost(f"environment {self.id} ended before it took the invocation"))
            else:
                oom = proc.cgroup is not None and proc.cgroup.oom_killed()
                reason = f"signal: {_signal_name(-status)}" if status < 0 else f"exit status {status}"
                message = f"RequestId: {inv.request_id} Error: Runtime exited with error: {reason}"
                error_type = "Runtime.OutOfMemory" if oom else "Runtime.ExitError"
                self._log.start_unrun(inv)
                self._log.system_line(inv, message)
                self._complete(inv, _error_payload(error_type, message), "Unhandled", "crash")
        self._die()

    def _kill(self) -> None:
        proc = self._proc
        if proc is None:
            return
        self._killed = True
        if proc.cgroup is not None:
            proc.cgroup.kill_all()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def _die(self) -> None:
        """Mark DEAD and schedule the release of everything; idempotent."""
        if self._life.state is EnvState.DEAD and self._closing is not None:
            return
        self._life.become(EnvState.DEAD)  # and warm
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._release())
        self._on_dead(self)

    async def aclose(self) -> None:
        self._die()
        assert self._closing is not None
        await asyncio.shield(self._closing)

    async def _release(self) -> None:
        if self._starting is not None and not self._starting.done():
            await asyncio.wait([self._starting])  # closed while starting: what the launch brings up is ended below
        if (self._current is None and not self._killed and self._exit_status is None
                and self._extensions.want_shutdown()):
            self._set_frozen(False)
            await self._extensions.shutdown()
        self._flush_deferred()
        if self._credentials is not None and self._platform is not None:
            self._platform.revoke(self._credentials.access_key_id)
        self._freeze.cancel()
        self._deadline.cancel()
        if self._pacing is not None:
            self._pacing[2].cancel()
            self._pacing = None
        self._kill()
        self._endpoint.stop_listening()
        inv = self._current
        if inv is not None and inv.future is not None and not inv.completed:
            message = f"RequestId: {inv.request_id} Error: the execution environment was shut down"
            if not inv.started:
                inv.started = time.monotonic()
            self._complete(inv, _error_payload("Runtime.ExitError", message), "Unhandled", "crash")
        if self._traced is not None:
            self._end_spans(None)
        proc = self._proc
        if proc is not None:
            # the process was killed above; wait (without blocking the loop) until the fork server reaps it
            try:
                await asyncio.wait_for(asyncio.shield(proc.exited), 2.0)
            except asyncio.TimeoutError:
                log.warning("environment %s: process %d did not exit after SIGKILL", self.id, proc.pid)
            self._log.close_output()
            self._close_exec_status()
            if proc.cgroup is not None:
                await asyncio.to_thread(proc.cgroup.remove)
            if proc.scratch_fd >= 0:  # its /tmp: the loop device clears itself once the jail's mount is gone
                os.close(proc.scratch_fd)
                proc.scratch_fd = -1
        await self._endpoint.aclose()
        await self._log.aclose()
        if proc is not None and proc.network is not None:
            proc.network.close()
            proc.network = None
        await asyncio.to_thread(shutil.rmtree, self._run_dir, True)


def _signal_name(number: int) -> str:
    try:
        return {signal.SIGKILL: "killed", signal.SIGSEGV: "segmentation fault", signal.SIGTERM: "terminated",
                signal.SIGABRT: "aborted"}.get(signal.Signals(number), signal.Signals(number).name.lower())
    except ValueError:
        return str(number)
