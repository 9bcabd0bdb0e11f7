"""Schedule expressions (lambdad/schedules/expressions.py): AWS's documented cron and rate examples with their next
fire times, the day fields' L, W and #, time zones and daylight saving as AWS documents it for Scheduler, and the
expressions AWS refuses."""

from __future__ import annotations

import datetime as dt

import pytest

from lambdad.schedules.expressions import ScheduleError, parse, zone

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 12, 5, 22, 31, 10, tzinfo=UTC)  # a Saturday


def fires(expression: str, count: int = 3, after: dt.datetime = NOW, tz: str = "UTC",
          anchor: dt.datetime | None = None) -> list[str]:
    schedule, where = parse(expression), zone(tz)
    out, at = [], after
    for _ in range(count):
        found = schedule.next_after(at, where, anchor)
        if found is None:
            break
        out.append(found.astimezone(where).strftime("%a %Y-%m-%d %H:%M"))
        at = found
    return out


# The examples table of AWS's cron expression reference (EventBridge "Cron expressions", Scheduler "Cron-based
# schedules"), each with its next three fire times after Saturday 2026-12-05 22:31:10 UTC.
AWS_EXAMPLES = [
    ("cron(0 10 * * ? *)", "Run at 10:00 am (UTC+0) every day",
     ["Sun 2026-12-06 10:00", "Mon 2026-12-07 10:00", "Tue 2026-12-08 10:00"]),
    ("cron(15 12 * * ? *)", "Run at 12:15 pm (UTC+0) every day",
     ["Sun 2026-12-06 12:15", "Mon 2026-12-07 12:15", "Tue 2026-12-08 12:15"]),
    ("cron(0 18 ? * MON-FRI *)", "Run at 6:00 pm (UTC+0) every Monday through Friday",
     ["Mon 2026-12-07 18:00", "Tue 2026-12-08 18:00", "Wed 2026-12-09 18:00"]),
    ("cron(0 8 1 * ? *)", "Run at 8:00 am (UTC+0) every 1st day of the month",
     ["Fri 2027-01-01 08:00", "Mon 2027-02-01 08:00", "Mon 2027-03-01 08:00"]),
    ("cron(0/15 * * * ? *)", "Run every 15 minutes",
     ["Sat 2026-12-05 22:45", "Sat 2026-12-05 23:00", "Sat 2026-12-05 23:15"]),
    ("cron(0/10 * ? * MON-FRI *)", "Run every 10 minutes Monday through Friday",
     ["Mon 2026-12-07 00:00", "Mon 2026-12-07 00:10", "Mon 2026-12-07 00:20"]),
    ("cron(0/5 8-17 ? * MON-FRI *)", "Run every 5 minutes Monday through Friday between 8:00 am and 5:55 pm",
     ["Mon 2026-12-07 08:00", "Mon 2026-12-07 08:05", "Mon 2026-12-07 08:10"]),
    ("cron(0/30 20-2 ? * MON-FRI *)", "Run every 30 minutes Monday through Friday between 10:00 pm on the "
     "starting day to 2:00 am on the following day", ["Mon 2026-12-07 00:00", "Mon 2026-12-07 00:30",
                                                      "Mon 2026-12-07 01:00"]),
    ("cron(0 0-2 ? * MON *)", "Run from 12:00 am to 2:00 am on Monday morning",
     ["Mon 2026-12-07 00:00", "Mon 2026-12-07 01:00", "Mon 2026-12-07 02:00"]),
    # Scheduler's own examples (create-schedule): a cron, the first Monday, the last day, the weekday nearest
    ("cron(0 9 ? * 2#1 *)", "9:00 am on the first Monday of every month",
     ["Mon 2026-12-07 09:00", "Mon 2027-01-04 09:00", "Mon 2027-02-01 09:00"]),
    ("cron(0 0 L * ? *)", "midnight on the last day of every month",
     ["Thu 2026-12-31 00:00", "Sun 2027-01-31 00:00", "Sun 2027-02-28 00:00"]),
    ("cron(0 0 3W * ? *)", "midnight on the weekday nearest the 3rd (Sun 3 Jan 2027 -> Mon 4th; Sat 3 Apr -> Fri "
     "2nd)", ["Mon 2027-01-04 00:00", "Wed 2027-02-03 00:00", "Wed 2027-03-03 00:00"]),
    ("cron(0 0 ? * 6L *)", "midnight on the last Friday of every month",
     ["Fri 2026-12-25 00:00", "Fri 2027-01-29 00:00", "Fri 2027-02-26 00:00"]),
    ("cron(45 13 L * ? 2027-2028)", "1:45 pm on the last day of the month, in 2027 and 2028 only",
     ["Sun 2027-01-31 13:45", "Sun 2027-02-28 13:45", "Wed 2027-03-31 13:45"]),
    ("cron(* * * * ? *)", "every minute", ["Sat 2026-12-05 22:32", "Sat 2026-12-05 22:33", "Sat 2026-12-05 22:34"]),
    ("cron(0 12 ? JAN,JUL SUN,sat 2027)", "names in lists, any case",
     ["Sat 2027-01-02 12:00", "Sun 2027-01-03 12:00", "Sat 2027-01-09 12:00"]),
    ("cron(5-40/15 3 * * ? *)", "a stepped range", ["Sun 2026-12-06 03:05", "Sun 2026-12-06 03:20",
                                                     "Sun 2026-12-06 03:35"]),
]


@pytest.mark.parametrize("expression, meaning, expected", AWS_EXAMPLES, ids=[e[0] for e in AWS_EXAMPLES])
def test_aws_cron_examples(expression: str, meaning: str, expected: list[str]) -> None:
    assert fires(expression) == expected, meaning


def test_cron_ends_with_its_years() -> None:
    assert fires("cron(0 0 1 1 ? 2027)", count=3) == ["Fri 2027-01-01 00:00"]
    assert fires("cron(0 0 30 2 ? *)") == []  # February 30th never comes


def test_rate_counts_from_its_anchor() -> None:
    anchor = dt.datetime(2026, 12, 5, 22, 0, tzinfo=UTC)
    assert fires("rate(5 minutes)", anchor=anchor) == ["Sat 2026-12-05 22:35", "Sat 2026-12-05 22:40",
                                                       "Sat 2026-12-05 22:45"]
    assert fires("rate(1 hour)", 2, anchor=anchor) == ["Sat 2026-12-05 23:00", "Sun 2026-12-06 00:00"]
    assert fires("rate(2 days)", 2, anchor=anchor) == ["Mon 2026-12-07 22:00", "Wed 2026-12-09 22:00"]
    future = dt.datetime(2027, 1, 1, tzinfo=UTC)  # a start date ahead: the first occurrence is the start
    assert fires("rate(1 day)", 1, anchor=future) == ["Fri 2027-01-01 00:00"]


def test_rate_days_are_24_hours_across_daylight_saving() -> None:
    """AWS: "days represents a 24-hour duration on the clock": after the spring change, 9:00 becomes 10:00."""
    anchor = dt.datetime(2027, 3, 13, 14, 0, tzinfo=UTC)  # 9:00 EST
    assert fires("rate(1 day)", 2, after=anchor, tz="America/New_York", anchor=anchor) == [
        "Sun 2027-03-14 10:00", "Mon 2027-03-15 10:00"]


def test_cron_in_a_time_zone() -> None:
    assert fires("cron(0 9 * * ? *)", 2, tz="Asia/Tokyo") == ["Sun 2026-12-06 09:00", "Mon 2026-12-07 09:00"]
    found = parse("cron(0 9 * * ? *)").next_after(NOW, zone("Asia/Tokyo"))
    assert found == dt.datetime(2026, 12, 6, 0, 0, tzinfo=UTC)


def test_spring_forward_skips_the_time_that_does_not_exist() -> None:
    """2:30 does not exist in New York on 2027-03-14: that day's invocation is skipped (AWS)."""
    start = dt.datetime(2027, 3, 12, tzinfo=UTC)
    assert fires("cron(30 2 * * ? *)", 3, after=start, tz="America/New_York") == [
        "Fri 2027-03-12 02:30", "Sat 2027-03-13 02:30", "Mon 2027-03-15 02:30"]


def test_fall_back_runs_the_repeated_time_once() -> None:
    """1:00-1:59 happens twice in New York on 2027-11-07: a schedule in it runs once (AWS), at the first."""
    start = dt.datetime(2027, 11, 7, 4, 50, tzinfo=UTC)  # 0:50 EDT
    schedule, tz = parse("cron(0/30 * * * ? *)"), zone("America/New_York")
    got, at = [], start
    for _ in range(4):
        at = schedule.next_after(at, tz)
        got.append(at.strftime("%H:%M") + " UTC")
    assert got == ["05:00 UTC", "05:30 UTC", "07:00 UTC", "07:30 UTC"]  # 1:00, 1:30 EDT; then 2:00, 2:30 EST


def test_at() -> None:
    schedule = parse("at(2027-01-01T09:30:00)")
    assert schedule.next_after(NOW, zone("Europe/Paris")) == dt.datetime(2027, 1, 1, 8, 30, tzinfo=UTC)
    assert schedule.next_after(dt.datetime(2027, 6, 1, tzinfo=UTC), zone("UTC")) is None


@pytest.mark.parametrize("bad", [
    "cron(* * * * * *)",  # neither day field is ?
    "cron(* * ? * ? *)",  # both are
    "cron(0 10 * * ?)",  # five fields
    "cron(60 * * * ? *)", "cron(0 24 * * ? *)", "cron(0 0 32 * ? *)", "cron(0 0 ? 13 * *)",
    "cron(0 0 ? * 8 *)", "cron(0 0 1 * ? 1969)", "cron(0 0 1 * ? 2200)",
    "cron(0 0 ? * 1/2 *)",  # the day-of-week field takes no step (AWS's table)
    "cron(0 0 L,3 * ? *)", "cron(0 0 ? * 2#6 *)", "cron(0 0 ? FOO * *)", "cron(0/0 * * * ? *)",
    "rate(0 minutes)", "rate(-1 minutes)", "rate(5 weeks)", "rate(5)", "rate(1.5 hours)",
    "at(2027-01-01 09:30:00)", "at(2027-02-30T00:00:00)", "every(5 minutes)", "",
])
def test_invalid_expressions(bad: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse(bad)
    assert bad in caught.value.message


def test_rule_units() -> None:
    """EventBridge rules: singular for 1, plural otherwise; Scheduler takes either."""
    parse("rate(1 minutes)")
    with pytest.raises(ScheduleError):
        parse("rate(1 minutes)", rule_units=True)
    with pytest.raises(ScheduleError):
        parse("rate(5 minute)", rule_units=True)
    parse("rate(5 minutes)", rule_units=True)


def test_time_zones() -> None:
    assert str(zone("Europe/Paris")) == "Europe/Paris"
    assert str(zone(None)) == "UTC"
    for bad in ("Mars/Olympus", "../etc/passwd", "Europe/"):
        with pytest.raises(ScheduleError):
            zone(bad)
