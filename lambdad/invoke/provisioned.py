"""Provisioned concurrency: environments of a version or alias initialised ahead of time, with Lambda's rules.

- A config belongs to a published version or an alias (``$LATEST``: InvalidParameterValueException; an alias
  with routing weights: refused, as on Lambda). Its environments run the version the alias points to when the
  config is put (an alias update moves them to the new version; deleting the alias or version deletes the config).
- The pool starts the environments at once (``AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency``, no
  ``Init Duration`` in their REPORT lines); the config is ``IN_PROGRESS`` until all of them are initialised, then
  ``READY``; ``FAILED`` (``FUNCTION_ERROR_INIT_FAILURE``) when one could not initialise.
- They are counted against the account whether busy or not: within the function's reservation when it has one
  (the provisioned total may not exceed it), else taken from the unreserved pool, which must keep its minimum.
- Configs are stored before the call returns; after a restart their environments are started again once the
  server listens (``start``).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from lambdad.arn import LATEST, FunctionRef
from lambdad.errors import (
    InvalidParameterValueException,
    ProvisionedConcurrencyConfigNotFoundException,
    ResourceNotFoundException,
)
from lambdad.functions.aliases import AliasService
from lambdad.functions.concurrency import ConcurrencyService, unreserved_minimum
from lambdad.functions.service import FunctionService
from lambdad.invoke.service import InvokeService
from lambdad.sandbox.pool import EnvironmentPool, Owner
from lambdad.store.interfaces import ConcurrencyStore

__all__ = ["ProvisionedConcurrency", "ProvisionedListing"]

log = logging.getLogger(__name__)

_PAGE = 50


@dataclass(frozen=True)
class _Config:
    requested: int
    last_modified: str


@dataclass(frozen=True)
class ProvisionedListing:
    configs: list[dict[str, Any]]
    next_marker: str | None


def _now() -> str:
    """The LastModified format of these configs: 2026-11-23T15:48:39+0000."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")


class ProvisionedConcurrency:
    def __init__(self, functions: FunctionService, aliases: AliasService, reservations: ConcurrencyService,
                 invoker: InvokeService, pool: EnvironmentPool, store: ConcurrencyStore) -> None:
        self._functions = functions
        self._store = store
        self._reservations = reservations
        self._invoker = invoker
        self._pool = pool
        self._configs: dict[Owner, _Config] = {}
        functions.on_change(self._function_changed)
        aliases.on_change(self._alias_changed)

    async def load(self) -> None:
        for name, qualifier, requested, last_modified in await self._store.load_provisioned_concurrency():
            self._configs[(name, qualifier)] = _Config(requested, last_modified)

    async def start(self) -> None:
        """Start the environments of every stored config (once functions can reach the API)."""
        for owner in list(self._configs):
            try:
                await self._apply(owner)
            except Exception:
                log.exception("provisioned concurrency of %s:%s could not be started", *owner)

    @property
    def total(self) -> int:
        return sum(c.requested for c in self._configs.values())

    # -- reads -----------------------------------------------------------------------------------------------

    def get(self, name: str, qualifier: str) -> dict[str, Any]:
        self._functions.function(name)
        if (name, qualifier) not in self._configs:
            raise ProvisionedConcurrencyConfigNotFoundException("No Provisioned Concurrency Config found for this function")
        return self._describe((name, qualifier))

    def list(self, name: str, marker: str | None, max_items: int | None) -> ProvisionedListing:
        self._functions.function(name)
        owners = sorted(o for o in self._configs if o[0] == name)
        start = 0
        if marker:
            keys = [o[1] for o in owners]
            start = keys.index(marker) + 1 if marker in keys else len(keys)
        limit = max(1, min(max_items or _PAGE, _PAGE))
        page = owners[start:start + limit]
        items = [{"FunctionArn": self._functions.arn(name, q), **self._describe((name, q))} for _, q in page]
        more = start + limit < len(owners)
        return ProvisionedListing(items, page[-1][1] if more and page else None)

    def _describe(self, owner: Owner) -> dict[str, Any]:
        config = self._configs[owner]
        ready = min(self._pool.provisioned_ready(owner), config.requested)
        failure = self._pool.provision_failure(owner)
        out: dict[str, Any] = {
            "RequestedProvisionedConcurrentExecutions": config.requested,
            "AvailableProvisionedConcurrentExecutions": ready,
            "AllocatedProvisionedConcurrentExecutions": ready,
            "LastModified": config.last_modified,
        }
        if ready >= config.requested:
            out["Status"] = "READY"
        elif failure is not None:
            out["Status"] = "FAILED"
            out["StatusReason"] = failure
        else:
            out["Status"] = "IN_PROGRESS"
        return out

    # -- writes ----------------------------------------------------------------------------------------------

    async def put(self, name: str, qualifier: str, requested: int) -> dict[str, Any]:
        owner = (name, qualifier)
        async with self._functions.lock(name):
            function = self._functions.function(name)
            if qualifier == LATEST:
                raise InvalidParameterValueException(
                    "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
                )
            self._functions.resolve(FunctionRef(name, qualifier))  # ResourceNotFoundException when not there
            alias = function.aliases.get(qualifier)
            if alias is not None and alias.weights:
                raise InvalidParameterValueException("Alias with weights can not be used with Provisioned Concurrency")
            self._check_capacity(name, owner, requested)
            config = _Config(requested, _now())
            await self._store.put_provisioned_concurrency(name, qualifier, requested, config.last_modified)
            self._configs[owner] = config
            await self._apply(owner)
        return self._describe(owner)

    async def delete(self, name: str, qualifier: str) -> None:
        async with self._functions.lock(name):
            self._functions.function(name)
            if (name, qualifier) in self._configs:
                await self._drop((name, qualifier))

    def _check_capacity(self, name: str, owner: Owner, requested: int) -> None:
        others = sum(c.requested for o, c in self._configs.items() if o[0] == name and o != owner)
        reserved = self._reservations.reserved(name)
        if reserved is not None:
            if others + requested > reserved:
                raise InvalidParameterValueException(
                    f"Requested Provisioned Concurrency ({others + requested} for the function) exceeds the "
                    f"function's ReservedConcurrentExecutions ({reserved})."
                )
            return
        limit = self._reservations.account_limit
        minimum = unreserved_minimum(limit)
        provisioned_unreserved = sum(
            c.requested for o, c in self._configs.items() if o != owner and self._reservations.reserved(o[0]) is None
        )
        if limit - self._reservations.reserved_total - provisioned_unreserved - requested < minimum:
            raise InvalidParameterValueException(
                "Specified ConcurrentExecutions for function decreases account's "
                f"UnreservedConcurrentExecution below its minimum value of [{minimum}]."
            )

    async def _apply(self, owner: Owner) -> None:
        config = self._functions.resolve(FunctionRef(*owner))
        spec = await self._invoker.provisioned_spec(config)
        self._pool.provision(owner, spec, self._configs[owner].requested)

    async def _drop(self, owner: Owner) -> None:
        await self._store.delete_provisioned_concurrency(*owner)
        self._configs.pop(owner, None)
        self._pool.unprovision(owner)

    # -- listeners -------------------------------------------------------------------------------------------

    async def _function_changed(self, name: str, version: str | None) -> None:
        if version is None:  # the function is gone (the store dropped its configs with it)
            for owner in [o for o in self._configs if o[0] == name]:
                self._configs.pop(owner)
                self._pool.unprovision(owner)
            return
        owner = (name, version)
        if owner in self._configs:
            try:
                deleted = version not in self._functions.function(name).versions
            except ResourceNotFoundException:
                deleted = True
            if deleted:
                await self._drop(owner)

    async def _alias_changed(self, name: str, alias_name: str) -> None:
        owner = (name, alias_name)
        if owner not in self._configs:
            return
        function = self._functions.function(name)
        alias = function.aliases.get(alias_name)
        if alias is None:
            await self._drop(owner)
        else:
            await self._apply(owner)  # the alias may point to another version now
