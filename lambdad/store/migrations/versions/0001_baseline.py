"""The schema as it stood when migrations began.

A data dir made before then has these tables already (made by CREATE TABLE IF NOT EXISTS at every start), so
each is made only where missing; such a data dir's ``log_events`` has no ``id`` column (it used SQLite's hidden
rowid) and is rebuilt with one, keeping each event's rowid as its id, so the order of events is kept.

Revision ID: 0001
Revises:
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _owned(name: str = "name") -> sa.Column[str]:
    return sa.Column(name, sa.Text, sa.ForeignKey("functions.name", ondelete="CASCADE"), nullable=False)


def _log_events(name: str) -> None:
    op.create_table(
        name,
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("log_group", sa.Text, nullable=False),
        sa.Column("log_stream", sa.Text, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        if_not_exists=True,
    )


def _log_indexes() -> None:
    op.create_index("log_events_by_stream", "log_events", ["log_group", "log_stream", "timestamp"], if_not_exists=True)
    op.create_index("log_events_by_group", "log_events", ["log_group"], if_not_exists=True)
    op.create_index("log_events_by_time", "log_events", ["timestamp"], if_not_exists=True)


def upgrade() -> None:
    op.create_table(
        "functions",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("tags", sa.Text, nullable=False, server_default="{}"),
        sa.Column("created", sa.Float, nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "versions", _owned(), sa.Column("version", sa.Text, nullable=False),
        sa.Column("config", sa.Text, nullable=False), sa.PrimaryKeyConstraint("name", "version"), if_not_exists=True,
    )
    op.create_table(
        "version_counters",
        sa.Column("name", sa.Text, sa.ForeignKey("functions.name", ondelete="CASCADE"), primary_key=True),
        sa.Column("last_version", sa.Integer, nullable=False),
        sa.Column("published_from", sa.Text, nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "aliases", _owned(), sa.Column("alias", sa.Text, nullable=False), sa.Column("config", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("name", "alias"), if_not_exists=True,
    )
    op.create_table(
        "policies", _owned(), sa.Column("qualifier", sa.Text, nullable=False),
        sa.Column("statements", sa.Text, nullable=False), sa.PrimaryKeyConstraint("name", "qualifier"),
        if_not_exists=True,
    )
    op.create_table(
        "reserved_concurrency",
        sa.Column("name", sa.Text, sa.ForeignKey("functions.name", ondelete="CASCADE"), primary_key=True),
        sa.Column("reserved", sa.Integer, nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "layer_versions", sa.Column("name", sa.Text, nullable=False), sa.Column("version", sa.Integer, nullable=False),
        sa.Column("record", sa.Text, nullable=False), sa.PrimaryKeyConstraint("name", "version"), if_not_exists=True,
    )
    op.create_table(
        "layer_counters", sa.Column("name", sa.Text, primary_key=True),
        sa.Column("last_version", sa.Integer, nullable=False), if_not_exists=True,
    )
    op.create_table(
        "provisioned_concurrency", _owned(), sa.Column("qualifier", sa.Text, nullable=False),
        sa.Column("requested", sa.Integer, nullable=False), sa.Column("last_modified", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("name", "qualifier"), if_not_exists=True,
    )
    op.create_table(
        "async_events",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("function_name", sa.Text, nullable=False),
        sa.Column("qualifier", sa.Text, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("client_context", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("not_before", sa.Float, nullable=False),
        sa.Column("received", sa.Float, nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "log_streams", sa.Column("log_group", sa.Text, nullable=False), sa.Column("log_stream", sa.Text, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False), sa.Column("last_event", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("log_group", "log_stream"), if_not_exists=True,
    )
    op.create_table(
        "log_group_bytes", sa.Column("log_group", sa.Text, primary_key=True),
        sa.Column("bytes", sa.BigInteger, nullable=False), if_not_exists=True,
    )
    op.create_table(
        "access_keys",
        sa.Column("access_key_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("secret_access_key", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        if_not_exists=True,
    )
    bind = op.get_bind()
    if "log_events" not in sa.inspect(bind).get_table_names():
        _log_events("log_events")
    elif "id" not in {c["name"] for c in sa.inspect(bind).get_columns("log_events")}:
        _rebuild_log_events(bind)
    _log_indexes()


def _rebuild_log_events(bind: sa.Connection) -> None:
    """A pre-migrations data dir (SQLite): give ``log_events`` an id (its rowid), and count what each group holds
    if that was never counted (``log_group_bytes`` came later than the events)."""
    for index in ("log_events_by_stream", "log_events_by_group", "log_events_by_time"):
        op.execute(f"DROP INDEX IF EXISTS {index}")
    _log_events("log_events_new")
    op.execute("INSERT INTO log_events_new (id, log_group, log_stream, timestamp, message) "
               "SELECT rowid, log_group, log_stream, timestamp, message FROM log_events")
    op.drop_table("log_events")
    op.rename_table("log_events_new", "log_events")
    counted = bind.execute(sa.text("SELECT COUNT(*) FROM log_group_bytes")).scalar_one()
    if not counted:
        op.execute("INSERT INTO log_group_bytes SELECT log_group, SUM(length(CAST(message AS BLOB))) "
                   "FROM log_events GROUP BY log_group")


def downgrade() -> None:
    for table in ("log_events", "log_group_bytes", "log_streams", "async_events", "provisioned_concurrency",
                  "layer_counters", "layer_versions", "reserved_concurrency", "policies", "aliases",
                  "version_counters", "versions", "functions", "access_keys"):
        op.drop_table(table)
