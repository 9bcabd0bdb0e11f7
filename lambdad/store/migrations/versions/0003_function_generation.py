"""Each function gets a generation, the count of its writes: a write based on an older one is refused, so that two
nodes changing one function at once cannot lose either change (optimistic concurrency, store/sql.py).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a plain ALTER TABLE ADD COLUMN on both databases: never a copy of the table (on SQLite, dropping the old
    # copy would cascade to every table that references functions)
    op.add_column("functions", sa.Column("generation", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("functions") as batch:
        batch.drop_column("generation")
