"""What metered use would cost at given prices (``lambdad usage``): pure arithmetic, no I/O.

The quantities are Lambda's billing units (docs/observability.md, "Usage and cost"):

- requests, priced per million;
- duration in GB-seconds: billed ms ÷ 1000 × memory MB ÷ 1024, where billed ms is the REPORT line's
  ``Billed Duration`` (the duration rounded up to the next whole millisecond, at least 1);
- of that duration, the part run in provisioned environments, priced at the provisioned duration price;
- provisioned concurrency in GB-seconds: the time provisioned environments were allocated × their memory;
- ephemeral storage in GB-seconds: billed ms ÷ 1000 × (EphemeralStorage MB − 512) ÷ 1024.

A price file is a JSON object of the keys of ``PRICE_KEYS`` (US dollars per unit); ``AWS_X86_US_EAST_1`` holds
AWS's published on-demand x86 prices in us-east-1. Costs are an estimate: no free tier, no tiered discounts past
6 billion GB-seconds a month, no Savings Plans, no data transfer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

from lambdad.store.interfaces import UsageRecord

__all__ = ["AWS_X86_US_EAST_1", "PRICE_KEYS", "Prices", "PriceError", "UsageFigures", "figures", "parse_prices"]

MB_MS_PER_GB_SECOND = 1024 * 1000  # 1 GB for 1 s is 1,024 MB for 1,000 ms


@dataclass(frozen=True)
class Prices:
    """US dollars per unit. ``provisioned_duration_gb_second`` None: duration in provisioned environments costs
    what any duration costs."""

    request_per_million: float = 0.0
    duration_gb_second: float = 0.0
    provisioned_concurrency_gb_second: float = 0.0
    provisioned_duration_gb_second: float | None = None
    ephemeral_gb_second: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) if getattr(self, f.name) is not None else self.duration_gb_second
                for f in fields(self)}


PRICE_KEYS = tuple(f.name for f in fields(Prices))

# AWS Lambda's published prices, x86, US East (N. Virginia), first duration tier (aws.amazon.com/lambda/pricing)
AWS_X86_US_EAST_1 = Prices(
    request_per_million=0.20,
    duration_gb_second=0.0000166667,
    provisioned_concurrency_gb_second=0.0000041667,
    provisioned_duration_gb_second=0.0000097222,
    ephemeral_gb_second=0.0000000309,
)


class PriceError(ValueError):
    """A price file that is not a JSON object of known keys and non-negative numbers."""


def parse_prices(text: str, base: Prices | None = None, where: str = "prices") -> Prices:
    """The prices of JSON object ``text``; keys it does not give keep ``base``'s values (default: 0)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PriceError(f"{where}: not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PriceError(f"{where}: a JSON object of prices is expected, e.g. {{\"request_per_million\": 0.2}}")
    unknown = sorted(set(data) - set(PRICE_KEYS))
    if unknown:
        raise PriceError(f"{where}: unknown price {', '.join(unknown)} (known: {', '.join(PRICE_KEYS)})")
    values: dict[str, Any] = {f.name: getattr(base or Prices(), f.name) for f in fields(Prices)}
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise PriceError(f"{where}: {key} must be a number of dollars, 0 or more, not {value!r}")
        values[key] = float(value)
    return Prices(**values)


@dataclass(frozen=True)
class UsageFigures:
    """One row of ``lambdad usage``, in billing units."""

    requests: int
    billed_ms: int
    gb_seconds: float
    provisioned_duration_gb_seconds: float
    provisioned_gb_seconds: float
    ephemeral_gb_seconds: float

    def cost(self, prices: Prices) -> float:
        """The estimated cost in dollars of these figures at ``prices``."""
        provisioned_duration_price = (prices.duration_gb_second if prices.provisioned_duration_gb_second is None
                                      else prices.provisioned_duration_gb_second)
        on_demand = self.gb_seconds - self.provisioned_duration_gb_seconds
        return (self.requests / 1_000_000 * prices.request_per_million
                + on_demand * prices.duration_gb_second
                + self.provisioned_duration_gb_seconds * provisioned_duration_price
                + self.provisioned_gb_seconds * prices.provisioned_concurrency_gb_second
                + self.ephemeral_gb_seconds * prices.ephemeral_gb_second)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def figures(records: list[UsageRecord] | tuple[UsageRecord, ...]) -> UsageFigures:
    """The figures of ``records`` together (one row, or the totals of many): sums of exact integers, divided once."""
    def total(name: str) -> int:
        return sum(getattr(r, name) for r in records)

    return UsageFigures(
        requests=total("requests"),
        billed_ms=total("billed_ms"),
        gb_seconds=total("duration_mb_ms") / MB_MS_PER_GB_SECOND,
        provisioned_duration_gb_seconds=total("provisioned_duration_mb_ms") / MB_MS_PER_GB_SECOND,
        provisioned_gb_seconds=total("provisioned_mb_ms") / MB_MS_PER_GB_SECOND,
        ephemeral_gb_seconds=total("ephemeral_mb_ms") / MB_MS_PER_GB_SECOND,
    )

