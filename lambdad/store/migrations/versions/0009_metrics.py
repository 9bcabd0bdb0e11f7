"""CloudWatch metrics (``lambdad/metrics/``): per-minute aggregates of each metric and dimension set, and the
value distribution of each (its log-linear buckets, for percentiles). Every node adds its partial aggregates to
the same rows (upsert-add).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metric_data",
        sa.Column("namespace", sa.Text, nullable=False),
        sa.Column("metric_name", sa.Text, nullable=False),
        sa.Column("dimensions", sa.Text, nullable=False),
        sa.Column("period", sa.BigInteger, nullable=False),
        sa.Column("unit", sa.Text, nullable=False),
        sa.Column("sample_count", sa.Float, nullable=False),
        sa.Column("sum", sa.Float, nullable=False),
        sa.Column("minimum", sa.Float, nullable=False),
        sa.Column("maximum", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("namespace", "metric_name", "dimensions", "period"))
    op.create_index("metric_data_by_period", "metric_data", ["period"])
    op.create_table(
        "metric_buckets",
        sa.Column("namespace", sa.Text, nullable=False),
        sa.Column("metric_name", sa.Text, nullable=False),
        sa.Column("dimensions", sa.Text, nullable=False),
        sa.Column("period", sa.BigInteger, nullable=False),
        sa.Column("bucket", sa.Integer, nullable=False),
        sa.Column("count", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("namespace", "metric_name", "dimensions", "period", "bucket"))
    op.create_index("metric_buckets_by_period", "metric_buckets", ["period"])


def downgrade() -> None:
    op.drop_index("metric_buckets_by_period", "metric_buckets")
    op.drop_table("metric_buckets")
    op.drop_index("metric_data_by_period", "metric_data")
    op.drop_table("metric_data")
