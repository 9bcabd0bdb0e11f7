"""The arithmetic of usage metering (invoke/usage.py, invoke/pricing.py): hours, GB-seconds, prices and costs;
the meter counting into a real store (SQLite, and PostgreSQL where it answers), with a clock of the test's."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lambdad.invoke.pricing import AWS_X86_US_EAST_1, PriceError, Prices, figures, parse_prices
from lambdad.invoke.usage import UsageMeter, split_hours
from lambdad.store.interfaces import UsageRecord
from lambdad.store.sql import SqlStore, database_url

HOUR = 3600


@dataclass(frozen=True)
class Config:
    name: str
    version: str = "$LATEST"
    memory_size: int = 128
    ephemeral_storage: int = 512


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_split_hours() -> None:
    h = 1_700_000_000 // HOUR * HOUR
    assert split_hours(h * 1000, h * 1000) == []
    assert split_hours(h * 1000 + 5, h * 1000 + 905) == [(h, 900)]
    # from 59:59.500 to 01:00:00.250 of the next hour
    start, end = (h + HOUR) * 1000 - 500, (h + HOUR) * 1000 + 250
    assert split_hours(start, end) == [(h, 500), (h + HOUR, 250)]
    assert split_hours(h * 1000, (h + 3 * HOUR) * 1000) == [(h, 3_600_000), (h + HOUR, 3_600_000),
                                                              (h + 2 * HOUR, 3_600_000)]


def test_figures_are_billing_units() -> None:
    rows = [UsageRecord("f", "$LATEST", 0, requests=3, billed_ms=1500, duration_mb_ms=1500 * 1024,
                        ephemeral_mb_ms=1500 * 1536),
            UsageRecord("g", "1", 0, requests=1, billed_ms=2, duration_mb_ms=2 * 128,
                        provisioned_duration_mb_ms=2 * 128, provisioned_mb_ms=60_000 * 128)]
    one = figures(rows[:1])
    assert (one.requests, one.billed_ms) == (3, 1500)
    assert one.gb_seconds == pytest.approx(1.5)  # 1.5 s at 1 GB
    assert one.ephemeral_gb_seconds == pytest.approx(1.5 * 1.5)  # 1,536 MB above the free 512
    both = figures(rows)
    assert both.requests == 4 and both.billed_ms == 1502
    assert both.provisioned_gb_seconds == pytest.approx(60 * 0.125)
    assert both.provisioned_duration_gb_seconds == pytest.approx(0.002 * 0.125)


def test_cost_at_prices() -> None:
    f = figures([UsageRecord("f", "1", 0, requests=2_000_000, billed_ms=1000, duration_mb_ms=10 * 1024 * 1000,
                             provisioned_duration_mb_ms=4 * 1024 * 1000, provisioned_mb_ms=100 * 1024 * 1000,
                             ephemeral_mb_ms=1000 * 1024 * 1000)])
    prices = Prices(request_per_million=0.5, duration_gb_second=0.01, provisioned_concurrency_gb_second=0.001,
                    provisioned_duration_gb_second=0.002, ephemeral_gb_second=0.0001)
    # 2 M requests, 6 GB-s on demand, 4 GB-s in provisioned environments, 100 GB-s provisioned, 1,000 GB-s storage
    assert f.cost(prices) == pytest.approx(2 * 0.5 + 6 * 0.01 + 4 * 0.002 + 100 * 0.001 + 1000 * 0.0001)
    # no provisioned duration price: that duration costs what any does
    assert f.cost(Prices(duration_gb_second=0.01)) == pytest.approx(10 * 0.01)
    assert f.cost(Prices()) == 0


def test_aws_prices_are_the_published_x86_us_east_1_ones() -> None:
    assert AWS_X86_US_EAST_1.request_per_million == 0.20
    assert AWS_X86_US_EAST_1.duration_gb_second == 0.0000166667
    assert AWS_X86_US_EAST_1.provisioned_concurrency_gb_second == 0.0000041667
    assert AWS_X86_US_EAST_1.provisioned_duration_gb_second == 0.0000097222
    assert AWS_X86_US_EAST_1.ephemeral_gb_second == 0.0000000309
    # 1 M requests of 1 s at 1 GB: $0.20 + 1 M GB-s
    one_million = figures([UsageRecord("f", "1", 0, requests=1_000_000, billed_ms=1_000_000_000,
                                       duration_mb_ms=1024 * 1_000_000_000)])
    assert one_million.cost(AWS_X86_US_EAST_1) == pytest.approx(0.20 + 16.6667)


def test_parse_prices() -> None:
    assert parse_prices('{"request_per_million": 1}') == Prices(request_per_million=1.0)
    over = parse_prices('{"duration_gb_second": 0.5}', AWS_X86_US_EAST_1)
    assert over.duration_gb_second == 0.5 and over.request_per_million == 0.20
    for bad, said in [("[]", "JSON object"), ("{", "not JSON"), ('{"requests": 1}', "unknown price requests"),
                      ('{"duration_gb_second": -1}', "0 or more"), ('{"duration_gb_second": "1"}', "number"),
                      ('{"duration_gb_second": true}', "number")]:
        with pytest.raises(PriceError, match=said):
            parse_prices(bad)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return database_url(None, tmp_path)
    return database_url(request.getfixturevalue("postgres_url"), tmp_path)


def run(url: str, work: Any) -> Any:
    async def main() -> Any:
        store = await SqlStore.open(url)
        try:
            return await work(store)
        finally:
            await store.aclose()

    return asyncio.run(main())


def test_nodes_add_to_one_function_hour(store_url: str) -> None:
    """Two nodes' flushes of one function-hour add up (the upsert adds), however many times and together."""
    async def work(store: SqlStore) -> list[UsageRecord]:
        one = UsageRecord("f", "1", 7200, 1, 10, 1280, 0, 0, 0)
        other = UsageRecord("f", "1", 7200, 2, 3, 384, 384, 5000, 17)
        await asyncio.gather(*(store.add_usage([one, other]) for _ in range(5)))
        await store.add_usage([UsageRecord("g", "$LATEST", 3600, 1, 1, 128, 0, 0, 0)])
        return await store.read_usage()

    rows = run(store_url, work)
    assert rows == [UsageRecord("g", "$LATEST", 3600, 1, 1, 128, 0, 0, 0),
                    UsageRecord("f", "1", 7200, 15, 65, 8320, 1920, 25000, 85)]


def test_read_usage_filters(store_url: str) -> None:
    async def work(store: SqlStore) -> tuple[Any, ...]:
        await store.add_usage([UsageRecord(n, "$LATEST", h, 1, 1, 128) for n in ("a", "b") for h in (0, 3600, 7200)])
        return (await store.read_usage("a"), await store.read_usage(since=3600),
                await store.read_usage("b", since=3600, until=7200))

    only_a, since, window = run(store_url, work)
    assert {r.function_name for r in only_a} == {"a"} and len(only_a) == 3
    assert [(r.hour, r.function_name) for r in since] == [(3600, "a"), (3600, "b"), (7200, "a"), (7200, "b")]
    assert [(r.function_name, r.hour) for r in window] == [("b", 3600)]


def test_meter_counts_invocations_and_provisioned_time(tmp_path: Path) -> None:
    h = 1_700_000_000 // HOUR * HOUR
    clock = Clock(h + HOUR - 1.0)  # a second before the next hour
    allocated = [("p", "1", 256, 2)]

    async def work(store: SqlStore) -> list[UsageRecord]:
        meter = UsageMeter(store, lambda: allocated, interval=3600, clock=clock)
        meter.start()  # the first sample: two environments of 256 MB
        meter.invoked(Config("f", memory_size=1024), 3, provisioned=False)
        meter.invoked(Config("f", memory_size=1024), 1, provisioned=False)
        meter.invoked(Config("e", memory_size=128, ephemeral_storage=2048), 10, provisioned=False)
        meter.invoked(Config("p", "1", memory_size=256), 7, provisioned=True)
        clock.now += 1.5  # half a second into the next hour
        meter.invoked(Config("f", memory_size=1024), 2, provisioned=False)
        await meter.flush()
        allocated.clear()  # the config is deleted: the time until the next sample still counts
        clock.now += 0.25
        await meter.aclose()
        return await store.read_usage()

    rows = {(r.function_name, r.hour): r for r in run(database_url(None, tmp_path), work)}
    assert rows[("f", h)] == UsageRecord("f", "$LATEST", h, 2, 4, 4 * 1024)
    assert rows[("f", h + HOUR)] == UsageRecord("f", "$LATEST", h + HOUR, 1, 2, 2 * 1024)
    assert rows[("e", h)] == UsageRecord("e", "$LATEST", h, 1, 10, 10 * 128, ephemeral_mb_ms=10 * 1536)
    # 1 s before the hour and 0.75 s after it, two environments of 256 MB
    assert rows[("p", h)] == UsageRecord("p", "1", h, 1, 7, 7 * 256, 7 * 256, 1000 * 256 * 2)
    assert rows[("p", h + HOUR)] == UsageRecord("p", "1", h + HOUR, provisioned_mb_ms=750 * 256 * 2)


def test_a_failed_flush_keeps_the_counts(tmp_path: Path) -> None:
    async def work(store: SqlStore) -> list[UsageRecord]:
        meter = UsageMeter(store, lambda: [], interval=3600, clock=Clock(7200.0))
        meter.invoked(Config("f"), 5, provisioned=False)
        await store.aclose()  # the store is gone: the write fails
        with pytest.raises(Exception):
            await meter.flush()
        meter.invoked(Config("f"), 1, provisioned=False)
        again = await SqlStore.open(database_url(None, tmp_path))
        try:
            meter._store = again
            await meter.flush()
            return await again.read_usage()
        finally:
            await again.aclose()

    async def main() -> list[UsageRecord]:
        return await work(await SqlStore.open(database_url(None, tmp_path)))

    assert asyncio.run(main()) == [UsageRecord("f", "$LATEST", 7200, 2, 6, 6 * 128)]
