"""Asynchronous invocation settings (PutFunctionEventInvokeConfig) per function, version or alias.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_invoke_configs",
        sa.Column("name", sa.Text, sa.ForeignKey("functions.name", ondelete="CASCADE"), nullable=False),
        sa.Column("qualifier", sa.Text, nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("last_modified", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("name", "qualifier"),
    )


def downgrade() -> None:
    op.drop_table("event_invoke_configs")
