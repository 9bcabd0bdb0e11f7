"""Function URL configurations (CreateFunctionUrlConfig and the rest), with Lambda's rules.

A URL belongs to a function's ``$LATEST`` (the unqualified function) or to one of its aliases — never to a
published version (refused with Lambda's validation error). Each has an id of 32 lowercase letters and digits,
the first label of its host name (``<id>.lambda-url.<region>.localhost`` or ``<id>.<LAMBDAD_URL_HOST>``), made
at creation and kept until the URL is deleted. ``AuthType`` (NONE or AWS_IAM) is required at creation;
``InvokeMode`` is BUFFERED unless RESPONSE_STREAM is asked for (Create and Update show it once it was named); ``Cors`` is stored as given. Update changes what
it names (``Cors`` replaced whole). Deleting the function or the alias deletes its URL (the store drops the row
in the same transaction; the listeners here drop it from memory).

Every node holds every URL in memory, by id (the serving path: one dict look-up) and by owner; in a cluster a
change anywhere reaches the others through ``functionurl`` change notices (``cluster/notices.py``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import string
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from lambdad.arn import LATEST, function_arn, is_version_number
from lambdad.errors import (ResourceConflictException, ResourceNotFoundException, validation_error,
                            violation)
from lambdad.functions.aliases import AliasService
from lambdad.functions.service import FunctionService
from lambdad.store.interfaces import FunctionUrlStore

__all__ = ["FunctionUrls", "UrlConfig", "AUTH_TYPES", "INVOKE_MODES", "new_url_id"]

AUTH_TYPES = ("NONE", "AWS_IAM")
INVOKE_MODES = ("RESPONSE_STREAM", "BUFFERED")  # in the order Lambda's enum message lists them
_QUALIFIER_PATTERN = r"((?!^\d+$)^[0-9a-zA-Z-_]+$)"  # the model's FunctionUrlQualifier, as Lambda's message shows it
_ID_ALPHABET = string.ascii_lowercase + string.digits
_PAGE = 50
_NO_RESOURCE = "The resource you requested does not exist."
_NO_FUNCTION = "Function does not exist"
_CORS_FIELDS = ("AllowCredentials", "AllowHeaders", "AllowMethods", "AllowOrigins", "ExposeHeaders", "MaxAge")


def new_url_id() -> str:
    """32 lowercase letters and digits, as Lambda's URL ids."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(32))


def _now() -> str:
    """Lambda's format for these times: 2026-12-05T19:45:09.123456Z."""
    now = dt.datetime.now(dt.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class UrlConfig:
    """One function URL as the serving path reads it."""

    url_id: str
    name: str  # the function
    qualifier: str  # $LATEST or an alias name
    auth_type: str
    invoke_mode: str
    cors: Mapping[str, Any] | None
    invoke_mode_named: bool  # InvokeMode was given (Create and Update show it only then)
    created: str
    last_modified: str
    # what the front works out once per config: lower-cased CORS lists (see cors.py)
    derived: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def invoked_qualifier(self) -> str | None:
        return None if self.qualifier == LATEST else self.qualifier

    def document(self) -> dict[str, Any]:
        out: dict[str, Any] = {"AuthType": self.auth_type}
        if self.invoke_mode_named:
            out["InvokeMode"] = self.invoke_mode
        if self.cors is not None:
            out["Cors"] = dict(self.cors)
        return out


def _config(name: str, qualifier: str, url_id: str, document: Mapping[str, Any], created: str,
            modified: str) -> UrlConfig:
    return UrlConfig(url_id, name, qualifier, str(document["AuthType"]), str(document.get("InvokeMode") or "BUFFERED"),
                     document.get("Cors"), "InvokeMode" in document, created, modified)


class FunctionUrls:
    def __init__(self, functions: FunctionService, aliases: AliasService, store: FunctionUrlStore, *, region: str,
                 account_id: str, url_of: Callable[[str], str]) -> None:
        self._functions = functions
        self._store = store
        self._region, self._account_id = region, account_id
        self._url_of = url_of  # the FunctionUrl shown for an id (depends on the listener's port or LAMBDAD_URL_HOST)
        self._by_owner: dict[tuple[str, str], UrlConfig] = {}
        self.by_id: dict[str, UrlConfig] = {}  # the serving path's look-up
        functions.on_change(self._function_changed)
        aliases.on_change(self._alias_changed)

    async def load(self) -> None:
        configs = [_config(n, q, u, json.loads(c), cr, m) for n, q, u, c, cr, m in await self._store.load_function_urls()]
        self._by_owner = {(c.name, c.qualifier): c for c in configs}
        self.by_id = {c.url_id: c for c in configs}

    async def reload(self, name: str) -> None:
        """Another node changed ``name``'s URLs (cluster change notices)."""
        stored = [_config(n, q, u, json.loads(c), cr, m) for n, q, u, c, cr, m in await self._store.load_function_urls()
                  if n == name]
        self._forget(name)
        for config in stored:
            self._remember(config)

    # -- the API ---------------------------------------------------------------------------------------------

    async def create(self, name: str, qualifier: str | None, params: Mapping[str, Any]) -> dict[str, Any]:
        key = self._check_qualifier(name, qualifier)
        document: dict[str, Any] = {"AuthType": self._enum(params.get("AuthType"), "authType", AUTH_TYPES)}
        if params.get("InvokeMode") is not None:
            document["InvokeMode"] = self._enum(params["InvokeMode"], "invokeMode", INVOKE_MODES)
        if params.get("Cors") is not None:
            document["Cors"] = self._cors(params["Cors"])
        async with self._functions.lock(name):
            self._owner_exists(key, missing=_NO_FUNCTION)
            if key in self._by_owner:
                raise ResourceConflictException(
                    f"Failed to create function url config for [functionArn = {self._arn(*key)}]. Error message:  "
                    "FunctionUrlConfig exists for this Lambda function")
            url_id = new_url_id()
            while url_id in self.by_id:
                url_id = new_url_id()
            now = _now()
            await self._store.put_function_url(*key, url_id, json.dumps(document), now, now)
            config = _config(*key, url_id, document, now, now)
            self._remember(config)
        out = self._describe(config, answer=True)
        out.pop("LastModifiedTime")  # CreateFunctionUrlConfig's answer has none
        return out

    async def update(self, name: str, qualifier: str | None, params: Mapping[str, Any]) -> dict[str, Any]:
        key = self._check_qualifier(name, qualifier)
        async with self._functions.lock(name):
            self._owner_exists(key, missing=_NO_FUNCTION)
            current = self._by_owner.get(key)
            if current is None:
                raise ResourceNotFoundException(_NO_RESOURCE)
            document = current.document()
            if params.get("AuthType") is not None:
                document["AuthType"] = self._enum(params["AuthType"], "authType", AUTH_TYPES)
            if params.get("InvokeMode") is not None:
                document["InvokeMode"] = self._enum(params["InvokeMode"], "invokeMode", INVOKE_MODES)
            if params.get("Cors") is not None:
                document["Cors"] = self._cors(params["Cors"])
            now = _now()
            await self._store.put_function_url(*key, current.url_id, json.dumps(document), current.created, now)
            config = _config(*key, current.url_id, document, current.created, now)
            self._remember(config)
        return self._describe(config, answer=True)

    def get(self, name: str, qualifier: str | None) -> dict[str, Any]:
        key = self._check_qualifier(name, qualifier)
        self._owner_exists(key, missing=_NO_RESOURCE)
        config = self._by_owner.get(key)
        if config is None:
            raise ResourceNotFoundException(_NO_RESOURCE)
        return self._describe(config)

    def auth_type(self, name: str, qualifier: str | None) -> str | None:
        """The AuthType of the URL of ``name`` (``qualifier``), or None (access checks: lambda:FunctionUrlAuthType)."""
        config = self._by_owner.get((name, qualifier or LATEST))
        return config.auth_type if config is not None else None

    async def delete(self, name: str, qualifier: str | None) -> None:
        key = self._check_qualifier(name, qualifier)
        async with self._functions.lock(name):
            self._owner_exists(key, missing=_NO_RESOURCE)
            if key not in self._by_owner:
                raise ResourceNotFoundException(_NO_RESOURCE)
            await self._store.delete_function_url(*key)
            self._drop(key)

    def list(self, name: str, marker: str | None, max_items: int | None) -> dict[str, Any]:
        try:
            self._functions.function(name)
        except ResourceNotFoundException:
            raise ResourceNotFoundException(_NO_FUNCTION) from None
        keys = sorted(o for o in self._by_owner if o[0] == name)
        start = int(marker) if marker and marker.isdigit() else 0
        limit = max(1, min(max_items or _PAGE, _PAGE))
        out: dict[str, Any] = {"FunctionUrlConfigs": [self._describe(self._by_owner[k])
                                                      for k in keys[start:start + limit]]}
        if start + limit < len(keys):
            out["NextMarker"] = str(start + limit)
        return out

    # -- rules -----------------------------------------------------------------------------------------------

    @staticmethod
    def _check_qualifier(name: str, qualifier: str | None) -> tuple[str, str]:
        """A URL's owner: $LATEST (no qualifier) or an alias. A version number, or $LATEST named, is refused
        with Lambda's validation error, before whether the function exists is looked at (as Lambda does)."""
        if qualifier and (qualifier == LATEST or is_version_number(qualifier)
                          or re.fullmatch(_QUALIFIER_PATTERN, qualifier) is None):
            raise validation_error(violation("qualifier", "Member must satisfy regular expression pattern: "
                                             + _QUALIFIER_PATTERN, qualifier))
        return name, qualifier or LATEST

    def _owner_exists(self, key: tuple[str, str], *, missing: str) -> None:
        try:
            function = self._functions.function(key[0])
        except ResourceNotFoundException:
            raise ResourceNotFoundException(missing) from None
        if key[1] != LATEST and key[1] not in function.aliases:
            raise ResourceNotFoundException(missing)

    @staticmethod
    def _enum(value: Any, path: str, allowed: tuple[str, ...]) -> str:
        if value not in allowed:
            raise validation_error(violation(path, f"Member must satisfy enum value set: [{', '.join(allowed)}]",
                                             value))
        return str(value)

    @staticmethod
    def _cors(cors: Mapping[str, Any]) -> dict[str, Any]:
        return {k: cors[k] for k in _CORS_FIELDS if cors.get(k) is not None}

    # -- memory ----------------------------------------------------------------------------------------------

    def _remember(self, config: UrlConfig) -> None:
        old = self._by_owner.get((config.name, config.qualifier))
        if old is not None and old.url_id != config.url_id:
            self.by_id.pop(old.url_id, None)
        self._by_owner[(config.name, config.qualifier)] = config
        self.by_id[config.url_id] = config

    def _drop(self, key: tuple[str, str]) -> None:
        config = self._by_owner.pop(key, None)
        if config is not None:
            self.by_id.pop(config.url_id, None)

    def _forget(self, name: str) -> None:
        for key in [k for k in self._by_owner if k[0] == name]:
            self._drop(key)

    def _describe(self, config: UrlConfig, *, answer: bool = False) -> dict[str, Any]:
        """A URL as Get and List show it; as Create and Update ``answer`` (InvokeMode only once it was named, as
        Lambda's answers have it)."""
        out: dict[str, Any] = {"FunctionUrl": self._url_of(config.url_id),
                               "FunctionArn": self._arn(config.name, config.qualifier),
                               "AuthType": config.auth_type, "CreationTime": config.created,
                               "LastModifiedTime": config.last_modified}
        if not answer or config.invoke_mode_named:
            out["InvokeMode"] = config.invoke_mode
        if config.cors is not None:
            out["Cors"] = dict(config.cors)
        return out

    def _arn(self, name: str, qualifier: str) -> str:
        return function_arn(self._region, self._account_id, name, None if qualifier == LATEST else qualifier)

    # -- listeners -------------------------------------------------------------------------------------------

    async def _function_changed(self, name: str, version: str | None) -> None:
        if version is None:  # the function is gone (the store dropped its URLs with it)
            self._forget(name)

    async def _alias_changed(self, name: str, alias: str) -> None:
        if (name, alias) not in self._by_owner:
            return
        try:
            exists = alias in self._functions.function(name).aliases
        except ResourceNotFoundException:
            exists = False
        if not exists:  # the store dropped its URL with it
            self._drop((name, alias))
