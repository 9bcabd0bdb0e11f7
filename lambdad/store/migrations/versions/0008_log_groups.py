"""Log groups of their own (the CloudWatch Logs API, ``logs/api.py``): each with its creation time and retention
in days; a function's group is created by its first line, as Lambda's is. Streams keep their first event and last
ingestion times, and events their ingestion time (none for the older ones). The groups that already have events or streams are created here, with no retention.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_groups", sa.Column("log_group", sa.Text, primary_key=True),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("retention_days", sa.Integer, nullable=True))
    with op.batch_alter_table("log_streams") as batch:
        batch.add_column(sa.Column("first_event", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("last_ingestion", sa.BigInteger, nullable=True))
    with op.batch_alter_table("log_events") as batch:
        batch.add_column(sa.Column("ingested", sa.BigInteger, nullable=True))
    # a group's events in time order (FilterLogEvents, retention): replaces the index on the group alone
    op.drop_index("log_events_by_group", table_name="log_events")
    op.create_index("log_events_by_group_time", "log_events", ["log_group", "timestamp"])
    op.execute("UPDATE log_streams SET first_event = created, last_ingestion = last_event")
    op.execute("INSERT INTO log_groups (log_group, created) SELECT log_group, MIN(created) FROM log_streams "
               "GROUP BY log_group")


def downgrade() -> None:
    op.drop_index("log_events_by_group_time", table_name="log_events")
    op.create_index("log_events_by_group", "log_events", ["log_group"])
    with op.batch_alter_table("log_events") as batch:
        batch.drop_column("ingested")
    with op.batch_alter_table("log_streams") as batch:
        batch.drop_column("last_ingestion")
        batch.drop_column("first_event")
    op.drop_table("log_groups")
