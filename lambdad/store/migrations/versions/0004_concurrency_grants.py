"""Cluster mode: each node's share of each concurrency limit (cluster/permits.py).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "concurrency_grants",
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("node", sa.Text, nullable=False),
        sa.Column("permits", sa.Integer, nullable=False),
        sa.Column("renewed", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("scope", "node"),
    )


def downgrade() -> None:
    op.drop_table("concurrency_grants")
