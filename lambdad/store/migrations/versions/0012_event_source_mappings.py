"""Event source mappings (CreateEventSourceMapping): a queue or stream polled for a function.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_source_mappings",
        sa.Column("uuid", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, sa.ForeignKey("functions.name", ondelete="CASCADE"), nullable=False),
        sa.Column("event_source_arn", sa.Text, nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("last_modified", sa.Float, nullable=False),
    )
    op.create_index("event_source_mappings_name", "event_source_mappings", ["name"])


def downgrade() -> None:
    op.drop_index("event_source_mappings_name", "event_source_mappings")
    op.drop_table("event_source_mappings")
