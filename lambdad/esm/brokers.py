"""Brokers of RabbitMQ event sources, and the credentials their mappings name: lambdad's stand-in for the two AWS
services a mapping of Amazon MQ for RabbitMQ points at.

On AWS a mapping names its broker by ARN (``--event-source-arn arn:aws:mq:REGION:ACCOUNT:broker:NAME:ID``) and its
credentials by a Secrets Manager secret (``--source-access-configurations Type=BASIC_AUTH,URI=SECRET_ARN``, the
secret's value ``{"username": ..., "password": ...}``). lambdad runs neither Amazon MQ nor Secrets Manager, so an
operator registers each once, under the very ARNs the mappings will name, and the unchanged ``aws lambda
create-event-source-mapping`` command works:

- ``lambdad brokers add BROKER_ARN --url amqp[s]://HOST[:PORT]`` — where the broker listens. The URL carries no
  user, password or virtual host: credentials come from the mapping's BASIC_AUTH secret, the virtual host from its
  VIRTUAL_HOST (``/`` when absent), as on AWS;
- ``lambdad brokers add-secret SECRET_ARN --username U --password-file F`` — the secret's value;
- ``lambdad brokers list`` (never a password) and ``lambdad brokers remove ARN`` (either kind).

Both kinds are records of one table (``brokers``, keyed by ARN, in the metadata store: the data dir's SQLite file or
the cluster's PostgreSQL), so every node of a cluster reads the same ones. ``endpoint`` reads them afresh each time
a source (re)connects: a replaced URL or password counts from the next connection, without restarting anything.
Passwords are stored as they are — the broker's PLAIN mechanism needs them so — and never printed back.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable
from urllib.parse import urlsplit

from lambdad.errors import LambdadError
from lambdad.store.interfaces import BrokerStore

__all__ = ["BrokerEndpoint", "BrokerError", "BrokerRecord", "add_broker", "add_secret", "endpoint", "endpoint_source",
           "list_records", "remove", "validate_broker_arn", "validate_secret_arn"]

# Amazon MQ's broker ARN: the broker's name (1-50 letters, digits, - and _) and its id (b-UUID on AWS; any
# letters, digits and dashes here, so that a self-hosted broker may be given a readable one).
_BROKER_ARN = re.compile(r"arn:aws[a-z-]*:mq:[a-z]{2}(-gov)?-[a-z]+-\d:\d{12}:broker:[A-Za-z0-9_-]{1,50}:[A-Za-z0-9-]{1,100}")
# Lambda's pattern for a Secrets Manager ARN in a source access configuration (EventBridge Pipes' BasicAuth).
_SECRET_ARN = re.compile(r"arn:aws[a-z-]*:secretsmanager:[a-z]{2}(-gov)?-[a-z]+-\d:\d{12}:secret:.+")
_MAX_SECRET_ARN = 1600
_MAX_PASSWORD = 4096


class BrokerError(LambdadError):
    """A broker or secret that cannot be registered, found or used (the message says which and why)."""


@dataclass(frozen=True)
class BrokerEndpoint:
    """Where and as whom a source connects: the broker's URL and the secret's user and password."""

    url: str
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class BrokerRecord:
    """A registered broker (``url``) or secret (``username``); passwords are not part of a listing."""

    arn: str
    kind: str  # "broker" or "secret"
    url: str | None
    username: str | None
    created: float


def validate_broker_arn(arn: str) -> None:
    if _BROKER_ARN.fullmatch(arn) is None:
        raise BrokerError(f"invalid broker ARN {arn!r}: expected arn:aws:mq:REGION:ACCOUNT:broker:NAME:ID "
                          "(NAME 1 to 50 letters, digits, - and _)")


def validate_secret_arn(arn: str) -> None:
    if len(arn) > _MAX_SECRET_ARN or _SECRET_ARN.fullmatch(arn) is None:
        raise BrokerError(f"invalid secret ARN {arn!r}: expected arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME")


def _validate_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # a port that is not a number raises here
    except ValueError as exc:
        raise BrokerError(f"invalid broker URL {url!r}: {exc}") from exc
    if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
        raise BrokerError(f"invalid broker URL {url!r}: expected amqp://HOST[:PORT] or amqps://HOST[:PORT]")
    if parts.username is not None or parts.password is not None:
        raise BrokerError("a broker URL carries no credentials: they come from the mapping's BASIC_AUTH secret "
                          "(lambdad brokers add-secret)")
    if parts.path not in ("", "/"):
        raise BrokerError(f"a broker URL names no virtual host ({parts.path!r}): it comes from the mapping's "
                          "VIRTUAL_HOST")
    if parts.fragment:
        raise BrokerError(f"invalid broker URL {url!r}: it has a fragment")


async def add_broker(store: BrokerStore, arn: str, url: str) -> None:
    """Register (or replace) broker ``arn`` at ``url``."""
    validate_broker_arn(arn)
    _validate_url(url)
    await store.put_broker_record(arn, "broker", json.dumps({"url": url}), time.time())


async def add_secret(store: BrokerStore, arn: str, username: str, password: str) -> None:
    """Register (or replace) secret ``arn`` with the value ``{"username", "password"}``."""
    validate_secret_arn(arn)
    if not username or len(username) > 255:
        raise BrokerError("the secret's username must be 1 to 255 characters")
    if not password or len(password) > _MAX_PASSWORD:
        raise BrokerError(f"the secret's password must be 1 to {_MAX_PASSWORD} characters")
    await store.put_broker_record(arn, "secret", json.dumps({"username": username, "password": password}),
                                  time.time())


async def list_records(store: BrokerStore) -> list[BrokerRecord]:
    """Every broker and secret, by ARN, without passwords."""
    records = []
    for arn, kind, text, created in await store.list_broker_records():
        value = json.loads(text)
        records.append(BrokerRecord(arn, kind, value.get("url"), value.get("username"), created))
    return records


async def remove(store: BrokerStore, arn: str) -> None:
    if not await store.delete_broker_record(arn):
        raise BrokerError(f"no broker or secret {arn!r} is registered")


async def endpoint(store: BrokerStore, broker_arn: str, secret_arn: str) -> BrokerEndpoint:
    """The URL of broker ``broker_arn`` and the credentials of secret ``secret_arn``, read now."""
    broker = await store.get_broker_record(broker_arn)
    if broker is None or broker[0] != "broker":
        raise BrokerError(f"broker {broker_arn} is not registered (lambdad brokers add {broker_arn} --url ...)")
    secret = await store.get_broker_record(secret_arn)
    if secret is None or secret[0] != "secret":
        raise BrokerError(f"secret {secret_arn} is not registered (lambdad brokers add-secret {secret_arn} ...)")
    value = json.loads(secret[1])
    return BrokerEndpoint(json.loads(broker[1])["url"], value["username"], value["password"])


def endpoint_source(store: BrokerStore, broker_arn: str,
                    secret_arn: str) -> Callable[[], Awaitable[BrokerEndpoint]]:
    """What a ``RabbitSource`` calls at each (re)connection: ``endpoint`` of these two ARNs, read afresh."""
    async def resolve() -> BrokerEndpoint:
        return await endpoint(store, broker_arn, secret_arn)

    return resolve
