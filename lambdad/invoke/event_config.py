"""Asynchronous invocation settings per function, version or alias (PutFunctionEventInvokeConfig and the rest).

A config belongs to what an Event invocation names: the function unqualified (stored and shown as ``$LATEST``,
as Lambda shows it), a published version or an alias. It sets how many times a function error is retried
(``MaximumRetryAttempts``, 0–2, default 2) and how old an event may get before it is dropped
(``MaximumEventAgeInSeconds``, 60–21,600, default six hours). ``Put`` replaces a config (what it does not name
takes its default), ``Update`` changes only what it names. Deleting the function, the version or the alias
deletes its config. Configs are stored before the call returns, and in a cluster every node hears of a change
(``eventinvoke`` change notices).

``DestinationConfig`` names where an event's outcome goes (``OnSuccess``, ``OnFailure``): a function, an SQS queue,
an SNS topic or an EventBridge bus (``invoke/destinations.py``); another ARN is refused.

The queues (``invoke/async_queue.py``, ``cluster/async_queue.py``) ask ``rules(name, qualifier)`` for each event,
and ``destination(name, qualifier, success)`` when one ends.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Mapping

from lambdad.arn import LATEST, FunctionRef
from lambdad.errors import InvalidParameterValueException, ResourceNotFoundException
from lambdad.functions.aliases import AliasService
from lambdad.functions.service import FunctionService
from lambdad.invoke.destinations import destination_kind
from lambdad.store.interfaces import EventInvokeConfigStore

__all__ = ["EventInvokeConfigs", "AsyncRules", "DEFAULT_RETRIES"]

DEFAULT_RETRIES = 2
_PAGE = 50


@dataclass(frozen=True)
class AsyncRules:
    retries: int  # function errors retried at most this many times
    max_age: float  # seconds an event may wait, attempts and throttles included


class EventInvokeConfigs:
    def __init__(self, functions: FunctionService, aliases: AliasService, store: EventInvokeConfigStore, *,
                 region: str, account_id: str, default_max_age: float) -> None:
        self._functions = functions
        self._store = store
        self._region, self._account_id = region, account_id
        self._default_max_age = default_max_age
        self._configs: dict[tuple[str, str], tuple[dict[str, Any], float]] = {}
        functions.on_change(self._function_changed)
        aliases.on_change(self._alias_changed)

    async def load(self) -> None:
        self._configs = {(n, q): (json.loads(c), m) for n, q, c, m in await self._store.load_event_invoke_configs()}

    async def reload(self, name: str) -> None:
        """Another node changed ``name``'s configs (cluster change notices)."""
        stored = {(n, q): (json.loads(c), m) for n, q, c, m in await self._store.load_event_invoke_configs()
                  if n == name}
        for owner in [o for o in self._configs if o[0] == name]:
            self._configs.pop(owner)
        self._configs.update(stored)

    def rules(self, name: str, qualifier: str | None) -> AsyncRules:
        """What applies to an event that invoked ``name`` with ``qualifier`` (None or "": unqualified)."""
        found = self._configs.get((name, qualifier or LATEST))
        config = found[0] if found is not None else {}
        return AsyncRules(retries=int(config.get("MaximumRetryAttempts", DEFAULT_RETRIES)),
                          max_age=float(config.get("MaximumEventAgeInSeconds", self._default_max_age)))

    def destination(self, name: str, qualifier: str | None, success: bool) -> str | None:
        """The OnSuccess (or OnFailure) destination ARN of what an event invoked, or None."""
        found = self._configs.get((name, qualifier or LATEST))
        if found is None:
            return None
        where = (found[0].get("DestinationConfig") or {}).get("OnSuccess" if success else "OnFailure") or {}
        return where.get("Destination") or None

    # -- the API ---------------------------------------------------------------------------------------------

    async def put(self, name: str, qualifier: str | None, params: Mapping[str, Any]) -> dict[str, Any]:
        return await self._write(name, qualifier, params, merge=False)

    async def update(self, name: str, qualifier: str | None, params: Mapping[str, Any]) -> dict[str, Any]:
        return await self._write(name, qualifier, params, merge=True)

    def get(self, name: str, qualifier: str | None) -> dict[str, Any]:
        key = self._target(name, qualifier)
        found = self._configs.get(key)
        if found is None:
            raise self._none(*key)
        return self._describe(key)

    async def delete(self, name: str, qualifier: str | None) -> None:
        async with self._functions.lock(name):
            key = self._target(name, qualifier)
            if key not in self._configs:
                raise self._none(*key)
            await self._store.delete_event_invoke_config(*key)
            self._configs.pop(key, None)

    def list(self, name: str, marker: str | None, max_items: int | None) -> dict[str, Any]:
        self._functions.function(name)
        keys = sorted(o for o in self._configs if o[0] == name)
        start = int(marker) if marker and marker.isdigit() else 0
        limit = max(1, min(max_items or _PAGE, _PAGE))
        page = keys[start:start + limit]
        out: dict[str, Any] = {"FunctionEventInvokeConfigs": [self._describe(k) for k in page]}
        if start + limit < len(keys):
            out["NextMarker"] = str(start + limit)
        return out

    async def _write(self, name: str, qualifier: str | None, params: Mapping[str, Any], *, merge: bool) -> dict[str, Any]:
        destinations = params.get("DestinationConfig")
        for when in ("OnSuccess", "OnFailure"):
            arn = ((destinations or {}).get(when) or {}).get("Destination")
            if arn and destination_kind(arn) is None:
                raise InvalidParameterValueException(
                    f"The destination ARN {arn} of {when} is not a Lambda function, an SQS queue, an SNS topic or an "
                    "EventBridge event bus.")
        async with self._functions.lock(name):
            key = self._target(name, qualifier)
            current = dict(self._configs[key][0]) if merge and key in self._configs else {}
            for field in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds"):
                if params.get(field) is not None:
                    current[field] = int(params[field])
            if destinations is not None:
                merged = dict(current.get("DestinationConfig") or {}) if merge else {}
                for when in ("OnSuccess", "OnFailure"):
                    if when in destinations:
                        merged[when] = {k: v for k, v in (destinations[when] or {}).items() if k == "Destination"}
                current["DestinationConfig"] = merged
            now = time.time()
            await self._store.put_event_invoke_config(*key, json.dumps(current), now)
            self._configs[key] = (current, now)
        return self._describe(key)

    def _target(self, name: str, qualifier: str | None) -> tuple[str, str]:
        """The (function, qualifier) a config belongs to; ResourceNotFoundException when it does not exist."""
        self._functions.resolve(FunctionRef(name, qualifier or None))  # raises for a missing version or alias
        return name, qualifier or LATEST

    def _describe(self, key: tuple[str, str]) -> dict[str, Any]:
        config, modified = self._configs[key]
        out: dict[str, Any] = {"LastModified": modified, "FunctionArn": self._arn(*key),
                               "MaximumRetryAttempts": int(config.get("MaximumRetryAttempts", DEFAULT_RETRIES)),
                               "MaximumEventAgeInSeconds": int(config.get("MaximumEventAgeInSeconds",
                                                                          self._default_max_age)),
                               "DestinationConfig": {"OnSuccess": {}, "OnFailure": {},
                                                     **(config.get("DestinationConfig") or {})}}
        return out

    def _arn(self, name: str, qualifier: str) -> str:
        return f"arn:aws:lambda:{self._region}:{self._account_id}:function:{name}:{qualifier}"

    def _none(self, name: str, qualifier: str) -> ResourceNotFoundException:
        return ResourceNotFoundException(f"The function {self._arn(name, qualifier)} doesn't have an "
                                         "EventInvokeConfig")

    # -- listeners -------------------------------------------------------------------------------------------

    async def _function_changed(self, name: str, version: str | None) -> None:
        if version == LATEST:
            return  # $LATEST changed: its config stays
        if version is None:  # the function is gone (the store dropped its configs with it)
            for owner in [o for o in self._configs if o[0] == name]:
                self._configs.pop(owner)
            return
        if (name, version) in self._configs:
            try:
                gone = version not in self._functions.function(name).versions
            except ResourceNotFoundException:
                gone = True
            if gone:
                await self._store.delete_event_invoke_config(name, version)
                self._configs.pop((name, version), None)

    async def _alias_changed(self, name: str, alias: str) -> None:
        if (name, alias) not in self._configs:
            return
        try:
            exists = alias in self._functions.function(name).aliases
        except ResourceNotFoundException:
            exists = False
        if not exists:
            await self._store.delete_event_invoke_config(name, alias)
            self._configs.pop((name, alias), None)
