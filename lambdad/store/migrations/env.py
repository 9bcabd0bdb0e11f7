"""Alembic's entry: run the migrations on the connection lambdad hands over (or, from the alembic command, on the
URL in alembic.ini)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from lambdad.store.schema import metadata


def _run(connection: sa.Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = sa.create_engine(context.config.get_main_option("sqlalchemy.url") or "sqlite://")
    with engine.connect() as own:
        _run(own)
