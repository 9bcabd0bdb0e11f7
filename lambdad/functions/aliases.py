"""The alias service: named pointers to a function version, with Lambda's rules.

An alias names one version (``$LATEST`` or a published number) and may send a share of invocations to one
additional published version (``RoutingConfig.AdditionalVersionWeights``, one entry, weight 0.0–1.0); the draw
happens per invocation in ``FunctionService.route``. Aliases live in the function's memory state and are
written through to the store under the function's lock, like everything else about a function. A version an
alias routes to cannot be deleted (``FunctionService.delete``); deleting the function deletes its aliases.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping

from lambdad.arn import ALIAS_PATTERN, LATEST, is_alias_name, is_version_number
from lambdad.errors import (
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
    validation_error,
    violation,
)
from lambdad.functions.model import Alias, Function
from lambdad.store.interfaces import FunctionStore
from lambdad.functions.service import FunctionService

__all__ = ["AliasService", "AliasListing"]

_PAGE = 50
_VERSION_PATTERN = r"(\$LATEST|[0-9]+)"


@dataclass(frozen=True)
class AliasListing:
    aliases: list[Alias]
    next_marker: str | None


AliasListener = Callable[[str, str], Awaitable[None]]


class AliasService:
    def __init__(self, functions: FunctionService, store: FunctionStore) -> None:
        self._functions = functions
        self._store = store
        self._listeners: list[AliasListener] = []

    def on_change(self, listener: AliasListener) -> None:
        """``listener(function name, alias name)`` hears about every alias updated or deleted."""
        self._listeners.append(listener)

    async def changed(self, name: str, alias_name: str) -> None:
        """Tell listeners that alias ``alias_name`` of ``name`` was updated or deleted (here, or on another node:
        cluster/notices.py)."""
        for listener in self._listeners:
            await listener(name, alias_name)

    def _arn(self, name: str, alias: str) -> str:
        return self._functions.arn(name, alias)

    # -- reads -----------------------------------------------------------------------------------------------

    def get(self, name: str, alias_name: str) -> Alias:
        _check_name(alias_name)
        alias = self._functions.function(name).aliases.get(alias_name)
        if alias is None:
            raise ResourceNotFoundException(f"Cannot find alias arn: {self._arn(name, alias_name)}")
        return alias

    def list(self, name: str, function_version: str | None, marker: str | None, max_items: int | None) -> AliasListing:
        """Aliases of ``name`` by name, only those pointing to ``function_version`` when given."""
        if function_version is not None:
            _check_version(function_version)
        aliases = sorted(self._functions.function(name).aliases.values(), key=lambda a: a.name)
        if function_version is not None:
            aliases = [a for a in aliases if a.function_version == function_version]
        start = 0
        if marker:
            start = next((i for i, a in enumerate(aliases) if a.name > marker), len(aliases))
        limit = max(1, min(max_items or _PAGE, _PAGE))
        page = aliases[start : start + limit]
        more = start + limit < len(aliases)
        return AliasListing(page, page[-1].name if more and page else None)

    # -- writes ----------------------------------------------------------------------------------------------

    async def create(
        self, name: str, alias_name: str, function_version: str, description: str | None,
        routing: Mapping[str, Any] | None,
    ) -> Alias:
        _check_name(alias_name)
        _check_version(function_version)
        weights = _weights(routing)
        async with self._functions.lock(name):
            function = self._functions.function(name)
            self._check_target(function, function_version, weights)
            if alias_name in function.aliases:
                raise ResourceConflictException(f"Alias already exists: {self._arn(name, alias_name)}")
            alias = Alias(
                function_name=name, name=alias_name, function_version=function_version, revision_id=_revision(),
                description=description or "", weights=weights or {},
            )
            created = alias
            await self._functions.commit(function, lambda expect: self._store.put_alias(created, expect=expect))
            function.aliases[alias_name] = alias
        return alias

    async def update(
        self, name: str, alias_name: str, *, function_version: str | None, description: str | None,
        routing: Mapping[str, Any] | None, revision_id: str | None,
    ) -> Alias:
        _check_name(alias_name)
        if function_version is not None:
            _check_version(function_version)
        weights = _weights(routing)
        async with self._functions.lock(name):
            function = self._functions.function(name)
            alias = function.aliases.get(alias_name)
            if alias is None:
                raise ResourceNotFoundException(f"Alias not found: {self._arn(name, alias_name)}")
            if revision_id is not None and revision_id != alias.revision_id:
                raise PreconditionFailedException(
                    "The Revision Id provided does not match the latest Revision Id. "
                    "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
                )
            target = function_version if function_version is not None else alias.function_version
            new_weights = dict(alias.weights) if weights is None else weights
            self._check_target(function, target, new_weights)
            changes: dict[str, Any] = {"function_version": target, "weights": new_weights, "revision_id": _revision()}
            if description is not None:
                changes["description"] = description
            alias = updated = alias.replace(**changes)
            await self._functions.commit(function, lambda expect: self._store.put_alias(updated, expect=expect))
            function.aliases[alias_name] = alias
        await self.changed(name, alias_name)
        return alias

    async def delete(self, name: str, alias_name: str) -> None:
        """Delete an alias and its resource policy; an alias that does not exist is not an error (as on Lambda)."""
        _check_name(alias_name)
        async with self._functions.lock(name):
            function = self._functions.function(name)
            if alias_name not in function.aliases:
                return
            await self._functions.commit(function, lambda expect: self._store.delete_alias(name, alias_name,
                                                                                          expect=expect))
            del function.aliases[alias_name]
            function.policies.pop(alias_name, None)
        await self.changed(name, alias_name)

    def _check_target(self, function: Function, version: str, weights: Mapping[str, float] | None) -> None:
        """The versions an alias would route to exist, and the routing configuration is one Lambda accepts."""
        self._check_exists(function, version)
        if not weights:
            return
        if len(weights) > 1:
            raise InvalidParameterValueException("Number of items in AdditionalVersionWeights cannot be greater than 1")
        if version == LATEST:
            raise InvalidParameterValueException("$LATEST is not supported for an alias pointing to more than 1 version")
        for extra in weights:
            if extra == version:
                raise InvalidParameterValueException(
                    f"Invalid function version {extra}. Function version {extra} is already included in routing "
                    "configuration."
                )
            self._check_exists(function, extra)

    def _check_exists(self, function: Function, version: str) -> None:
        if version != LATEST and version not in function.versions:
            raise ResourceNotFoundException(f"Function not found: {self._arn(function.name, version)}")


def _revision() -> str:
    return str(uuid.uuid4())


def _check_name(alias_name: str) -> None:
    if not is_alias_name(alias_name):
        raise validation_error(violation("name", f"Member must satisfy regular expression pattern: {ALIAS_PATTERN}",
                                         alias_name))


def _check_version(version: str) -> None:
    if version != LATEST and not is_version_number(version):
        raise validation_error(violation(
            "functionVersion", f"Member must satisfy regular expression pattern: {_VERSION_PATTERN}", version))


def _weights(routing: Mapping[str, Any] | None) -> dict[str, float] | None:
    """The AdditionalVersionWeights of a RoutingConfig (None when the call had no RoutingConfig)."""
    if routing is None:
        return None
    weights = dict(routing.get("AdditionalVersionWeights") or {})
    bad = [k for k in weights if not is_version_number(k)]
    if bad:
        shown = "{" + ", ".join(f"{k}={v}" for k, v in weights.items()) + "}"
        raise validation_error(violation(
            "routingConfig.additionalVersionWeights", "Map keys must satisfy constraint: [Member must have length less "
            "than or equal to 1024, Member must have length greater than or equal to 1, Member must satisfy regular "
            "expression pattern: [0-9]+]", shown))
    return {k: float(v) for k, v in weights.items()}
