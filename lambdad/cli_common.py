"""What the ``lambdad`` subcommands share: the store's options, settings from flags, and a run on the store."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Awaitable, Callable, TypeVar

import click

from lambdad.config import Settings

if TYPE_CHECKING:
    from lambdad.store.sql import SqlStore

__all__ = ["DATABASE_URL", "DATA_DIR", "settings_of", "with_store"]

T = TypeVar("T")

DATA_DIR = click.option(
    "--data-dir", type=click.Path(path_type=Path), default=None,
    help="The server's data dir [LAMBDAD_DATA_DIR; default ./lambdad-data].",
)

DATABASE_URL = click.option(
    "--database-url", default=None,
    help="The cluster's PostgreSQL [LAMBDAD_DATABASE_URL; default: the data dir's SQLite database].")


def settings_of(data_dir: Path | None, database_url: str | None) -> Settings:
    try:
        return Settings.load({"data_dir": data_dir, "database_url": database_url})
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc


def with_store(settings: Settings, work: Callable[[SqlStore], Awaitable[T]]) -> T:
    """Open the metadata store (migrated to the newest schema), run ``work`` on it, close it."""
    from lambdad.store.sql import SqlStore

    async def run() -> T:
        store = await SqlStore.open(settings.store_url)
        try:
            return await work(store)
        finally:
            await store.aclose()

    return asyncio.run(run())
