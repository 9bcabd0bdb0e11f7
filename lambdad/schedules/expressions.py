"""Schedule expressions as EventBridge and EventBridge Scheduler write them: ``rate(...)``, ``cron(...)``, ``at(...)``.

``parse(text)`` checks an expression and returns a ``Schedule``; ``Schedule.next_after(instant, zone, anchor)`` is
its first occurrence strictly after ``instant`` (an aware datetime), evaluated in the IANA time ``zone`` (a
``zoneinfo.ZoneInfo``; ``zone(name)`` checks a name), or None when there is none.

- ``rate(N minute|minutes|hour|hours|day|days)``: every N units of elapsed time from ``anchor`` (the schedule's
  StartDate, else the moment it was made): occurrences are ``anchor + k * N units``, k >= 0. A day is 24 hours of
  elapsed time, also across a daylight saving change, as AWS documents for Scheduler ("the EventBridge Scheduler
  evaluates the rate expression 24 hours after the schedule's last invocation").
- ``cron(minutes hours day-of-month month day-of-week year)``: AWS's six fields. Lists ``,``, ranges ``-`` (a
  range may wrap: ``20-2`` in hours is 20..23 and 0..2, as in AWS's own example ``cron(0/30 20-2 ? * MON-FRI
  *)``), ``*``, steps ``/`` (``0/15``, ``*/15``, ``5-40/5``), month names JAN-DEC and day names SUN-SAT (1 = SUN).
  Day-of-month takes ``L`` (last day), ``nW`` (the weekday nearest day n, within the month) and ``LW`` (the last
  weekday); day-of-week takes ``L`` (Saturday), ``nL`` (the last day n of the month) and ``n#k`` (the k-th day n
  of the month). Exactly one of day-of-month and day-of-week is ``?``. Years 1970-2199.
  The fields are wall-clock time in ``zone``. Across daylight saving changes, as AWS documents for Scheduler: a
  time that does not exist (the clock jumps forward over it) is skipped; a time that happens twice (the clock
  goes back) fires once, at its first occurrence.
- ``at(yyyy-mm-ddThh:mm:ss)``: once, at that wall-clock time in ``zone`` (a time the clock skips never happens).

Why not a cron library: croniter (the one well-kept Python library with ``L`` and ``#``) has no ``W``, reads a
sixth field as seconds rather than AWS's year, and resolves daylight saving changes its own way; AWS's dialect
is small enough to say here completely, and its daylight saving rules are what the tests check.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["ScheduleError", "Schedule", "Rate", "Cron", "At", "parse", "zone", "UTC"]

UTC = dt.timezone.utc
_MONTHS = {name: i + 1 for i, name in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))}
_DAYS = {name: i + 1 for i, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}
_LAST_YEAR = 2199


class ScheduleError(ValueError):
    """An expression (or time zone) that is not valid; ``message`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Schedule:
    """A parsed expression."""

    text: str
    kind: str  # "rate", "cron" or "at"

    def next_after(self, instant: dt.datetime, zone: dt.tzinfo,
                   anchor: dt.datetime | None = None) -> dt.datetime | None:
        raise NotImplementedError


@dataclass(frozen=True)
class Rate(Schedule):
    text: str
    seconds: int
    kind: str = "rate"

    def next_after(self, instant: dt.datetime, zone: dt.tzinfo,
                   anchor: dt.datetime | None = None) -> dt.datetime | None:
        base = anchor if anchor is not None else instant
        if instant < base:
            return base.astimezone(UTC)
        k = int((instant - base).total_seconds() // self.seconds) + 1
        return (base + dt.timedelta(seconds=k * self.seconds)).astimezone(UTC)


@dataclass(frozen=True)
class At(Schedule):
    text: str
    local: dt.datetime  # naive: wall-clock time in the schedule's zone
    kind: str = "at"

    def next_after(self, instant: dt.datetime, zone: dt.tzinfo,
                   anchor: dt.datetime | None = None) -> dt.datetime | None:
        when = _resolve(self.local, zone)
        return when if when is not None and when > instant else None

    def instant(self, zone: dt.tzinfo) -> dt.datetime | None:
        """The moment it names (None: a wall-clock time that ``zone`` skips)."""
        return _resolve(self.local, zone)


@dataclass(frozen=True)
class Cron(Schedule):
    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: str  # the day-of-month field as written ("?" when day-of-week decides)
    months: frozenset[int]
    weekdays: str  # the day-of-week field as written ("?" when day-of-month decides)
    years: frozenset[int]
    kind: str = "cron"

    def next_after(self, instant: dt.datetime, zone: dt.tzinfo,
                   anchor: dt.datetime | None = None) -> dt.datetime | None:
        local = instant.astimezone(zone).replace(tzinfo=None)
        floor = local - dt.timedelta(hours=3)  # wall-clock candidates before this are past whatever the offsets
        year, month = floor.year, floor.month
        while year <= _LAST_YEAR:
            if year in self.years and month in self.months:
                for day in _days_of(self.days, self.weekdays, year, month):
                    if dt.date(year, month, day) < floor.date():
                        continue
                    for hour in self.hours:
                        for minute in self.minutes:
                            wall = dt.datetime(year, month, day, hour, minute)
                            if wall < floor:
                                continue
                            when = _resolve(wall, zone)
                            if when is not None and when > instant:
                                return when
            month += 1
            if month > 12:
                year, month = year + 1, 1
                if not any(y >= year for y in self.years):
                    return None
        return None


def zone(name: str | None) -> ZoneInfo:
    """The IANA time zone ``name`` (UTC when None or empty); ScheduleError for a name the tz database lacks."""
    if not name:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"Invalid time zone: {name}") from None


def parse(text: str, *, rule_units: bool = False) -> Schedule:
    """``text`` as a Schedule, or ScheduleError. ``rule_units`` applies EventBridge rules' unit rule to ``rate``:
    the singular unit for 1, the plural for more (Scheduler takes either)."""
    expression = text.strip()
    if expression.startswith("rate(") and expression.endswith(")"):
        return _rate(text, expression[5:-1], rule_units)
    if expression.startswith("cron(") and expression.endswith(")"):
        return _cron(text, expression[5:-1])
    if expression.startswith("at(") and expression.endswith(")"):
        try:
            local = dt.datetime.strptime(expression[3:-1], "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            raise ScheduleError(f"Invalid Schedule Expression {text}: at() takes yyyy-mm-ddThh:mm:ss") from None
        return At(text, local)
    raise ScheduleError(f"Invalid Schedule Expression {text}: it must be rate(...), cron(...) or at(...)")


def _rate(text: str, body: str, rule_units: bool) -> Rate:
    parts = body.split()
    if len(parts) != 2 or not parts[0].isdigit() or parts[1] not in _UNITS:
        raise ScheduleError(f"Invalid Schedule Expression {text}: rate() takes a positive number and minute(s), "
                            "hour(s) or day(s)")
    value, unit = int(parts[0]), parts[1]
    if value < 1:
        raise ScheduleError(f"Invalid Schedule Expression {text}: the rate must be a positive number")
    if rule_units and (value == 1) == unit.endswith("s"):
        raise ScheduleError(f"Invalid Schedule Expression {text}: the unit is singular for 1 and plural otherwise")
    return Rate(text, value * _UNITS[unit])


def _cron(text: str, body: str) -> Cron:
    fields = body.split()
    if len(fields) != 6:
        raise ScheduleError(f"Invalid Schedule Expression {text}: cron() takes six fields (minutes hours "
                            "day-of-month month day-of-week year)")
    minute, hour, dom, month, dow, year = (f.upper() for f in fields)
    try:
        minutes = _values(minute, 0, 59, {})
        hours = _values(hour, 0, 23, {})
        months = _values(month, 1, 12, _MONTHS)
        years = _values(year, 1970, _LAST_YEAR, {})
        if (dom == "?") == (dow == "?"):
            raise ScheduleError("exactly one of day-of-month and day-of-week must be ?")
        if dom != "?":
            _check_days(dom)
        if dow != "?":
            _check_weekdays(dow)
    except ScheduleError as exc:
        raise ScheduleError(f"Invalid Schedule Expression {text}: {exc.message}") from None
    return Cron(text, tuple(sorted(minutes)), tuple(sorted(hours)), dom, frozenset(months), dow, frozenset(years))


def _number(token: str, low: int, high: int, names: dict[str, int]) -> int:
    value = names.get(token)
    if value is None:
        if not token.isdigit():
            raise ScheduleError(f"{token!r} is not a value")
        value = int(token)
    if not low <= value <= high:
        raise ScheduleError(f"{value} is out of range {low}-{high}")
    return value


def _values(field: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    """The values of a field of lists, ranges (wrapping when the end is below the start), ``*`` and steps."""
    out: set[int] = set()
    for item in field.split(","):
        spec, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) < 1:
                raise ScheduleError(f"{item!r} has no valid step")
            step = int(step_text)
        if spec == "*":
            first, last = low, high
        elif "-" in spec:
            a, _, b = spec.partition("-")
            first, last = _number(a, low, high, names), _number(b, low, high, names)
        else:
            first = _number(spec, low, high, names)
            last = high if slash else first
        span = (last - first) % (high - low + 1)  # a wrapping range: 20-2 in hours
        for i in range(0, span + 1, step):
            out.add(low + (first - low + i) % (high - low + 1))
    return out


_DOM_SPECIAL = re.compile(r"^(L|LW|([1-9]|[12]\d|3[01])W)$")
_DOW_SPECIAL = re.compile(r"^(L|([1-7]|SUN|MON|TUE|WED|THU|FRI|SAT)L|([1-7]|SUN|MON|TUE|WED|THU|FRI|SAT)#([1-5]))$")


def _check_days(field: str) -> None:
    if _DOM_SPECIAL.match(field):
        return
    if any(c in field for c in "LW#"):
        raise ScheduleError(f"day-of-month {field!r}: L, LW and nW stand alone")
    _values(field, 1, 31, {})


def _check_weekdays(field: str) -> None:
    if _DOW_SPECIAL.match(field):
        return
    if any(c in field for c in "L#/"):
        raise ScheduleError(f"day-of-week {field!r}: L, nL and n#k stand alone (and the field takes no step)")
    _values(field, 1, 7, _DAYS)


@lru_cache(maxsize=4096)
def _days_of(dom: str, dow: str, year: int, month: int) -> tuple[int, ...]:
    """The days of ``month`` that the day fields select, in order."""
    length = calendar.monthrange(year, month)[1]

    def weekday(day: int) -> int:  # 1 = Sunday .. 7 = Saturday, as cron counts
        return (dt.date(year, month, day).weekday() + 1) % 7 + 1

    if dom != "?":
        if dom == "L":
            return (length,)
        if dom.endswith("W"):
            target = length if dom == "LW" else int(dom[:-1])
            if target > length:
                return ()
            day = weekday(target)
            if day == 7:  # Saturday: the Friday before, or the Monday after when that leaves the month
                target = target - 1 if target > 1 else target + 2
            elif day == 1:  # Sunday: the Monday after, or the Friday before when that leaves the month
                target = target + 1 if target < length else target - 2
            return (target,)
        return tuple(d for d in sorted(_values(dom, 1, 31, {})) if d <= length)
    if dow == "L":
        return tuple(d for d in range(1, length + 1) if weekday(d) == 7)
    if dow.endswith("L"):
        want = _number(dow[:-1], 1, 7, _DAYS)
        return (max(d for d in range(1, length + 1) if weekday(d) == want),)
    if "#" in dow:
        name, _, nth = dow.partition("#")
        want = _number(name, 1, 7, _DAYS)
        matching = [d for d in range(1, length + 1) if weekday(d) == want]
        return (matching[int(nth) - 1],) if int(nth) <= len(matching) else ()
    wanted = _values(dow, 1, 7, _DAYS)
    return tuple(d for d in range(1, length + 1) if weekday(d) in wanted)


def _resolve(wall: dt.datetime, zone: dt.tzinfo) -> dt.datetime | None:
    """The UTC moment of the wall-clock time ``wall`` in ``zone``: the first of two when the clock goes back over
    it; None when the clock jumps forward over it."""
    first = wall.replace(tzinfo=zone, fold=0)
    when = first.astimezone(UTC)
    if when.astimezone(zone).replace(tzinfo=None) != wall:
        return None  # does not exist in this zone
    return when
