"""EventBridge: buses, rules and their targets, and events on their way to a dead-letter queue (lambdad/events/).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_buses",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
    )
    op.create_table(
        "event_rules",
        sa.Column("bus", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("bus", "name"),
    )
    op.create_table(
        "event_targets",
        sa.Column("bus", sa.Text, nullable=False),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("bus", "rule", "id"),
    )
    op.create_table(
        "event_dead_letters",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("queue_arn", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("attributes", sa.Text, nullable=False),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("not_before", sa.Float, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("event_dead_letters")
    op.drop_table("event_targets")
    op.drop_table("event_rules")
    op.drop_table("event_buses")
