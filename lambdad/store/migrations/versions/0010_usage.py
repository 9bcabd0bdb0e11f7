"""Metered use (``lambdad usage``, lambdad/invoke/usage.py): per function version and hour, the requests, the
billed milliseconds and the MB-milliseconds of duration, of provisioned concurrency and of ephemeral storage above
512 MB, as Lambda bills them. Every node adds to a row (an upsert that adds), so a cluster's rows are its total.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage",
        sa.Column("function_name", sa.Text, nullable=False),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("hour", sa.BigInteger, nullable=False),
        sa.Column("requests", sa.BigInteger, nullable=False),
        sa.Column("billed_ms", sa.BigInteger, nullable=False),
        sa.Column("duration_mb_ms", sa.BigInteger, nullable=False),
        sa.Column("provisioned_duration_mb_ms", sa.BigInteger, nullable=False),
        sa.Column("provisioned_mb_ms", sa.BigInteger, nullable=False),
        sa.Column("ephemeral_mb_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("function_name", "version", "hour"),
    )


def downgrade() -> None:
    op.drop_table("usage")
