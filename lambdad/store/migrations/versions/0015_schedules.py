"""Timers (lambdad/schedules/timer.py) and EventBridge Scheduler's schedules and schedule groups.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "timers",
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("expression", sa.Text, nullable=False),
        sa.Column("timezone", sa.Text, nullable=False),
        sa.Column("not_before", sa.Float, nullable=True),
        sa.Column("not_after", sa.Float, nullable=True),
        sa.Column("anchor", sa.Float, nullable=False),
        sa.Column("window", sa.Float, nullable=False),
        sa.Column("next_fire", sa.Float, nullable=True),
        sa.Column("due", sa.Float, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("kind", "key"),
    )
    op.create_index("timers_due", "timers", ["due"])
    op.create_table(
        "schedule_groups",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("config", sa.Text, nullable=False),
    )
    op.create_table(
        "schedules",
        sa.Column("group_name", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("group_name", "name"),
    )


def downgrade() -> None:
    op.drop_table("schedules")
    op.drop_table("schedule_groups")
    op.drop_index("timers_due", "timers")
    op.drop_table("timers")
