"""Timers: the firing engine under schedules (EventBridge Scheduler's schedules, EventBridge's scheduled rules).

A feature registers a callback for its kind of timer, then puts and deletes timers by (kind, key)::

    timer.register("scheduler", on_fire)                      # async def on_fire(fire: Fire) -> None
    first = await timer.put("scheduler", "default/nightly", "cron(0 3 * * ? *)", "Europe/Paris",
                            start=None, end=None, window=0.0)   # the first fire time (None: none left)
    await timer.delete("scheduler", "default/nightly")

A put replaces the timer of that kind and key (its next fire is computed again from now). Expressions and time
zones are ``schedules/expressions.py``'s; a bad one raises ``ScheduleError`` (the caller words its service's
ValidationException). A rate's occurrences count from ``start`` if given, else from the put: its first fire is
then at once (EventBridge Scheduler's rule; a caller that wants the first one a period later passes
``start=now + period``).

**Durable and cluster-safe.** Timers are rows of the store's ``timers`` table: the next occurrence
(``next_fire``) and when to fire it (``due``: the occurrence, plus a random delay within ``window`` seconds —
FlexibleTimeWindow — or a retry's time). One loop fires them: the node holding the lease ``timers``
(``cluster/leases.py``; the embedded node always does). It reads the due rows and sleeps until the next one (in a
cluster at most a second, so a timer put on another node is seen within one; a node alone is woken by its own
puts), so a timer fires within a second of its time.

**At least once, no drift.** A fire calls the kind's callback with a ``Fire`` and only when the callback returns
(it has durably accepted the event, e.g. the async queue stored the invocation) is the row advanced to the next
occurrence — computed from the schedule and the occurrence just fired, never from "now + rate". A callback that
raises leaves the occurrence in place and it is fired again after a back-off (``RETRY_DELAYS``), as the same
occurrence (``Fire.attempt`` counts). The advance is a compare-and-set on the row's revision: a timer put or
deleted during its fire is not overwritten. A crash between the callback and the advance fires that occurrence
again after the restart (at least once).

**Missed occurrences** (no node fired them in time: the server was down, or the cluster had no lease holder):
the timer fires once, late, for the latest occurrence that passed, and says how many earlier ones it skipped
(``Fire.missed``, and a warning in the log) — never a burst of catch-up fires, never a silent skip. A callback may
still drop a fire that is too late for it (EventBridge Scheduler: older than the schedule's
MaximumEventAgeInSeconds). ``Fire.last`` tells the callback that no occurrence follows (an ``at()``, or the end
date is reached): the row stays, with no next fire, until its owner deletes it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import sqlalchemy as sa

from lambdad.periodic import Held
from lambdad.schedules.expressions import UTC, Schedule, parse, zone
from lambdad.store import schema as t
from lambdad.store.sql import SqlStore
from lambdad.tasks import cancel_and_wait

__all__ = ["Timer", "Fire", "FireCallback", "TimerState", "LEASE", "RETRY_DELAYS"]

log = logging.getLogger(__name__)

LEASE = "timers"
POLL_SECONDS = 1.0  # the longest the loop sleeps: a timer put on another node is seen within this
RETRY_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)  # between fires of an occurrence whose callback raised
MAX_PARALLEL = 32
_BATCH = 200
_MISSED_COUNTED = 10_000  # occurrences counted one by one at most, when saying how many were missed


@dataclass(frozen=True)
class Fire:
    """One firing of a timer, as its callback is given it."""

    kind: str
    key: str
    scheduled: dt.datetime  # the occurrence fired (UTC)
    attempt: int  # 1 at the first try of this occurrence; more when the callback raised before
    missed: int  # earlier occurrences skipped because no node fired them in time (logged)
    last: bool  # no occurrence follows: the timer is complete


FireCallback = Callable[[Fire], Awaitable[None]]


@dataclass(frozen=True)
class TimerState:
    kind: str
    key: str
    expression: str
    timezone: str
    start: dt.datetime | None
    end: dt.datetime | None
    window: float
    next_fire: dt.datetime | None  # None: completed, nothing left to fire
    due: dt.datetime | None


def _at(epoch: float | None) -> dt.datetime | None:
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, UTC)


def _epoch(when: dt.datetime | None) -> float | None:
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _following(schedule: Schedule, tz: dt.tzinfo, after: float, anchor: float, start: float | None,
               end: float | None) -> float | None:
    """The first occurrence strictly after ``after`` that lies within [start, end] (epoch seconds), or None."""
    base = after
    if start is not None and start > after:
        base = start - 1e-6  # an occurrence at the start itself counts
    found = schedule.next_after(dt.datetime.fromtimestamp(base, UTC), tz, dt.datetime.fromtimestamp(anchor, UTC))
    if found is None:
        return None
    when = found.timestamp()
    return None if end is not None and when > end else when


def _due(next_fire: float | None, window: float) -> float | None:
    if next_fire is None:
        return None
    return next_fire + (random.uniform(0.0, window) if window > 0 else 0.0)


class Timer:
    def __init__(self, store: SqlStore, lease: Held, poll_seconds: float = POLL_SECONDS) -> None:
        self._store = store
        self._lease = lease
        # the longest the loop sleeps without being woken: in a cluster a second, since other nodes put timers
        # too; a node alone is woken by every put, and needs the store only when something is due
        self._poll = poll_seconds
        self._callbacks: dict[str, FireCallback] = {}
        self._firing: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._unknown: set[str] = set()
        self._slots = asyncio.Semaphore(MAX_PARALLEL)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- the interface of the features that use timers ----------------------------------------------------

    def register(self, kind: str, callback: FireCallback) -> None:
        """Fire the timers of ``kind`` with ``callback`` (before ``start``; a kind has one callback)."""
        self._callbacks[kind] = callback

    async def put(self, kind: str, key: str, expression: str, timezone: str = "UTC",
                  start: dt.datetime | None = None, end: dt.datetime | None = None,
                  window: float = 0.0) -> dt.datetime | None:
        """Make or replace the timer (kind, key); its first fire time (None: it has none, e.g. an at() past).
        Raises ScheduleError for a bad expression or time zone."""
        schedule = parse(expression)
        tz = zone(timezone)
        now = time.time()
        not_before, not_after = _epoch(start), _epoch(end)
        anchor = not_before if not_before is not None else now
        first = _following(schedule, tz, now - 0.001, anchor, not_before, not_after)
        table = t.timers

        def write(conn: sa.Connection) -> None:
            revision = conn.execute(sa.select(table.c.revision).where(table.c.kind == kind,
                                                                      table.c.key == key)).scalar()
            conn.execute(self._store.upsert(
                table, ("kind", "key"), kind=kind, key=key, expression=expression, timezone=timezone or "UTC",
                not_before=not_before, not_after=not_after, anchor=anchor, window=float(window), next_fire=first,
                due=_due(first, window), attempts=0, revision=(revision or 0) + 1))

        await self._store.run(write, write=True)
        self._wake.set()
        return _at(first)

    async def delete(self, kind: str, key: str) -> None:
        """Remove the timer (kind, key), if there is one; a fire of it in progress still ends."""
        table = t.timers
        await self._store.run(lambda conn: conn.execute(sa.delete(table).where(table.c.kind == kind,
                                                                               table.c.key == key)), write=True)

    async def get(self, kind: str, key: str) -> TimerState | None:
        table = t.timers
        rows = await self._store.run(lambda conn: conn.execute(
            sa.select(table).where(table.c.kind == kind, table.c.key == key)).all())
        if not rows:
            return None
        row = rows[0]._mapping
        return TimerState(row["kind"], row["key"], row["expression"], row["timezone"], _at(row["not_before"]),
                          _at(row["not_after"]), row["window"], _at(row["next_fire"]), _at(row["due"]))

    async def keys(self, kind: str) -> list[str]:
        """The keys of every timer of ``kind`` (to reconcile them with what the feature stores)."""
        table = t.timers
        rows = await self._store.run(lambda conn: conn.execute(
            sa.select(table.c.key).where(table.c.kind == kind)).all())
        return sorted(str(row[0]) for row in rows)

    # -- the loop ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="timers")

    async def aclose(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        for task in list(self._firing.values()):
            task.cancel()
        if self._firing:
            await asyncio.gather(*self._firing.values(), return_exceptions=True)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            delay = POLL_SECONDS
            if self._lease.held():
                try:
                    delay = await self._round()
                except Exception:
                    log.exception("timers: a round failed")
            else:
                delay = POLL_SECONDS  # the lease may come: try again soon
            try:
                await asyncio.wait_for(self._wake.wait(), max(0.0, min(delay, self._poll)))
            except asyncio.TimeoutError:
                pass

    async def _round(self) -> float:
        """Fire what is due; the seconds until the next due timer (as far as this round knows)."""
        table = t.timers
        now = time.time()

        def read(conn: sa.Connection) -> tuple[list[Any], float | None]:
            due = conn.execute(sa.select(table).where(table.c.due.is_not(None), table.c.due <= now)
                               .order_by(table.c.due).limit(_BATCH)).all()
            following = conn.execute(sa.select(sa.func.min(table.c.due)).where(table.c.due > now)).scalar()
            return list(due), following

        rows, following = await self._store.run(read)
        for row in rows:
            values = dict(row._mapping)
            name = (values["kind"], values["key"])
            if name in self._firing:
                continue
            task = asyncio.get_running_loop().create_task(self._fire(values), name=f"timer {name[0]} {name[1]}")
            self._firing[name] = task
            task.add_done_callback(self._done)
        if len(rows) >= _BATCH:
            return 0.0
        return self._poll if following is None else float(following) - time.time()

    def _done(self, task: asyncio.Task[None]) -> None:
        for name, running in list(self._firing.items()):
            if running is task:
                del self._firing[name]

    async def _fire(self, row: dict[str, Any]) -> None:
        async with self._slots:
            kind, key = row["kind"], row["key"]
            callback = self._callbacks.get(kind)
            if callback is None:  # a kind no code of this node registers (a newer node's): left to it
                if kind not in self._unknown:
                    self._unknown.add(kind)
                    log.warning("timers: no callback for the kind %r on this node; its timers wait", kind)
                await self._update(row, due=time.time() + 60.0)
                return
            try:
                schedule, tz = parse(row["expression"]), zone(row["timezone"])
            except ValueError as exc:
                log.error("timers: %s %s cannot be read (%s); it stops", kind, key, exc)
                await self._update(row, next_fire=None, due=None)
                return
            now = time.time()
            bounds = (row["anchor"], row["not_before"], row["not_after"])
            scheduled = float(row["next_fire"])
            missed = 0
            later = _following(schedule, tz, scheduled, *bounds)
            if row["attempts"] == 0:  # late by more than its window: fire once, for the latest that passed
                limit = now - float(row["window"]) - 1.0
                while later is not None and later <= limit:
                    missed += 1
                    scheduled = later
                    if missed >= _MISSED_COUNTED:
                        later = _following(schedule, tz, now, *bounds)
                        break
                    later = _following(schedule, tz, scheduled, *bounds)
            if not missed and now - scheduled > float(row["window"]) + 1.0 and row["attempts"] == 0:
                log.warning("timers: %s %s: the occurrence of %s is fired %.0f s late (no node fired it in time: "
                            "was the server down?)", kind, key, _at(scheduled), now - scheduled)
            if missed:
                log.warning("timers: %s %s missed %s%d occurrence(s) (no node fired them in time: was the server "
                            "down?); firing once, late, for %s", kind, key, "at least " if missed >= _MISSED_COUNTED
                            else "", missed, _at(scheduled))
            fire = Fire(kind, key, _at(scheduled) or dt.datetime.now(UTC), int(row["attempts"]) + 1, missed,
                        later is None)
            try:
                await callback(fire)
            except Exception as exc:
                attempts = int(row["attempts"]) + 1
                delay = RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]
                log.warning("timers: %s %s: the fire of %s failed (%s: %s); tried again in %.0f s", kind, key,
                            fire.scheduled.isoformat(), type(exc).__name__, exc, delay)
                await self._update(row, next_fire=scheduled, due=time.time() + delay, attempts=attempts)
                return
            await self._update(row, next_fire=later, due=_due(later, float(row["window"])), attempts=0)

    async def _update(self, row: dict[str, Any], **values: Any) -> None:
        """Write ``values`` to the timer of ``row`` if it is still the one read (same revision)."""
        table = t.timers
        statement = sa.update(table).where(table.c.kind == row["kind"], table.c.key == row["key"],
                                           table.c.revision == row["revision"]).values(**values)
        await self._store.run(lambda conn: conn.execute(statement), write=True)
        self._wake.set()  # its next due time: the loop sleeps until the earliest
