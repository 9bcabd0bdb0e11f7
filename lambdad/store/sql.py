"""The metadata store, ``SqlStore``: every part of it in one class, on SQLAlchemy Core, for SQLite (embedded) and
PostgreSQL (cluster).

How it runs (threads, transactions, durability, dialects) is told in sql_base.py, which every part builds on. The
parts, one module per area of the schema:

- sql_functions.py: functions, versions, aliases, resource policies, reserved and provisioned concurrency, layers;
- sql_sources.py: the async event queue and event invoke configs, event source mappings, stream checkpoints,
  brokers, function URLs;
- sql_access.py: IAM and the concurrency grants of cluster mode;
- sql_logs.py: log events and the CloudWatch Logs API's queries;
- sql_metrics.py: metric aggregates and usage records;
- sql_stacks.py: the stacks `lambdad deploy` records;
- sql_console.py: the web console's sessions and saved test events;
- sql_s3events.py: functions' S3 notification endpoints;
- sql_events.py: EventBridge's buses, rules and targets.

A new area adds a module of its own (a ``SqlBase`` subclass) and a base here.
"""

from __future__ import annotations

from lambdad.store.sql_access import AccessTables
from lambdad.store.sql_console import ConsoleTables
from lambdad.store.sql_events import EventTables
from lambdad.store.sql_base import database_url, open_engine
from lambdad.store.sql_functions import FunctionTables
from lambdad.store.sql_logs import LogTables
from lambdad.store.sql_metrics import MetricTables
from lambdad.store.sql_s3events import S3NotificationTables
from lambdad.store.sql_sources import SourceTables
from lambdad.store.sql_stacks import StackTables

__all__ = ["SqlStore", "database_url", "open_engine"]


class SqlStore(FunctionTables, SourceTables, AccessTables, LogTables, MetricTables, ConsoleTables, StackTables,
               S3NotificationTables, EventTables):
    """Function metadata (functions, versions and their counter, aliases, resource policies), reserved and
    provisioned concurrency, layers, the async event queue and what else feeds functions, IAM, log events, metrics
    and usage, the console's sessions, the stacks of `lambdad deploy` S3 notification endpoints and EventBridge's
    buses, rules and targets. Owner of its engine and threads (``SqlBase``)."""
