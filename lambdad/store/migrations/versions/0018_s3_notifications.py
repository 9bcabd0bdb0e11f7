"""Functions' S3 notification endpoints (``lambdad s3-notifications``; lambdad/s3events/).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "s3_notifications",
        sa.Column("name", sa.Text, sa.ForeignKey("functions.name", ondelete="CASCADE"), nullable=False),
        sa.Column("qualifier", sa.Text, nullable=False),
        sa.Column("notification_id", sa.Text, nullable=False, unique=True),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("token_hash", sa.Text, nullable=False),
        sa.Column("created", sa.Text, nullable=False),
        sa.Column("last_modified", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("name", "qualifier"),
    )


def downgrade() -> None:
    op.drop_table("s3_notifications")
