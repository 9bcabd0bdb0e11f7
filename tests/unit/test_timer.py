"""The timer engine (lambdad/schedules/timer.py) on the real store (SQLite in a temporary data dir): fires within a
second, once; a failed fire is the same occurrence again; missed occurrences are one late fire that says how many
it skipped; a put during a fire is not overwritten by the fire's advance; timers outlive their Timer."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest
import sqlalchemy as sa

from lambdad.schedules.expressions import ScheduleError
from lambdad.schedules.timer import Fire, Timer
from lambdad.store import schema as t
from lambdad.store.sql import SqlStore, database_url

UTC = dt.timezone.utc


class Always:
    def held(self) -> bool:
        return True


def at_expression(seconds_ahead: float) -> tuple[str, float]:
    when = dt.datetime.fromtimestamp(int(time.time() + seconds_ahead) + 1, UTC)
    return f"at({when.strftime('%Y-%m-%dT%H:%M:%S')})", when.timestamp()


def run(tmp_path: Path, work: Callable[[SqlStore, Timer], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        store = await SqlStore.open(database_url(None, tmp_path))
        timer = Timer(store, Always())
        try:
            return await work(store, timer)
        finally:
            await timer.aclose()
            await store.aclose()
    return asyncio.run(main())


def test_at_fires_once_on_time(tmp_path: Path) -> None:
    async def work(store: SqlStore, timer: Timer) -> None:
        fired: list[tuple[Fire, float]] = []

        async def on_fire(fire: Fire) -> None:
            fired.append((fire, time.time()))

        timer.register("test", on_fire)
        expression, when = at_expression(1.5)
        first = await timer.put("test", "a", expression)
        assert first is not None and first.timestamp() == when
        timer.start()
        await asyncio.sleep(when - time.time() + 2.5)
        assert len(fired) == 1
        fire, at = fired[0]
        assert fire.kind == "test" and fire.key == "a" and fire.last and fire.attempt == 1 and fire.missed == 0
        assert fire.scheduled.timestamp() == when
        assert 0 <= at - when < 1.0  # within a second of its time
        state = await timer.get("test", "a")
        assert state is not None and state.next_fire is None  # completed; kept until its owner deletes it
        await timer.delete("test", "a")
        assert await timer.get("test", "a") is None

    run(tmp_path, work)


def test_a_failed_fire_is_the_same_occurrence_again(tmp_path: Path) -> None:
    async def work(store: SqlStore, timer: Timer) -> None:
        fired: list[Fire] = []

        async def on_fire(fire: Fire) -> None:
            fired.append(fire)
            if fire.attempt == 1:
                raise RuntimeError("the queue is away")

        timer.register("test", on_fire)
        expression, when = at_expression(0.5)
        await timer.put("test", "b", expression)
        timer.start()
        await asyncio.sleep(when - time.time() + 3.0)  # fired, failed, fired again a second later
        assert [f.attempt for f in fired] == [1, 2]
        assert {f.scheduled.timestamp() for f in fired} == {when}

    run(tmp_path, work)


def test_missed_occurrences_fire_once_and_are_counted(tmp_path: Path) -> None:
    """A minutely timer whose next fire was ten minutes ago (the server was down): one fire, for the latest
    occurrence that passed, saying it skipped the ten before it; the next is in the future, on the minute."""
    async def work(store: SqlStore, timer: Timer) -> None:
        fired: list[Fire] = []

        async def on_fire(fire: Fire) -> None:
            fired.append(fire)

        timer.register("test", on_fire)
        if time.time() % 60 < 2 or time.time() % 60 > 57:
            await asyncio.sleep(4)  # away from a minute's turn (an occurrence due a moment ago is not missed)
        await timer.put("test", "c", "cron(* * * * ? *)")
        minute = int(time.time() // 60 * 60)
        table = t.timers
        await store.run(lambda conn: conn.execute(sa.update(table).values(next_fire=minute - 600, due=minute - 600)),
                        write=True)
        timer.start()
        await asyncio.sleep(1.5)
        assert len(fired) == 1
        assert fired[0].missed == 10 and fired[0].scheduled.timestamp() == minute and not fired[0].last
        state = await timer.get("test", "c")
        assert state is not None and state.next_fire is not None
        assert state.next_fire.timestamp() == minute + 60

    run(tmp_path, work)


def test_a_put_during_a_fire_wins(tmp_path: Path) -> None:
    async def work(store: SqlStore, timer: Timer) -> None:
        async def on_fire(fire: Fire) -> None:
            await timer.put("test", "d", "cron(0 0 1 1 ? 2099)")  # changed while firing

        timer.register("test", on_fire)
        expression, when = at_expression(0.2)
        await timer.put("test", "d", expression)
        timer.start()
        await asyncio.sleep(when - time.time() + 1.5)
        state = await timer.get("test", "d")
        assert state is not None and state.expression == "cron(0 0 1 1 ? 2099)"
        assert state.next_fire == dt.datetime(2099, 1, 1, tzinfo=UTC)

    run(tmp_path, work)


def test_rate_starts_at_once_or_at_its_start(tmp_path: Path) -> None:
    async def work(store: SqlStore, timer: Timer) -> None:
        now = time.time()
        first = await timer.put("test", "e", "rate(5 minutes)")
        assert first is not None and abs(first.timestamp() - now) < 1.0
        start = dt.datetime(2030, 1, 1, tzinfo=UTC)
        assert await timer.put("test", "f", "rate(5 minutes)", start=start) == start
        end = dt.datetime(2030, 1, 1, tzinfo=UTC)
        assert await timer.put("test", "g", "cron(0 0 1 1 ? *)", "UTC", start=None, end=end) is not None
        assert await timer.put("test", "h", "cron(0 0 1 1 ? 2031)", end=end) is None  # after its end
        assert await timer.keys("test") == ["e", "f", "g", "h"]
        with pytest.raises(ScheduleError):
            await timer.put("test", "i", "cron(* * * * * *)")
        with pytest.raises(ScheduleError):
            await timer.put("test", "i", "rate(1 minute)", "Nowhere/Special")

    run(tmp_path, work)


def test_timers_outlive_their_timer(tmp_path: Path) -> None:
    expression, when = at_expression(1.0)

    async def first(store: SqlStore, timer: Timer) -> None:
        await timer.put("test", "j", expression, "UTC")  # never started: "the server stopped"

    run(tmp_path, first)
    time.sleep(max(0.0, when - time.time() + 0.5))

    async def second(store: SqlStore, timer: Timer) -> list[Fire]:
        fired: list[Fire] = []

        async def on_fire(fire: Fire) -> None:
            fired.append(fire)

        timer.register("test", on_fire)
        timer.start()
        await asyncio.sleep(1.0)
        return fired

    fired = run(tmp_path, second)
    assert len(fired) == 1 and fired[0].scheduled.timestamp() == when and fired[0].last


def test_a_window_delays_the_fire_within_it(tmp_path: Path) -> None:
    """FlexibleTimeWindow: each fire is due at a random moment within ``window`` seconds after its occurrence;
    the occurrence it reports is the scheduled one."""
    async def work(store: SqlStore, timer: Timer) -> None:
        fired: list[tuple[Fire, float]] = []

        async def on_fire(fire: Fire) -> None:
            fired.append((fire, time.time()))

        timer.register("test", on_fire)
        expression, when = at_expression(0.5)
        await timer.put("test", "w", expression, window=2.0)
        state = await timer.get("test", "w")
        assert state is not None and state.due is not None and state.next_fire is not None
        assert when <= state.due.timestamp() <= when + 2.0 and state.next_fire.timestamp() == when
        timer.start()
        await asyncio.sleep(when - time.time() + 3.5)
        assert len(fired) == 1
        fire, at = fired[0]
        assert fire.scheduled.timestamp() == when and fire.missed == 0
        assert when <= at < when + 3.0

    run(tmp_path, work)
