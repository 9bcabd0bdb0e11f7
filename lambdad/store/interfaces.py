"""What the services need of storage, as interfaces: the seams cluster mode puts another implementation behind.

One SQL store (``store/sql.py``, ``SqlStore``: SQLite embedded, PostgreSQL in a cluster) implements every
metadata interface, and files under the data dir (``store/blobs.py``, ``FileBlobStore``) the blob store. Each service is given only the
interface it uses, so a replacement (a shared database, an object store) has a small, typed contract to meet:

- ``FunctionStore``: functions, their versions, aliases, tags and resource policies (``functions/``);
- ``ConcurrencyStore``: reserved and provisioned concurrency;
- ``EventSourceMappingStore``: event source mappings (``esm/``);
- ``LayerStore``: layer versions;
- ``AsyncEventStore``: the durable queue of accepted asynchronous invocations (``invoke/async_queue.py``);
- ``LogStore``: functions' log events and their retention (``logs/``);
- ``MetricStore``: CloudWatch metrics, per-minute aggregates and value distributions (``metrics/``);
- ``IamStore``: IAM users, groups, roles, policies and sessions, users' access keys, root's key (``iam/``);
- ``BrokerStore``: RabbitMQ brokers' URLs and the credentials their event source mappings name (``esm/brokers.py``);
- ``UsageStore``: metered use per function version and hour (``invoke/usage.py``, ``lambdad usage``);
- ``BlobStore``: code packages, content-addressed.

The store knows records only as JSON text and the few keys it indexes them by: it does not import the services'
models (``functions/model.py``); ``VersionRecord`` and ``AliasRecord`` say what it reads of one, and
``load_functions`` returns ``StoredFunction`` rows for ``FunctionService`` to turn into its model.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

__all__ = ["StoreConflict", "AliasRecord", "AsyncEvent", "AsyncEventStore", "BlobStore", "BrokerStore", "ConcurrencyStore", "FunctionStore", "FunctionUrlStore",
           "EventInvokeConfigStore", "EventSourceMappingStore", "IamStore", "LayerStore", "LogEvent", "LogGroupInfo", "LogStore", "LogStreamInfo",
           "MetadataStore", "MetricAggregate", "MetricStore", "StoredFunction", "StoredLogEvent", "UsageRecord",
           "UsageStore", "VersionRecord"]


class StoreConflict(Exception):
    """A write that met a row it must not overwrite: a second create of one name (from another node, say)."""


class VersionRecord(Protocol):
    """A function version as the store keeps it: keyed by (name, version), its configuration as JSON."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    def to_json(self) -> str: ...


class AliasRecord(Protocol):
    """An alias as the store keeps it: keyed by (function name, alias name), as JSON."""

    @property
    def function_name(self) -> str: ...

    @property
    def name(self) -> str: ...

    def to_json(self) -> str: ...


@dataclass
class StoredFunction:
    """One function as stored: $LATEST, the published versions and the aliases as JSON text, the rest as values."""

    name: str
    latest: str
    tags: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    policies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    last_version: int = 0
    published_from: str = ""
    generation: int = 0  # the count of its writes: each write names the one it was based on


@dataclass(frozen=True)
class AsyncEvent:
    """An accepted asynchronous invocation, durable until it has been delivered or given up on."""

    id: str
    function_name: str
    qualifier: str
    payload: bytes
    client_context: str | None
    attempts: int
    not_before: float
    received: float
    outcome: str | None = None  # the function part is over: what is still to be sent to destinations (JSON)
    hops: int = 0  # how many events, each sent by the one before's destination, led to this one


@dataclass(slots=True)  # not frozen: a frozen dataclass costs ~1 µs more to build, and one is built per log line
class LogEvent:
    log_group: str
    log_stream: str
    timestamp: int  # epoch milliseconds
    message: str


@dataclass(frozen=True, slots=True)
class LogGroupInfo:
    name: str
    created: int  # epoch ms
    retention_days: int | None
    stored_bytes: int


@dataclass(frozen=True, slots=True)
class LogStreamInfo:
    name: str
    created: int  # epoch ms
    first_event: int | None
    last_event: int | None
    last_ingestion: int | None


@dataclass(frozen=True, slots=True)
class StoredLogEvent:
    id: int
    log_stream: str
    timestamp: int
    message: str
    ingested: int | None


@dataclass(frozen=True)
class UsageRecord:
    """Metered use of one function version in one hour (``hour``: epoch seconds of its start, UTC). The sums are
    integers (MB-milliseconds), so that nodes adding to one row never round."""

    function_name: str
    version: str
    hour: int
    requests: int = 0
    billed_ms: int = 0  # the REPORT lines' Billed Duration, summed
    duration_mb_ms: int = 0  # billed ms × memory MB
    provisioned_duration_mb_ms: int = 0  # the part of duration_mb_ms run in provisioned environments
    provisioned_mb_ms: int = 0  # provisioned environments' allocated time × their memory MB
    ephemeral_mb_ms: int = 0  # billed ms × ephemeral storage MB above 512


class FunctionStore(Protocol):
    async def load_functions(self, name: str | None = None) -> list[StoredFunction]: ...

    async def create_function(self, config: VersionRecord, tags: dict[str, str], published: VersionRecord | None = None,
                              fingerprint: str = "") -> None: ...

    # Every write of an existing function names the generation its writer's copy came from (``expect``) and
    # raises ``StoreConflict`` without writing when the stored one differs (another node wrote in between); a
    # write that succeeds takes the function to ``expect + 1``.

    async def put_version(self, config: VersionRecord, *, expect: int) -> None: ...

    async def publish_version(self, version: VersionRecord, latest: VersionRecord, published_from: str, *,
                              expect: int) -> None: ...

    async def put_tags(self, name: str, tags: dict[str, str], latest: VersionRecord, *, expect: int) -> None: ...

    async def delete_function(self, name: str, *, expect: int) -> None: ...

    async def delete_version(self, name: str, version: str, *, expect: int) -> None: ...

    async def put_alias(self, alias: AliasRecord, *, expect: int) -> None: ...

    async def delete_alias(self, function_name: str, alias_name: str, *, expect: int) -> None: ...

    async def put_policy(self, name: str, qualifier: str, statements: list[dict[str, Any]],
                         target: VersionRecord | AliasRecord, *, expect: int) -> None: ...


class ConcurrencyStore(Protocol):
    async def load_reserved_concurrency(self) -> dict[str, int]: ...

    async def put_reserved_concurrency(self, name: str, reserved: int, most: int) -> bool: ...

    async def delete_reserved_concurrency(self, name: str) -> None: ...

    async def load_provisioned_concurrency(self) -> list[tuple[str, str, int, str]]: ...

    async def put_provisioned_concurrency(self, name: str, qualifier: str, requested: int, last_modified: str,
                                          unreserved_most: int) -> int | None: ...

    async def delete_provisioned_concurrency(self, name: str, qualifier: str) -> None: ...


class EventInvokeConfigStore(Protocol):
    async def load_event_invoke_configs(self) -> list[tuple[str, str, str, float]]: ...

    async def put_event_invoke_config(self, name: str, qualifier: str, config: str, last_modified: float) -> None: ...

    async def delete_event_invoke_config(self, name: str, qualifier: str) -> None: ...


class EventSourceMappingStore(Protocol):
    async def load_event_source_mappings(self) -> list[tuple[str, str, str, str, float]]:
        """(UUID, function name, event source ARN, config JSON, last modified) of every mapping."""

    async def put_event_source_mapping(self, uuid: str, name: str, event_source_arn: str, config: str,
                                       last_modified: float) -> None: ...

    async def delete_event_source_mapping(self, uuid: str, name: str) -> None:
        """Delete the mapping and its stream checkpoints."""

    async def load_stream_checkpoints(self, uuid: str) -> dict[str, str]:
        """Shard id -> the last sequence number mapping ``uuid`` handled there (a stream source's)."""

    async def put_stream_checkpoint(self, uuid: str, name: str, shard_id: str, sequence: str) -> None:
        """Record that mapping ``uuid`` (of function ``name``) handled shard ``shard_id`` up to ``sequence``."""


class FunctionUrlStore(Protocol):
    async def load_function_urls(self) -> list[tuple[str, str, str, str, str, str]]: ...

    async def put_function_url(self, name: str, qualifier: str, url_id: str, config: str, created: str,
                               last_modified: str) -> None: ...

    async def delete_function_url(self, name: str, qualifier: str) -> None: ...


class LayerStore(Protocol):
    async def load_layers(self) -> tuple[list[str], dict[str, int]]: ...

    async def put_layer_version(self, name: str, version: int, record: str, counter: int | None = None) -> None: ...


class AsyncEventStore(Protocol):
    async def put_async_event(self, event: AsyncEvent) -> None: ...

    async def reschedule_async_event(self, event_id: str, attempts: int, not_before: float,
                                     outcome: str | None = None) -> None: ...

    async def delete_async_event(self, event_id: str) -> None: ...

    async def load_async_events(self) -> list[AsyncEvent]: ...


class LogStore(Protocol):
    async def append_logs(self, events: Sequence[LogEvent]) -> None: ...

    async def trim_logs(self, older_than_ms: int, group_bytes: int, total_bytes: int) -> int: ...

    async def read_logs(self, log_group: str, log_stream: str | None = None) -> list[LogEvent]: ...

    async def list_log_streams(self, log_group: str) -> list[str]: ...

    # the CloudWatch Logs API (logs/api.py)
    async def create_log_group(self, name: str, created: int) -> bool: ...

    async def log_groups(self, name: str | None = None) -> list[LogGroupInfo]: ...

    async def delete_log_group(self, name: str) -> bool: ...

    async def set_log_retention(self, name: str, days: int | None) -> bool: ...

    async def create_log_stream(self, group: str, stream: str, created: int) -> bool: ...

    async def log_stream_infos(self, group: str, stream: str | None = None) -> list[LogStreamInfo]: ...

    async def delete_log_stream(self, group: str, stream: str) -> bool: ...

    async def log_events_page(self, group: str, streams: Sequence[str] | None, start: int | None, end: int | None,
                              after: tuple[int, int] | None, before: tuple[int, int] | None, limit: int,
                              newest_first: bool, containing: Sequence[str] = ()) -> list[StoredLogEvent]: ...


@dataclass(frozen=True)
class MetricAggregate:
    """One metric's statistics over one minute: for the dimensions (canonical JSON, ``metrics/model.py``), the
    minute's start (epoch seconds) and the unit its values were given in."""

    namespace: str
    metric_name: str
    dimensions: str
    period: int
    unit: str
    sample_count: float
    sum: float
    minimum: float
    maximum: float


class MetricStore(Protocol):
    """Per-minute metric aggregates. ``add_metrics`` adds to what is there (several nodes write partial aggregates
    of the same minute): counts and sums add up, the minimum and maximum are kept, bucket counts add up."""

    async def add_metrics(self, aggregates: Sequence[MetricAggregate],
                          buckets: Sequence[tuple[str, str, str, int, int, float]]) -> None: ...

    async def read_metrics(self, namespace: str, metric_name: str, dimensions: str, start: int,
                           end: int) -> list[MetricAggregate]: ...

    async def read_metric_buckets(self, namespace: str, metric_name: str, dimensions: str, start: int,
                                  end: int) -> list[tuple[int, int, float]]: ...

    async def list_metrics(self, namespace: str | None, metric_name: str | None,
                           since: int) -> list[tuple[str, str, str]]: ...

    async def trim_metrics(self, before: int) -> int: ...


class IamStore(Protocol):
    """IAM entities as JSON records with a generation each (``lambdad/iam/``), users' access keys, root's key."""

    async def load_iam(self) -> list[tuple[str, str, str, int]]: ...

    async def get_iam(self, kind: str, name: str) -> tuple[str, int] | None: ...

    async def put_iam(self, kind: str, name: str, record: str, expect: int | None) -> int: ...

    async def delete_iam(self, kind: str, name: str, expect: int | None = None) -> bool: ...

    async def get_access_key(self, access_key_id: str) -> tuple[str, str, str] | None: ...

    async def put_access_key(self, access_key_id: str, user: str, secret: str, created: float,
                             most: int = 2) -> None: ...

    async def list_access_keys(self, user: str | None = None) -> list[tuple[str, str, str, str, float]]: ...

    async def update_access_key(self, access_key_id: str, user: str, status: str) -> bool: ...

    async def delete_access_key(self, access_key_id: str, user: str) -> bool: ...

    async def root_credentials(self, proposed: tuple[str, str], replace: bool) -> tuple[str, str]: ...


class BrokerStore(Protocol):
    """Records keyed by ARN (a broker's, or a secret's): (kind, JSON record, created) each."""

    async def put_broker_record(self, arn: str, kind: str, record: str, created: float) -> None:
        """Store the record of ``arn``, replacing the one there was."""

    async def get_broker_record(self, arn: str) -> tuple[str, str, float] | None:
        """(kind, record, created) of ``arn``, read afresh on every call."""

    async def list_broker_records(self) -> list[tuple[str, str, str, float]]:
        """(arn, kind, record, created) of every record, by ARN."""

    async def delete_broker_record(self, arn: str) -> bool:
        """Delete the record of ``arn``; whether there was one."""


class UsageStore(Protocol):
    async def add_usage(self, records: Sequence[UsageRecord]) -> None:
        """Add ``records`` to the stored sums of their (function, version, hour): several nodes may add to one."""

    async def read_usage(self, function_name: str | None = None, since: int | None = None,
                         until: int | None = None) -> list[UsageRecord]:
        """The stored rows (of one function; of the hours starting in [since, until)), by hour, function, version."""


@dataclass(frozen=True)
class StoredS3Notification:
    """A function's S3 notification endpoint as stored (``s3events/configs.py``)."""

    notification_id: str  # the webhook's /s3-events/<id>
    name: str  # the function
    qualifier: str  # "" for the unqualified function
    config: str  # JSON: Events, Prefix, Suffix, ConfigurationId
    token_hash: str = field(repr=False)  # hex SHA-256 of the bearer token
    created: str
    last_modified: str


class S3NotificationStore(Protocol):
    """Notification endpoints, one per (function, qualifier); read afresh on every call (every node sees a change
    at once)."""

    async def put_s3_notification(self, notification: StoredS3Notification) -> None:
        """Store the endpoint of (name, qualifier), replacing the one there was."""

    async def get_s3_notification(self, name: str, qualifier: str) -> StoredS3Notification | None: ...

    async def get_s3_notification_by_id(self, notification_id: str) -> StoredS3Notification | None: ...

    async def list_s3_notifications(self, name: str | None = None) -> list[StoredS3Notification]:
        """Every endpoint (of function ``name`` when given), by function and qualifier."""

    async def delete_s3_notification(self, name: str, qualifier: str) -> bool:
        """Delete the endpoint of (name, qualifier); whether there was one."""


class MetadataStore(FunctionStore, ConcurrencyStore, EventInvokeConfigStore, EventSourceMappingStore, FunctionUrlStore,
                    LayerStore, AsyncEventStore, LogStore, MetricStore, IamStore, UsageStore, BrokerStore,
                    S3NotificationStore, Protocol):
    """Everything above, from one place (one SQL database)."""

    async def aclose(self) -> None: ...


class BlobStore(Protocol):
    """Code packages by the hex SHA-256 of their bytes. The blocking methods run in a thread."""

    guard: asyncio.Lock  # held by whoever stores code and by the code collector while it deletes

    def path(self, key: str) -> Path: ...

    def put(self, data: bytes, key: str | None = None) -> str: ...

    def get(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

