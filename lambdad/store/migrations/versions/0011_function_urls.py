"""Function URLs (CreateFunctionUrlConfig) of a function's $LATEST or of an alias.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "function_urls",
        sa.Column("name", sa.Text, sa.ForeignKey("functions.name", ondelete="CASCADE"), nullable=False),
        sa.Column("qualifier", sa.Text, nullable=False),
        sa.Column("url_id", sa.Text, nullable=False, unique=True),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("created", sa.Text, nullable=False),
        sa.Column("last_modified", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("name", "qualifier"),
    )


def downgrade() -> None:
    op.drop_table("function_urls")
