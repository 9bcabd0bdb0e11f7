"""Cluster mode keeps the root credentials in the database, so that every node accepts the same key.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "root_credentials",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("access_key_id", sa.Text, nullable=False),
        sa.Column("secret_access_key", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("root_credentials")
