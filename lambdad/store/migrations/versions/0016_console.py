"""The web console's sessions and saved test events (lambdad/console/).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("access_key_id", sa.Text, nullable=False),
        sa.Column("principal", sa.Text, nullable=False),
        sa.Column("csrf", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("expires", sa.Float, nullable=False),
    )
    op.create_index("console_sessions_expires", "console_sessions", ["expires"])
    op.create_table(
        "console_test_events",
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("name", sa.Text, sa.ForeignKey("functions.name", ondelete="CASCADE"), nullable=False),
        sa.Column("event_name", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("owner", "name", "event_name"),
    )


def downgrade() -> None:
    op.drop_table("console_test_events")
    op.drop_index("console_sessions_expires", "console_sessions")
    op.drop_table("console_sessions")
