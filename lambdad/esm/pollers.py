"""The pollers of event source mappings: one per Enabled mapping, run by the node that holds its lease.

``PollerManager`` (owned by the app) reconciles every second, and at once when a mapping changes: for each
Enabled mapping it asks for the lease ``esm-<UUID>`` (``cluster/leases.py``; the embedded node holds every lease),
and runs the mapping's poller while it holds it; a poller whose mapping was disabled, deleted or changed, or whose
lease this node no longer holds, is cancelled (a changed one started again). So in a cluster each mapping is polled
by one node at a time, and when that node dies its lease lapses (within the lease TTL) and another node's next
reconcile starts the poller there. Mappings are spread by whoever takes each lease first.

The interface a source implements is in the package docstring (``esm/__init__.py``); ``SOURCES`` maps an event
source ARN's service to its ``Source``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping as MappingType, Protocol

from lambdad.arn import FunctionRef
from lambdad.cluster.leases import Leases
from lambdad.esm.mappings import EventSourceMappings, Mapping
from lambdad.invoke.service import Invoker
from lambdad.periodic import Periodic
from lambdad.tasks import cancel_and_wait

__all__ = ["PollerManager", "Source", "Poller", "Target", "Delivery", "lease_name"]

log = logging.getLogger(__name__)

RECONCILE_SECONDS = 1.0


@dataclass(frozen=True)
class Delivery:
    """What one synchronous invocation of a batch gave."""

    ok: bool  # ran without a function error
    payload: bytes  # the function's response (its error body when not ok)
    function_error: str | None
    request_id: str = ""
    executed_version: str = "$LATEST"


class Poller(Protocol):
    async def run(self) -> None: ...

    async def aclose(self) -> None: ...


class Target:
    """What a poller hands its batches to: the mapping's function, through the normal invoke path."""

    def __init__(self, mapping: Mapping, runs: Invoker, results: dict[str, str],
                 reserved: Callable[[str], int | None]) -> None:
        self.mapping = mapping
        self._runs = runs
        self._results = results
        self._reserved = reserved
        self._ref = FunctionRef(mapping.function_name, mapping.qualifier)

    def matches(self, record: dict[str, Any]) -> bool:
        return self.mapping.matcher is None or bool(self.mapping.matcher(record))

    def concurrency_cap(self, default: int) -> int:
        """How many batches may be in flight at once: ScalingConfig.MaximumConcurrency (else ``default``), no more
        than the function's reserved concurrency; at least one (a throttled batch returns to the source)."""
        scaling = self.mapping.config.get("ScalingConfig") or {}
        cap = int(scaling.get("MaximumConcurrency") or default)
        reserved = self._reserved(self.mapping.function_name)
        if reserved is not None:
            cap = min(cap, reserved)
        return max(1, cap)

    async def invoke(self, payload: bytes) -> Delivery:
        """Invoke the function with one batch (RequestResponse). Raises TooManyRequestsException when throttled,
        another LambdaError when it cannot run (the function is gone)."""
        config = self._runs.route(self._ref)
        outcome = await self._runs.invoke(config, payload, invoked_arn=self._runs.invoked_arn(self._ref))
        result = outcome.result
        return Delivery(ok=result.function_error is None, payload=result.payload,
                        function_error=result.function_error, request_id=outcome.request_id,
                        executed_version=outcome.executed_version)

    @property
    def function_arn(self) -> str:
        return self._runs.invoked_arn(self._ref)

    def processed(self, result: str) -> None:
        """The last batch's outcome (LastProcessingResult)."""
        self._results[self.mapping.uuid] = result


class Source(Protocol):
    def validate(self, event_source_arn: str, params: MappingType[str, Any],
                 current: MappingType[str, Any] | None) -> dict[str, Any]: ...

    def poller(self, mapping: Mapping, target: Target) -> Poller: ...

    def close(self) -> None: ...


def lease_name(uuid: str) -> str:
    return f"esm-{uuid}"


@dataclass
class _Running:
    key: tuple[Any, ...]
    poller: Poller
    task: asyncio.Task[None]


class PollerManager:
    def __init__(self, mappings: EventSourceMappings, sources: MappingType[str, Source], leases: Leases,
                 runs: Invoker, reserved: Callable[[str], int | None]) -> None:
        self._mappings = mappings
        self._sources = sources
        self._leases = leases
        self._runs = runs
        self._reserved = reserved
        self._running: dict[str, _Running] = {}
        self._job = Periodic("event-source-pollers", self._reconcile, RECONCILE_SECONDS)
        mappings.changed = self._job.wake

    def start(self) -> None:
        self._job.start(at_once=True)

    def polling(self) -> list[str]:
        """The UUIDs of the mappings this node polls now."""
        return sorted(self._running)

    async def _reconcile(self) -> None:
        wanted: dict[str, Mapping] = {}
        enabled = self._mappings.enabled()
        for mapping in enabled:
            if mapping.source not in self._sources:
                continue
            if self._leases.lease(lease_name(mapping.uuid)).held():
                wanted[mapping.uuid] = mapping
        for uuid, running in list(self._running.items()):
            found = wanted.get(uuid)
            if found is None or found.key() != running.key or running.task.done():
                await self._stop(uuid)
        known = {m.uuid for m in enabled}  # a disabled or deleted mapping's lease is given up
        for name in [n for n in self._leases.holders() if n.startswith("esm-") and n[4:] not in known]:
            await self._leases.drop(name)
        for uuid, mapping in wanted.items():
            if uuid not in self._running:
                self._begin(mapping)

    def _begin(self, mapping: Mapping) -> None:
        target = Target(mapping, self._runs, self._mappings.results, self._reserved)
        poller = self._sources[mapping.source].poller(mapping, target)
        task = asyncio.get_running_loop().create_task(self._run(mapping.uuid, poller), name=f"esm-{mapping.uuid}")
        self._running[mapping.uuid] = _Running(mapping.key(), poller, task)
        log.info("event source mapping %s: polling %s for %s", mapping.uuid, mapping.event_source_arn,
                 mapping.function_name)

    async def _run(self, uuid: str, poller: Poller) -> None:
        try:
            await poller.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("event source mapping %s: its poller failed; started again", uuid)
            await asyncio.sleep(RECONCILE_SECONDS)
            self._job.wake()

    async def _stop(self, uuid: str) -> None:
        running = self._running.pop(uuid)
        await cancel_and_wait(running.task)
        try:
            await running.poller.aclose()
        except Exception:
            log.exception("event source mapping %s: closing its poller failed", uuid)
        log.info("event source mapping %s: polling stopped", uuid)

    async def aclose(self) -> None:
        await self._job.aclose()
        for uuid in list(self._running):
            await self._stop(uuid)
        for source in self._sources.values():
            source.close()
