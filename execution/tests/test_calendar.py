"""Trading calendar (XSHG holidays, unknown dates, refresh sources), trading hours, command and admin."""

import importlib
import json
import logging
import sys
import types
from datetime import UTC, date, datetime
from io import StringIO
from types import SimpleNamespace

import pytest
from django.apps import apps as django_apps
from django.contrib.messages import get_messages
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone, translation

from execution import calendar
from execution.calendar import CalendarSourceError, CalendarUnknown, SessionState
from execution.models import TradingDay

pytestmark = pytest.mark.django_db

SHANGHAI = calendar.SHANGHAI
Source = TradingDay.Source


@pytest.fixture
def seeded():
    """Exactly XSHG 2023..2026 from exchange_calendars, whether or not the migration's rows are still there."""
    start, end = date(2023, 1, 1), date(2026, 12, 31)
    TradingDay.objects.exclude(date__range=(start, end)).delete()
    TradingDay.objects.exclude(source=Source.EXCHANGE_CALENDARS).delete()
    calendar.calendar_seed_from_exchange_calendars(start=start, end=end)
    assert TradingDay.objects.count() == 1461


@pytest.fixture
def english():
    with translation.override("en"):
        yield


def fixed_today(monkeypatch, day: date):
    monkeypatch.setattr(timezone, "localdate", lambda value=None, timezone=None: day)


def shanghai_ms(day: date) -> int:
    """What xtdata returns for a trading day: milliseconds of Beijing midnight."""
    return int(datetime(day.year, day.month, day.day, tzinfo=SHANGHAI).timestamp() * 1000)


class XtdataStandIn:
    """Answers get_trading_dates like xtquant.xtdata, from a list of open days."""

    def __init__(self, open_days, *, error=None):
        self.open_days = sorted(open_days)
        self.error = error
        self.calls = []

    def get_trading_dates(self, market, start_time="", end_time="", count=-1):
        self.calls.append((market, start_time, end_time, count))
        if self.error:
            raise self.error
        return [shanghai_ms(day) for day in self.open_days]


# --- trading days ------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "is_open"),
    [
        (date(2025, 9, 26), True),  # Friday before National Day
        (date(2025, 9, 27), False),  # Saturday
        (date(2025, 9, 28), False),  # Sunday make-up working day: exchanges stay closed
        (date(2025, 9, 30), True),
        *[(date(2025, 10, d), False) for d in range(1, 9)],  # National Day + Mid-Autumn 10-01..08
        (date(2025, 10, 9), True),
        (date(2025, 10, 11), False),  # Saturday make-up working day
        (date(2025, 10, 13), True),
        (date(2026, 1, 1), False),  # New Year
        (date(2026, 2, 13), True),  # last day before Spring Festival 2026
        (date(2026, 2, 14), False),  # Saturday make-up working day
        *[(date(2026, 2, d), False) for d in (16, 17, 18, 19, 20, 23)],  # Spring Festival weekdays
        (date(2026, 2, 24), True),
        (date(2026, 2, 28), False),  # Saturday make-up working day
        (date(2026, 12, 31), True),
    ],
)
def test_is_trading_day_follows_xshg(seeded, day, is_open):
    """Weekends, holidays and weekend make-up working days are closed; normal weekdays open."""
    assert calendar.is_trading_day(day) is is_open


@pytest.mark.parametrize(
    ("function", "day", "expected"),
    [
        ("next", date(2025, 9, 30), date(2025, 10, 9)),  # across National Day
        ("next", date(2025, 10, 31), date(2025, 11, 3)),  # across a month end and a weekend
        ("next", date(2026, 2, 13), date(2026, 2, 24)),  # across Spring Festival
        ("next_incl", date(2025, 9, 30), date(2025, 9, 30)),
        ("next_incl", date(2025, 10, 1), date(2025, 10, 9)),
        ("previous", date(2025, 10, 9), date(2025, 9, 30)),
        ("previous", date(2025, 11, 3), date(2025, 10, 31)),
        ("previous", date(2026, 2, 24), date(2026, 2, 13)),
    ],
)
def test_next_and_previous_trading_day(seeded, function, day, expected):
    """Neighbouring trading days skip holidays and weekends, across month ends."""
    if function == "next":
        assert calendar.next_trading_day(day) == expected
    elif function == "next_incl":
        assert calendar.next_trading_day(day, include_today=True) == expected
    else:
        assert calendar.previous_trading_day(day) == expected


@pytest.mark.parametrize(
    ("year", "month", "expected"),
    [
        (2023, 9, date(2023, 9, 28)),  # 09-29 Mid-Autumn holiday, 09-30 Saturday
        (2025, 5, date(2025, 5, 30)),  # 05-31 Saturday (Dragon Boat)
        (2026, 2, date(2026, 2, 27)),  # 02-28 Saturday make-up working day
        (2025, 9, date(2025, 9, 30)),  # last day itself open
    ],
)
def test_last_trading_day_of_month(seeded, year, month, expected):
    """A month ending on a holiday or weekend ends, for trading, on its last open day."""
    assert calendar.last_trading_day_of_month(year, month) == expected


@pytest.mark.parametrize(
    "ask",
    [
        lambda: calendar.is_trading_day(date(2027, 1, 4)),
        lambda: calendar.next_trading_day(date(2026, 12, 31)),
        lambda: calendar.previous_trading_day(date(2027, 1, 5)),
        lambda: calendar.last_trading_day_of_month(2027, 1),
    ],
)
def test_beyond_the_calendar_is_unknown_not_open(seeded, english, ask):
    """A Monday after the calendar's end is not assumed open; the error says where it ends and what to do."""
    with pytest.raises(CalendarUnknown, match=r"ends on 2026-12-31.*next year's trading days"):
        ask()


def test_gap_inside_the_calendar_is_unknown(seeded, english):
    """A missing row in the middle stops a walk instead of being skipped."""
    TradingDay.objects.filter(date=date(2025, 10, 5)).delete()
    with pytest.raises(CalendarUnknown, match="no entry for 2025-10-05"):
        calendar.next_trading_day(date(2025, 9, 30))
    assert calendar.next_trading_day(date(2025, 10, 6)) == date(2025, 10, 9)


def test_before_the_calendar_and_empty_calendar(seeded, english):
    with pytest.raises(CalendarUnknown, match="starts on 2023-01-01"):
        calendar.is_trading_day(date(2022, 12, 30))
    TradingDay.objects.all().delete()
    with pytest.raises(CalendarUnknown, match="calendar is empty"):
        calendar.is_trading_day(date(2025, 10, 9))


def test_datetimes_are_refused_as_days(seeded):
    """A datetime's calendar day depends on its zone, so callers must convert first."""
    with pytest.raises(TypeError):
        calendar.is_trading_day(datetime(2025, 10, 9, 1, tzinfo=UTC))


def test_known_until_and_warning(seeded, english):
    assert calendar.calendar_known_until() == date(2026, 12, 31)
    assert calendar.calendar_warning(date(2026, 11, 1)) is None
    soon = calendar.calendar_warning(date(2026, 12, 1))
    assert "ends on 2026-12-31 (in 30 days)" in soon
    assert "ended on 2026-12-31" in calendar.calendar_warning(date(2027, 1, 4))
    TradingDay.objects.all().delete()
    assert calendar.calendar_known_until() is None
    assert "empty" in calendar.calendar_warning(date(2026, 12, 1))


# --- sources -------------------------------------------------------------------


def test_reseeding_is_idempotent_and_keeps_admin_rows(seeded):
    """An admin's correction survives every refresh; an unchanged reseed writes nothing."""
    TradingDay.objects.filter(date=date(2025, 10, 9)).update(
        is_open=False, source=Source.ADMIN, note="typhoon"
    )
    assert calendar.calendar_seed_from_exchange_calendars(start=date(2023, 1, 1), end=date(2026, 12, 31)) == 0
    row = TradingDay.objects.get(date=date(2025, 10, 9))
    assert (row.is_open, row.source, row.note) == (False, Source.ADMIN, "typhoon")
    assert TradingDay.objects.count() == 1461


def test_seed_repairs_changed_rows_and_stops_at_the_library_end():
    TradingDay.objects.all().delete()
    TradingDay.objects.create(date=date(2026, 12, 30), is_open=False, source=Source.EXCHANGE_CALENDARS)
    stored = calendar.calendar_seed_from_exchange_calendars(start=date(2026, 12, 1), end=date(2027, 3, 31))
    assert stored == 31  # 30 new days plus the repaired one; nothing invented for 2027
    assert calendar.is_trading_day(date(2026, 12, 30))
    assert calendar.calendar_known_until() == date(2026, 12, 31)


def test_seed_without_exchange_calendars_is_a_clear_error(monkeypatch, english):
    monkeypatch.setitem(sys.modules, "exchange_calendars", None)
    with pytest.raises(CalendarSourceError, match="pip install exchange_calendars"):
        calendar.calendar_seed_from_exchange_calendars(start=date(2025, 1, 1), end=date(2025, 1, 31))


def test_xtdata_refresh_stores_open_and_closed_days_and_wins_over_the_library(seeded):
    """xtdata's open days become open rows, days between them closed; admin rows stay; weekends never open."""
    TradingDay.objects.filter(date=date(2025, 10, 13)).update(is_open=False, source=Source.ADMIN)
    # The broker closes 10-10 (say, a late-announced closure) and wrongly lists Saturday 10-11 as open.
    open_days = [
        date(2025, 9, 29),
        date(2025, 9, 30),
        date(2025, 10, 9),
        date(2025, 10, 11),
        date(2025, 10, 13),
    ]
    xtdata = XtdataStandIn(open_days)
    stored = calendar.calendar_refresh_from_xtdata(
        xtdata_module=xtdata, start=date(2025, 9, 29), end=date(2025, 10, 13)
    )
    assert xtdata.calls == [("SH", "20250929", "20251013", -1)]
    rows = {
        row.date: row
        for row in TradingDay.objects.filter(date__range=(date(2025, 9, 29), date(2025, 10, 13)))
    }
    assert rows[date(2025, 10, 10)].is_open is False
    assert rows[date(2025, 10, 11)].is_open is False
    assert rows[date(2025, 10, 9)].is_open is True
    assert (rows[date(2025, 10, 13)].is_open, rows[date(2025, 10, 13)].source) == (False, Source.ADMIN)
    assert {row.source for d, row in rows.items() if d != date(2025, 10, 13)} == {Source.XTDATA}
    assert stored == 14
    # The library does not undo the broker's calendar.
    calendar.calendar_seed_from_exchange_calendars(start=date(2025, 9, 1), end=date(2025, 10, 31))
    assert calendar.is_trading_day(date(2025, 10, 10)) is False
    # The same answer again changes nothing.
    assert calendar.calendar_refresh_from_xtdata(xtdata_module=xtdata, start=date(2025, 9, 29)) == 0


def test_xtdata_refresh_fills_an_empty_table_between_open_days():
    TradingDay.objects.all().delete()
    xtdata = XtdataStandIn([date(2027, 1, 4), date(2027, 1, 5), date(2027, 1, 8)])
    assert calendar.calendar_refresh_from_xtdata(xtdata_module=xtdata, start=date(2027, 1, 1)) == 5
    assert [calendar.is_trading_day(date(2027, 1, d)) for d in range(4, 9)] == [
        True,
        True,
        False,
        False,
        True,
    ]
    with pytest.raises(CalendarUnknown):
        calendar.is_trading_day(date(2027, 1, 1))  # before xtdata's first open day: not claimed


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (shanghai_ms(date(2025, 10, 9)), date(2025, 10, 9)),  # 2025-10-08 16:00 UTC
        (float(shanghai_ms(date(2025, 10, 9))), date(2025, 10, 9)),
        ("20251009", date(2025, 10, 9)),
        (20251009, date(2025, 10, 9)),
        (date(2025, 10, 9), date(2025, 10, 9)),
    ],
)
def test_xtdata_day_formats(value, expected):
    assert calendar._xtdata_date(value) == expected


def test_xtdata_unavailable_returns_zero_with_a_warning(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "xtquant", None)  # import fails at once, no network check
    with caplog.at_level(logging.WARNING, logger="execution.calendar"):
        assert calendar.calendar_refresh_from_xtdata() == 0
    assert "xtquant is not usable" in caplog.text


@pytest.mark.parametrize(
    "xtdata", [XtdataStandIn([], error=RuntimeError("not connected")), XtdataStandIn([])]
)
def test_xtdata_failure_or_empty_answer_raises(seeded, xtdata):
    with pytest.raises(CalendarSourceError):
        calendar.calendar_refresh_from_xtdata(xtdata_module=xtdata, start=date(2025, 1, 1))
    assert TradingDay.objects.count() == 1461


def test_year_added_by_admin(seeded):
    """A year no public calendar knows: weekdays open except the holidays, weekends closed, as admin rows."""
    stored = calendar.calendar_year_add(year=2027, holidays=[date(2027, 1, 1), date(2027, 2, 8)])
    assert stored == 365
    assert calendar.is_trading_day(date(2027, 1, 4))
    assert not calendar.is_trading_day(date(2027, 1, 1))
    assert not calendar.is_trading_day(date(2027, 1, 9))  # Saturday
    assert not calendar.is_trading_day(date(2027, 2, 8))
    assert calendar.next_trading_day(date(2026, 12, 31)) == date(2027, 1, 4)
    assert set(TradingDay.objects.filter(date__year=2027).values_list("source", flat=True)) == {Source.ADMIN}
    with pytest.raises(ValueError, match="outside 2027"):
        calendar.calendar_year_add(year=2027, holidays=[date(2026, 12, 31)])


def test_seed_migration_fills_2015_to_2026():
    migration = importlib.import_module("execution.migrations.0002_seed_calendar")
    TradingDay.objects.all().delete()
    migration.seed(django_apps, SimpleNamespace(connection=connection))
    assert TradingDay.objects.count() == (date(2026, 12, 31) - date(2015, 1, 1)).days + 1
    assert TradingDay.objects.get(date=date(2015, 1, 5)).is_open
    assert not TradingDay.objects.get(date=date(2025, 10, 1)).is_open


# --- trading hours -------------------------------------------------------------


def utc_for_shanghai(day: date, hhmm: str) -> datetime:
    hours, minutes = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hours, minutes, tzinfo=SHANGHAI).astimezone(UTC)


@pytest.mark.parametrize(
    ("hhmm", "state", "can_place", "can_place_in_auction", "can_cancel"),
    [
        ("09:29", SessionState.PRE_OPEN, False, False, False),
        ("09:30", SessionState.MORNING, True, True, True),
        ("11:29", SessionState.MORNING, True, True, True),
        ("11:30", SessionState.LUNCH, False, False, False),
        ("11:31", SessionState.LUNCH, False, False, False),
        ("12:59", SessionState.LUNCH, False, False, False),
        ("13:00", SessionState.AFTERNOON, True, True, True),
        ("14:56", SessionState.AFTERNOON, True, True, True),
        ("14:57", SessionState.CLOSING_AUCTION, False, True, False),
        ("14:59", SessionState.CLOSING_AUCTION, False, True, False),
        ("15:00", SessionState.AFTER_CLOSE, False, False, False),
        ("15:01", SessionState.AFTER_CLOSE, False, False, False),
    ],
)
def test_trading_hours_on_a_trading_day(seeded, hhmm, state, can_place, can_place_in_auction, can_cancel):
    """Given UTC instants, sessions follow the Shanghai clock; the closing auction takes orders only if allowed."""
    now = utc_for_shanghai(date(2025, 9, 30), hhmm)
    assert now.tzinfo is UTC
    assert calendar.session_state(now) == state
    allowed, reason = calendar.can_place_orders(now)
    assert allowed is can_place
    assert bool(reason) is not can_place
    assert calendar.can_place_orders(now, allow_closing_auction=True)[0] is can_place_in_auction
    assert calendar.can_cancel_orders(now) is can_cancel


@pytest.mark.parametrize(
    ("now", "state"),
    [
        (utc_for_shanghai(date(2025, 10, 1), "10:00"), SessionState.CLOSED_DAY),
        (utc_for_shanghai(date(2025, 9, 28), "10:00"), SessionState.CLOSED_DAY),  # make-up working Sunday
        # UTC evening of 10-08 is the morning of 10-09 in Shanghai: a trading day.
        (datetime(2025, 10, 8, 20, 0, tzinfo=UTC), SessionState.PRE_OPEN),
        (datetime(2025, 10, 9, 2, 0, tzinfo=UTC), SessionState.MORNING),
        # UTC afternoon of 09-30 is already 10-01 in Shanghai: closed.
        (datetime(2025, 9, 30, 17, 0, tzinfo=UTC), SessionState.CLOSED_DAY),
    ],
)
def test_session_day_is_the_shanghai_day(seeded, now, state):
    assert calendar.session_state(now) == state


def test_closed_day_reasons(seeded, english):
    now = utc_for_shanghai(date(2025, 10, 1), "10:00")
    assert calendar.can_place_orders(now) == (
        False,
        "The exchange is closed on 2025-10-01 (not a trading day).",
    )
    assert calendar.can_cancel_orders(now) is False
    auction = calendar.can_place_orders(utc_for_shanghai(date(2025, 9, 30), "14:58"))
    assert "cannot be cancelled" in auction[1]


def test_trading_hours_beyond_the_calendar(seeded, english):
    """Past the calendar's end the worker gets a refusal that says why, never a guess."""
    now = utc_for_shanghai(date(2027, 1, 4), "10:00")
    with pytest.raises(CalendarUnknown):
        calendar.session_state(now)
    allowed, reason = calendar.can_place_orders(now)
    assert not allowed and "ends on 2026-12-31" in reason
    assert calendar.can_cancel_orders(now) is False


def test_naive_datetimes_are_refused(seeded):
    with pytest.raises(ValueError):
        calendar.session_state(datetime(2025, 9, 30, 10, 0))


# --- command -------------------------------------------------------------------


def test_command_seeds_a_range_and_reports(monkeypatch):
    TradingDay.objects.all().delete()
    fixed_today(monkeypatch, date(2025, 12, 15))
    out = StringIO()
    call_command("calendar_refresh", "--start", "2025-01-01", "--end", "2025-12-31", stdout=out)
    text = out.getvalue()
    assert "365 days added or changed from exchange_calendars" in text
    assert "known until: 2025-12-31" in text
    assert "WARNING" in text  # ends in 16 days
    assert TradingDay.objects.count() == 365


def test_command_json_and_defaults(monkeypatch):
    TradingDay.objects.all().delete()
    fixed_today(monkeypatch, date(2025, 6, 1))
    out = StringIO()
    call_command("calendar_refresh", "--json", stdout=out)
    printed = json.loads(out.getvalue())
    # Default: last year through next year, as far as the library knows.
    assert printed == {
        "source": "exchange_calendars (XSHG)",
        "stored": (date(2026, 12, 31) - date(2024, 1, 1)).days + 1,
        "known_until": "2026-12-31",
        "warning": None,
        "disagreements": [],
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2025-13-01"], "YYYY-MM-DD"),
        (["--end", "tomorrow"], "YYYY-MM-DD"),
        (["--start", "2025-02-01", "--end", "2025-01-01"], "before --start"),
        (["--holiday", "2027-01-01"], "needs --add-year"),
        (["--add-year", "2027", "--start", "2027-01-01"], "cannot be combined"),
        (["--add-year", "2027", "--holiday", "2026-12-31"], "outside 2027"),
        (["--add-year", "2027", "--holiday", "2027-02-12..2027-02-05"], "ends before it starts"),
    ],
)
def test_command_rejects_bad_input(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("calendar_refresh", *args, stdout=StringIO())


def test_command_add_year_with_holiday_ranges(seeded):
    out = StringIO()
    call_command(
        "calendar_refresh",
        "--add-year",
        "2027",
        "--holiday",
        "2027-01-01",
        "--holiday",
        "2027-02-08..2027-02-12",
        stdout=out,
    )
    assert "365 days added or changed" in out.getvalue()
    assert [calendar.is_trading_day(date(2027, 2, d)) for d in range(5, 16)] == [
        True, False, False, False, False, False, False, False, False, False, True,
    ]  # fmt: skip


def test_command_from_xtdata(seeded, monkeypatch):
    xtdata = XtdataStandIn([date(2025, 10, 9), date(2025, 10, 13)])
    monkeypatch.setitem(sys.modules, "xtquant", types.SimpleNamespace(xtdata=xtdata))
    out = StringIO()
    call_command("calendar_refresh", "--from-xtdata", "--start", "2025-10-01", stdout=out)
    assert "5 days added or changed from xtdata" in out.getvalue()
    assert xtdata.calls == [("SH", "20251001", "", -1)]
    assert not calendar.is_trading_day(date(2025, 10, 10))


def test_command_from_xtdata_without_xtquant(seeded, monkeypatch):
    monkeypatch.setitem(sys.modules, "xtquant", None)
    with pytest.raises(CommandError, match="xtquant is not usable"):
        call_command("calendar_refresh", "--from-xtdata", stdout=StringIO())


def test_command_from_xtdata_failure(seeded, monkeypatch):
    xtdata = XtdataStandIn([], error=OSError("MiniQMT not running"))
    monkeypatch.setitem(sys.modules, "xtquant", types.SimpleNamespace(xtdata=xtdata))
    with pytest.raises(CommandError, match="MiniQMT not running"):
        call_command("calendar_refresh", "--from-xtdata", stdout=StringIO())


# --- admin ---------------------------------------------------------------------


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


def test_admin_changelist_search_and_drilldown(seeded, admin_client):
    TradingDay.objects.filter(date=date(2025, 10, 9)).update(note="typhoon")
    url = reverse("admin:execution_tradingday_changelist")
    response = admin_client.get(url, {"q": "typhoon"})
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
    response = admin_client.get(url, {"date__year": "2025", "date__month": "10", "is_open__exact": "0"})
    assert response.status_code == 200
    assert response.context["cl"].result_count == 8 + 6  # holidays 10-01..08 and the six weekend days after


def test_admin_add_and_change_pages(seeded, admin_client):
    row = TradingDay.objects.get(date=date(2025, 10, 9))
    assert admin_client.get(reverse("admin:execution_tradingday_add")).status_code == 200
    assert admin_client.get(reverse("admin:execution_tradingday_change", args=[row.pk])).status_code == 200


def test_admin_edit_marks_the_row_as_admin(seeded, admin_client):
    """An admin's edit is stored as source=admin, so no refresh undoes it."""
    row = TradingDay.objects.get(date=date(2025, 10, 9))
    # is_open left unticked: the admin closes the day.
    response = admin_client.post(
        reverse("admin:execution_tradingday_change", args=[row.pk]), {"note": "closed by CSRC notice"}
    )
    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.is_open, row.source, row.note) == (False, Source.ADMIN, "closed by CSRC notice")
    calendar.calendar_seed_from_exchange_calendars(start=date(2025, 10, 1), end=date(2025, 10, 31))
    assert calendar.is_trading_day(date(2025, 10, 9)) is False


def test_admin_adds_a_day_beyond_the_calendar(seeded, admin_client):
    response = admin_client.post(
        reverse("admin:execution_tradingday_add"), {"date": "2027-01-01", "is_open": "", "note": "New Year"}
    )
    assert response.status_code == 302
    assert TradingDay.objects.get(date=date(2027, 1, 1)).source == Source.ADMIN
    assert calendar.calendar_known_until() == date(2027, 1, 1)


def test_admin_list_editable_marks_the_row_as_admin(seeded, admin_client):
    row = TradingDay.objects.get(date=date(2025, 10, 9))
    url = reverse("admin:execution_tradingday_changelist") + "?date__year=2025&date__month=10&date__day=9"
    response = admin_client.post(
        url,
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": str(row.pk),  # is_open unticked: closed
            "_save": "Save",
        },
    )
    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.is_open, row.source) == (False, Source.ADMIN)


@pytest.mark.parametrize("select_a_row", [True, False])
def test_admin_seed_action(admin_client, monkeypatch, select_a_row):
    """The seed action fills last, this and next year as far as the library knows, with or without a selection."""
    fixed_today(monkeypatch, date(2026, 6, 1))
    TradingDay.objects.all().delete()
    keep = TradingDay.objects.create(date=date(2025, 10, 9), is_open=False, source=Source.ADMIN)
    post = {"action": "seed_from_exchange_calendars", "index": "0"}
    if select_a_row:
        post["_selected_action"] = [str(keep.pk)]
    response = admin_client.post(reverse("admin:execution_tradingday_changelist"), post)
    assert response.status_code == 302
    expected = (date(2026, 12, 31) - date(2025, 1, 1)).days  # every day but the admin row
    assert TradingDay.objects.count() == expected + 1
    assert TradingDay.objects.get(pk=keep.pk).is_open is False
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert any(str(expected) in text and "2026-12-31" in text for text in texts)


def test_admin_seed_action_warns_near_the_end(seeded, admin_client, monkeypatch):
    fixed_today(monkeypatch, date(2026, 12, 10))
    response = admin_client.post(
        reverse("admin:execution_tradingday_changelist"),
        {"action": "seed_from_exchange_calendars", "index": "0"},
        follow=True,
    )
    levels = [m.level_tag for m in response.context["messages"]]
    assert levels == ["success", "warning"]


def test_tradingday_str():
    assert str(TradingDay(date=date(2025, 10, 9), is_open=True)) == "2025-10-09 open"
    assert str(TradingDay(date=date(2025, 10, 1), is_open=False)) == "2025-10-01 closed"


# --- several sources: a day closed by any source stays closed unless an admin opens it --------------

DAY = date(2026, 6, 10)  # a Wednesday; its neighbours are open in every source below
NEIGHBOURS = (date(2026, 6, 9), date(2026, 6, 11))


def _apply(step, monkeypatch):
    """One refresh of DAY (and its open neighbours) from one source: ("lib"|"xt"|"admin", open)."""
    source, is_open = step
    library = {NEIGHBOURS[0]: True, DAY: is_open, NEIGHBOURS[1]: True}
    if source == "lib":
        monkeypatch.setattr(calendar, "exchange_calendar_days", lambda start, end: library)
        return calendar.calendar_seed_from_exchange_calendars(start=NEIGHBOURS[0], end=NEIGHBOURS[1])
    if source == "xt":
        open_days = [*NEIGHBOURS, DAY] if is_open else list(NEIGHBOURS)
        return calendar.calendar_refresh_from_xtdata(
            xtdata_module=XtdataStandIn(open_days), start=NEIGHBOURS[0], end=NEIGHBOURS[1]
        )
    TradingDay.objects.update_or_create(date=DAY, defaults={"is_open": is_open, "source": Source.ADMIN})
    return calendar.CalendarStored(1)


@pytest.mark.parametrize(
    ("steps", "library_now", "expected_open", "disagree"),
    [
        # (refreshes in order, what exchange_calendars says when xtdata refreshes, DAY open?, reported?)
        ([("lib", True), ("xt", True)], True, True, False),
        ([("lib", False), ("xt", False)], False, False, False),
        ([("lib", False), ("xt", True)], False, False, True),  # xtdata must not open a library holiday
        ([("xt", True)], False, False, True),  # ... even when the table had no row for it yet
        ([("lib", True), ("xt", False)], True, False, True),  # the broker closes a day: closed
        ([("xt", True), ("lib", False)], True, False, True),  # the library closes an xtdata day later
        ([("xt", False), ("lib", True)], True, False, True),  # the library cannot reopen it
        ([("lib", False), ("lib", True)], True, True, False),  # a source corrects itself
        ([("xt", False), ("xt", True)], True, True, False),
        ([("admin", False), ("xt", True)], True, False, True),  # an admin's closure stands
        ([("lib", False), ("admin", True), ("xt", False)], False, True, True),  # an admin opened it
        ([("admin", True), ("lib", False)], False, True, True),
        # Both closed it, and exchange_calendars is not installed where xtdata refreshes (None): the
        # library's closure is remembered, so xtdata alone cannot reopen the day (issue 8).
        ([("lib", False), ("xt", False), ("xt", True)], None, False, True),
        ([("xt", False), ("lib", False), ("xt", True)], None, False, True),
        ([("lib", False), ("xt", False), ("lib", True)], None, False, True),  # nor the library alone
        ([("xt", False), ("xt", True)], None, True, False),  # xtdata still corrects itself
        ([("lib", False), ("xt", False), ("lib", True), ("xt", True)], None, True, False),  # both did
    ],
)
def test_closed_by_any_source_stays_closed(monkeypatch, english, steps, library_now, expected_open, disagree):
    TradingDay.objects.all().delete()

    def library_at_xtdata_refresh(start, end):
        if library_now is None:
            raise CalendarSourceError("exchange_calendars is not installed: pip install exchange_calendars")
        return {NEIGHBOURS[0]: True, DAY: library_now, NEIGHBOURS[1]: True}

    for step in steps:
        if step[0] == "xt":  # what the library says at the time of the xtdata refresh
            monkeypatch.setattr(calendar, "exchange_calendar_days", library_at_xtdata_refresh)
        result = _apply(step, monkeypatch)
    assert calendar.is_trading_day(DAY) is expected_open
    reported = [line for line in result.disagreements if str(DAY) in line]
    assert bool(reported) is disagree, result.disagreements
    if disagree:
        assert "says open" in reported[0] and "says closed" in reported[0]
    assert all(calendar.is_trading_day(day) for day in NEIGHBOURS)


def test_disagreements_are_logged_and_noted_on_the_row(monkeypatch, english, caplog):
    """Visible three ways: a warning in the log, the row's note in admin, and the refresh's own answer."""
    TradingDay.objects.all().delete()
    _apply(("lib", False), monkeypatch)
    with caplog.at_level(logging.WARNING, logger="execution.calendar"):
        result = _apply(("xt", True), monkeypatch)
    assert len(result.disagreements) == 1
    assert "2026-06-10" in caplog.text and "kept closed" in caplog.text
    row = TradingDay.objects.get(date=DAY)
    assert (row.is_open, row.note) == (False, result.disagreements[0][:200])
    assert int(result) == 3  # the two neighbours became xtdata rows; DAY only got its note
    assert int(_apply(("xt", True), monkeypatch)) == 0  # the same answer again changes nothing


def test_refresh_command_lists_disagreements(monkeypatch, english):
    TradingDay.objects.all().delete()
    _apply(("lib", False), monkeypatch)
    xtdata = XtdataStandIn([*NEIGHBOURS, DAY])
    monkeypatch.setitem(sys.modules, "xtquant", types.SimpleNamespace(xtdata=xtdata))
    out = StringIO()
    call_command("calendar_refresh", "--from-xtdata", "--start", "2026-06-09", "--end", "2026-06-11", stdout=out)
    assert "Sources disagree on 1 day(s)" in out.getvalue()
    assert "2026-06-10: xtdata (MiniQMT) says open, exchange_calendars (XSHG) says closed" in out.getvalue()
    payload = StringIO()
    call_command(
        "calendar_refresh", "--from-xtdata", "--start", "2026-06-09", "--end", "2026-06-11", "--json",
        stdout=payload,
    )
    assert len(json.loads(payload.getvalue())["disagreements"]) == 1
