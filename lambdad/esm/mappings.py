"""Event source mappings as the API sees them: Create/Get/Update/Delete/ListEventSourceMappings.

A mapping names an event source (its ARN; the source type is the ARN's service: ``sqs`` now, see
``pollers.SOURCES``) and a function — by name, ARN, or a version's or alias's ARN, which it then invokes. The common
rules are here; each source type adds its own (``Source.validate``: SQS's batch sizes, its unsupported parameters,
the queue's existence). Lambda's errors: a function that does not exist is InvalidParameterValueException
"Function does not exist"; a second mapping of one queue to one function ResourceConflictException; an unknown
UUID ResourceNotFoundException "The resource you requested does not exist.".

States, as Lambda moves through them: a new mapping is ``Creating``, an update ``Updating`` (``Enabling`` or
``Disabling`` when it turns ``Enabled`` on or off), a deleted one is answered ``Deleting``; a moment later
(``SETTLE`` seconds, once the pollers have been told) the node that made the change writes ``Enabled`` or
``Disabled``. ``StateTransitionReason`` is ``USER_INITIATED`` (every change here is the user's).
``LastProcessingResult`` is the last batch's outcome as the poller reported it (``OK``, ``PROBLEM: ...``; ``No
records processed`` before the first), kept in memory on the node that polls.

Mappings are stored (``EventSourceMappingStore``) before the call returns; a change reaches every node of a
cluster (``eventsource`` change notices); deleting the function deletes its mappings (the store drops them with it).

FilterCriteria are compiled by ``esm/filtering.py`` (``compile_filter_criteria``) for the mapping's source; a
pattern it refuses is an InvalidParameterValueException ("Invalid filter pattern definition.").
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid as uuids
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping as MappingType, Protocol

from lambdad.arn import LATEST, FunctionRef, function_arn, parse_function_name
from lambdad.errors import (InvalidParameterValueException, LambdaError, ResourceConflictException,
                            ResourceNotFoundException)
from lambdad.functions.service import FunctionService
from lambdad.esm.filtering import InvalidFilterCriteria, compile_filter_criteria
from lambdad.store.interfaces import EventSourceMappingStore

__all__ = ["EventSourceMappings", "Mapping", "SourceRules", "compile_filters", "SETTLE"]

log = logging.getLogger(__name__)

SETTLE = 0.3  # seconds a mapping stays Creating / Updating / Enabling / Disabling
_PAGE = 100
_SETTLED = {"Creating": None, "Updating": None, "Enabling": "Enabled", "Disabling": "Disabled"}
# what the stored config keeps beside the source's own fields
_COMMON = ("FunctionResponseTypes", "FilterCriteria", "ScalingConfig")
# Lambda's parameters that lambdad does not apply yet: refused rather than ignored
_NOT_YET = ("Tags", "MetricsConfig", "LoggingConfig", "KMSKeyArn", "ProvisionedPollerConfig")


class SourceRules(Protocol):
    """What the mappings need of a source type (``pollers.Source``)."""

    def validate(self, event_source_arn: str, params: MappingType[str, Any],
                 current: MappingType[str, Any] | None) -> dict[str, Any]: ...


def compile_filters(criteria: Any, event_source_arn: str) -> Callable[[dict[str, Any]], bool] | None:
    """The matcher of a mapping's FilterCriteria (None: no filters, every record matches), for records of the
    source ``event_source_arn`` names (``esm/filtering.py``: which field holds the data, how it is decoded)."""
    if not criteria or not (criteria.get("Filters") if isinstance(criteria, dict) else None):
        return None
    service = event_source_arn.split(":")[2] if event_source_arn.count(":") >= 2 else ""
    source = _FILTER_SOURCES.get(service, service)
    try:
        return compile_filter_criteria(criteria, source)
    except InvalidFilterCriteria as exc:
        raise InvalidParameterValueException(str(exc) or "Invalid filter pattern definition.") from exc


_FILTER_SOURCES = {"mq": "rmq"}  # an ARN's service -> filtering.py's name of the source, where they differ


@dataclass
class Mapping:
    uuid: str
    function_name: str
    qualifier: str | None  # what it invokes: None for the unqualified function
    event_source_arn: str
    config: dict[str, Any]  # the stored fields: the source's, Enabled, State, the common ones
    last_modified: float
    matcher: Callable[[dict[str, Any]], bool] | None = field(default=None, repr=False)

    @property
    def enabled(self) -> bool:
        return bool(self.config.get("Enabled", True))

    @property
    def source(self) -> str:
        return self.event_source_arn.split(":")[2]

    def key(self) -> tuple[Any, ...]:
        """What a running poller was started from: a change of it restarts the poller."""
        return (self.function_name, self.qualifier, json.dumps({k: v for k, v in self.config.items()
                                                                if k not in ("State",)}, sort_keys=True))


class EventSourceMappings:
    def __init__(self, functions: FunctionService, store: EventSourceMappingStore,
                 sources: MappingType[str, SourceRules], *, region: str, account_id: str) -> None:
        self._functions = functions
        self._store = store
        self._sources = sources
        self._region, self._account_id = region, account_id
        self._mappings: dict[str, Mapping] = {}
        self.results: dict[str, str] = {}  # UUID -> LastProcessingResult, as this node's poller reported it
        self.changed: Callable[[], None] = lambda: None  # the poller manager's wake-up
        self._settling: set[asyncio.Task[None]] = set()
        functions.on_change(self._function_changed)

    # -- loading ----------------------------------------------------------------------------------------------

    async def load(self) -> None:
        found: dict[str, Mapping] = {}
        for uuid, name, arn, config, modified in await self._store.load_event_source_mappings():
            data = json.loads(config)
            ref = FunctionRef(name, data.pop("_Qualifier", None))
            mapping = Mapping(uuid, ref.name, ref.qualifier, arn, data, modified)
            try:
                mapping.matcher = compile_filters(data.get("FilterCriteria"), arn)
            except LambdaError as exc:  # a pattern refused since (a stricter lambdad): kept, but not polled
                log.warning("event source mapping %s: its FilterCriteria cannot be applied (%s); not polled",
                            uuid, exc)
                mapping.config["Enabled"] = False
            found[uuid] = mapping
        self._mappings = found
        for mapping in list(found.values()):
            if mapping.config.get("State") in _SETTLED:  # a change whose settling a stop interrupted
                self._settle_later(mapping, 0.0)
        self.changed()

    async def reload(self, _name: str) -> None:
        """Another node changed a mapping of function ``_name`` (cluster change notices): read them all again."""
        await self.load()

    # -- what the pollers read --------------------------------------------------------------------------------

    def enabled(self) -> list[Mapping]:
        return [m for m in self._mappings.values() if m.enabled]

    def uuids(self) -> set[str]:
        return set(self._mappings)

    def function_arn_of(self, uuid: str) -> str | None:
        """The FunctionArn of mapping ``uuid`` (access control), or None."""
        mapping = self._mappings.get(uuid)
        return self._function_arn(mapping) if mapping is not None else None

    def mapping_arn(self, uuid: str) -> str:
        return f"arn:aws:lambda:{self._region}:{self._account_id}:event-source-mapping:{uuid}"

    # -- the API ----------------------------------------------------------------------------------------------

    @staticmethod
    def _refuse_not_yet(params: MappingType[str, Any]) -> None:
        for name in _NOT_YET:
            if params.get(name):
                raise InvalidParameterValueException(f"{name} is not supported by lambdad's event source mappings yet.")

    async def create(self, params: MappingType[str, Any]) -> dict[str, Any]:
        self._refuse_not_yet(params)
        arn = params.get("EventSourceArn")
        if not arn:
            raise InvalidParameterValueException("Unrecognized event source.")
        source = self._source(str(arn))
        ref = self._function(str(params["FunctionName"]))
        fields = await asyncio.to_thread(source.validate, str(arn), params, None)
        matcher = compile_filters(params.get("FilterCriteria"), str(arn))
        config = {**fields, **self._common(params, {}), "Enabled": params.get("Enabled", True) is not False,
                  "State": "Creating"}
        async with self._functions.lock(ref.name):
            self._function(str(params["FunctionName"]))
            self._refuse_duplicate(str(arn), ref, None)
            mapping = Mapping(str(uuids.uuid4()), ref.name, ref.qualifier, str(arn), config, time.time(), matcher)
            await self._write(mapping)
            self._mappings[mapping.uuid] = mapping
        self._settle_later(mapping)
        return self.describe(mapping)

    def _refuse_duplicate(self, arn: str, ref: FunctionRef, uuid: str | None) -> None:
        """ResourceConflictException when another mapping already sends ``arn`` to the function ``ref``."""
        for other in self._mappings.values():
            if (other.uuid != uuid and other.event_source_arn == arn and other.function_name == ref.name
                    and other.qualifier == ref.qualifier):
                raise ResourceConflictException(
                    f'An event source mapping with {self._service_id(arn)} arn (" {arn} ") and function '
                    f'(" {ref.name} ") already exists. Please update or delete the existing mapping with UUID '
                    f"{other.uuid}")

    async def known(self, uuid: str) -> None:
        """Read the mappings again when ``uuid`` is not known here: it may have been made a moment ago on another
        node of a cluster, whose change notice is still on its way (a read after a write is consistent on any
        node)."""
        if uuid not in self._mappings:
            await self.load()

    def get(self, uuid: str) -> dict[str, Any]:
        return self.describe(self._find(uuid))

    async def update(self, uuid: str, params: MappingType[str, Any]) -> dict[str, Any]:
        current = self._find(uuid)
        self._refuse_not_yet(params)
        source = self._source(current.event_source_arn)
        ref = self._function(str(params["FunctionName"])) if params.get("FunctionName") else \
            FunctionRef(current.function_name, current.qualifier)
        fields = await asyncio.to_thread(source.validate, current.event_source_arn, params, current.config)
        matcher = (compile_filters(params["FilterCriteria"], current.event_source_arn) if "FilterCriteria" in params
                   else current.matcher)
        async with self._functions.lock(current.function_name):
            current = self._find(uuid)
            self._refuse_duplicate(current.event_source_arn, ref, uuid)
            config = {**current.config, **fields, **self._common(params, current.config)}
            state = "Updating"
            if params.get("Enabled") is not None and bool(params["Enabled"]) != current.enabled:
                state = "Enabling" if params["Enabled"] else "Disabling"
                config["Enabled"] = bool(params["Enabled"])
            config["State"] = state
            mapping = Mapping(uuid, ref.name, ref.qualifier, current.event_source_arn, config, time.time(), matcher)
            if ref.name != current.function_name:
                self._function(ref.name)
            await self._write(mapping)
            self._mappings[uuid] = mapping
        self._settle_later(mapping)
        return self.describe(mapping)

    async def delete(self, uuid: str) -> dict[str, Any]:
        mapping = self._find(uuid)
        async with self._functions.lock(mapping.function_name):
            mapping = self._find(uuid)
            await self._store.delete_event_source_mapping(uuid, mapping.function_name)
            self._mappings.pop(uuid, None)
            self.results.pop(uuid, None)
        self.changed()
        gone = Mapping(mapping.uuid, mapping.function_name, mapping.qualifier, mapping.event_source_arn,
                       {**mapping.config, "State": "Deleting"}, mapping.last_modified)
        return self.describe(gone)

    def list(self, function_name: str | None, event_source_arn: str | None, marker: str | None,
             max_items: int | None) -> dict[str, Any]:
        found = list(self._mappings.values())
        if function_name:
            ref = parse_function_name(function_name, region=self._region, account_id=self._account_id)
            found = [m for m in found if m.function_name == ref.name
                     and (ref.qualifier is None or (m.qualifier or LATEST) == ref.qualifier)]
        if event_source_arn:
            found = [m for m in found if m.event_source_arn == event_source_arn]
        found.sort(key=lambda m: m.uuid)
        start = 0
        if marker:
            start = next((i for i, m in enumerate(found) if m.uuid > marker), len(found))
        limit = max(1, min(max_items or _PAGE, _PAGE))
        page = found[start:start + limit]
        out: dict[str, Any] = {"EventSourceMappings": [self.describe(m) for m in page]}
        if start + limit < len(found):
            out["NextMarker"] = page[-1].uuid
        return out

    def describe(self, mapping: Mapping) -> dict[str, Any]:
        config = mapping.config
        state = str(config.get("State") or ("Enabled" if mapping.enabled else "Disabled"))
        out: dict[str, Any] = {"UUID": mapping.uuid}
        for key in ("BatchSize", "MaximumBatchingWindowInSeconds"):
            if key in config:
                out[key] = config[key]
        out["EventSourceArn"] = mapping.event_source_arn
        for key in ("Queues", "SourceAccessConfigurations"):  # an Amazon MQ source's
            if config.get(key):
                out[key] = config[key]
        for key in ("StartingPosition", "StartingPositionTimestamp", "ParallelizationFactor",
                    "MaximumRecordAgeInSeconds", "BisectBatchOnFunctionError", "MaximumRetryAttempts",
                    "TumblingWindowInSeconds", "DestinationConfig"):  # a stream source's
            if key in config:
                out[key] = config[key]
        if config.get("FilterCriteria"):
            out["FilterCriteria"] = config["FilterCriteria"]
        out["FunctionArn"] = self._function_arn(mapping)
        out["LastModified"] = mapping.last_modified
        out["LastProcessingResult"] = self.results.get(mapping.uuid, "No records processed")
        out["State"] = state
        out["StateTransitionReason"] = "USER_INITIATED"
        out["FunctionResponseTypes"] = list(config.get("FunctionResponseTypes") or [])
        if config.get("ScalingConfig"):
            out["ScalingConfig"] = config["ScalingConfig"]
        out["EventSourceMappingArn"] = self.mapping_arn(mapping.uuid)
        return out

    # -- the rest ---------------------------------------------------------------------------------------------

    def _source(self, arn: str) -> SourceRules:
        parts = arn.split(":")
        source = self._sources.get(parts[2]) if len(parts) >= 6 and parts[0] == "arn" else None
        if source is None:
            raise InvalidParameterValueException("Unrecognized event source.")
        return source

    @staticmethod
    def _service_id(arn: str) -> str:
        return {"sqs": "SQS", "mq": "Amazon MQ", "kinesis": "Kinesis", "dynamodb": "DynamoDB"}.get(arn.split(":")[2], arn.split(":")[2])

    def _function(self, name: str) -> FunctionRef:
        ref = parse_function_name(name, region=self._region, account_id=self._account_id)
        try:
            self._functions.function(ref.name)
        except ResourceNotFoundException as exc:
            raise InvalidParameterValueException("Function does not exist") from exc
        if ref.qualifier is not None:
            self._functions.resolve(ref)  # ResourceNotFoundException for a version or alias that is not there
        return ref

    @staticmethod
    def _common(params: MappingType[str, Any], current: MappingType[str, Any]) -> dict[str, Any]:
        out = {k: current[k] for k in _COMMON if k in current}
        for key in _COMMON:
            if key in params and params[key] is not None:
                out[key] = params[key]
        if out.get("ScalingConfig") == {}:
            out.pop("ScalingConfig")
        return out

    def _function_arn(self, mapping: Mapping) -> str:
        return function_arn(self._region, self._account_id, mapping.function_name, mapping.qualifier)

    def _find(self, uuid: str) -> Mapping:
        mapping = self._mappings.get(uuid)
        if mapping is None:
            raise ResourceNotFoundException("The resource you requested does not exist.")
        return mapping

    async def _write(self, mapping: Mapping) -> None:
        stored = {**mapping.config, "_Qualifier": mapping.qualifier}
        await self._store.put_event_source_mapping(mapping.uuid, mapping.function_name, mapping.event_source_arn,
                                                   json.dumps(stored), mapping.last_modified)
        self.changed()

    def _settle_later(self, mapping: Mapping, delay: float = SETTLE) -> None:
        task = asyncio.get_running_loop().create_task(self._settle(mapping.uuid, mapping.last_modified, delay))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def _settle(self, uuid: str, modified: float, delay: float) -> None:
        await asyncio.sleep(delay)
        mapping = self._mappings.get(uuid)
        if mapping is None or mapping.last_modified != modified or mapping.config.get("State") not in _SETTLED:
            return
        async with self._functions.lock(mapping.function_name):
            if self._mappings.get(uuid) is not mapping:
                return
            settled = Mapping(uuid, mapping.function_name, mapping.qualifier, mapping.event_source_arn,
                              {**mapping.config, "State": "Enabled" if mapping.enabled else "Disabled"},
                              mapping.last_modified, mapping.matcher)
            try:
                await self._write(settled)
            except Exception:
                log.exception("event source mapping %s: could not record its state", uuid)
                return
            self._mappings[uuid] = settled

    async def _function_changed(self, name: str, version: str | None) -> None:
        if version is not None:
            return
        gone = [u for u, m in self._mappings.items() if m.function_name == name]
        try:
            self._functions.function(name)
            return  # still there (a reload)
        except ResourceNotFoundException:
            pass
        for uuid in gone:  # the store deleted them with the function
            self._mappings.pop(uuid, None)
            self.results.pop(uuid, None)
        if gone:
            self.changed()

    async def aclose(self) -> None:
        for task in list(self._settling):
            task.cancel()
        if self._settling:
            await asyncio.gather(*self._settling, return_exceptions=True)
