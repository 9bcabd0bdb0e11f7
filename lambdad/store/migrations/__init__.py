"""The versioned migrations of the metadata schema (Alembic), run by ``SqlStore.open`` before anything else.

Each file in ``versions/`` changes the schema one step and names the step before it; ``upgrade`` applies those
a database has not had yet (Alembic records the last one in ``alembic_version``), in one transaction. A change to
``store/schema.py`` comes with a new file here: ``tests/unit/test_migrations.py`` fails while the two disagree.

To write one: ``alembic -c lambdad/store/migrations/alembic.ini revision -m "what changes"`` makes the file;
fill in its ``upgrade`` (and ``downgrade``) with ``op`` calls that work on SQLite (``op.batch_alter_table``) and
PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

__all__ = ["upgrade", "alembic_config"]

HERE = Path(__file__).parent


def alembic_config(connection: sa.Connection | None = None) -> Config:
    config = Config(str(HERE / "alembic.ini"))
    config.set_main_option("script_location", str(HERE))
    config.attributes["connection"] = connection
    return config


def upgrade(connection: sa.Connection) -> None:
    """Bring the database on ``connection`` to the newest schema (a new one is made from nothing). On PostgreSQL
    an advisory lock held to the end of the transaction makes nodes that start together migrate one after
    another (the second finds the schema up to date); SQLite's write transaction does the same."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('lambdad-migrations'))"))
    command.upgrade(alembic_config(connection), "head")
