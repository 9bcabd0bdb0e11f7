"""What an environment is given and what it gives back: its spec, the protocols of what it uses (the launcher,
the log writer, the platform's credentials and API), and its invocations and their results. (Its states are
``lifecycle.py``'s.)

Split out of ``environment.py`` (issue 11): these are the sandbox's contract with the layers above it, which
build a spec and read results but never reach into an environment's workings.
"""

from __future__ import annotations

import asyncio
import base64
import socket
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Mapping, Protocol

from lambdad.errors import LambdadError
from lambdad.runtimes.registry import RuntimeSpec
from lambdad.sandbox.launcher import LaunchedProcess, LaunchRequest
from lambdad.sandbox.network import FunctionNetwork
from lambdad.sandbox.response_stream import ResponseStream

TAIL_BYTES = 4096  # the log tail an Invoke with LogType=Tail returns

__all__ = ["Credentials", "EnvironmentLauncher", "EnvironmentLost", "EnvironmentSpec", "FunctionVersion",
           "Invocation", "InvocationResult", "InvocationTrace", "LogWriter", "Meter", "PlatformAccess"]


class FunctionVersion(Protocol):
    """What an environment reads of the function version it runs (``functions/model.py``'s FunctionConfig)."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def revision_id(self) -> str: ...

    @property
    def runtime(self) -> str: ...

    @property
    def handler(self) -> str: ...

    @property
    def memory_size(self) -> int: ...

    @property
    def timeout(self) -> int: ...

    @property
    def ephemeral_storage(self) -> int: ...

    @property
    def environment(self) -> Mapping[str, str]: ...

    @property
    def log_group_name(self) -> str: ...

    @property
    def log_format(self) -> str: ...  # Text | JSON

    @property
    def application_log_level(self) -> str: ...  # "" with Text

    @property
    def system_log_level(self) -> str: ...  # "" with Text


class EnvironmentLauncher(Protocol):
    """What starts an environment's process (``sandbox/launcher.py``'s Launcher: a fork server's child, jailed):
    the seam where cluster mode places environments on other nodes."""

    jailed: bool
    cpu_proportional: bool
    private_network: bool  # LAMBDAD_FUNCTION_NETWORK=none: a new namespace with only lo
    network: FunctionNetwork | None  # isolated: the namespaces made by the server

    async def launch(self, request: LaunchRequest) -> LaunchedProcess: ...


class Credentials(Protocol):
    """An environment's own short-lived credentials (issued by the platform, ``auth/issued.py``)."""

    @property
    def access_key_id(self) -> str: ...

    def as_environment(self) -> dict[str, str]: ...


class LogWriter(Protocol):
    """Where an environment's log lines go (``logs/sink.py``): taken without waiting; ``congested`` asks the
    environment to stop reading its function's output until ``when_drained`` calls back."""

    def emit(self, group: str, stream: str, message: str, timestamp_ms: int | None = None) -> None: ...

    @property
    def congested(self) -> bool: ...

    def when_drained(self, callback: Callable[[], None]) -> None: ...


class Meter(Protocol):
    """Where an invocation's billed use is counted (``invoke/usage.py``): taken without waiting, no I/O."""

    def invoked(self, config: FunctionVersion, billed_ms: int, provisioned: bool) -> None: ...


@dataclass(frozen=True)
class PlatformAccess:
    """How a function reaches the platform's API: credentials issued per environment (``issue(env id, spec)``,
    withdrawn with ``revoke(access key id)`` when the environment is gone), and the endpoint."""

    issue: Callable[[str, "EnvironmentSpec"], Credentials]
    revoke: Callable[[str], None]
    endpoint_url: str
    # serves this API on a listener opened inside an environment's own network namespace (sandbox/network.py);
    # returns the server to close when the environment is gone
    serve: Callable[[socket.socket], Awaitable[asyncio.AbstractServer]] | None = None


class InvocationTrace(Protocol):
    """A sampled invocation's spans (``traces.py``'s InvocationSpans), told once what the environment saw, in
    monotonic seconds: the runtime took the event at ``started`` (0: never), answered at ``answered``, asked for
    the next event at ``ready`` (None: the environment ended instead); ``init``: its init phase (start, ms)."""

    def ended(self, started: float, answered: float, ready: float | None,
              init: tuple[float, float] | None) -> None: ...


class EnvironmentLost(LambdadError):
    """The runtime of a warm environment ended before it took the invocation (e.g. a Node runtime exiting after
    reporting an uncaught exception): nothing of the invocation ran, so it can run in another environment."""


@dataclass
class Invocation:
    request_id: str
    payload: bytes
    invoked_arn: str
    client_context: str | None = None  # JSON text, as the runtime header carries it
    future: asyncio.Future["InvocationResult"] | None = None
    log_lines: list[str] = field(default_factory=list)
    started: float = 0.0
    answered: bool = False  # the runtime posted its response or error
    completed: bool = False  # its result is decided (``future`` may have been cancelled by the caller meanwhile)
    want_log: bool = False  # the caller wants its log lines (LogType=Tail): kept, and written before the answer
    lineage: int = 0  # its place in a chain of asynchronous invocations (1 for the first; 0: none), in its trace id
    trace_header: str | None = None  # its X-Ray header (without Lineage), when not a new unsampled trace's
    spans: InvocationTrace | None = None  # sampled, with an OTLP endpoint: its spans, ended by the environment
    stream: ResponseStream | None = None  # the caller reads the response as it is written (response streaming)


@dataclass(slots=True)  # built per invocation: not frozen, which costs ~1 µs more per instance
class InvocationResult:
    payload: bytes
    function_error: str | None  # "Unhandled" for any function error, None on success
    log_text: str
    status: str = "success"  # success | error | timeout | crash

    def log_tail_b64(self) -> str:
        data = self.log_text.encode("utf-8", "replace")[-TAIL_BYTES:]
        return base64.b64encode(data).decode()


@dataclass(frozen=True)
class EnvironmentSpec:
    """What an environment needs to start: the function version, how to run it, and where."""

    config: FunctionVersion
    runtime: RuntimeSpec
    task_root: str  # the code tree on the host
    runtime_label: str  # for INIT_START, e.g. "python:3.12"
    region: str
    account_id: str
    initialization_type: str = "on-demand"
    opt_dir: str | None = None  # the merged layers on the host (mounted at /opt), None without layers
