"""The metadata store's function operations: a part of ``SqlStore`` (store/sql.py).

Functions with their versions, counters, aliases and resource policies; reserved and
provisioned concurrency; layers. Function writes are guarded by the function's generation (``_function_write``).
"""

from __future__ import annotations

import json
import time
from typing import Any, Sequence

import sqlalchemy as sa

from lambdad.store import schema as t
from lambdad.store.interfaces import AliasRecord, StoreConflict, StoredFunction, VersionRecord
from lambdad.store.sql_base import SqlBase, Statement, _rows


class FunctionTables(SqlBase):
    # -- functions -------------------------------------------------------------------------------------------

    async def load_functions(self, name: str | None = None) -> list[StoredFunction]:
        """Every function, or the one named ``name`` (none: an empty list)."""
        queries = [sa.select(t.functions.c.name, t.functions.c.tags, t.functions.c.generation),
                   sa.select(t.versions.c.name, t.versions.c.version, t.versions.c.config),
                   sa.select(t.version_counters),
                   sa.select(t.aliases.c.name, t.aliases.c.alias, t.aliases.c.config),
                   sa.select(t.policies)]
        if name is not None:
            tables = (t.functions, t.versions, t.version_counters, t.aliases, t.policies)
            queries = [q.where(table.c.name == name) for q, table in zip(queries, tables)]

        def read(conn: sa.Connection) -> list[list[Any]]:
            return [_rows(conn, q) for q in queries]

        tag_rows, rows, counters, alias_rows, policy_rows = await self._run(read)
        tags = {name: (json.loads(text), generation) for name, text, generation in tag_rows}
        functions = {name: StoredFunction(name=name, latest=cfg, tags=tags[name][0], generation=tags[name][1])
                     for name, version, cfg in rows if version == "$LATEST" and name in tags}
        for name, version, cfg in rows:
            if version != "$LATEST" and name in functions:
                functions[name].versions[version] = cfg
        for name, last_version, published_from in counters:
            if name in functions:
                functions[name].last_version = last_version
                functions[name].published_from = published_from
        for name, alias, cfg in alias_rows:
            if name in functions:
                functions[name].aliases[alias] = cfg
        for name, qualifier, statements in policy_rows:
            if name in functions:
                functions[name].policies[qualifier] = json.loads(statements)
        return list(functions.values())
    async def create_function(self, config: VersionRecord, tags: dict[str, str], published: VersionRecord | None = None,
                              fingerprint: str = "") -> None:
        """Store a new function; with ``published``, its version 1 too (published from $LATEST as it was then:
        ``fingerprint``), in the same transaction. A function of that name already stored (by another node) is a
        ``StoreConflict``."""
        statements: list[Statement] = [
            sa.insert(t.functions).values(name=config.name, tags=json.dumps(tags), created=time.time()),
            self._put_version(config),
        ]
        if published is not None:
            statements += [self._put_version(published),
                           self._put_counter(config.name, int(published.version), fingerprint)]
        try:
            await self._transaction(statements)
        except sa.exc.IntegrityError as exc:
            raise StoreConflict(config.name) from exc
        self._wrote("function", config.name)

    async def put_version(self, config: VersionRecord, *, expect: int) -> None:
        await self._function_write(config.name, expect, [self._put_version(config)])
        self._wrote("function", config.name)

    async def publish_version(self, version: VersionRecord, latest: VersionRecord, published_from: str, *,
                              expect: int) -> None:
        """Store a newly published version, the $LATEST it came from and the version counter, atomically."""
        await self._function_write(latest.name, expect, [
            self._put_version(version), self._put_version(latest),
            self._put_counter(latest.name, int(version.version), published_from)])
        self._wrote("function", latest.name)

    async def put_tags(self, name: str, tags: dict[str, str], latest: VersionRecord, *, expect: int) -> None:
        """Replace a function's tags; ``latest`` carries the new revision id that a tag change gives $LATEST."""
        await self._function_write(name, expect, [
            sa.update(t.functions).where(t.functions.c.name == name).values(tags=json.dumps(tags)),
            self._put_version(latest),
        ])
        self._wrote("function", name)

    async def delete_function(self, name: str, *, expect: int) -> None:
        await self._function_write(name, expect, [
            sa.delete(table).where(table.c.name == name)
            for table in (t.policies, t.reserved_concurrency, t.provisioned_concurrency, t.event_invoke_configs,
                          t.event_source_mappings, t.stream_checkpoints, t.function_urls, t.aliases, t.version_counters, t.versions, t.functions)
        ])
        self._wrote("function", name)

    async def delete_version(self, name: str, version: str, *, expect: int) -> None:
        """Delete a published version and its resource policy."""
        await self._function_write(name, expect, [
            sa.delete(t.versions).where(t.versions.c.name == name, t.versions.c.version == version),
            sa.delete(t.policies).where(t.policies.c.name == name, t.policies.c.qualifier == version),
        ])
        self._wrote("function", name)

    async def put_alias(self, alias: AliasRecord, *, expect: int) -> None:
        await self._function_write(alias.function_name, expect, [self._put_alias(alias)])
        self._wrote("function", alias.function_name)

    async def delete_alias(self, function_name: str, alias_name: str, *, expect: int) -> None:
        """Delete an alias and its resource policy."""
        await self._function_write(function_name, expect, [
            sa.delete(t.aliases).where(t.aliases.c.name == function_name, t.aliases.c.alias == alias_name),
            sa.delete(t.policies).where(t.policies.c.name == function_name, t.policies.c.qualifier == alias_name),
            sa.delete(t.function_urls).where(t.function_urls.c.name == function_name,
                                             t.function_urls.c.qualifier == alias_name),
        ])
        self._wrote("function", function_name)

    async def put_policy(
        self, name: str, qualifier: str, statements: list[dict[str, Any]], target: VersionRecord | AliasRecord, *,
        expect: int
    ) -> None:
        """Replace the policy of ``qualifier`` (none left: delete it) and store ``target`` (the version or alias
        the policy belongs to, with its new revision id) in the same transaction."""
        policy: Statement
        if statements:
            policy = self._upsert(t.policies, ("name", "qualifier"), name=name, qualifier=qualifier,
                                  statements=json.dumps(statements, separators=(",", ":")))
        else:
            policy = sa.delete(t.policies).where(t.policies.c.name == name, t.policies.c.qualifier == qualifier)
        owner = self._put_alias(target) if _is_alias(target) else self._put_version(target)  # type: ignore[arg-type]
        await self._function_write(name, expect, [policy, owner])
        self._wrote("function", name)

    # -- reserved and provisioned concurrency ----------------------------------------------------------------

    async def load_reserved_concurrency(self) -> dict[str, int]:
        return {name: reserved for name, reserved in await self._read(sa.select(t.reserved_concurrency))}

    async def put_reserved_concurrency(self, name: str, reserved: int, most: int) -> bool:
        """Reserve ``reserved`` for ``name`` if all reservations together stay within ``most``; whether it did.
        Decided in one transaction serialised over the whole table (an advisory lock on PostgreSQL; SQLite has one
        writer), so two nodes reserving at once cannot pass ``most`` together."""
        table = t.reserved_concurrency
        statement = self._upsert(table, ("name",), name=name, reserved=reserved)

        def reserve(conn: sa.Connection) -> bool:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('reserved_concurrency'))"))
            others = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(table.c.reserved), 0))
                                  .where(table.c.name != name)).scalar_one()
            if int(others) + reserved > most:
                return False
            conn.execute(statement)
            return True

        placed = await self._run(reserve, write=True)
        if placed:
            self._wrote("concurrency", name)
        return placed

    async def delete_reserved_concurrency(self, name: str) -> None:
        await self._transaction([sa.delete(t.reserved_concurrency).where(t.reserved_concurrency.c.name == name)])
        self._wrote("concurrency", name)

    async def load_provisioned_concurrency(self) -> list[tuple[str, str, int, str]]:
        """(function name, qualifier, requested, last modified) of every provisioned concurrency config."""
        return [(n, q, r, m) for n, q, r, m in await self._read(sa.select(t.provisioned_concurrency))]

    async def put_provisioned_concurrency(self, name: str, qualifier: str, requested: int, last_modified: str,
                                          unreserved_most: int) -> int | None:
        """Store a provisioned concurrency config if the limits allow it; None when stored, else the limit it would
        pass: the function's reservation (when it has one: all its configs together may not exceed it), or
        ``unreserved_most`` (what reservations and the configs of functions without one may take together).
        Decided in the transaction that stores it, serialised with reservations, as ``put_reserved_concurrency``."""
        prov, reserved = t.provisioned_concurrency, t.reserved_concurrency
        statement = self._upsert(prov, ("name", "qualifier"), name=name, qualifier=qualifier, requested=requested,
                                 last_modified=last_modified)
        not_this = sa.not_(sa.and_(prov.c.name == name, prov.c.qualifier == qualifier))

        def provision(conn: sa.Connection) -> int | None:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('reserved_concurrency'))"))
            total = sa.func.coalesce(sa.func.sum(prov.c.requested), 0)
            own = conn.execute(sa.select(reserved.c.reserved).where(reserved.c.name == name)).scalar_one_or_none()
            if own is not None:
                others = conn.execute(sa.select(total).where(prov.c.name == name, not_this)).scalar_one()
                if int(others) + requested > own:
                    return int(own)
            else:
                reservations = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(reserved.c.reserved), 0))
                                            ).scalar_one()
                unreserved = conn.execute(sa.select(total).where(
                    not_this, prov.c.name.not_in(sa.select(reserved.c.name)))).scalar_one()
                if int(reservations) + int(unreserved) + requested > unreserved_most:
                    return unreserved_most
            conn.execute(statement)
            return None

        refused = await self._run(provision, write=True)
        if refused is None:
            self._wrote("provisioned", name)
        return refused

    async def delete_provisioned_concurrency(self, name: str, qualifier: str) -> None:
        table = t.provisioned_concurrency
        await self._transaction([sa.delete(table).where(table.c.name == name, table.c.qualifier == qualifier)])
        self._wrote("provisioned", name)

    # -- layers ----------------------------------------------------------------------------------------------

    async def load_layers(self) -> tuple[list[str], dict[str, int]]:
        """Every layer version record (JSON, deleted ones too) and each layer's highest version number."""
        records = [row[0] for row in await self._read(sa.select(t.layer_versions.c.record))]
        counters = {name: last for name, last in await self._read(sa.select(t.layer_counters))}
        return records, counters

    async def put_layer_version(self, name: str, version: int, record: str, counter: int | None = None) -> None:
        """Store a layer version's record; with ``counter``, the layer's version counter in the same transaction."""
        statements: list[Statement] = [
            self._upsert(t.layer_versions, ("name", "version"), name=name, version=version, record=record)]
        if counter is not None:
            statements.append(self._upsert(t.layer_counters, ("name",), name=name, last_version=counter))
        await self._transaction(statements)
        self._wrote("layer", name)

    def _put_version(self, config: VersionRecord) -> Statement:
        return self._upsert(t.versions, ("name", "version"), name=config.name, version=config.version,
                            config=config.to_json())

    def _put_counter(self, name: str, last_version: int, published_from: str) -> Statement:
        return self._upsert(t.version_counters, ("name",), name=name, last_version=last_version,
                            published_from=published_from)

    def _put_alias(self, alias: AliasRecord) -> Statement:
        return self._upsert(t.aliases, ("name", "alias"), name=alias.function_name, alias=alias.name,
                            config=alias.to_json())

    async def _function_write(self, name: str, expect: int, statements: Sequence[Statement]) -> None:
        """Write function ``name`` in one transaction, if its generation is still ``expect`` (the one the writer's
        copy came from), taking it to ``expect + 1``; else nothing is written and it is a ``StoreConflict``: another
        node changed the function in between."""
        functions = t.functions

        def run(conn: sa.Connection) -> None:
            bumped = conn.execute(sa.update(functions).where(functions.c.name == name, functions.c.generation == expect)
                                  .values(generation=expect + 1))
            if bumped.rowcount != 1:
                raise StoreConflict(name)
            for statement in statements:
                conn.execute(statement)

        await self._run(run, write=True)


def _is_alias(record: VersionRecord | AliasRecord) -> bool:
    """An alias record names its function apart (``function_name``); a version record is its function's name."""
    return hasattr(record, "function_name")
