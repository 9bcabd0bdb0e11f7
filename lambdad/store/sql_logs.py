"""The metadata store's log operations: a part of ``SqlStore`` (store/sql.py).

Log events, their groups and streams, their trim, and the CloudWatch Logs API's queries.
"""

from __future__ import annotations

import time
from typing import Sequence

import sqlalchemy as sa
from sqlalchemy.sql.expression import ColumnElement

from lambdad.store import schema as t
from lambdad.store.interfaces import LogEvent, LogGroupInfo, LogStreamInfo, StoredLogEvent
from lambdad.store.sql_base import SqlBase, _rows, greatest


class LogTables(SqlBase):
    # -- logs ------------------------------------------------------------------------------------------------

    async def append_logs(self, events: Sequence[LogEvent]) -> None:
        if not events:
            return
        now = int(time.time() * 1000)
        streams: dict[tuple[str, str], tuple[int, int]] = {}
        sizes: dict[str, int] = {}
        for e in events:
            first, last = streams.get((e.log_group, e.log_stream), (e.timestamp, e.timestamp))
            streams[(e.log_group, e.log_stream)] = (min(first, e.timestamp), max(last, e.timestamp))
            sizes[e.log_group] = sizes.get(e.log_group, 0) + len(e.message.encode("utf-8", "surrogatepass"))
        ls = t.log_streams
        stream_rows = self._insert(ls)
        stream_rows = stream_rows.on_conflict_do_update(
            index_elements=["log_group", "log_stream"],
            set_={"last_event": greatest(ls.c.last_event, stream_rows.excluded.last_event),
                  "first_event": sa.func.coalesce(ls.c.first_event, stream_rows.excluded.first_event),
                  "last_ingestion": stream_rows.excluded.last_ingestion})
        group_rows = self._insert(t.log_group_bytes)
        group_rows = group_rows.on_conflict_do_update(
            index_elements=["log_group"], set_={"bytes": t.log_group_bytes.c.bytes + group_rows.excluded.bytes})
        new_groups = self._insert(t.log_groups).on_conflict_do_nothing(index_elements=["log_group"])

        def write(conn: sa.Connection) -> None:
            conn.execute(new_groups, [{"log_group": g, "created": now} for g in sizes])
            conn.execute(stream_rows, [{"log_group": g, "log_stream": s, "created": first, "last_event": last,
                                        "first_event": first, "last_ingestion": now}
                                       for (g, s), (first, last) in streams.items()])
            conn.execute(sa.insert(t.log_events), [
                {"log_group": e.log_group, "log_stream": e.log_stream, "timestamp": e.timestamp,
                 "message": e.message, "ingested": now} for e in events])
            conn.execute(group_rows, [{"log_group": g, "bytes": n} for g, n in sizes.items()])

        await self._run(write, write=True)

    async def trim_logs(self, older_than_ms: int, group_bytes: int, total_bytes: int) -> int:
        """Log retention: delete events older than ``older_than_ms`` (epoch ms), then those older than their group's
        retention in days (PutRetentionPolicy), then each group's oldest events
        past its newest ``group_bytes`` of messages, then the oldest of all past the newest ``total_bytes``;
        and the streams left empty. Returns the events deleted.

        What each group holds is kept in ``log_group_bytes`` (added to by every append), so a trim reads only
        the events it deletes (found through the indexes by time, by group, and by id, oldest first), never
        the ones it keeps: it costs in proportion to what it removes, not to the size of the database (the
        whole table was read, under the write lock, at every trim: ~1.1 s at 200 MB)."""
        events, groups = t.log_events, t.log_group_bytes

        def trim(conn: sa.Connection) -> int:
            deleted: int = 0
            old: sa.Executable
            if conn.dialect.name == "sqlite":  # by time: only the rows that go (SQLite would pick the group index)
                old = sa.text("SELECT log_group, COUNT(*), SUM(length(CAST(message AS BLOB))) FROM log_events "
                              "INDEXED BY log_events_by_time WHERE timestamp < :cutoff GROUP BY log_group"
                              ).bindparams(cutoff=older_than_ms)
            else:
                old = (sa.select(events.c.log_group, sa.func.count(), sa.func.sum(t.octet_length(events.c.message)))
                       .where(events.c.timestamp < older_than_ms).group_by(events.c.log_group))
            old_rows = _rows(conn, old)
            freed = {group: nbytes for group, _count, nbytes in old_rows}
            deleted += sum(count for _group, count, _nbytes in old_rows)
            if freed:
                conn.execute(sa.delete(events).where(events.c.timestamp < older_than_ms))
                _forget_bytes(conn, freed)
            # each group's own retention (PutRetentionPolicy), in days
            now = time.time() * 1000
            kept = _rows(conn, sa.select(t.log_groups.c.log_group, t.log_groups.c.retention_days)
                         .where(t.log_groups.c.retention_days.is_not(None)))
            for group, days in kept:
                cutoff = int(now - days * 86_400_000)
                if cutoff <= older_than_ms:
                    continue  # the server-wide age cap went further
                scope = (events.c.log_group == group, events.c.timestamp < cutoff)
                count, nbytes = conn.execute(sa.select(sa.func.count(), sa.func.coalesce(
                    sa.func.sum(t.octet_length(events.c.message)), 0)).where(*scope)).one()
                if count:
                    conn.execute(sa.delete(events).where(*scope))
                    _forget_bytes(conn, {group: int(nbytes)})
                    deleted += count
            over = _rows(conn, sa.select(groups.c.log_group, groups.c.bytes).where(groups.c.bytes > group_bytes))
            for group, nbytes in over:
                deleted += _delete_oldest(conn, nbytes - group_bytes, group)
            total = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(groups.c.bytes), 0))).scalar_one()
            if total > total_bytes:
                deleted += _delete_oldest(conn, total - total_bytes, None)
            if deleted:
                streams = t.log_streams
                conn.execute(sa.delete(streams).where(~sa.exists().where(
                    events.c.log_group == streams.c.log_group, events.c.log_stream == streams.c.log_stream)))
                conn.execute(sa.delete(groups).where(groups.c.bytes <= 0))
            return deleted

        return await self._run(trim, write=True)

    async def read_logs(self, log_group: str, log_stream: str | None = None) -> list[LogEvent]:
        events = t.log_events
        query = (sa.select(events.c.log_group, events.c.log_stream, events.c.timestamp, events.c.message)
                 .where(events.c.log_group == log_group).order_by(events.c.id))
        if log_stream is not None:
            query = query.where(events.c.log_stream == log_stream)
        return [LogEvent(*row) for row in await self._read(query)]

    async def list_log_streams(self, log_group: str) -> list[str]:
        streams = t.log_streams
        rows = await self._read(sa.select(streams.c.log_stream).where(streams.c.log_group == log_group)
                                .order_by(streams.c.created))
        return [row[0] for row in rows]

    # -- the CloudWatch Logs API (logs/api.py) ------------------------------------------------------------------

    async def create_log_group(self, name: str, created: int) -> bool:
        """A new, empty group; False if it exists."""
        statement = self._insert(t.log_groups).values(log_group=name, created=created).on_conflict_do_nothing(
            index_elements=["log_group"])
        return bool(await self._run(lambda conn: conn.execute(statement).rowcount, write=True))

    async def log_groups(self, name: str | None = None) -> list[LogGroupInfo]:
        """Every group (or the one named), by name, with the bytes of messages it holds."""
        groups, sizes = t.log_groups, t.log_group_bytes
        query = (sa.select(groups.c.log_group, groups.c.created, groups.c.retention_days,
                           sa.func.coalesce(sizes.c.bytes, 0))
                 .select_from(groups.outerjoin(sizes, sizes.c.log_group == groups.c.log_group))
                 .order_by(groups.c.log_group))
        if name is not None:
            query = query.where(groups.c.log_group == name)
        return [LogGroupInfo(*row) for row in await self._read(query)]

    async def delete_log_group(self, name: str) -> bool:
        """The group, its streams and its events; False if there was no such group."""
        def delete(conn: sa.Connection) -> bool:
            gone = conn.execute(sa.delete(t.log_groups).where(t.log_groups.c.log_group == name)).rowcount
            for table in (t.log_events, t.log_streams, t.log_group_bytes):
                conn.execute(sa.delete(table).where(table.c.log_group == name))
            return bool(gone)

        return await self._run(delete, write=True)

    async def set_log_retention(self, name: str, days: int | None) -> bool:
        groups = t.log_groups
        statement = sa.update(groups).where(groups.c.log_group == name).values(retention_days=days)
        return bool(await self._run(lambda conn: conn.execute(statement).rowcount, write=True))

    async def create_log_stream(self, group: str, stream: str, created: int) -> bool:
        """A new, empty stream in ``group`` (which the caller found); False if it exists."""
        statement = self._insert(t.log_streams).values(
            log_group=group, log_stream=stream, created=created, last_event=0).on_conflict_do_nothing(
            index_elements=["log_group", "log_stream"])
        return bool(await self._run(lambda conn: conn.execute(statement).rowcount, write=True))

    async def log_stream_infos(self, group: str, stream: str | None = None) -> list[LogStreamInfo]:
        streams = t.log_streams
        query = (sa.select(streams.c.log_stream, streams.c.created, streams.c.first_event, streams.c.last_event,
                           streams.c.last_ingestion)
                 .where(streams.c.log_group == group).order_by(streams.c.log_stream))
        if stream is not None:
            query = query.where(streams.c.log_stream == stream)
        return [LogStreamInfo(name, created, first, last or None, ingestion)
                for name, created, first, last, ingestion in await self._read(query)]

    async def delete_log_stream(self, group: str, stream: str) -> bool:
        """The stream and its events (their bytes no longer count against the group); False if there was none."""
        events, streams = t.log_events, t.log_streams

        def delete(conn: sa.Connection) -> bool:
            gone = conn.execute(sa.delete(streams).where(streams.c.log_group == group,
                                                         streams.c.log_stream == stream)).rowcount
            nbytes = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(t.octet_length(events.c.message)), 0))
                                  .where(events.c.log_group == group, events.c.log_stream == stream)).scalar_one()
            conn.execute(sa.delete(events).where(events.c.log_group == group, events.c.log_stream == stream))
            if nbytes:
                _forget_bytes(conn, {group: int(nbytes)})
            return bool(gone)

        return await self._run(delete, write=True)

    async def log_events_page(self, group: str, streams: Sequence[str] | None, start: int | None, end: int | None,
                              after: tuple[int, int] | None, before: tuple[int, int] | None, limit: int,
                              newest_first: bool, containing: Sequence[str] = ()) -> list[StoredLogEvent]:
        """Up to ``limit`` events of ``group`` (of ``streams`` only, if given) with ``start <= timestamp < end``,
        strictly after ``after`` / before ``before`` in (timestamp, id) order; oldest first, or newest first.
        ``containing``: only events whose message may contain each of these (SQL LIKE, which SQLite compares
        without regard to ASCII case: a superset, for the caller to match exactly)."""
        events = t.log_events
        position = sa.tuple_(events.c.timestamp, events.c.id)
        where: list[ColumnElement[bool]] = [events.c.log_group == group]
        if streams is not None:
            where.append(events.c.log_stream.in_(list(streams)) if len(streams) != 1
                         else events.c.log_stream == streams[0])
        if start is not None:
            where.append(events.c.timestamp >= start)
        if end is not None:
            where.append(events.c.timestamp < end)
        if after is not None:
            where.append(position > sa.tuple_(*after))
        if before is not None:
            where.append(position < sa.tuple_(*before))
        where.extend(events.c.message.contains(text, autoescape=True) for text in containing)
        order = (events.c.timestamp.desc(), events.c.id.desc()) if newest_first else (events.c.timestamp, events.c.id)
        query = (sa.select(events.c.id, events.c.log_stream, events.c.timestamp, events.c.message, events.c.ingested)
                 .where(*where).order_by(*order).limit(limit))
        return [StoredLogEvent(*row) for row in await self._read(query)]


def _delete_oldest(conn: sa.Connection, excess: int, group: str | None) -> int:
    """Delete the oldest events (of ``group``, or of all; by timestamp, then id) until at least ``excess`` bytes of
    messages are gone; in the caller's transaction. Reads 500 events at a time, oldest first, through the index
    by group and time (or by time)."""
    events = t.log_events
    scope: list[ColumnElement[bool]] = [events.c.log_group == group] if group is not None else []
    position = sa.tuple_(events.c.timestamp, events.c.id)
    freed: dict[str, int] = {}
    gone, count = 0, 0
    last: tuple[int, int] | None = None
    while gone < excess:
        after = [position > sa.tuple_(*last)] if last is not None else []
        rows = _rows(conn, sa.select(events.c.timestamp, events.c.id, events.c.log_group,
                                     t.octet_length(events.c.message))
                     .where(*scope, *after).order_by(events.c.timestamp, events.c.id).limit(500))
        if not rows:
            break
        for timestamp, row_id, row_group, nbytes in rows:
            last = (timestamp, row_id)
            gone += nbytes
            count += 1
            freed[row_group] = freed.get(row_group, 0) + nbytes
            if gone >= excess:
                break
    if count and last is not None:
        conn.execute(sa.delete(events).where(*scope, position <= sa.tuple_(*last)))
        _forget_bytes(conn, freed)
    return count


def _forget_bytes(conn: sa.Connection, freed: dict[str, int]) -> None:
    groups = t.log_group_bytes
    conn.execute(sa.update(groups).where(groups.c.log_group == sa.bindparam("group"))
                 .values(bytes=groups.c.bytes - sa.bindparam("freed")),
                 [{"group": g, "freed": n} for g, n in freed.items()])
