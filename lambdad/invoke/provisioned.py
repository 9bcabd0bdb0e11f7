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
  server listens (``start``). The limits are checked again in the transaction that stores a config, so nodes of
  a cluster putting configs at once cannot pass them together.
- Where they run (``Placement``): on this node in the embedded server; in a cluster
  (``cluster/placement.py``) each config's environments are spread over the live nodes, and every node runs its
  share. The share is worked out again when nodes come or go, so the environments of a node that dies are started
  on the others once it is taken for dead; a node whose share shrinks keeps what it gives up until the others'
  are initialised. The status (Available, READY) counts every node's initialised
  environments: the other nodes' as their last heartbeat reported them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Protocol

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
from lambdad.tasks import cancel_and_wait

__all__ = ["ProvisionedConcurrency", "ProvisionedListing", "Placement", "LocalPlacement"]

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


class Placement(Protocol):
    """Where a config's environments run."""

    @property
    def spread(self) -> bool:
        """Whether configs are spread over several nodes (then their shares are kept up to date)."""

    def share(self, name: str, version: str, requested: int) -> int:
        """How many of a config's ``requested`` environments of ``name``'s ``version`` run on this node."""

    def keep(self, name: str, version: str, key: str, requested: int, ready_here: int) -> int:
        """How many of the config ``key``'s (``name:qualifier``) environments to run here now, given the
        ``ready_here`` initialised here: the share, or more while shares move (see ``cluster/placement.py``)."""

    def elsewhere(self, key: str) -> tuple[int, str | None]:
        """The initialised environments of the config ``key`` (``name:qualifier``) on the other nodes, and a
        failure one of them reports."""


class LocalPlacement:
    """The embedded server: all of every config here."""

    spread = False

    def share(self, name: str, version: str, requested: int) -> int:
        return requested

    def keep(self, name: str, version: str, key: str, requested: int, ready_here: int) -> int:
        return requested

    def elsewhere(self, key: str) -> tuple[int, str | None]:
        return 0, None


_RESPREAD = 1.0  # seconds between looks at whether the shares of the configs changed (nodes came or went)


def _now() -> str:
    """The LastModified format of these configs: 2026-11-23T15:48:39+0000."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")


class ProvisionedConcurrency:
    def __init__(self, functions: FunctionService, aliases: AliasService, reservations: ConcurrencyService,
                 invoker: InvokeService, pool: EnvironmentPool, store: ConcurrencyStore,
                 placement: Placement | None = None) -> None:
        self._functions = functions
        self._store = store
        self._reservations = reservations
        self._invoker = invoker
        self._pool = pool
        self._placement: Placement = placement or LocalPlacement()
        self._configs: dict[Owner, _Config] = {}
        self._applied: dict[Owner, tuple[str, int, int]] = {}  # (version, requested, share here) last applied
        self._respreading: asyncio.Task[None] | None = None
        functions.on_change(self._function_changed)
        aliases.on_change(self._alias_changed)

    async def load(self) -> None:
        for name, qualifier, requested, last_modified in await self._store.load_provisioned_concurrency():
            self._configs[(name, qualifier)] = _Config(requested, last_modified)

    async def start(self) -> None:
        """Start the environments of every stored config (once functions can reach the API); in a cluster, keep
        each node's share up to date from then on."""
        await self._respread()
        if self._placement.spread:
            self._respreading = asyncio.get_running_loop().create_task(self._respreading_loop(), name="provisioned")

    async def aclose(self) -> None:
        await cancel_and_wait(self._respreading)
        self._respreading = None

    async def _respreading_loop(self) -> None:
        while True:
            await asyncio.sleep(_RESPREAD)
            await self._respread()

    async def _respread(self) -> None:
        """Apply every config whose version or share here is not what was last applied."""
        for owner in list(self._configs):
            try:
                config = self._functions.resolve(FunctionRef(*owner))
                requested = self._configs[owner].requested
                wanted = (config.version, requested, self._here(owner, config.version, requested))
                if self._applied.get(owner) != wanted:
                    async with self._functions.lock(owner[0]):
                        if owner in self._configs:
                            await self._apply(owner)
            except ResourceNotFoundException:
                continue  # this node has not read the version yet: the next look applies it
            except Exception:
                log.exception("provisioned concurrency of %s:%s could not be started", *owner)

    async def reload(self, name: str) -> None:
        """Another node changed ``name``'s configs (cluster/notices.py): read them again and apply them."""
        async with self._functions.lock(name):
            await self._read(name)
        await self._respread()

    async def _read(self, name: str) -> None:
        """Take ``name``'s configs as stored (the caller holds the function's lock)."""
        stored = {(n, q): _Config(r, m) for n, q, r, m in await self._store.load_provisioned_concurrency() if n == name}
        for owner in [o for o in self._configs if o[0] == name and o not in stored]:
            self._forget(owner)
        self._configs.update(stored)

    def report(self) -> dict[str, list[Any]]:
        """``name:qualifier`` -> [initialised environments here, failure, the version they run] of every config
        (the heartbeat's: the status on other nodes counts them, their routers send invocations to them)."""
        out: dict[str, list[Any]] = {}
        for owner in self._configs:
            applied = self._applied.get(owner)
            out[f"{owner[0]}:{owner[1]}"] = [self._pool.provisioned_ready(owner), self._pool.provision_failure(owner),
                                             applied[0] if applied is not None else None]
        return out

    def allocated(self) -> list[tuple[str, str, int, int]]:
        """(function, version, memory MB, initialised environments here) of every config: what the usage meter
        (``invoke/usage.py``) counts as provisioned concurrency on this node."""
        out = []
        for owner, (version, _requested, _here) in self._applied.items():
            ready = self._pool.provisioned_ready(owner)
            if ready:
                try:
                    memory = self._functions.resolve(FunctionRef(owner[0], version)).memory_size
                except ResourceNotFoundException:
                    continue
                out.append((owner[0], version, memory, ready))
        return out

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
        ready_elsewhere, failure_elsewhere = self._placement.elsewhere(f"{owner[0]}:{owner[1]}")
        ready = min(self._pool.provisioned_ready(owner) + ready_elsewhere, config.requested)
        failure = self._pool.provision_failure(owner) or failure_elsewhere
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
            # the store checks the limits again, over what every node has stored
            minimum = unreserved_minimum(self._reservations.account_limit)
            refused = await self._store.put_provisioned_concurrency(
                name, qualifier, requested, config.last_modified, self._reservations.account_limit - minimum)
            if refused is not None:
                await self._reservations.load()
                await self._read(name)  # what another node stored meanwhile (applied by the next respread)
                self._check_capacity(name, owner, requested)  # with what another node stored meanwhile: raises
                raise self._too_much(name, requested, refused)
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
                raise self._too_much(name, others + requested, reserved)
            return
        limit = self._reservations.account_limit
        provisioned_unreserved = sum(
            c.requested for o, c in self._configs.items() if o != owner and self._reservations.reserved(o[0]) is None
        )
        if limit - self._reservations.reserved_total - provisioned_unreserved - requested < unreserved_minimum(limit):
            raise self._too_much(name, requested, None)

    def _too_much(self, name: str, total: int, reserved: int | None) -> InvalidParameterValueException:
        if reserved is not None and self._reservations.reserved(name) is not None:
            return InvalidParameterValueException(
                f"Requested Provisioned Concurrency ({total} for the function) exceeds the "
                f"function's ReservedConcurrentExecutions ({reserved})."
            )
        return InvalidParameterValueException(
            "Specified ConcurrentExecutions for function decreases account's "
            f"UnreservedConcurrentExecution below its minimum value of "
            f"[{unreserved_minimum(self._reservations.account_limit)}]."
        )

    async def _apply(self, owner: Owner) -> None:
        config = self._functions.resolve(FunctionRef(*owner))
        spec = await self._invoker.provisioned_spec(config)
        requested = self._configs[owner].requested
        here = self._here(owner, config.version, requested)
        self._pool.provision(owner, spec, requested, here)
        self._applied[owner] = (config.version, requested, here)

    def _here(self, owner: Owner, version: str, requested: int) -> int:
        """How many of ``owner``'s environments of ``version`` to run on this node now."""
        applied = self._applied.get(owner)
        ready = self._pool.provisioned_ready(owner) if applied is not None and applied[0] == version else 0
        return self._placement.keep(owner[0], version, f"{owner[0]}:{owner[1]}", requested, ready)

    async def _drop(self, owner: Owner) -> None:
        await self._store.delete_provisioned_concurrency(*owner)
        self._forget(owner)

    def _forget(self, owner: Owner) -> None:
        self._configs.pop(owner, None)
        self._applied.pop(owner, None)
        self._pool.unprovision(owner)

    # -- listeners -------------------------------------------------------------------------------------------

    async def _function_changed(self, name: str, version: str | None) -> None:
        if version is None:  # the function is gone (the store dropped its configs with it)
            for owner in [o for o in self._configs if o[0] == name]:
                self._forget(owner)
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
