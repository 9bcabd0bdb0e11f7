"""The metadata schema, once, as SQLAlchemy Core tables: SQLite (embedded) and PostgreSQL (cluster) share it.

The tables are created and changed only by the versioned migrations in ``store/migrations/`` (Alembic); this
module is what the queries in ``store/sql.py`` are written against, and what a new migration is checked against
(``tests/unit/test_migrations.py`` compares the two). Records that the services own (a function version, an
alias, a layer version) are kept as JSON text: the store indexes them by their keys and does not read them.

Two column types differ by dialect and say so here: ``log_events.id`` is SQLite's rowid (``INTEGER PRIMARY
KEY``) and a ``BIGINT`` identity on PostgreSQL; binary payloads are ``BLOB`` / ``BYTEA``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction

__all__ = ["metadata", "functions", "versions", "version_counters", "aliases", "policies", "reserved_concurrency",
           "layer_versions", "layer_counters", "provisioned_concurrency", "event_invoke_configs", "function_urls", "event_source_mappings", "stream_checkpoints", "console_sessions", "console_test_events", "brokers", "s3_notifications", "event_buses", "event_rules", "event_targets", "event_dead_letters", "async_events", "log_streams",
           "log_groups", "log_events", "log_group_bytes", "iam_entities", "iam_access_keys", "root_credentials", "concurrency_grants",
           "metric_data", "metric_buckets", "usage", "USAGE_SUMS", "octet_length", "timers", "schedules",
           "schedule_groups"]

metadata = sa.MetaData()

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite's rowid alias must be spelled INTEGER


def _function_name() -> sa.Column[str]:
    return sa.Column("name", sa.Text, sa.ForeignKey("functions.name", ondelete="CASCADE"), nullable=False)


functions = sa.Table(
    "functions", metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("tags", sa.Text, nullable=False, server_default="{}"),
    sa.Column("created", sa.Float, nullable=False),
    # the count of the function's writes: each write names the one it was based on (store/sql.py)
    sa.Column("generation", sa.Integer, nullable=False, server_default="0"),
)
versions = sa.Table(
    "versions", metadata,
    _function_name(),
    sa.Column("version", sa.Text, nullable=False),
    sa.Column("config", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("name", "version"),
)
version_counters = sa.Table(
    "version_counters", metadata,
    sa.Column("name", sa.Text, sa.ForeignKey("functions.name", ondelete="CASCADE"), primary_key=True),
    sa.Column("last_version", sa.Integer, nullable=False),
    sa.Column("published_from", sa.Text, nullable=False),
)
aliases = sa.Table(
    "aliases", metadata,
    _function_name(),
    sa.Column("alias", sa.Text, nullable=False),
    sa.Column("config", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("name", "alias"),
)
policies = sa.Table(
    "policies", metadata,
    _function_name(),
    sa.Column("qualifier", sa.Text, nullable=False),
    sa.Column("statements", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("name", "qualifier"),
)
reserved_concurrency = sa.Table(
    "reserved_concurrency", metadata,
    sa.Column("name", sa.Text, sa.ForeignKey("functions.name", ondelete="CASCADE"), primary_key=True),
    sa.Column("reserved", sa.Integer, nullable=False),
)
layer_versions = sa.Table(
    "layer_versions", metadata,
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("record", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("name", "version"),
)
layer_counters = sa.Table(
    "layer_counters", metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("last_version", sa.Integer, nullable=False),
)
provisioned_concurrency = sa.Table(
    "provisioned_concurrency", metadata,
    _function_name(),
    sa.Column("qualifier", sa.Text, nullable=False),
    sa.Column("requested", sa.Integer, nullable=False),
    sa.Column("last_modified", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("name", "qualifier"),
)
event_invoke_configs = sa.Table(  # asynchronous invocation settings per function, version or alias
    "event_invoke_configs", metadata,
    _function_name(),
    sa.Column("qualifier", sa.Text, nullable=False),  # "$LATEST" for the unqualified function
    sa.Column("config", sa.Text, nullable=False),  # JSON: MaximumRetryAttempts, MaximumEventAgeInSeconds, ...
    sa.Column("last_modified", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("name", "qualifier"),
)
function_urls = sa.Table(  # function URLs of $LATEST or an alias (migration 0011)
    "function_urls", metadata,
    _function_name(),
    sa.Column("qualifier", sa.Text, nullable=False),  # "$LATEST" or an alias name
    sa.Column("url_id", sa.Text, nullable=False, unique=True),  # the URL's host name's first label
    sa.Column("config", sa.Text, nullable=False),  # JSON: AuthType, Cors, InvokeMode
    sa.Column("created", sa.Text, nullable=False),  # Lambda's format: 2026-12-05T19:45:09.123+0000
    sa.Column("last_modified", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("name", "qualifier"),
)
event_source_mappings = sa.Table(  # event source mappings (migration 0012; esm/mappings.py)
    "event_source_mappings", metadata,
    sa.Column("uuid", sa.Text, primary_key=True),
    _function_name(),  # the function it invokes (its qualifier is in the config's FunctionArn)
    sa.Column("event_source_arn", sa.Text, nullable=False),
    sa.Column("config", sa.Text, nullable=False),  # JSON: the EventSourceMappingConfiguration, State included
    sa.Column("last_modified", sa.Float, nullable=False),
    sa.Index("event_source_mappings_name", "name"),
)
stream_checkpoints = sa.Table(  # the last sequence number a stream mapping handled per shard (migration 0014; esm/streams.py)
    "stream_checkpoints", metadata,
    sa.Column("uuid", sa.Text, nullable=False),  # the mapping's
    sa.Column("shard_id", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),  # the mapping's function: its checkpoints go with it
    sa.Column("sequence", sa.Text, nullable=False),
    sa.Column("updated", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("uuid", "shard_id"),
    sa.Index("stream_checkpoints_name", "name"),
)
console_sessions = sa.Table(  # signed-in console sessions (migration 0016; lambdad/console/sessions.py)
    "console_sessions", metadata,
    sa.Column("id", sa.Text, primary_key=True),  # the SHA-256 (hex) of the cookie's random id, never the id itself
    sa.Column("access_key_id", sa.Text, nullable=False),  # whose key signed in: each request acts as its principal
    sa.Column("principal", sa.Text, nullable=False),  # its ARN, to show
    sa.Column("csrf", sa.Text, nullable=False),  # the token every state-changing request carries in a header
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("expires", sa.Float, nullable=False),
    sa.Index("console_sessions_expires", "expires"),
)
console_test_events = sa.Table(  # the console's saved test events: a principal's, per function (migration 0016)
    "console_test_events", metadata,
    sa.Column("owner", sa.Text, nullable=False),  # the principal's ARN
    _function_name(),
    sa.Column("event_name", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("updated", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("owner", "name", "event_name"),
)
brokers = sa.Table(  # self-hosted stand-ins for Amazon MQ and Secrets Manager (migration 0013; lambdad/esm/brokers.py)
    "brokers", metadata,
    sa.Column("arn", sa.Text, primary_key=True),  # arn:aws:mq:...:broker:NAME:ID or arn:aws:secretsmanager:...:secret:NAME
    sa.Column("kind", sa.Text, nullable=False),  # "broker" (record: {"url"}) or "secret" (record: {"username", "password"})
    sa.Column("record", sa.Text, nullable=False),  # JSON
    sa.Column("created", sa.Float, nullable=False),
)
event_buses = sa.Table(  # EventBridge buses other than "default" (migration 0019_events; lambdad/events/)
    "event_buses", metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("config", sa.Text, nullable=False),  # JSON: Description
    sa.Column("created", sa.Float, nullable=False),
)
event_rules = sa.Table(  # EventBridge rules (migration 0019_events)
    "event_rules", metadata,
    sa.Column("bus", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("config", sa.Text, nullable=False),  # JSON: EventPattern, ScheduleExpression, State, Description, RoleArn
    sa.Column("created", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("bus", "name"),
)
event_dead_letters = sa.Table(  # events on their way to a target's dead-letter queue (migration 0019_events)
    "event_dead_letters", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("queue_arn", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # the event, JSON
    sa.Column("attributes", sa.Text, nullable=False),  # JSON: RULE_ARN, TARGET_ARN, ERROR_CODE, ERROR_MESSAGE
    sa.Column("rule", sa.Text, nullable=False),  # <bus>/<rule>, for its metrics
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("not_before", sa.Float, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
)
event_targets = sa.Table(  # the targets of EventBridge rules (migration 0019_events)
    "event_targets", metadata,
    sa.Column("bus", sa.Text, nullable=False),
    sa.Column("rule", sa.Text, nullable=False),
    sa.Column("id", sa.Text, nullable=False),
    sa.Column("config", sa.Text, nullable=False),  # JSON: the Target as PutTargets took it
    sa.PrimaryKeyConstraint("bus", "rule", "id"),
)
s3_notifications = sa.Table(  # functions' S3 notification endpoints (migration 0018; lambdad/s3events/configs.py)
    "s3_notifications", metadata,
    _function_name(),
    sa.Column("qualifier", sa.Text, nullable=False),  # "" for the unqualified function, else a version or an alias
    sa.Column("notification_id", sa.Text, nullable=False, unique=True),  # the webhook's /s3-events/<id>
    sa.Column("config", sa.Text, nullable=False),  # JSON: Events, Prefix, Suffix, ConfigurationId
    sa.Column("token_hash", sa.Text, nullable=False),  # hex SHA-256 of the bearer token (never the token)
    sa.Column("created", sa.Text, nullable=False),
    sa.Column("last_modified", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("name", "qualifier"),
)
async_events = sa.Table(
    "async_events", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("function_name", sa.Text, nullable=False),
    sa.Column("qualifier", sa.Text, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("client_context", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("not_before", sa.Float, nullable=False),
    sa.Column("received", sa.Float, nullable=False),
    # the function part is over: the destination record still to send (invoke/destinations.py), JSON
    sa.Column("outcome", sa.Text, nullable=True),
    sa.Column("hops", sa.Integer, nullable=False, server_default="0"),  # events chained by destinations before it
)
log_streams = sa.Table(
    "log_streams", metadata,
    sa.Column("log_group", sa.Text, nullable=False),
    sa.Column("log_stream", sa.Text, nullable=False),
    sa.Column("created", sa.BigInteger, nullable=False),
    sa.Column("last_event", sa.BigInteger, nullable=False),  # 0 while the stream has had no event
    sa.Column("first_event", sa.BigInteger, nullable=True),
    sa.Column("last_ingestion", sa.BigInteger, nullable=True),
    sa.PrimaryKeyConstraint("log_group", "log_stream"),
)
log_groups = sa.Table(  # the CloudWatch Logs API's groups (logs/api.py); a function's is made by its first line
    "log_groups", metadata,
    sa.Column("log_group", sa.Text, primary_key=True),
    sa.Column("created", sa.BigInteger, nullable=False),
    sa.Column("retention_days", sa.Integer, nullable=True),
)
log_events = sa.Table(
    "log_events", metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("log_group", sa.Text, nullable=False),
    sa.Column("log_stream", sa.Text, nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("ingested", sa.BigInteger, nullable=True),  # epoch ms; none for events older than migration 0008
    sa.Index("log_events_by_stream", "log_group", "log_stream", "timestamp"),
    sa.Index("log_events_by_group_time", "log_group", "timestamp"),
    sa.Index("log_events_by_time", "timestamp"),
)
log_group_bytes = sa.Table(
    "log_group_bytes", metadata,
    sa.Column("log_group", sa.Text, primary_key=True),
    sa.Column("bytes", sa.BigInteger, nullable=False),
)
iam_entities = sa.Table(  # IAM users, groups, roles, managed policies and STS sessions (lambdad/iam/)
    "iam_entities", metadata,
    sa.Column("kind", sa.Text, nullable=False),  # "user", "group", "role", "policy", "session"
    sa.Column("name", sa.Text, nullable=False),  # the entity's name (a session: its access key id)
    sa.Column("record", sa.Text, nullable=False),  # JSON, owned by lambdad/iam/
    sa.Column("generation", sa.Integer, nullable=False),  # the count of its writes: each write names the last
    sa.PrimaryKeyConstraint("kind", "name"),
)

iam_access_keys = sa.Table(  # the long-term access keys of IAM users (CreateAccessKey, ``lambdad keys``)
    "iam_access_keys", metadata,
    sa.Column("access_key_id", sa.Text, primary_key=True),
    sa.Column("user_name", sa.Text, nullable=False, index=True),
    sa.Column("secret_access_key", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # "Active" or "Inactive"
    sa.Column("created", sa.Float, nullable=False),
)

root_credentials = sa.Table(  # cluster mode: the root key every node accepts (embedded: the data dir's file)
    "root_credentials", metadata,
    sa.Column("name", sa.Text, primary_key=True),  # "root"
    sa.Column("access_key_id", sa.Text, nullable=False),
    sa.Column("secret_access_key", sa.Text, nullable=False),
)

concurrency_grants = sa.Table(  # cluster mode: each node's share of each concurrency limit (cluster/permits.py)
    "concurrency_grants", metadata,
    sa.Column("scope", sa.Text, nullable=False),  # "account" or "function:<name>"
    sa.Column("node", sa.Text, nullable=False),
    sa.Column("permits", sa.Integer, nullable=False),
    sa.Column("renewed", sa.Float, nullable=False),  # epoch seconds; a share not renewed for long is void
    sa.PrimaryKeyConstraint("scope", "node"),
)


# CloudWatch metrics (lambdad/metrics/): one row per (namespace, metric, dimensions, minute), added to by every
# node's flush (upsert-add); ``dimensions`` is the canonical JSON list of [name, value] pairs, sorted by name
metric_data = sa.Table(
    "metric_data", metadata,
    sa.Column("namespace", sa.Text, nullable=False),
    sa.Column("metric_name", sa.Text, nullable=False),
    sa.Column("dimensions", sa.Text, nullable=False),
    sa.Column("period", sa.BigInteger, nullable=False),  # the minute's start, epoch seconds
    sa.Column("unit", sa.Text, nullable=False),
    sa.Column("sample_count", sa.Float, nullable=False),
    sa.Column("sum", sa.Float, nullable=False),
    sa.Column("minimum", sa.Float, nullable=False),
    sa.Column("maximum", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("namespace", "metric_name", "dimensions", "period"),
    sa.Index("metric_data_by_period", "period"),
)
metric_buckets = sa.Table(  # the value distribution of a metric's minute (percentiles): counts per log-linear bucket
    "metric_buckets", metadata,
    sa.Column("namespace", sa.Text, nullable=False),
    sa.Column("metric_name", sa.Text, nullable=False),
    sa.Column("dimensions", sa.Text, nullable=False),
    sa.Column("period", sa.BigInteger, nullable=False),
    sa.Column("bucket", sa.Integer, nullable=False),  # metrics/distribution.py
    sa.Column("count", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("namespace", "metric_name", "dimensions", "period", "bucket"),
    sa.Index("metric_buckets_by_period", "period"),
)

# what is summed per function version and hour in ``usage`` (lambdad/invoke/usage.py); MB-ms are exact integers,
# GB-seconds follow from them (÷ 1024 ÷ 1000) when read
USAGE_SUMS = ("requests", "billed_ms", "duration_mb_ms", "provisioned_duration_mb_ms", "provisioned_mb_ms",
              "ephemeral_mb_ms")

usage = sa.Table(  # metered use, as Lambda bills it (``lambdad usage``); kept after its function is deleted
    "usage", metadata,
    sa.Column("function_name", sa.Text, nullable=False),
    sa.Column("version", sa.Text, nullable=False),
    sa.Column("hour", sa.BigInteger, nullable=False),  # epoch seconds of the hour's start (UTC)
    sa.Column("requests", sa.BigInteger, nullable=False),
    sa.Column("billed_ms", sa.BigInteger, nullable=False),  # the REPORT lines' Billed Duration, summed
    sa.Column("duration_mb_ms", sa.BigInteger, nullable=False),  # billed ms × memory MB
    sa.Column("provisioned_duration_mb_ms", sa.BigInteger, nullable=False),  # of which in provisioned environments
    sa.Column("provisioned_mb_ms", sa.BigInteger, nullable=False),  # provisioned environments allocated × memory
    sa.Column("ephemeral_mb_ms", sa.BigInteger, nullable=False),  # billed ms × ephemeral storage MB above 512
    sa.PrimaryKeyConstraint("function_name", "version", "hour"),
)


timers = sa.Table(  # what lambdad/schedules/timer.py fires, by kind and key (migration 0015)
    "timers", metadata,
    sa.Column("kind", sa.Text, nullable=False),  # who registered it: "scheduler", "events-rule", ...
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("expression", sa.Text, nullable=False),  # rate(...), cron(...) or at(...)
    sa.Column("timezone", sa.Text, nullable=False),
    sa.Column("not_before", sa.Float, nullable=True),  # epoch seconds; no occurrence before it (StartDate)
    sa.Column("not_after", sa.Float, nullable=True),  # no occurrence after it (EndDate)
    sa.Column("anchor", sa.Float, nullable=False),  # a rate's first occurrence (start, else when it was put)
    sa.Column("window", sa.Float, nullable=False),  # a fire is due at a random moment this many seconds after it
    sa.Column("next_fire", sa.Float, nullable=True),  # the next occurrence; NULL: none left (completed)
    sa.Column("due", sa.Float, nullable=True),  # when to fire it: next_fire + a delay in the window, or a retry's
    sa.Column("attempts", sa.Integer, nullable=False),  # failed fires of next_fire so far
    sa.Column("revision", sa.Integer, nullable=False),  # bumped by each put: a fire's advance names the one it read
    sa.PrimaryKeyConstraint("kind", "key"),
    sa.Index("timers_due", "due"),
)
schedule_groups = sa.Table(  # EventBridge Scheduler's schedule groups (migration 0015; lambdad/schedules/api.py)
    "schedule_groups", metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("config", sa.Text, nullable=False),  # JSON: the group as GetScheduleGroup shows it
)
schedules = sa.Table(  # EventBridge Scheduler's schedules (migration 0015; lambdad/schedules/api.py)
    "schedules", metadata,
    sa.Column("group_name", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("config", sa.Text, nullable=False),  # JSON: the schedule as GetSchedule shows it
    sa.PrimaryKeyConstraint("group_name", "name"),
)

class octet_length(GenericFunction[int]):
    """The size of a text in UTF-8 bytes: ``octet_length`` on PostgreSQL; SQLite (before 3.43) has none, and
    ``length`` of the text cast to a BLOB gives the same."""

    type = sa.BigInteger()
    inherit_cache = True


@compiles(octet_length, "sqlite")
def _sqlite_octet_length(element: octet_length, compiler: Any, **kw: Any) -> str:
    return f"length(CAST({compiler.process(element.clauses, **kw)} AS BLOB))"

stacks = sa.Table(  # `lambdad deploy`'s stacks (deploy/stacks_api.py): what a deploy made of a SAM template
    "stacks", metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("stack_id", sa.Text, nullable=False),  # the stack's ARN, new at each creation
    sa.Column("generation", sa.BigInteger, nullable=False),  # +1 at each put: two deploys cannot both win
    sa.Column("template_hash", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("document", sa.Text, nullable=False),  # JSON: resources, outputs, exports, parameters
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("updated", sa.Float, nullable=False),
)
