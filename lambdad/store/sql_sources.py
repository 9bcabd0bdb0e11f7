"""The metadata store's source operations: a part of ``SqlStore`` (store/sql.py).

What feeds functions besides Invoke: the async event queue and its event invoke configs, event source
mappings with their stream checkpoints and brokers, function URLs.
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from lambdad.store import schema as t
from lambdad.store.interfaces import AsyncEvent
from lambdad.store.sql_base import SqlBase


class SourceTables(SqlBase):
    # -- event invoke configs -------------------------------------------------------------------------------

    async def load_event_invoke_configs(self) -> list[tuple[str, str, str, float]]:
        """(function name, qualifier, config JSON, last modified) of every event invoke config."""
        return [(n, q, c, m) for n, q, c, m in await self._read(sa.select(t.event_invoke_configs))]

    async def put_event_invoke_config(self, name: str, qualifier: str, config: str, last_modified: float) -> None:
        await self._transaction([self._upsert(t.event_invoke_configs, ("name", "qualifier"), name=name,
                                              qualifier=qualifier, config=config, last_modified=last_modified)])
        self._wrote("eventinvoke", name)

    async def delete_event_invoke_config(self, name: str, qualifier: str) -> None:
        table = t.event_invoke_configs
        await self._transaction([sa.delete(table).where(table.c.name == name, table.c.qualifier == qualifier)])
        self._wrote("eventinvoke", name)

    # -- async events ----------------------------------------------------------------------------------------

    async def put_async_event(self, event: AsyncEvent) -> None:
        await self._transaction([sa.insert(t.async_events).values(
            id=event.id, function_name=event.function_name, qualifier=event.qualifier, payload=event.payload,
            client_context=event.client_context, attempts=event.attempts, not_before=event.not_before,
            received=event.received, outcome=event.outcome, hops=event.hops)])

    async def reschedule_async_event(self, event_id: str, attempts: int, not_before: float,
                                     outcome: str | None = None) -> None:
        await self._transaction([sa.update(t.async_events).where(t.async_events.c.id == event_id)
                                 .values(attempts=attempts, not_before=not_before, outcome=outcome)])

    async def delete_async_event(self, event_id: str) -> None:
        await self._transaction([sa.delete(t.async_events).where(t.async_events.c.id == event_id)])

    async def load_async_events(self) -> list[AsyncEvent]:
        return [AsyncEvent(*row) for row in await self._read(sa.select(t.async_events)
                                                             .order_by(t.async_events.c.received))]

    # -- event source mappings ------------------------------------------------------------------------------

    async def load_event_source_mappings(self) -> list[tuple[str, str, str, str, float]]:
        """(UUID, function name, event source ARN, config JSON, last modified) of every event source mapping."""
        m = t.event_source_mappings
        query = sa.select(m.c.uuid, m.c.name, m.c.event_source_arn, m.c.config, m.c.last_modified)
        return [(u, n, a, c, lm) for u, n, a, c, lm in await self._read(query)]

    async def put_event_source_mapping(self, uuid: str, name: str, event_source_arn: str, config: str,
                                       last_modified: float) -> None:
        await self._transaction([self._upsert(t.event_source_mappings, ("uuid",), uuid=uuid, name=name,
                                              event_source_arn=event_source_arn, config=config,
                                              last_modified=last_modified)])
        self._wrote("eventsource", name)

    async def delete_event_source_mapping(self, uuid: str, name: str) -> None:
        table = t.event_source_mappings
        checkpoints = t.stream_checkpoints
        await self._transaction([sa.delete(table).where(table.c.uuid == uuid),
                                 sa.delete(checkpoints).where(checkpoints.c.uuid == uuid)])
        self._wrote("eventsource", name)

    async def load_stream_checkpoints(self, uuid: str) -> dict[str, str]:
        c = t.stream_checkpoints
        return {shard: seq for shard, seq in
                await self._read(sa.select(c.c.shard_id, c.c.sequence).where(c.c.uuid == uuid))}

    async def put_stream_checkpoint(self, uuid: str, name: str, shard_id: str, sequence: str) -> None:
        await self._transaction([self._upsert(t.stream_checkpoints, ("uuid", "shard_id"), uuid=uuid,
                                              shard_id=shard_id, name=name, sequence=sequence,
                                              updated=time.time())])

    # -- brokers of event sources ---------------------------------------------------------------------------

    async def put_broker_record(self, arn: str, kind: str, record: str, created: float) -> None:
        await self._transaction([self._upsert(t.brokers, ("arn",), arn=arn, kind=kind, record=record,
                                              created=created)])

    async def get_broker_record(self, arn: str) -> tuple[str, str, float] | None:
        b = t.brokers
        rows = await self._read(sa.select(b.c.kind, b.c.record, b.c.created).where(b.c.arn == arn))
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else None

    async def list_broker_records(self) -> list[tuple[str, str, str, float]]:
        b = t.brokers
        return [(a, k, r, c) for a, k, r, c in
                await self._read(sa.select(b.c.arn, b.c.kind, b.c.record, b.c.created).order_by(b.c.arn))]

    async def delete_broker_record(self, arn: str) -> bool:
        statement = sa.delete(t.brokers).where(t.brokers.c.arn == arn)
        return bool(await self._run(lambda conn: conn.execute(statement).rowcount, write=True))

    # -- function URLs ---------------------------------------------------------------------------------------

    async def load_function_urls(self) -> list[tuple[str, str, str, str, str, str]]:
        """(function name, qualifier, URL id, config JSON, created, last modified) of every function URL."""
        return [(n, q, u, c, cr, m) for n, q, u, c, cr, m in await self._read(sa.select(t.function_urls))]

    async def put_function_url(self, name: str, qualifier: str, url_id: str, config: str, created: str,
                               last_modified: str) -> None:
        await self._transaction([self._upsert(t.function_urls, ("name", "qualifier"), name=name, qualifier=qualifier,
                                              url_id=url_id, config=config, created=created,
                                              last_modified=last_modified)])
        self._wrote("functionurl", name)

    async def delete_function_url(self, name: str, qualifier: str) -> None:
        table = t.function_urls
        await self._transaction([sa.delete(table).where(table.c.name == name, table.c.qualifier == qualifier)])
        self._wrote("functionurl", name)
