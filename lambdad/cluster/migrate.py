"""``lambdad migrate``: move an embedded data dir's metadata into a cluster's database.

Every table of ``store/schema.py`` is copied row for row, in one transaction of the target (all or nothing), from
the data dir's SQLite database (brought to the newest schema first) into the cluster's PostgreSQL (likewise); the
data dir's root credentials become the cluster's. The target must hold no functions, layers or keys yet: a
migration never merges two sets of functions. The data dir is locked while it runs (no server may use it) and is
left as it was, so a migration that fails, or one that is regretted, loses nothing.
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from lambdad.auth.credentials import PROFILE
from lambdad.errors import LambdadError
from lambdad.store import schema as t
from lambdad.store.sql import SqlStore, database_url

__all__ = ["migrate_metadata", "migrate_blobs", "MigrationRefused", "Moved"]


class MigrationRefused(LambdadError):
    """The target already holds functions, layers or keys, or the source is not a lambdad data dir."""


@dataclass(frozen=True)
class Moved:
    rows: dict[str, int]  # by table
    root_credentials: bool


async def migrate_metadata(data_dir: Path, target_url: str) -> Moved:
    if not (data_dir / "lambdad.db").exists():
        raise MigrationRefused(f"no lambdad data in {data_dir} (no lambdad.db)")
    source = await SqlStore.open(database_url(None, data_dir))
    try:
        target = await SqlStore.open(database_url(target_url, data_dir))
        try:
            tables = [table for table in t.metadata.sorted_tables if table is not t.root_credentials]
            rows = await source._run(lambda conn: {table.name: [dict(row._mapping) for row in conn.execute(
                sa.select(table))] for table in tables})

            def copy(conn: sa.Connection) -> dict[str, int]:
                for table in (t.functions, t.layer_versions, t.iam_entities, t.iam_access_keys, t.async_events):
                    if conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one():
                        raise MigrationRefused(f"the target database already holds {table.name}: lambdad migrate "
                                               "moves a data dir into an empty cluster only")
                for table in tables:
                    if rows[table.name]:
                        conn.execute(sa.insert(table), rows[table.name])
                if conn.dialect.name == "postgresql" and rows["log_events"]:
                    # the ids were copied: the sequence goes on after the highest
                    conn.execute(sa.text("SELECT setval(pg_get_serial_sequence('log_events', 'id'), "
                                         "(SELECT MAX(id) FROM log_events))"))
                return {name: len(table_rows) for name, table_rows in rows.items()}

            counts = await target._run(copy, write=True)
            credentials = _root_credentials(data_dir)
            if credentials is not None:
                await target.root_credentials(credentials, replace=True)
            return Moved(counts, credentials is not None)
        finally:
            await target.aclose()
    finally:
        await source.aclose()


def _root_credentials(data_dir: Path) -> tuple[str, str] | None:
    parser = configparser.ConfigParser()
    parser.read(data_dir / "credentials")
    if not parser.has_section(PROFILE):
        return None
    return parser[PROFILE]["aws_access_key_id"], parser[PROFILE]["aws_secret_access_key"]


async def migrate_blobs(data_dir: Path, nats_url: str | None, cluster_name: str, blob_url: str | None = None,
                        region: str = "us-east-1") -> int:
    """Copy every code and layer zip of the data dir into the cluster's shared store — its S3 bucket when
    ``blob_url`` names one, else its object store; returns how many."""
    import asyncio

    from lambdad.cluster.blobs import SharedBlobStore
    from lambdad.cluster.link import Link
    from lambdad.cluster.s3_blobs import S3BlobStore
    from lambdad.store.blobs import FileBlobStore

    zips = sorted((data_dir / "code").glob("*.zip"))
    if blob_url:
        bucket = await asyncio.to_thread(S3BlobStore.open, FileBlobStore(data_dir / "code"), blob_url, region)
        def copy(path: Path) -> None:
            bucket.put(path.read_bytes(), path.stem)

        try:
            for path in zips:
                await asyncio.to_thread(copy, path)
        finally:
            bucket.close()
        return len(zips)
    assert nats_url is not None
    link = await Link.open(nats_url, cluster_name)
    try:
        shared = await SharedBlobStore.open(FileBlobStore(data_dir / "code"), link)
        for path in zips:
            data = await asyncio.to_thread(path.read_bytes)
            await asyncio.to_thread(shared.put, data, path.stem)  # blocking: off the loop the store bridges to
        return len(zips)
    finally:
        await link.aclose()
