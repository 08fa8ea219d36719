"""Rotation slots on the real XSHG calendar: weekends, holidays, month ends and the calendar's end."""

from datetime import UTC, date, datetime, time, timedelta

import pytest

from execution import calendar
from execution.calendar import SHANGHAI, CalendarUnknown
from execution.models import TradingDay
from rotation.models import RotationStrategy
from rotation.schedule import due_slots, next_slot, slot_for_date

pytestmark = pytest.mark.django_db

DAILY, WEEKLY, MONTHLY = RotationStrategy.Schedule.values
MON, FRI = 0, 4


@pytest.fixture(autouse=True)
def xshg_calendar():
    """XSHG 2024..2026 as the migration seeds it (re-seeded if a transactional test emptied the table)."""
    start, end = date(2024, 1, 1), date(2026, 12, 31)
    TradingDay.objects.filter(date__gt=end).delete()
    if TradingDay.objects.filter(date__range=(start, end)).count() != (end - start).days + 1:
        calendar.calendar_seed_from_exchange_calendars(start=start, end=end)


def rotation(schedule, *, weekday=None, month_day=None, run_time=time(14, 50), enabled=True):
    return RotationStrategy(
        name=f"r-{schedule}",
        schedule=schedule,
        weekday=weekday,
        month_day=month_day,
        run_time=run_time,
        enabled=enabled,
    )


def at(day: date, clock: str = "14:50") -> datetime:
    return datetime.combine(day, time.fromisoformat(clock), tzinfo=SHANGHAI)


SLOT_CASES = [
    # (why, schedule, weekday, month_day, any day of the period, expected run day or None)
    ("daily: a trading day", DAILY, None, None, date(2025, 10, 9), date(2025, 10, 9)),
    ("daily: a Saturday has no run", DAILY, None, None, date(2025, 10, 11), None),
    ("daily: a National Day holiday Monday has no run", DAILY, None, None, date(2025, 10, 6), None),
    ("weekly Monday: an ordinary week", WEEKLY, MON, None, date(2025, 10, 16), date(2025, 10, 13)),
    (
        "weekly Monday: holiday 10-06..08 moves it to Thursday",
        WEEKLY,
        MON,
        None,
        date(2025, 10, 11),
        date(2025, 10, 9),
    ),
    ("weekly Friday: an ordinary week", WEEKLY, FRI, None, date(2025, 10, 13), date(2025, 10, 17)),
    (
        "weekly Friday: holiday 10-03 moves it into the next week",
        WEEKLY,
        FRI,
        None,
        date(2025, 9, 29),
        date(2025, 10, 9),
    ),
    (
        "weekly Friday: the week after keeps its own Friday",
        WEEKLY,
        FRI,
        None,
        date(2025, 10, 6),
        date(2025, 10, 10),
    ),
    ("weekly Saturday: always the next trading day", WEEKLY, 5, None, date(2025, 10, 13), date(2025, 10, 20)),
    ("monthly 15: a Sunday moves to Monday", MONTHLY, None, 15, date(2025, 6, 1), date(2025, 6, 16)),
    (
        "monthly 15: Spring Festival 2026 moves it to 02-24",
        MONTHLY,
        None,
        15,
        date(2026, 2, 20),
        date(2026, 2, 24),
    ),
    ("monthly 1: National Day moves it to 10-09", MONTHLY, None, 1, date(2025, 10, 31), date(2025, 10, 9)),
    (
        "monthly 30: a Saturday month end stays in its month",
        MONTHLY,
        None,
        30,
        date(2024, 11, 5),
        date(2024, 11, 29),
    ),
    (
        "monthly 31 in a 30-day month: its last trading day",
        MONTHLY,
        None,
        31,
        date(2024, 11, 5),
        date(2024, 11, 29),
    ),
    (
        "monthly 31 on a Saturday (Dragon Boat next): its last trading day",
        MONTHLY,
        None,
        31,
        date(2025, 5, 2),
        date(2025, 5, 30),
    ),
    ("monthly 31 on a Saturday in January 2026", MONTHLY, None, 31, date(2026, 1, 2), date(2026, 1, 30)),
    ("monthly 30 on a Friday: the day itself", MONTHLY, None, 30, date(2026, 1, 2), date(2026, 1, 30)),
]


@pytest.mark.parametrize(("why", "schedule", "weekday", "month_day", "day", "expected"), SLOT_CASES)
def test_slot_for_date(why, schedule, weekday, month_day, day, expected):
    """Each period runs on its chosen day, moved forward to the next trading day when the exchange is closed."""
    slot = slot_for_date(rotation(schedule, weekday=weekday, month_day=month_day), day)
    assert slot == (at(expected) if expected else None), why
    if expected:
        assert calendar.is_trading_day(expected)


@pytest.mark.parametrize("month_day", [29, 30, 31])
def test_monthly_day_past_february_end_is_its_last_trading_day(month_day):
    """29-31 in February 2026 (28 days, Spring Festival mid-month) run on February's last trading day."""
    expected = calendar.last_trading_day_of_month(2026, 2)
    assert expected.month == 2 and expected <= date(2026, 2, 28)
    assert slot_for_date(rotation(MONTHLY, month_day=month_day), date(2026, 2, 3)) == at(expected)


def test_monthly_28_on_a_closed_last_day_of_february_stays_in_february():
    """28 exists in February 2026 but is a Saturday: the run is February's last trading day, not March's first."""
    assert not calendar.is_trading_day(date(2026, 2, 28))
    assert slot_for_date(rotation(MONTHLY, month_day=28), date(2026, 2, 3)) == at(
        calendar.last_trading_day_of_month(2026, 2)
    )


def test_monthly_slots_keep_their_month_and_their_order():
    """For every month of 2025-2026 and every day 1-31: one trading day in that month, never before an earlier day's."""
    for year, month in [(y, m) for y in (2025, 2026) for m in range(1, 13)]:
        previous = None
        for month_day in range(1, 32):
            slot = slot_for_date(rotation(MONTHLY, month_day=month_day), date(year, month, 1))
            day = slot.date()
            assert (day.year, day.month) == (year, month), (year, month, month_day)
            assert calendar.is_trading_day(day)
            assert previous is None or previous <= day, (year, month, month_day)
            previous = day
        assert previous == calendar.last_trading_day_of_month(year, month)


def test_slots_are_aware_shanghai_datetimes_at_run_time():
    """A slot is exchange time (UTC+8) at the rotation's own run time."""
    slot = slot_for_date(rotation(DAILY, run_time=time(9, 35)), date(2025, 10, 9))
    assert slot.tzinfo is SHANGHAI
    assert slot.utcoffset() == timedelta(hours=8)
    assert slot == datetime(2025, 10, 9, 1, 35, tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "weekday", "month_day"),
    [(DAILY, None, None), (WEEKLY, MON, None), (MONTHLY, None, 5), (MONTHLY, None, 31)],
)
def test_a_date_beyond_the_calendar_raises(schedule, weekday, month_day):
    """2027 is not in the calendar: the slot is an error that names the calendar's end, never a guess."""
    with pytest.raises(CalendarUnknown, match="2026-12-31"):
        slot_for_date(rotation(schedule, weekday=weekday, month_day=month_day), date(2027, 1, 5))


def test_a_gap_raises_even_inside_the_known_range():
    """A missing day inside the calendar stops the walk instead of skipping over it."""
    TradingDay.objects.filter(date=date(2025, 10, 8)).delete()
    with pytest.raises(CalendarUnknown, match="2025-10-08"):
        slot_for_date(rotation(WEEKLY, weekday=MON), date(2025, 10, 6))


# --- due_slots ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("clock", "due"),
    [
        ("09:00", False),
        ("14:49", False),
        ("14:49:59", False),
        ("14:50", True),
        ("14:52", True),
        ("23:59", True),
    ],
)
def test_due_only_from_run_time(clock, due):
    """The slot is due from its run time to the end of its market day (lateness is the job's business)."""
    day = date(2025, 10, 9)
    assert due_slots(rotation(DAILY), at(day, clock)) == ([at(day)] if due else [])


def test_due_accepts_any_time_zone():
    """06:50 UTC is 14:50 in Shanghai: due, whatever zone `now` comes in."""
    assert due_slots(rotation(DAILY), datetime(2025, 10, 9, 6, 50, tzinfo=UTC)) == [at(date(2025, 10, 9))]


def test_due_refuses_naive_now():
    with pytest.raises(ValueError, match="aware"):
        due_slots(rotation(DAILY), datetime(2025, 10, 9, 14, 50))


@pytest.mark.parametrize(
    ("schedule", "weekday", "month_day", "day", "due_day"),
    [
        (DAILY, None, None, date(2025, 10, 6), None),  # holiday
        (WEEKLY, MON, None, date(2025, 10, 6), None),  # the chosen day itself is closed
        (WEEKLY, MON, None, date(2025, 10, 9), date(2025, 10, 9)),  # moved here
        (WEEKLY, MON, None, date(2025, 10, 10), None),  # already ran yesterday
        (WEEKLY, FRI, None, date(2025, 10, 9), date(2025, 10, 9)),  # last week's Friday moved here
        (WEEKLY, FRI, None, date(2025, 10, 10), date(2025, 10, 10)),  # this week's own Friday
        (MONTHLY, None, 15, date(2025, 6, 16), date(2025, 6, 16)),
        (MONTHLY, None, 15, date(2025, 6, 17), None),
        (MONTHLY, None, 30, date(2024, 11, 29), date(2024, 11, 29)),  # 30 is a Saturday: last trading day
        (MONTHLY, None, 30, date(2024, 12, 2), None),  # not moved into December
        (MONTHLY, None, 31, date(2024, 11, 29), date(2024, 11, 29)),
        (MONTHLY, None, 31, date(2024, 11, 28), None),
    ],
)
def test_due_slots_on_a_day(schedule, weekday, month_day, day, due_day):
    """A moved slot is due on the day it moved to, and only then."""
    due = due_slots(rotation(schedule, weekday=weekday, month_day=month_day), at(day, "15:00"))
    assert due == ([at(due_day)] if due_day else [])


def test_two_weeks_moved_onto_one_day_make_one_slot():
    """Spring Festival 2026 closes both Mondays 02-16 and 02-23: both weeks' runs are the one 02-24 slot."""
    weekly_monday = rotation(WEEKLY, weekday=MON)
    assert slot_for_date(weekly_monday, date(2026, 2, 18)) == slot_for_date(weekly_monday, date(2026, 2, 25))
    assert due_slots(weekly_monday, at(date(2026, 2, 24), "15:00")) == [at(date(2026, 2, 24))]


def test_due_on_a_day_beyond_the_calendar_raises():
    """The due check cannot tell whether 2027-01-05 trades: it says so instead of running or skipping."""
    with pytest.raises(CalendarUnknown):
        due_slots(rotation(DAILY), at(date(2027, 1, 5)))


def test_a_gap_after_today_does_not_block_today():
    """Weekly Friday in the calendar's last week: that Friday (2027-01-01) is unknown, but nothing is due today."""
    assert due_slots(rotation(WEEKLY, weekday=FRI), at(date(2026, 12, 28), "15:00")) == []


def test_month_end_due_needs_the_rest_of_the_month():
    """Whether today is the month's last trading day depends on the days after it: unknown ones raise."""
    TradingDay.objects.filter(date=date(2026, 11, 30)).delete()
    with pytest.raises(CalendarUnknown, match="2026-11-30"):
        due_slots(rotation(MONTHLY, month_day=31), at(date(2026, 11, 27), "15:00"))


# --- next_slot ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "weekday", "month_day", "now", "expected"),
    [
        (DAILY, None, None, at(date(2025, 9, 30), "14:49"), at(date(2025, 9, 30))),
        (DAILY, None, None, at(date(2025, 9, 30), "14:50"), at(date(2025, 10, 9))),  # past the holiday
        (WEEKLY, FRI, None, at(date(2025, 10, 5), "10:00"), at(date(2025, 10, 9))),  # last week's, moved
        (WEEKLY, FRI, None, at(date(2025, 10, 9), "15:00"), at(date(2025, 10, 10))),
        (WEEKLY, MON, None, at(date(2025, 10, 14), "10:00"), at(date(2025, 10, 20))),
        (MONTHLY, None, 31, at(date(2026, 2, 1), "10:00"), at(date(2026, 2, 27))),
        (MONTHLY, None, 15, at(date(2025, 6, 16), "15:00"), at(date(2025, 7, 15))),
    ],
)
def test_next_slot(schedule, weekday, month_day, now, expected):
    """The next run shown to the user is the first slot after now, moves included."""
    assert next_slot(rotation(schedule, weekday=weekday, month_day=month_day), now) == expected


def test_next_slot_of_a_disabled_rotation_is_none():
    assert next_slot(rotation(DAILY, enabled=False), at(date(2025, 10, 9), "10:00")) is None


def test_next_slot_beyond_the_calendar_raises():
    """After the last known trading day the next run is unknown, and said so."""
    with pytest.raises(CalendarUnknown):
        next_slot(rotation(DAILY), at(date(2026, 12, 31), "15:00"))
