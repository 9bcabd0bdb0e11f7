"""The functions service: create, read, update and delete functions and their published versions and tags,
with Lambda's rules.

State lives in memory (``Function`` objects keyed by name) for fast reads on the invoke path and is written through
to the metadata store before any call returns. A per-function lock (``lock(name)``, shared with the alias and
policy services) serialises changes to one function. Listeners hear about every change that makes a version's
environments stale: ``(name, version)``, or ``(name, None)`` when the whole function is gone, and the
environment pool retires those environments.

Versions: PublishVersion snapshots $LATEST as version ``last_version + 1`` (numbers are never reused) unless
$LATEST is unchanged since the last published version (same code and configuration, by
``FunctionConfig.fingerprint``), in which case that version is returned. Publishing gives $LATEST a new revision
id, as on Lambda. A version is never changed afterwards, except for the revision id a policy change gives it.
Qualifiers resolve in memory: ``$LATEST``, a version number, or an alias (``route`` draws between an alias's two
versions by their weights, once per invocation).

Layers: ``Layers`` names layer versions of the layer service (``functions/layers.py``); the config keeps their
ARNs, sizes and content hashes, and the merged /opt tree of the list is built before the call returns (and again
at start, if missing), so launching an environment never unpacks anything.

The service takes typed commands (``functions/commands.py``, parsed from requests by ``api/commands.py``); code
packages are stored by ``functions/code_storage.py``, list pages cut by ``functions/paging.py``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Mapping

import botocore.session

from lambdad.arn import LATEST, FunctionRef, function_arn
from lambdad.errors import (
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lambdad.functions import logging_config, paging, validation
from lambdad.functions.code import CodeTrees
from lambdad.functions.code_storage import CodeStorage, zip_of
from lambdad.functions.commands import ConfigChanges, CreateFunction, UpdateFunctionCode, UpdateFunctionConfiguration
from lambdad.functions.layers import LayerService
from lambdad.functions.logging_config import LoggingSettings
from lambdad.functions.model import Alias, Function, FunctionConfig
from lambdad.runtimes.registry import RuntimeRegistry
from lambdad.store.interfaces import BlobStore, FunctionStore, StoreConflict, StoredFunction

__all__ = ["FunctionService", "Listing", "VersionListing", "MAX_TAGS"]

_KNOWN_RUNTIMES = tuple(botocore.session.get_session().get_service_model("lambda").shape_for("Runtime").enum)

ChangeListener = Callable[[str, str | None], Awaitable[None]]
ReadyListener = Callable[[FunctionConfig], Awaitable[None]]

MAX_TAGS = 50


@dataclass(frozen=True)
class Listing:
    configs: list[FunctionConfig]
    next_marker: str | None


@dataclass(frozen=True)
class VersionListing:
    configs: list[FunctionConfig]
    next_marker: str | None


def _now() -> str:
    """Lambda's LastModified format: 2026-11-23T15:48:39.123+0000."""
    now = dt.datetime.now(dt.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000"


def _revision() -> str:
    return str(uuid.uuid4())


class FunctionService:
    def __init__(
        self,
        store: FunctionStore,
        blobs: BlobStore,
        trees: CodeTrees,
        runtimes: RuntimeRegistry,
        *,
        region: str,
        account_id: str,
        rng: random.Random | None = None,
        layers: LayerService | None = None,
    ) -> None:
        self._layers = layers
        self._store = store
        self._code = CodeStorage(blobs, trees, layers)
        self._runtimes = runtimes
        self.region = region
        self.account_id = account_id
        self._functions: dict[str, Function] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._listeners: list[ChangeListener] = []
        self._ready_listeners: list[ReadyListener] = []
        self._reloading: set[asyncio.Task[list[str]]] = set()
        self._random = rng or random.Random()

    async def load(self) -> None:
        for stored in await self._store.load_functions():
            function = _from_stored(stored)
            self._functions[function.name] = function
        for hashes in {c.layer_hashes for f in self._functions.values() for c in f.sorted_versions()}:
            await self._ensure_opt_tree(hashes)

    async def commit(self, function: Function, write: Callable[[int], Awaitable[None]]) -> None:
        """Store a change of ``function`` (its lock held) with ``write(expect)``, ``expect`` being the generation
        this copy came from. When another node changed the function since, nothing is written: this copy is read
        again (once the caller let go of the lock: its listeners hear what changed) and the caller gets Lambda's
        answer to concurrent updates, ResourceConflictException."""
        try:
            await write(function.generation)
        except StoreConflict:
            task = asyncio.get_running_loop().create_task(self.reload(function.name))
            self._reloading.add(task)
            task.add_done_callback(self._reloading.discard)
            raise ResourceConflictException(
                "The operation cannot be performed at this time. An update is in progress for resource: "
                + self.arn(function.name)) from None
        function.generation += 1

    async def reload(self, name: str) -> list[str]:
        """Read function ``name`` from the store again (another node changed it: cluster/notices.py) and tell the
        listeners of each version that differs or is gone; returns the names of the aliases that differ."""
        async with self.lock(name):
            old, new = await self._reload(name)
        if old is None or new is None:
            if old is not None:
                await self.changed(name, None)  # gone: every version
            return []
        for version in set(old.versions) | set(new.versions) | {LATEST}:
            before, after = old.versions.get(version), new.versions.get(version)
            if version == LATEST:
                before, after = old.latest, new.latest
            if before is None or after is None or before.to_json() != after.to_json():
                await self.changed(name, version)
        return [alias for alias in set(old.aliases) | set(new.aliases)
                if (a := old.aliases.get(alias)) is None or (b := new.aliases.get(alias)) is None
                or a.to_json() != b.to_json()]

    async def _reload(self, name: str) -> tuple[Function | None, Function | None]:
        """Replace this node's copy of ``name`` with the stored one (its lock held); (old, new) copies."""
        stored = await self._store.load_functions(name)
        old = self._functions.get(name)
        new = _from_stored(stored[0]) if stored else None
        if new is not None:
            for config in new.sorted_versions():
                await self._ensure_opt_tree(config.layer_hashes)
            self._functions[name] = new
        else:
            self._functions.pop(name, None)
        return old, new

    def on_change(self, listener: ChangeListener) -> None:
        self._listeners.append(listener)

    def on_ready(self, listener: ReadyListener) -> None:
        """``listener(config)`` hears of a $LATEST that may be invoked soon: a function created, or its code or
        configuration updated (the sandbox gets a pre-started slot of its kind ready)."""
        self._ready_listeners.append(listener)

    async def ready(self, config: FunctionConfig) -> None:
        for listener in self._ready_listeners:
            await listener(config)

    async def changed(self, name: str, version: str | None) -> None:
        """Tell listeners that ``version`` of ``name`` (None: every version) changed or is gone."""
        for listener in self._listeners:
            await listener(name, version)

    def all_configs(self) -> Iterable[FunctionConfig]:
        """Every version of every function ($LATEST and the published ones)."""
        for function in self._functions.values():
            yield from function.sorted_versions()

    def busy(self) -> bool:
        """Whether a change to some function is in progress (its code may be stored but not yet referenced)."""
        return any(lock.locked() for lock in self._locks.values())

    def lock(self, name: str) -> asyncio.Lock:
        """The lock that serialises every change to function ``name`` (its versions, aliases, tags, policies)."""
        return self._locks.setdefault(name, asyncio.Lock())

    def arn(self, name: str, qualifier: str | None = None) -> str:
        return function_arn(self.region, self.account_id, name, qualifier)

    # -- reads -----------------------------------------------------------------------------------------------

    def function(self, name: str) -> Function:
        function = self._functions.get(name)
        if function is None:
            raise ResourceNotFoundException(f"Function not found: {self.arn(name)}")
        return function

    def all(self) -> list[Function]:
        """Every function (for account-wide figures)."""
        return list(self._functions.values())

    def resolve(self, ref: FunctionRef) -> FunctionConfig:
        """The configuration a reference names: $LATEST when unqualified, a published version, or the version an
        alias points to (its primary version, whatever its routing weights say). Memory only."""
        function = self.function(ref.name)
        qualifier = ref.qualifier or LATEST
        alias = function.aliases.get(qualifier)
        return self._version(function, alias.function_version if alias else qualifier, ref)

    def route(self, ref: FunctionRef) -> FunctionConfig:
        """The version one invocation of ``ref`` runs: like ``resolve``, but an alias with an additional version
        weight sends that share of invocations to it (a fresh random draw per call). Hot path: memory only."""
        function = self.function(ref.name)
        qualifier = ref.qualifier or LATEST
        alias = function.aliases.get(qualifier)
        if alias is None:
            return self._version(function, qualifier, ref)
        version = alias.function_version
        for extra, weight in alias.weights.items():
            if self._random.random() < weight:
                version = extra
        return self._version(function, version, ref)

    def _version(self, function: Function, version: str, ref: FunctionRef) -> FunctionConfig:
        if version == LATEST:
            return function.latest
        config = function.versions.get(version)
        if config is None:
            raise ResourceNotFoundException(f"Function not found: {self.arn(ref.name, ref.qualifier)}")
        return config

    def list(self, marker: str | None, max_items: int | None, all_versions: bool = False) -> Listing:
        """Functions by name ($LATEST of each), or with ``all_versions`` every version of every function."""
        if all_versions:
            configs = [c for n in sorted(self._functions) for c in self._functions[n].sorted_versions()]
        else:
            configs = [self._functions[n].latest for n in sorted(self._functions)]
        if all_versions:
            page, next_marker = paging.page(configs, marker, max_items, lambda c: f"{c.name}:{paging.version_key(c.version)}")
        else:
            page, next_marker = paging.page(configs, marker, max_items, lambda c: c.name)
        return Listing(configs=page, next_marker=next_marker)

    def list_versions(self, name: str, marker: str | None, max_items: int | None) -> VersionListing:
        """$LATEST and the published versions of ``name``, in ascending order."""
        configs = self.function(name).sorted_versions()
        page, next_marker = paging.page(configs, marker, max_items, lambda c: paging.version_key(c.version))
        return VersionListing(configs=page, next_marker=next_marker)

    def blob_path(self, code_hash: str) -> Path:
        return self._code.blob_path(code_hash)

    def code_tree(self, config: FunctionConfig) -> str:
        return self._code.tree(config)

    async def ensure_code_tree(self, config: FunctionConfig) -> None:
        """Unpack ``config``'s code here if it is not yet (in a cluster: uploaded on another node)."""
        await self._code.ensure_tree(config)

    def opt_tree(self, config: FunctionConfig) -> str | None:
        """The merged tree of the function's layers (mounted at /opt), or None when it has none."""
        return self._layers.opt_tree(config.layer_hashes) if self._layers is not None else None

    # -- writes ----------------------------------------------------------------------------------------------

    async def create(self, command: CreateFunction) -> FunctionConfig:
        """Create a function; returns $LATEST, or version 1 when ``publish`` is set."""
        name = command.name
        if command.package_type != "Zip":
            raise InvalidParameterValueException("lambdad runs .zip file archives only; container images are not supported.")
        zip_file = zip_of(command.code)
        runtime, handler = command.runtime, command.handler
        if runtime is None or handler is None:
            raise InvalidParameterValueException("Runtime and Handler are mandatory parameters for functions created with deployment packages.")
        validation.check_runtime(runtime, _KNOWN_RUNTIMES, self._runtimes.names)
        validation.check_handler(handler)
        validation.check_role(command.role)
        tags = dict(command.tags)
        if len(tags) > MAX_TAGS:
            raise InvalidParameterValueException("Number of tags exceeds resource tag limit.")
        fields = self._config_fields(command.config)
        fields.update(_logging_fields(None, command.config))
        async with self.lock(name):
            if name in self._functions:
                raise ResourceConflictException(
                    f"Function already exist: {name}"
                )
            code_fields = await self._code.store(zip_file, "CreateFunction", fields.get("layers", ()))
            await self._ensure_opt_tree(fields.get("layer_hashes", ()))
            config = FunctionConfig(
                name=name,
                version=LATEST,
                runtime=runtime,
                handler=handler,
                role=command.role,
                last_modified=_now(),
                revision_id=_revision(),
                **code_fields,
                **fields,
            )
            function = Function(latest=config, tags=tags)
            published = _new_version(config, 1, None) if command.publish else None
            try:
                await self._store.create_function(config, tags, published,
                                                  config.fingerprint() if published is not None else "")
            except StoreConflict:  # another node created it a moment ago
                await self._reload(name)  # nothing of it was known here: no listener to tell
                raise ResourceConflictException(f"Function already exist: {name}") from None
            if published is not None:
                self._record_version(function, published)
            self._functions[name] = function
        await self.ready(config)
        return published or config

    async def update_code(self, command: UpdateFunctionCode) -> FunctionConfig:
        """Replace $LATEST's code; returns $LATEST, or the published version when ``publish`` is set."""
        name = command.name
        zip_file = zip_of(command.code)
        if command.architectures:
            validation.check_architectures(list(command.architectures))
        async with self.lock(name):
            function = self.function(name)
            self._check_revision(function.latest, command.revision_id)
            code_fields = await self._code.store(zip_file, "UpdateFunctionCode", function.latest.layers)
            changes: dict[str, Any] = dict(code_fields)
            if command.architectures:
                changes["architectures"] = command.architectures
            config = function.latest.replace(last_modified=_now(), revision_id=_revision(), **changes)
            result = config
            if command.publish:
                result = await self._publish(function, config, None)
            else:
                await self.commit(function, lambda expect: self._store.put_version(config, expect=expect))
                function.latest = config
        await self.changed(name, LATEST)
        await self.ready(config)
        return result

    async def update_configuration(self, command: UpdateFunctionConfiguration) -> FunctionConfig:
        name = command.name
        changes: dict[str, Any] = {}
        if command.runtime is not None:
            validation.check_runtime(command.runtime, _KNOWN_RUNTIMES, self._runtimes.names)
            changes["runtime"] = command.runtime
        if command.handler is not None:
            validation.check_handler(command.handler)
            changes["handler"] = command.handler
        if command.role is not None:
            validation.check_role(command.role)
            changes["role"] = command.role
        changes.update(self._config_fields(command.config))
        async with self.lock(name):
            function = self.function(name)
            self._check_revision(function.latest, command.revision_id)
            changes.update(_logging_fields(function.latest, command.config))
            if "layers" in changes:
                if changes["layers"]:
                    code_hash = function.latest.code_hash
                    code_size = await self._code.unzipped_size(code_hash)
                    self._code.check_total_size(code_size, changes["layers"])
                await self._ensure_opt_tree(changes["layer_hashes"])
            config = function.latest.replace(last_modified=_now(), revision_id=_revision(), **changes)
            await self.commit(function, lambda expect: self._store.put_version(config, expect=expect))
            function.latest = config
        await self.changed(name, LATEST)
        await self.ready(config)
        return config

    async def publish(
        self, name: str, *, code_sha256: str | None, description: str | None, revision_id: str | None
    ) -> FunctionConfig:
        """PublishVersion: a new version from $LATEST, or the last one when $LATEST has not changed since."""
        async with self.lock(name):
            function = self.function(name)
            latest = function.latest
            self._check_revision(latest, revision_id)
            if code_sha256 is not None and code_sha256 != latest.code_sha256:
                raise InvalidParameterValueException(
                    f"CodeSHA256 ({code_sha256}) is different from current CodeSHA256 in $LATEST "
                    f"({latest.code_sha256}). Please try again with the CodeSHA256 in $LATEST."
                )
            before = function.latest.revision_id
            version = await self._publish(function, latest, description)
            moved = function.latest.revision_id != before
        if moved:
            await self.changed(name, LATEST)
        return version

    async def delete(self, name: str, qualifier: str | None) -> None:
        """Delete the function (no qualifier) or one published version. A version that does not exist is not an
        error (as on Lambda); one an alias routes to is refused."""
        if qualifier == LATEST:
            raise InvalidParameterValueException("$LATEST version cannot be deleted without deleting the function.")
        async with self.lock(name):
            function = self.function(name)
            if qualifier is not None:
                if qualifier not in function.versions:
                    return
                aliases = function.aliases_of(qualifier)
                if aliases:
                    raise ResourceConflictException(
                        f"Unable to delete version because the following aliases reference it: [{', '.join(aliases)}]"
                    )
                await self.commit(function, lambda expect: self._store.delete_version(name, qualifier, expect=expect))
                del function.versions[qualifier]
                function.policies.pop(qualifier, None)
            else:
                await self.commit(function, lambda expect: self._store.delete_function(name, expect=expect))
                del self._functions[name]
        if qualifier is None:
            self._locks.pop(name, None)
        await self.changed(name, qualifier)

    async def tag(self, name: str, tags: Mapping[str, str]) -> None:
        """Add or overwrite tags. Like every change to a function's metadata, it gives $LATEST a new revision id."""
        async with self.lock(name):
            function = self.function(name)
            merged = {**function.tags, **tags}
            if len(merged) > MAX_TAGS:
                raise InvalidParameterValueException("Number of tags exceeds resource tag limit.")
            await self._put_tags(function, merged)
        await self.changed(name, LATEST)

    async def untag(self, name: str, keys: Iterable[str]) -> None:
        async with self.lock(name):
            function = self.function(name)
            await self._put_tags(function, {k: v for k, v in function.tags.items() if k not in keys})
        await self.changed(name, LATEST)

    async def _put_tags(self, function: Function, tags: dict[str, str]) -> None:
        latest = function.latest.replace(revision_id=_revision())
        await self.commit(function, lambda expect: self._store.put_tags(function.name, tags, latest, expect=expect))
        function.tags = tags
        function.latest = latest

    # -- versions (call with the function's lock held) --------------------------------------------------------

    async def _publish(self, function: Function, latest: FunctionConfig, description: str | None) -> FunctionConfig:
        """Publish ``latest`` (the new $LATEST, stored here too) unless it is unchanged since the last version,
        which is then returned (and $LATEST stored as it is)."""
        last = function.versions.get(str(function.last_version))
        if last is not None and latest.fingerprint() == function.published_from:
            if latest is not function.latest:
                stored = latest
                await self.commit(function, lambda expect: self._store.put_version(stored, expect=expect))
                function.latest = latest
            return last
        version = _new_version(latest, function.last_version + 1, description)
        latest = latest.replace(revision_id=_revision())
        published = latest
        await self.commit(function, lambda expect: self._store.publish_version(
            version, published, published.fingerprint(), expect=expect))
        function.latest = latest
        self._record_version(function, version)
        return version

    def _record_version(self, function: Function, version: FunctionConfig) -> None:
        function.versions[version.version] = version
        function.last_version = int(version.version)
        function.published_from = function.latest.fingerprint()

    # -- helpers ---------------------------------------------------------------------------------------------

    def _check_revision(self, config: FunctionConfig, revision_id: str | None) -> None:
        if revision_id is not None and revision_id != config.revision_id:
            raise PreconditionFailedException(
                "The Revision Id provided does not match the latest Revision Id. "
                "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
            )

    def _config_fields(self, changes: ConfigChanges) -> dict[str, Any]:
        """Validated FunctionConfig fields for the optional configuration members given in ``changes``."""
        out: dict[str, Any] = {}
        if changes.memory_size is not None:
            validation.check_memory(changes.memory_size)
            out["memory_size"] = changes.memory_size
        if changes.timeout is not None:
            validation.check_timeout(changes.timeout)
            out["timeout"] = changes.timeout
        if changes.description is not None:
            out["description"] = changes.description
        if changes.environment is not None:
            validation.check_environment(changes.environment)
            out["environment"] = dict(changes.environment)
        if changes.ephemeral_storage is not None:
            validation.check_ephemeral_storage(changes.ephemeral_storage)
            out["ephemeral_storage"] = changes.ephemeral_storage
        if changes.architectures is not None:
            validation.check_architectures(list(changes.architectures))
            out["architectures"] = changes.architectures
        if changes.layers is not None:
            layers = list(changes.layers)
            validation.check_layers(layers)
            if layers and self._layers is None:
                raise InvalidParameterValueException(f"Layer version {layers[0]} does not exist.")
            found = [self._layers.for_function(arn) for arn in layers] if self._layers is not None else []
            out["layers"] = tuple(layers)
            out["layer_sizes"] = tuple(r.code_size for r in found)
            out["layer_hashes"] = tuple(r.code_hash for r in found)
        if changes.tracing_mode:
            validation.check_tracing_mode(changes.tracing_mode)
            out["tracing_mode"] = changes.tracing_mode
        if changes.dead_letter_target is not None:
            validation.check_dead_letter_target(changes.dead_letter_target)
            out["dead_letter_target"] = changes.dead_letter_target
        return out

    async def _ensure_opt_tree(self, layer_hashes: tuple[str, ...]) -> None:
        await self._code.ensure_opt_tree(layer_hashes)



def _from_stored(stored: StoredFunction) -> Function:
    return Function(
        latest=FunctionConfig.from_json(stored.latest), tags=stored.tags,
        versions={v: FunctionConfig.from_json(text) for v, text in stored.versions.items()},
        aliases={a: Alias.from_json(text) for a, text in stored.aliases.items()},
        policies=stored.policies, last_version=stored.last_version, published_from=stored.published_from,
        generation=stored.generation)


def _logging_fields(current: FunctionConfig | None, changes: ConfigChanges) -> dict[str, Any]:
    """FunctionConfig's logging fields after ``changes`` (nothing when they name no LoggingConfig member)."""
    if not changes.names_logging():
        return {}
    now = LoggingSettings() if current is None else LoggingSettings(
        current.log_format, current.application_log_level, current.system_log_level, current.log_group)
    new = logging_config.resolve(now, changes.log_format, changes.application_log_level,
                                 changes.system_log_level, changes.log_group)
    return {"log_format": new.log_format, "application_log_level": new.application_log_level,
            "system_log_level": new.system_log_level, "log_group": new.log_group}


def _new_version(latest: FunctionConfig, number: int, description: str | None) -> FunctionConfig:
    """Version ``number``: a copy of ``latest`` with its own revision id (and description, when given)."""
    changes: dict[str, Any] = {"version": str(number), "last_modified": _now(), "revision_id": _revision()}
    if description is not None:
        changes["description"] = description
    return latest.replace(**changes)
