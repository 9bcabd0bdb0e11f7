"""IAM: users, groups, roles, managed policies and STS sessions (``iam_entities``), and the users' access keys
(``iam_access_keys``, replacing ``access_keys``: a user may have two keys, each Active or Inactive). Every key
made by ``lambdad keys`` before keeps working: it moves to its user, who is created.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import json
import secrets
import string
import time

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _unique_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(17))


def upgrade() -> None:
    entities = op.create_table(
        "iam_entities",
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("kind", "name"),
    )
    keys = op.create_table(
        "iam_access_keys",
        sa.Column("access_key_id", sa.Text, primary_key=True),
        sa.Column("user_name", sa.Text, nullable=False),
        sa.Column("secret_access_key", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
    )
    op.create_index("ix_iam_access_keys_user_name", "iam_access_keys", ["user_name"])
    conn = op.get_bind()
    old = conn.execute(sa.text("SELECT access_key_id, name, secret_access_key, created FROM access_keys")).all()
    for key_id, name, secret, created in old:
        conn.execute(sa.insert(keys).values(access_key_id=key_id, user_name=name, secret_access_key=secret,
                                            status="Active", created=created))
    # a user's ARN is made from the server's account id, path and name (lambdad/iam/), not stored
    for name in sorted({row[1] for row in old}):
        created = min(row[3] for row in old if row[1] == name)
        record = {"UserName": name, "UserId": _unique_id("AIDA"), "Path": "/", "CreateDate": created or time.time(),
                  "Tags": [], "InlinePolicies": {}, "AttachedPolicies": []}
        conn.execute(sa.insert(entities).values(kind="user", name=name, record=json.dumps(record), generation=1))
    op.drop_table("access_keys")


def downgrade() -> None:
    op.create_table(
        "access_keys",
        sa.Column("access_key_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("secret_access_key", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
    )
    op.drop_table("iam_access_keys")
    op.drop_table("iam_entities")
