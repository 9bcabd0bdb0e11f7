"""The functions service: create, read, update and delete functions, with Lambda's rules.

State lives in memory (``Function`` objects keyed by name) for fast reads on the invoke path and is written through
to the metadata store before any call returns. A per-function lock serialises changes to one function.
Listeners hear about every change of a function's $LATEST (the environment pool retires old environments).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping

import botocore.session

from lambdad.arn import LATEST, FunctionRef
from lambdad.errors import (
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lambdad.functions import validation
from lambdad.functions.code import CodeTrees, check_zip
from lambdad.functions.model import Function, FunctionConfig
from lambdad.runtimes.registry import RuntimeRegistry
from lambdad.store.blobs import FileBlobStore
from lambdad.store.sqlite import SqliteStore

__all__ = ["FunctionService", "Listing"]

_KNOWN_RUNTIMES = tuple(botocore.session.get_session().get_service_model("lambda").shape_for("Runtime").enum)

ChangeListener = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class Listing:
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
        store: SqliteStore,
        blobs: FileBlobStore,
        trees: CodeTrees,
        runtimes: RuntimeRegistry,
        *,
        region: str,
        account_id: str,
    ) -> None:
        self._store = store
        self._blobs = blobs
        self._trees = trees
        self._runtimes = runtimes
        self.region = region
        self.account_id = account_id
        self._functions: dict[str, Function] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._listeners: list[ChangeListener] = []

    async def load(self) -> None:
        for function in await self._store.load_functions():
            self._functions[function.name] = function

    def on_change(self, listener: ChangeListener) -> None:
        self._listeners.append(listener)

    async def _changed(self, name: str) -> None:
        for listener in self._listeners:
            await listener(name)

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    # -- reads -----------------------------------------------------------------------------------------------

    def function(self, name: str) -> Function:
        function = self._functions.get(name)
        if function is None:
            raise ResourceNotFoundException(
                f"Function not found: arn:aws:lambda:{self.region}:{self.account_id}:function:{name}"
            )
        return function

    def resolve(self, ref: FunctionRef) -> FunctionConfig:
        """The configuration a qualified reference names ($LATEST when unqualified). Hot path: memory only."""
        function = self.function(ref.name)
        qualifier = ref.qualifier or LATEST
        if qualifier == LATEST:
            return function.latest
        config = function.versions.get(qualifier)
        if config is None:
            raise ResourceNotFoundException(
                f"Function not found: arn:aws:lambda:{self.region}:{self.account_id}:function:{ref.name}:{qualifier}"
            )
        return config

    def list(self, marker: str | None, max_items: int | None) -> Listing:
        names = sorted(self._functions)
        start = 0
        if marker:
            try:
                start = names.index(_decode_marker(marker)) + 1
            except ValueError:
                start = next((i for i, n in enumerate(names) if n > _decode_marker(marker)), len(names))
        limit = max(1, min(max_items or 50, 50))
        page = names[start : start + limit]
        more = start + limit < len(names)
        return Listing(
            configs=[self._functions[n].latest for n in page],
            next_marker=_encode_marker(page[-1]) if more and page else None,
        )

    def blob_path(self, code_hash: str) -> Path:
        return self._blobs.path(code_hash)

    def code_tree(self, config: FunctionConfig) -> str:
        return str(self._trees.path(config.code_hash))

    # -- writes ----------------------------------------------------------------------------------------------

    async def create(self, params: Mapping[str, Any], name: str) -> FunctionConfig:
        code = params["Code"]
        if params.get("PackageType", "Zip") != "Zip":
            raise InvalidParameterValueException("lambdad runs .zip file archives only; container images are not supported.")
        _check_code_source(code, params)
        runtime = params.get("Runtime")
        if runtime is None:
            raise InvalidParameterValueException("Runtime and Handler are mandatory parameters for functions created with deployment packages.")
        handler = params.get("Handler")
        if handler is None:
            raise InvalidParameterValueException("Runtime and Handler are mandatory parameters for functions created with deployment packages.")
        validation.check_runtime(runtime, _KNOWN_RUNTIMES, self._runtimes.names)
        validation.check_handler(handler)
        validation.check_role(params["Role"])
        fields = self._config_fields(params)
        async with self._lock(name):
            if name in self._functions:
                raise ResourceConflictException(
                    f"Function already exist: {name}"
                )
            code_fields = await self._store_code(code["ZipFile"], "CreateFunction")
            config = FunctionConfig(
                name=name,
                version=LATEST,
                runtime=runtime,
                handler=handler,
                role=params["Role"],
                last_modified=_now(),
                revision_id=_revision(),
                **code_fields,
                **fields,
            )
            tags = dict(params.get("Tags") or {})
            await self._store.create_function(config, tags)
            self._functions[name] = Function(latest=config, tags=tags)
        return config

    async def update_code(self, name: str, params: Mapping[str, Any]) -> FunctionConfig:
        _check_code_source(params, params)
        if params.get("Architectures"):
            validation.check_architectures(params["Architectures"])
        async with self._lock(name):
            function = self.function(name)
            self._check_revision(function.latest, params.get("RevisionId"))
            code_fields = await self._store_code(params["ZipFile"], "UpdateFunctionCode")
            changes: dict[str, Any] = dict(code_fields)
            if params.get("Architectures"):
                changes["architectures"] = tuple(params["Architectures"])
            config = function.latest.replace(last_modified=_now(), revision_id=_revision(), **changes)
            await self._store.put_version(config)
            function.latest = config
        await self._changed(name)
        return config

    async def update_configuration(self, name: str, params: Mapping[str, Any]) -> FunctionConfig:
        changes: dict[str, Any] = {}
        if "Runtime" in params:
            validation.check_runtime(params["Runtime"], _KNOWN_RUNTIMES, self._runtimes.names)
            changes["runtime"] = params["Runtime"]
        if "Handler" in params:
            validation.check_handler(params["Handler"])
            changes["handler"] = params["Handler"]
        if "Role" in params:
            validation.check_role(params["Role"])
            changes["role"] = params["Role"]
        changes.update(self._config_fields(params))
        async with self._lock(name):
            function = self.function(name)
            self._check_revision(function.latest, params.get("RevisionId"))
            config = function.latest.replace(last_modified=_now(), revision_id=_revision(), **changes)
            await self._store.put_version(config)
            function.latest = config
        await self._changed(name)
        return config

    async def delete(self, name: str, qualifier: str | None) -> None:
        if qualifier not in (None, LATEST):
            raise InvalidParameterValueException("Deleting a published version is not supported by this lambdad server yet.")
        if qualifier == LATEST:
            raise InvalidParameterValueException("$LATEST version cannot be deleted without deleting the function.")
        async with self._lock(name):
            self.function(name)
            await self._store.delete_function(name)
            del self._functions[name]
        self._locks.pop(name, None)
        await self._changed(name)

    # -- helpers ---------------------------------------------------------------------------------------------

    def _check_revision(self, config: FunctionConfig, revision_id: str | None) -> None:
        if revision_id is not None and revision_id != config.revision_id:
            raise PreconditionFailedException(
                "The Revision Id provided does not match the latest Revision Id. "
                "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
            )

    def _config_fields(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Validated FunctionConfig fields for the optional configuration members present in ``params``."""
        out: dict[str, Any] = {}
        if "MemorySize" in params:
            validation.check_memory(params["MemorySize"])
            out["memory_size"] = params["MemorySize"]
        if "Timeout" in params:
            validation.check_timeout(params["Timeout"])
            out["timeout"] = params["Timeout"]
        if "Description" in params:
            out["description"] = params["Description"]
        if "Environment" in params:
            variables = dict((params["Environment"] or {}).get("Variables") or {})
            validation.check_environment(variables)
            out["environment"] = variables
        if "EphemeralStorage" in params:
            size = params["EphemeralStorage"]["Size"]
            validation.check_ephemeral_storage(size)
            out["ephemeral_storage"] = size
        if "Architectures" in params:
            validation.check_architectures(params["Architectures"])
            out["architectures"] = tuple(params["Architectures"])
        if "Layers" in params:
            layers = list(params["Layers"])
            validation.check_layers(layers)
            if layers:
                # The Layers API is not built yet, so no layer version exists to reference.
                raise InvalidParameterValueException(f"Layer version {layers[0]} does not exist.")
            out["layers"] = ()
        if "TracingConfig" in params and params["TracingConfig"].get("Mode"):
            out["tracing_mode"] = params["TracingConfig"]["Mode"]
        if "LoggingConfig" in params:
            logging_config = params["LoggingConfig"]
            if logging_config.get("LogFormat"):
                out["log_format"] = logging_config["LogFormat"]
            if logging_config.get("LogGroup"):
                out["log_group"] = logging_config["LogGroup"]
        return out

    async def _store_code(self, data: bytes, operation: str) -> dict[str, Any]:
        check_zip(data, operation)
        code_hash = await asyncio.to_thread(self._blobs.put, data)
        await asyncio.to_thread(self._trees.ensure, code_hash, data)
        return {
            "code_hash": code_hash,
            "code_sha256": base64.b64encode(bytes.fromhex(code_hash)).decode(),
            "code_size": len(data),
        }


def _check_code_source(code: Mapping[str, Any], params: Mapping[str, Any]) -> None:
    """Code must come as a .zip in ZipFile (CreateFunction's Code, or UpdateFunctionCode's own members)."""
    if code.get("ImageUri"):
        raise InvalidParameterValueException("lambdad runs .zip file archives only; container images are not supported.")
    if code.get("S3Bucket") or code.get("S3Key"):
        raise InvalidParameterValueException(
            "lambdad cannot fetch code from S3 yet; upload the .zip file directly with ZipFile."
        )
    if "ZipFile" not in code:
        raise InvalidParameterValueException("Please provide a source for function code.")
    if params.get("Publish"):
        raise InvalidParameterValueException("Publish is not supported by this lambdad server yet (versions come later).")


def _encode_marker(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode()


def _decode_marker(marker: str) -> str:
    try:
        return base64.urlsafe_b64decode(marker.encode()).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidParameterValueException(f"Invalid marker: {marker}") from exc

