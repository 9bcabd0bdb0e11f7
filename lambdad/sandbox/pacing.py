"""Pacing: when a small environment gets its next invocation, so that it spends its CPU share evenly.

An environment under 1,769 MB has a fraction of one CPU (cgroups.py ``cpu_bandwidth``: 2 ms per 27.6 ms at
128 MB). The kernel enforces it in periods: a group that has spent its quota (and burst) waits for the next
period. Invoked back to back, a trivial handler costs its environment 50 µs of CPU (Python) to 175 µs (Node.js)
per invocation, 2–4× its share of lambdad's ~0.3 ms round trip: about 40 invocations run at full speed, then the
kernel stops the environment for ~20 ms — a p99 40–70× the p50 (docs/performance.md, issue 21). No period avoids
that: the kernel's quota is at least 1 ms, and the stall is what the quota is for.

So the server spreads the same share evenly instead: a token bucket of CPU time per environment. Tokens accrue
at ``PACE`` × the share of wall time, up to the kernel's quota (the pacer never lets through more at once than
the kernel would); before each hand-over the CPU the group used since the last one (the kernel's count,
``EnvCgroup.cpu_usage_ns``: the function cannot understate it) is charged, and an environment in debt gets its
next invocation only once the debt is paid (``-tokens / rate`` seconds later), or an instalment of it (below).
The kernel quota stays the hard limit; pacing only decides when the runtime gets its next event, so a function
that spends its share in one invocation is throttled by the kernel as before, and the next invocations wait for
what it overdrew.

The debt is bounded: tokens accrue while the invocation runs, so it can exceed the bucket only by what the
kernel's burst let the group spend beyond its share, and it is capped there (``floor``). The wait is not part of
the invocation (its Duration, billing and timeout start at the hand-over).

A small debt is paid in instalments (``SPREAD``): no wait is longer than ``SPREAD`` times what the environment's
usual invocation costs at its share, and what is left is carried to the next hand-overs. Small: up to half the
burst (1 ms at 128 MB), which the kernel's own bucket still holds when the pacer's is empty (the kernel refills
faster and holds a burst more), so the invocations that run meanwhile are not stalled by the kernel instead (their
Duration would then hold the wait); a larger debt's excess is paid at once, as before. A Node.js environment spends
~400 µs of CPU on most invocations at 128 MB and 1–16 ms on a few in a hundred (its JIT compiler and garbage
collector): paid at once, each of those made the next wait up to 60 ms. With the first millisecond in instalments,
the p99 of 1,000 in a row fell from 59–82 to 45–52 ms (docs/performance.md). The average is unchanged — what the
kernel counted is paid, later. ``usual`` is a moving average of the charges in which one charge counts for at most
``CLIP`` times the average, so that the rare costly invocation whose debt is being spread does not also widen the
instalments, while a lasting change of cost is followed within a few dozen invocations.
"""

from __future__ import annotations

from lambdad.sandbox.cgroups import EnvCgroup, cpu_bandwidth

__all__ = ["CLIP", "PACE", "SPREAD", "CpuPacer", "pacer_for"]

# The pacer's rate against the kernel's share: a little under it, so that the kernel's own bucket stays full and
# it throttles (almost) never (docs/performance.md, issue 21: the rates measured).
PACE = 0.95
# The longest instalment of a small debt, in the environment's usual waits (docs/performance.md, issue 21: the Node.js
# tail), and how much one charge may move the usual cost: at most CLIP times it, by 1/16 of the difference.
SPREAD = 2.0
CLIP = 4.0
_WEIGHT = 1 / 16


class CpuPacer:
    """The token bucket of one environment, in seconds of CPU. ``wait`` is called at each hand-over."""

    def __init__(self, quota_us: int, period_us: int, burst_us: int, usage_ns: int, now: float) -> None:
        self.rate = PACE * quota_us / period_us  # CPU seconds per wall second
        self.bucket = quota_us / 1e6
        self.floor = -(quota_us + burst_us) / 1e6
        self.spread = burst_us / 2e6  # the debt that may be paid in instalments (the kernel's bucket holds it)
        self.tokens = self.bucket  # the init phase ran at full speed and is not charged
        self.usual = 0.0  # CPU seconds of a usual invocation (0: none charged yet)
        self._usage_ns = usage_ns
        self._at = now

    def wait(self, now: float, usage_ns: int) -> float:
        """Charge the CPU used since the last call (``usage_ns``: the group's total), credit the time passed, and
        return how long the next invocation must wait (0: hand it over now): the debt, or an instalment of it."""
        used = (usage_ns - self._usage_ns) / 1e9
        self._usage_ns = usage_ns
        usual = self.usual
        self.usual = usual + (min(used, CLIP * usual) - usual) * _WEIGHT if usual else used
        tokens = min(self.bucket, self.tokens + (now - self._at) * self.rate) - used
        self._at = now
        self.tokens = max(self.floor, tokens)
        if self.tokens >= 0:
            return 0.0
        debt = -self.tokens
        return max(debt - self.spread, min(debt, SPREAD * self.usual)) / self.rate


def pacer_for(cgroup: EnvCgroup, memory_mb: int, now: float) -> CpuPacer | None:
    """The pacer of an environment whose CPU the kernel now limits to ``memory_mb``'s share, from ``now``; None
    from 1,769 MB up (a whole CPU or more: nothing to spread, and no cgroup read per invocation) or where the
    group's CPU usage cannot be read."""
    quota, period, burst = cpu_bandwidth(memory_mb)
    if quota >= period:
        return None
    usage = cgroup.cpu_usage_ns()
    return CpuPacer(quota, period, burst, usage, now) if usage is not None else None
