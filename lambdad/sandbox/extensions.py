"""An environment's external extensions and the Extensions API they call (2020-01-01): executables in the layers'
/opt/extensions, started by the fork server before the runtime, talking to the environment's Runtime API endpoint.

- Init ends once the runtime and every extension (each one found in /opt/extensions, and any other that
  registered) have called ``event/next`` (``wait_init``); those that have not by the init timeout are
  ``missing``, and the environment fails init with Extension.InitTimeout. An extension's ``init/error`` fails init.
- Each invocation handed to the runtime is an INVOKE event for the extensions that asked for INVOKE. From then
  until it calls ``event/next`` again an extension is *busy*: the environment holds the runtime's answer (and
  does not freeze) until none is, and is told so (``on_settled``).
- An idle environment being released sends SHUTDOWN and waits up to ``EXTENSION_SHUTDOWN_SECONDS`` for them to
  call ``event/next`` again (``shutdown``).
- ``PUT /telemetry`` from a registered extension subscribes it to the Telemetry API; the invocation log feeds the
  subscriptions (``invocation_log.py``, ``telemetry.py``).

The environment owns this object and is the Runtime API server's target: it hands the four Extensions API calls
on here. Without extensions nothing is registered, and an invocation costs one call that finds no one to tell.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from lambdad.runtime_api.server import RuntimeApiError
from lambdad.sandbox.forkserver import extension_programs
from lambdad.sandbox.lifecycle import EnvState

if TYPE_CHECKING:
    from lambdad.sandbox.invocation_log import InvocationLog
    from lambdad.sandbox.lifecycle import Lifecycle
    from lambdad.sandbox.spec import FunctionVersion, Invocation

__all__ = ["EXTENSION_SHUTDOWN_SECONDS", "Extensions"]

EXTENSION_SHUTDOWN_SECONDS = 2.0  # Lambda gives extensions 500 ms to 2 s after SHUTDOWN


@dataclass
class _Extension:
    """An external extension registered through the Extensions API."""

    id: str
    name: str
    events: frozenset[str]
    queue: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)
    called_next: bool = False
    busy: bool = False  # an event was queued for it and it has not called event/next again since


class Extensions:
    """The extensions of one environment. ``on_settled`` is called when the last busy extension calls
    ``event/next`` again; ``on_init_error(name, error type)`` when one reports an init error."""

    def __init__(self, opt_dir: str | None, config: FunctionVersion, life: Lifecycle, log: InvocationLog, *,
                 telemetry_reachable: bool, on_settled: Callable[[], None],
                 on_init_error: Callable[[str, str], None]) -> None:
        self._expected = [os.path.basename(p) for p in extension_programs(opt_dir)] if opt_dir else []
        self._config = config
        self._life = life
        self._log = log
        self._telemetry_reachable = telemetry_reachable  # False with a private network (LAMBDAD_FUNCTION_NETWORK=none)
        self._on_settled = on_settled
        self._on_init_error = on_init_error
        self._registered: dict[str, _Extension] = {}
        self._init_waiter: asyncio.Future[None] | None = None
        self._shutdown_settled: asyncio.Event | None = None

    # -- what the environment asks ---------------------------------------------------------------------------

    def busy(self) -> bool:
        """Is an extension still working on its event?"""
        return bool(self._registered) and any(ext.busy for ext in self._registered.values())

    def busy_names(self) -> str:
        return " ".join(ext.name for ext in self._registered.values() if ext.busy)

    def initialised(self) -> bool:
        registered = {ext.name for ext in self._registered.values() if ext.called_next}
        return all(name in registered for name in self._expected) and all(
            ext.called_next for ext in self._registered.values())

    def wait_init(self, then: Callable[[], None]) -> bool:
        """While extensions are expected and not all have called ``event/next``: True, and ``then`` is called
        (a loop callback later) once they have. False when init does not wait for them."""
        if not self._expected or self.initialised():
            return False
        waiter = self._init_waiter = asyncio.get_running_loop().create_future()
        waiter.add_done_callback(lambda _: then())
        return True

    def missing(self) -> list[str] | None:
        """The expected extensions that have not registered and called ``event/next``, while init waits for them;
        None when it does not."""
        if not self._expected or self.initialised():
            return None
        return [name for name in self._expected
                if not any(e.name == name and e.called_next for e in self._registered.values())]

    def invoke(self, inv: Invocation, deadline_ms: int, trace: str) -> None:
        """``inv`` was handed to the runtime: an INVOKE event for those that asked for it."""
        if self._registered:
            self._dispatch("INVOKE", {
                "eventType": "INVOKE", "deadlineMs": deadline_ms,
                "requestId": inv.request_id, "invokedFunctionArn": inv.invoked_arn,
                "tracing": {"type": "X-Amzn-Trace-Id", "value": trace},
            })

    def want_shutdown(self) -> bool:
        return any("SHUTDOWN" in ext.events for ext in self._registered.values())

    async def shutdown(self) -> None:
        """Lambda's Shutdown phase: a SHUTDOWN event, and up to 2 s for the extensions to call next again."""
        deadline = time.time() + EXTENSION_SHUTDOWN_SECONDS
        self._shutdown_settled = asyncio.Event()
        self._dispatch("SHUTDOWN", {"eventType": "SHUTDOWN", "shutdownReason": "spindown",
                                    "deadlineMs": int(deadline * 1000)})
        try:
            await asyncio.wait_for(self._shutdown_settled.wait(), EXTENSION_SHUTDOWN_SECONDS)
        except asyncio.TimeoutError:
            pass

    def _dispatch(self, event_type: str, event: dict[str, Any]) -> None:
        data = json.dumps(event).encode()
        for ext in self._registered.values():
            if event_type in ext.events:
                ext.busy = True
                ext.queue.put_nowait(data)

    # -- the Extensions API ----------------------------------------------------------------------------------

    def _extension(self, identifier: str | None) -> _Extension:
        if not identifier:
            raise RuntimeApiError(403, "Extension.MissingExtensionIdentifier",
                                  "Missing Lambda-Extension-Identifier header")
        ext = self._registered.get(identifier)
        if ext is None:
            raise RuntimeApiError(403, "Extension.UnknownExtensionIdentifier", f"Unknown extension {identifier}")
        return ext

    def register(self, name: str | None, body: bytes) -> tuple[str, bytes]:
        """``POST /extension/register``: its identifier, and the function it runs beside."""
        if not name:
            raise RuntimeApiError(400, "InvalidRequest", "Missing Lambda-Extension-Name header")
        try:
            events = json.loads(body or b"{}").get("events") or []
            if not isinstance(events, list) or any(e not in ("INVOKE", "SHUTDOWN") for e in events):
                raise ValueError(events)
        except (ValueError, AttributeError):
            raise RuntimeApiError(400, "InvalidRequest", "events must be a list of INVOKE and SHUTDOWN") from None
        if self._life.state is EnvState.DEAD:
            raise RuntimeApiError(403, "InvalidStateTransition", "The environment is shutting down.")
        identifier = str(uuid.uuid4())
        self._registered[identifier] = _Extension(identifier, name, frozenset(events))
        c = self._config
        return identifier, json.dumps({"functionName": c.name, "functionVersion": c.version,
                                       "handler": c.handler}).encode()

    async def next_event(self, identifier: str | None) -> bytes:
        """``GET /extension/event/next``: done with its last event (if it had one); waits for the next."""
        ext = self._extension(identifier)
        ext.called_next = True
        if ext.busy and ext.queue.empty():
            ext.busy = False
            if not self.busy():
                self._on_settled()
                if self._shutdown_settled is not None:
                    self._shutdown_settled.set()
        waiter = self._init_waiter
        if waiter is not None and not waiter.done() and self.initialised():
            waiter.set_result(None)
        return await ext.queue.get()

    def error(self, identifier: str | None, kind: str, error_type: str | None, body: bytes) -> None:
        """``POST /extension/init/error`` or ``/exit/error``: logged; an init error fails init."""
        ext = self._extension(identifier)
        error_type = error_type or "Extension.Unknown"
        self._log.emit(f"EXTENSION Name: {ext.name}\tPhase: {kind}\tError Type: {error_type}\t"
                       f"{body.decode('utf-8', 'replace')[:1024]}")
        if kind == "init":
            self._on_init_error(ext.name, error_type)

    def subscribe_telemetry(self, identifier: str | None, body: bytes) -> None:
        """Telemetry API (2022-07-01): PUT /telemetry from a registered extension."""
        ext = self._extension(identifier)
        if not self._telemetry_reachable:
            raise RuntimeApiError(400, "ValidationError",
                                  "The Telemetry API is not available with LAMBDAD_FUNCTION_NETWORK=none: the server "
                                  "cannot reach a listener inside the environment's own network namespace.")
        if self._life.state is EnvState.DEAD:
            raise RuntimeApiError(403, "InvalidStateTransition", "The environment is shutting down.")
        self._log.subscribe(ext.id, ext.name, body)
