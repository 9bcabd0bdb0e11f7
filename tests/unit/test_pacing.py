"""The pacer's token bucket (sandbox/pacing.py): CPU time at a share of wall time, up to one quota, charged what
the group used; a debt makes the next hand-over wait until it is paid, at most about two periods."""

from __future__ import annotations

import pytest

from lambdad.sandbox.cgroups import cpu_bandwidth
from lambdad.sandbox.pacing import PACE, CpuPacer

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
