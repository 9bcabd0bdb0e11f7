"""A metric's value distribution: counts in log-linear buckets, good enough for percentiles.

Each power of two is cut into ``SUB`` (32) equal buckets, so a bucket's midpoint is within 1/64 (1.6 %) of any value
in it, whatever the scale: 0.01 ms and 900 s alike. Bucket 0 holds zero; positive values have positive numbers,
negative values (PutMetricData allows them) the negated number of their magnitude. Bucket numbers fit a 32-bit
column. A percentile is read off the cumulative counts and clamped to the true minimum and maximum.
"""

from __future__ import annotations

import math
from typing import Mapping

__all__ = ["SUB", "bucket_of", "value_of", "upper_of", "percentile"]

SUB = 32
_BIAS = 1100  # frexp exponents run from -1073 to 1024


def bucket_of(value: float) -> int:
    if value == 0 or value != value:
        return 0
    mantissa, exponent = math.frexp(abs(value))  # mantissa in [0.5, 1)
    index = (exponent + _BIAS) * SUB + int((mantissa - 0.5) * 2 * SUB) + 1
    return index if value > 0 else -index


def _edges(bucket: int) -> tuple[float, float]:
    exponent, sub = divmod(abs(bucket) - 1, SUB)
    exponent -= _BIAS
    low = math.ldexp(0.5 + sub / (2 * SUB), exponent)
    high = math.ldexp(0.5 + (sub + 1) / (2 * SUB), exponent)
    return (low, high) if bucket > 0 else (-high, -low)


def value_of(bucket: int) -> float:
    """The bucket's midpoint."""
    if bucket == 0:
        return 0.0
    low, high = _edges(bucket)
    return (low + high) / 2


def upper_of(bucket: int) -> float:
    """The bucket's upper edge (a Prometheus histogram counts it under every ``le`` at or above it)."""
    return 0.0 if bucket == 0 else _edges(bucket)[1]


def percentile(buckets: Mapping[int, float], p: float, minimum: float, maximum: float) -> float:
    """The ``p``th percentile (0 < p <= 100) of the values counted in ``buckets``."""
    total = sum(buckets.values())
    if total <= 0:
        return minimum
    if p >= 100:
        return maximum
    rank = p / 100.0 * total
    seen = 0.0
    for bucket in sorted(buckets):
        seen += buckets[bucket]
        if seen >= rank:
            return min(max(value_of(bucket), minimum), maximum)
    return maximum
