"""Trading calendar and trading hours (DESIGN §4).

Trading days live in the `TradingDay` table: seeded from `exchange_calendars`
(XSHG), refreshed from `xtdata.get_trading_dates` on the trading PC, edited by
the admin. A date without a row is unknown: every question about it raises
`CalendarUnknown` instead of guessing that a weekday is open (both public
calendars stop at the end of the year they were published for).

When sources disagree, a day that any of them (exchange_calendars, xtdata, an
admin row) closes stays closed; only an admin can open it. An admin row is never
overwritten by a refresh. Each disagreement is logged, noted on the row and
returned with the refresh's count (`CalendarStored.disagreements`).
"""

import logging
import warnings
from calendar import monthrange
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from django.db.models import Max, Min
from django.utils import timezone
from django.utils.translation import gettext as _

from .calendar_store import CalendarStored, _days_store
from .models import TradingDay

logger = logging.getLogger(__name__)

# Exchange time, whatever TIME_ZONE the deployment uses.
SHANGHAI = ZoneInfo("Asia/Shanghai")

MORNING_OPEN = time(9, 30)
MORNING_CLOSE = time(11, 30)
AFTERNOON_OPEN = time(13, 0)
# SSE and SZSE run a closing call auction from 14:57 in which orders cannot
# be cancelled.
CLOSING_AUCTION_START = time(14, 57)
MARKET_CLOSE = time(15, 0)

WARN_DAYS_BEFORE_END = 30
_WALK_WINDOW_DAYS = 31
Source = TradingDay.Source


class CalendarUnknown(Exception):
    """A date has no row in the trading calendar: nobody knows whether the exchange is open."""


class CalendarSourceError(Exception):
    """A calendar source (exchange_calendars) cannot be used here."""


class SessionState(StrEnum):
    CLOSED_DAY = "closed_day"
    PRE_OPEN = "pre_open"
    MORNING = "morning"
    LUNCH = "lunch"
    AFTERNOON = "afternoon"
    CLOSING_AUCTION = "closing_auction"
    AFTER_CLOSE = "after_close"


# --- selectors -------------------------------------------------------------


def market_time(now: datetime) -> datetime:
    """`now` on the exchange's clock; naive datetimes are refused (their zone is a guess)."""
    if timezone.is_naive(now):
        raise ValueError("an aware datetime is required")
    return now.astimezone(SHANGHAI)


def market_date(now: datetime) -> date:
    return market_time(now).date()


def calendar_known_range() -> tuple[date, date] | None:
    bounds = TradingDay.objects.aggregate(first=Min("date"), last=Max("date"))
    if bounds["first"] is None:
        return None
    return bounds["first"], bounds["last"]


def calendar_known_until() -> date | None:
    return TradingDay.objects.aggregate(last=Max("date"))["last"]


def _unknown(day: date) -> CalendarUnknown:
    known = calendar_known_range()
    if known is None:
        message = _(
            "The trading calendar is empty, so %(date)s is unknown. Run `manage.py calendar_refresh` "
            "or add trading days in admin."
        ) % {"date": day}
    elif day > known[1]:
        message = _(
            "The trading calendar ends on %(end)s; %(date)s is beyond it. An admin must add the next "
            "year's trading days (admin or `manage.py calendar_refresh`); weekdays are never assumed open."
        ) % {"end": known[1], "date": day}
    elif day < known[0]:
        message = _("The trading calendar starts on %(start)s; %(date)s is before it.") % {
            "start": known[0],
            "date": day,
        }
    else:
        message = _("The trading calendar has no entry for %(date)s; an admin must add it.") % {"date": day}
    return CalendarUnknown(message)


def _check_date(day: date) -> None:
    # A datetime is a date subclass; its calendar day depends on a zone, so make callers choose.
    if isinstance(day, datetime):
        raise TypeError("pass a date on the exchange's clock (see market_date), not a datetime")


def is_trading_day(day: date) -> bool:
    """Whether the exchange trades on `day`; raises CalendarUnknown when the calendar does not say."""
    _check_date(day)
    try:
        return TradingDay.objects.values_list("is_open", flat=True).get(date=day)
    except TradingDay.DoesNotExist:
        raise _unknown(day) from None


def _first_open_day(start: date, step: int) -> date:
    """Walk from `start` (inclusive) one day at a time in direction `step` to the first open day.

    Every day walked over must be known; a gap raises CalendarUnknown.
    """
    day = start
    while True:
        window_end = day + timedelta(days=step * _WALK_WINDOW_DAYS)
        known = dict(
            TradingDay.objects.filter(date__range=sorted((day, window_end))).values_list("date", "is_open")
        )
        for _step in range(_WALK_WINDOW_DAYS + 1):
            if day not in known:
                raise _unknown(day)
            if known[day]:
                return day
            day += timedelta(days=step)


def next_trading_day(day: date, *, include_today: bool = False) -> date:
    _check_date(day)
    return _first_open_day(day if include_today else day + timedelta(days=1), 1)


def previous_trading_day(day: date) -> date:
    _check_date(day)
    return _first_open_day(day - timedelta(days=1), -1)


def last_trading_day_of_month(year: int, month: int) -> date:
    last = date(year, month, monthrange(year, month)[1])
    found = _first_open_day(last, -1)
    if (found.year, found.month) != (year, month):
        raise CalendarUnknown(
            _("The trading calendar has no open day in %(month)s.") % {"month": f"{year}-{month:02d}"}
        )
    return found


def calendar_warning(today: date) -> str | None:
    """A loud warning when the calendar is empty, has ended, or ends within 30 days of `today`."""
    _check_date(today)
    known_until = calendar_known_until()
    if known_until is None:
        return _(
            "The trading calendar is empty: no trading until it is seeded (`manage.py calendar_refresh`) "
            "or trading days are added in admin."
        )
    if known_until < today:
        return _(
            "The trading calendar ended on %(date)s: trading is blocked until an admin adds the trading "
            "days after it."
        ) % {"date": known_until}
    days_left = (known_until - today).days
    if days_left <= WARN_DAYS_BEFORE_END:
        return _(
            "The trading calendar ends on %(date)s (in %(days)s days): an admin must add next year's "
            "trading days before then, or trading stops."
        ) % {"date": known_until, "days": days_left}
    return None


# --- trading hours ---------------------------------------------------------


def session_state(now: datetime) -> SessionState:
    """Where the exchange day stands at `now`; raises CalendarUnknown for a date off the calendar."""
    local = market_time(now)
    if not is_trading_day(local.date()):
        return SessionState.CLOSED_DAY
    clock = local.time()
    if clock < MORNING_OPEN:
        return SessionState.PRE_OPEN
    if clock < MORNING_CLOSE:
        return SessionState.MORNING
    if clock < AFTERNOON_OPEN:
        return SessionState.LUNCH
    if clock < CLOSING_AUCTION_START:
        return SessionState.AFTERNOON
    if clock < MARKET_CLOSE:
        return SessionState.CLOSING_AUCTION
    return SessionState.AFTER_CLOSE


def can_place_orders(now: datetime, *, allow_closing_auction: bool = False) -> tuple[bool, str]:
    """(True, "") when new orders may go out at `now`, else (False, the reason for a person)."""
    try:
        state = session_state(now)
    except CalendarUnknown as exc:
        return False, str(exc)
    if state in (SessionState.MORNING, SessionState.AFTERNOON):
        return True, ""
    if state == SessionState.CLOSING_AUCTION:
        if allow_closing_auction:
            return True, ""
        return False, _(
            "Closing call auction (14:57-15:00): orders cannot be cancelled then, and this account does "
            "not allow orders in it."
        )
    reasons = {
        SessionState.CLOSED_DAY: _("The exchange is closed on %(date)s (not a trading day).")
        % {"date": market_date(now)},
        SessionState.PRE_OPEN: _("Before the 09:30 open."),
        SessionState.LUNCH: _("Lunch break (11:30-13:00)."),
        SessionState.AFTER_CLOSE: _("After the 15:00 close."),
    }
    return False, reasons[state]


def can_cancel_orders(now: datetime) -> bool:
    """Cancels only in continuous trading: not in the closing auction, not outside sessions."""
    try:
        return session_state(now) in (SessionState.MORNING, SessionState.AFTERNOON)
    except CalendarUnknown:
        return False


# --- services --------------------------------------------------------------


def default_refresh_range(today: date) -> tuple[date, date]:
    """Last year through next year: what a routine refresh should cover."""
    return date(today.year - 1, 1, 1), date(today.year + 1, 12, 31)


def exchange_calendar_days(*, start: date, end: date) -> dict[date, bool]:
    """{date: open} for every calendar date in [start, end] that exchange_calendars' XSHG knows.

    Dates outside the library's range are left out, never guessed.
    """
    try:
        import exchange_calendars
        from exchange_calendars.exchange_calendar_xshg import XSHGExchangeCalendar
    except ImportError as exc:
        raise CalendarSourceError(
            _("exchange_calendars is not installed: pip install exchange_calendars")
        ) from exc
    first = max(start, XSHGExchangeCalendar.bound_min().date())
    last = min(end, XSHGExchangeCalendar.bound_max().date())
    if first > last:
        return {}
    with warnings.catch_warnings():
        # Newer pandas warns about deprecations inside the library; not ours to act on.
        warnings.simplefilter("ignore", DeprecationWarning)
        xshg = exchange_calendars.get_calendar("XSHG", start=first.isoformat(), end=last.isoformat())
    # The calendar is built for [first, last]: its sessions are exactly the open days in it.
    open_days = {session.date() for session in xshg.sessions}
    return {
        first + timedelta(days=n): first + timedelta(days=n) in open_days
        for n in range((last - first).days + 1)
    }


def calendar_seed_from_exchange_calendars(*, start: date, end: date) -> CalendarStored:
    """Store every date of [start, end] that exchange_calendars knows; returns rows added or changed.

    Idempotent. Admin and xtdata rows are not overwritten.
    """
    days = exchange_calendar_days(start=start, end=end)
    if len(days) < (end - start).days + 1:
        # Normal near a year's end; calendar_warning() is where it gets loud.
        logger.info(
            "exchange_calendars knows XSHG only for %s..%s of the requested %s..%s",
            min(days, default=None),
            max(days, default=None),
            start,
            end,
        )
    return _days_store(days, source=Source.EXCHANGE_CALENDARS)


def _xtdata_date(value) -> date:
    """A day from xtdata: a millisecond timestamp (Beijing midnight), or YYYYMMDD as text or number."""
    if isinstance(value, datetime):
        return value.astimezone(SHANGHAI).date() if timezone.is_aware(value) else value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return datetime.strptime(value.strip()[:8], "%Y%m%d").date()
    number = int(value)
    if 19_000_101 <= number <= 21_001_231:
        return datetime.strptime(str(number), "%Y%m%d").date()
    return datetime.fromtimestamp(number / 1000, tz=SHANGHAI).date()


def calendar_refresh_from_xtdata(
    *, xtdata_module=None, start: date | None = None, end: date | None = None
) -> CalendarStored:
    """Store MiniQMT's SH trading days and the closed days between them; returns rows added or changed.

    `xtdata_module` is `xtquant.xtdata` (imported here when None; without
    xtquant this logs a warning and returns 0). A failing or empty answer
    raises CalendarSourceError. Admin rows are not overwritten.
    """
    if xtdata_module is None:
        try:
            from xtquant import xtdata as xtdata_module
        except Exception as exc:  # ImportError, or its Windows-only native parts failing to load
            logger.warning("xtquant is not usable here (%s): trading calendar not refreshed from xtdata", exc)
            return CalendarStored(0)
    if start is None:
        start = default_refresh_range(timezone.localdate(timezone=SHANGHAI))[0]
    try:
        raw = xtdata_module.get_trading_dates(
            "SH", start.strftime("%Y%m%d"), end.strftime("%Y%m%d") if end else "", -1
        )
        open_days = {_xtdata_date(value) for value in raw or ()}
    except Exception as exc:  # the broker's data service is outside our control
        raise CalendarSourceError(
            _("xtdata.get_trading_dates failed: %(error)s") % {"error": f"{type(exc).__name__}: {exc}"}
        ) from exc
    open_days = {day for day in open_days if day >= start and (end is None or day <= end)}
    # Chinese exchanges never trade on a weekend, not even on make-up working days.
    weekend = sorted(day for day in open_days if day.weekday() >= 5)
    if weekend:
        logger.warning("xtdata lists weekend days as open, ignored: %s", ", ".join(map(str, weekend)))
        open_days -= set(weekend)
    if not open_days:
        raise CalendarSourceError(
            _("xtdata returned no SH trading days from %(start)s; is MiniQMT running and logged in?")
            % {"start": start}
        )
    first, last = min(open_days), max(open_days)
    days = {first + timedelta(days=n): False for n in range((last - first).days + 1)}
    days.update(dict.fromkeys(open_days, True))
    return _days_store(days, source=Source.XTDATA, closed_elsewhere=_library_closed(first, last))


def _library_closed(first: date, last: date) -> dict[date, str]:
    """Days exchange_calendars closes in [first, last], asked now (nothing when it is not installed)."""
    try:
        library = exchange_calendar_days(start=first, end=last)
    except CalendarSourceError as exc:
        logger.warning("cannot compare xtdata with exchange_calendars: %s", exc)
        return {}
    return {day: Source.EXCHANGE_CALENDARS for day, is_open in library.items() if not is_open}


def calendar_year_add(*, year: int, holidays: Iterable[date]) -> CalendarStored:
    """The admin's way to add a year no public calendar knows yet: weekdays open except `holidays`.

    Weekends are closed (make-up working days included: the exchanges stay
    closed on them). Stored as admin rows, so refreshes never undo them.
    """
    holidays = set(holidays)
    outside = sorted(day for day in holidays if day.year != year)
    if outside:
        raise ValueError(f"holidays outside {year}: {', '.join(map(str, outside))}")
    first = date(year, 1, 1)
    days = {}
    for n in range((date(year, 12, 31) - first).days + 1):
        day = first + timedelta(days=n)
        days[day] = day.weekday() < 5 and day not in holidays
    return _days_store(days, source=Source.ADMIN)
