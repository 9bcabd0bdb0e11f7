"""The pacer's token bucket (sandbox/pacing.py): CPU time at a share of wall time, up to one quota, charged what
the group used; a debt makes the next hand-over wait until it is paid (at most about two periods), a debt of up to
half the burst in instalments of at most ``SPREAD`` usual waits."""

from __future__ import annotations

import pytest

from lambdad.sandbox.cgroups import cpu_bandwidth
from lambdad.sandbox.pacing import CLIP, PACE, SPREAD, CpuPacer

QUOTA, PERIOD, BURST = cpu_bandwidth(128)  # 2 ms per 27.6 ms, 2 ms of burst
RATE = PACE * QUOTA / PERIOD


def test_a_full_bucket_lets_one_quota_through_then_paces_at_the_share() -> None:
    pacer = CpuPacer(QUOTA, PERIOD, BURST, usage_ns=5_000_000, now=10.0)  # init's CPU is not charged
    usage, now = 5_000_000, 10.0
    waits = []
    for _ in range(40):  # 100 us of CPU per invocation, invoked back to back (0.3 ms apart, plus any wait)
        usage += 100_000
        now += 0.0003
        waits.append(pacer.wait(now, usage))
        now += waits[-1]
    # the 2 ms bucket (and what accrues meanwhile) pays for the first 24 at once
    assert waits[:24] == [0.0] * 24
    # then each invocation waits for what it overdrew, at the pacer's rate: its share, evenly
    assert waits[25:] == pytest.approx([(0.0001 - 0.0003 * RATE) / RATE] * 15)


def test_the_bucket_holds_one_quota_however_long_the_idle_spell() -> None:
    pacer = CpuPacer(QUOTA, PERIOD, BURST, usage_ns=0, now=0.0)
    assert pacer.wait(3600.0, 3_000_000) == pytest.approx((0.003 - QUOTA / 1e6) / RATE)


def test_the_debt_is_bounded_by_the_kernels_quota_and_burst() -> None:
    pacer = CpuPacer(QUOTA, PERIOD, BURST, usage_ns=0, now=0.0)
    wait = pacer.wait(0.001, 50_000_000)  # 50 ms of CPU at once: not possible under the kernel's quota
    assert wait == pytest.approx((QUOTA + BURST) / 1e6 / RATE)
    assert pacer.wait(0.001 + wait, 50_000_000) == pytest.approx(0.0, abs=1e-9)  # the wait paid it


def _steady(pacer: CpuPacer, usage: int, now: float, n: int, cost_ns: int = 100_000) -> tuple[int, float, list[float]]:
    """``n`` invocations back to back (0.3 ms apart plus any wait), each costing ``cost_ns`` of CPU."""
    waits = []
    for _ in range(n):
        usage += cost_ns
        now += 0.0003
        waits.append(pacer.wait(now, usage))
        now += waits[-1]
    return usage, now, waits


def test_a_costly_invocations_debt_is_paid_in_instalments_and_in_full() -> None:
    pacer = CpuPacer(QUOTA, PERIOD, BURST, usage_ns=0, now=0.0)
    usage, now, waits = _steady(pacer, 0, 0.0, 200)
    usual_wait = waits[-1]
    assert usual_wait == pytest.approx((0.0001 - 0.0003 * RATE) / RATE)
    usual = pacer.usual
    assert usual == pytest.approx(0.0001)
    # one invocation spends 1 ms (a Node.js garbage collection): paid at once, the next would wait ~13 ms
    usage += 1_000_000
    now += 0.0003
    first = pacer.wait(now, usage)
    assert first == pytest.approx(SPREAD * pacer.usual / RATE)
    assert first < 0.004 < 0.0009 / RATE
    # the spike widened the usual cost by at most (CLIP - 1) / 16 of it
    assert pacer.usual <= usual * (1 + (CLIP - 1) / 16) + 1e-12
    now += first
    usage, now, waits = _steady(pacer, usage, now, 200)
    assert max(waits) <= first + 1e-9  # no wait longer than the first instalment
    assert waits[-1] == pytest.approx(usual_wait, rel=0.01)  # and the debt is paid: back to the usual pace
    # and in full: the run took its extra 0.9 ms / RATE longer than the same run without the costly invocation
    steady = CpuPacer(QUOTA, PERIOD, BURST, usage_ns=0, now=0.0)
    _, steady_end, _ = _steady(steady, 0, 0.0, 401)
    assert now - steady_end == pytest.approx((0.001 - 0.0001) / RATE, rel=0.01)


def test_beyond_half_the_burst_the_debt_is_paid_at_once() -> None:
    """Only what the kernel's own bucket still holds is spread: more, and the invocations run meanwhile would be
    throttled by the kernel instead, the stall in their Duration."""
    pacer = CpuPacer(QUOTA, PERIOD, BURST, usage_ns=0, now=0.0)
    usage, now, _ = _steady(pacer, 0, 0.0, 200)
    usage += 3_000_000
    now += 0.0003
    debt = 0.003 - 0.0003 * RATE  # the last wait paid the debt before it
    assert pacer.wait(now, usage) == pytest.approx((debt - BURST / 2e6) / RATE, rel=1e-3)


def test_a_lasting_change_of_cost_is_followed() -> None:
    pacer = CpuPacer(QUOTA, PERIOD, BURST, usage_ns=0, now=0.0)
    usage, now, _ = _steady(pacer, 0, 0.0, 100)
    usage, now, waits = _steady(pacer, usage, now, 100, cost_ns=1_000_000)  # every invocation now costs 1 ms
    assert pacer.usual == pytest.approx(0.001, rel=0.02)
    assert waits[-1] == pytest.approx((0.001 - 0.0003 * RATE) / RATE, rel=0.02)  # paced at the new cost, in full
