"""An async event whose function part is over keeps the destination record still to be sent (``outcome``), and
every event how many destination hops led to it (``hops``: recursive loops are stopped).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("async_events") as batch:
        batch.add_column(sa.Column("outcome", sa.Text, nullable=True))
        batch.add_column(sa.Column("hops", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("async_events") as batch:
        batch.drop_column("hops")
        batch.drop_column("outcome")
