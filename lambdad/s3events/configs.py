"""S3 notification endpoints of functions: what ``lambdad s3-notifications put|get|delete|list`` manages.

A function (or one of its versions or aliases: ``qualifier``) has at most one notification endpoint, the webhook
a store is pointed at: ``/s3-events/<id>`` on lambdad's port, ``<id>`` 32 random lowercase letters and digits made
when the endpoint is first put and kept until it is deleted. It holds what S3's LambdaFunctionConfiguration holds —
``Events``, ``Filter`` (key prefix and suffix rules), and the ``Id`` a record's ``s3.configurationId`` carries
(``ConfigurationId``; the endpoint's id when not given) — and a secret token the store sends as ``Authorization:
Bearer <token>`` (MinIO's ``auth_token``).

**The token** is made here (``secrets.token_urlsafe``: 256 random bits) unless the caller brings one (16 to 512
printable characters, no spaces), and shown once: in the answer to the put that set it. Only its SHA-256 is
stored, and a presented token is compared with ``hmac.compare_digest`` against that, so neither the store nor the
timing of a refusal gives it away. A put without a token keeps the one there is (``NewToken`` makes a new one).

**Where it lives.** One row per (function, qualifier) in the metadata store (``s3_notifications``: the data dir's
SQLite, or the cluster's PostgreSQL), removed with its function (ON DELETE CASCADE). Nothing is kept in memory:
the webhook reads the row of an id on every request, so an endpoint put or deleted on one node of a cluster counts
on every node at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import string
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from lambdad.arn import LATEST, FunctionRef, function_arn
from lambdad.errors import InvalidParameterValueException, ResourceNotFoundException
from lambdad.functions.service import FunctionService
from lambdad.s3events.records import FilterError, KeyFilter, NotificationFilter, parse_events, parse_filter
from lambdad.store.interfaces import S3NotificationStore, StoredS3Notification

__all__ = ["S3Notification", "S3Notifications", "ENDPOINT_PREFIX", "hash_token"]

ENDPOINT_PREFIX = "/s3-events/"
_ID_ALPHABET = string.ascii_lowercase + string.digits
_ID = re.compile(r"[a-z0-9]{32}")
_TOKEN = re.compile(r"[\x21-\x7e]{16,512}")  # printable ASCII without spaces: MinIO sends one word as a Bearer token
_CONFIGURATION_ID = re.compile(r"[\x20-\x7e]{1,255}")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


@dataclass(frozen=True)
class S3Notification:
    """One notification endpoint as the webhook and the API read it."""

    notification_id: str
    name: str  # the function
    qualifier: str  # "" for the unqualified function, else a version number or an alias name
    filter: NotificationFilter
    configuration_id: str
    token_hash: str = field(repr=False)
    created: str
    last_modified: str

    def accepts(self, token: str) -> bool:
        """Whether ``token`` is this endpoint's, compared in constant time."""
        return hmac.compare_digest(hash_token(token), self.token_hash)

    def describe(self, region: str, account_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "NotificationId": self.notification_id,
            "FunctionArn": function_arn(region, account_id, self.name, self.qualifier or None),
            "EndpointPath": ENDPOINT_PREFIX + self.notification_id,
            "ConfigurationId": self.configuration_id,
            "Events": list(self.filter.events),
            "CreationTime": self.created,
            "LastModified": self.last_modified,
        }
        document = self.filter.key.document()
        if document is not None:
            out["Filter"] = document
        return out


def _from_stored(row: StoredS3Notification) -> S3Notification:
    config = json.loads(row.config)
    return S3Notification(row.notification_id, row.name, row.qualifier,
                          NotificationFilter(tuple(config["Events"]), KeyFilter(config.get("Prefix", ""),
                                                                                config.get("Suffix", ""))),
                          config["ConfigurationId"], row.token_hash, row.created, row.last_modified)


class S3Notifications:
    def __init__(self, functions: FunctionService, store: S3NotificationStore, *, region: str,
                 account_id: str) -> None:
        self._functions = functions
        self._store = store
        self._region, self._account_id = region, account_id

    def _key(self, name: str, qualifier: str | None) -> tuple[str, str]:
        """(function, qualifier) of an existing function, version or alias; ResourceNotFoundException otherwise."""
        qualifier = "" if qualifier in (None, "", LATEST) else qualifier
        self._functions.resolve(FunctionRef(name, qualifier or None))
        return name, qualifier

    async def put(self, name: str, qualifier: str | None, events: Sequence[Any], filter_document: Any,
                  configuration_id: str | None, token: str | None,
                  new_token: bool) -> tuple[dict[str, Any], str | None]:
        """Make or replace the endpoint of ``name``/``qualifier``; its description and the token, when this call
        set one (made here, or brought: then not echoed back)."""
        try:
            parsed_events = parse_events(events)
            key_filter = parse_filter(filter_document if isinstance(filter_document, Mapping) else None)
        except FilterError as exc:
            raise InvalidParameterValueException(str(exc)) from None
        if filter_document is not None and not isinstance(filter_document, Mapping):
            raise InvalidParameterValueException("Filter must be an object: {\"Key\": {\"FilterRules\": [...]}}")
        if configuration_id is not None and _CONFIGURATION_ID.fullmatch(configuration_id) is None:
            raise InvalidParameterValueException("ConfigurationId must be 1 to 255 printable characters")
        if token is not None and _TOKEN.fullmatch(token) is None:
            raise InvalidParameterValueException("Token must be 16 to 512 printable characters without spaces")
        if token is not None and new_token:
            raise InvalidParameterValueException("Give a Token or ask for a NewToken, not both")
        key = self._key(name, qualifier)
        stored = await self._store.get_s3_notification(*key)
        shown: str | None = None
        if token is not None:
            token_hash = hash_token(token)
        elif stored is None or new_token:
            shown = secrets.token_urlsafe(32)
            token_hash = hash_token(shown)
        else:
            token_hash = stored.token_hash
        notification_id = stored.notification_id if stored is not None else "".join(
            secrets.choice(_ID_ALPHABET) for _ in range(32))
        now = _now()
        config = {"Events": list(parsed_events), "Prefix": key_filter.prefix, "Suffix": key_filter.suffix,
                  "ConfigurationId": configuration_id or notification_id}
        row = StoredS3Notification(notification_id, key[0], key[1], json.dumps(config), token_hash,
                                   stored.created if stored is not None else now, now)
        await self._store.put_s3_notification(row)
        return _from_stored(row).describe(self._region, self._account_id), shown

    async def get(self, name: str, qualifier: str | None) -> dict[str, Any]:
        key = self._key(name, qualifier)
        stored = await self._store.get_s3_notification(*key)
        if stored is None:
            raise self._none(*key)
        return _from_stored(stored).describe(self._region, self._account_id)

    async def delete(self, name: str, qualifier: str | None) -> None:
        qualifier = "" if qualifier in (None, "", LATEST) else qualifier
        if not await self._store.delete_s3_notification(name, qualifier):
            raise self._none(name, qualifier)

    def _none(self, name: str, qualifier: str) -> ResourceNotFoundException:
        arn = function_arn(self._region, self._account_id, name, qualifier or None)
        return ResourceNotFoundException(f"The function {arn} has no S3 notification endpoint")

    async def list(self, name: str | None) -> list[dict[str, Any]]:
        return [_from_stored(row).describe(self._region, self._account_id)
                for row in await self._store.list_s3_notifications(name)]

    async def by_id(self, notification_id: str) -> S3Notification | None:
        """The endpoint of an id, read from the store now; None for an id that is not one."""
        if _ID.fullmatch(notification_id) is None:
            return None
        row = await self._store.get_s3_notification_by_id(notification_id)
        return _from_stored(row) if row is not None else None
