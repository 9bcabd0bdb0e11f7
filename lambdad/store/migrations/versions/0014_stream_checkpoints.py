"""Checkpoints of stream event sources (Kinesis, DynamoDB Streams): the last sequence number handled per shard.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stream_checkpoints",
        sa.Column("uuid", sa.Text, nullable=False),
        sa.Column("shard_id", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("sequence", sa.Text, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("uuid", "shard_id"),
    )
    op.create_index("stream_checkpoints_name", "stream_checkpoints", ["name"])


def downgrade() -> None:
    op.drop_index("stream_checkpoints_name", "stream_checkpoints")
    op.drop_table("stream_checkpoints")
