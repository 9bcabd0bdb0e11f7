"""The ScheduleExpression of a rule, checked as EventBridge checks it when PutRule takes it.

``rate(<n> <unit>)`` with a positive whole n and minute(s)/hour(s)/day(s) (singular for 1, plural otherwise);
``cron(<minutes> <hours> <day-of-month> <month> <day-of-week> <year>)``: six fields, one of day-of-month and
day-of-week being ``?``.
"""

from __future__ import annotations

import re

__all__ = ["parse_schedule"]

_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_CRON = re.compile(r"cron\(([^)]*)\)")


def parse_schedule(expression: str) -> tuple[str, str] | None:
    """("rate" | "cron", the inside) of a valid expression; None when EventBridge would refuse it."""
    m = _RATE.fullmatch(expression.strip())
    if m is not None:
        n, unit = int(m.group(1)), m.group(2)
        if n < 1 or (n == 1) != (not unit.endswith("s")):
            return None
        return ("rate", f"{n} {unit}")
    m = _CRON.fullmatch(expression.strip())
    if m is not None:
        fields = m.group(1).split()
        if len(fields) != 6 or "?" not in (fields[2], fields[4]) or fields[2] == fields[4] == "?":
            return None
        return ("cron", " ".join(fields))
    return None
