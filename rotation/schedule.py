"""When a rotation runs: its slots on the trading calendar (DESIGN §8, issue 4 "Schedule").

A *slot* is the aware datetime (Asia/Shanghai) a rotation runs at for one
*period*: a day (daily), a Monday-to-Sunday week (weekly) or a calendar month
(monthly). The rules:

- daily: every trading day at `run_time`; a closed day has no slot.
- weekly on weekday W: that week's W; when the exchange is closed then, the
  next trading day, even when that falls in the following week (issue 4:
  "the run moves to the next trading day"; a Monday holiday moves the run to
  Tuesday). A Friday before the National Day week therefore runs on the first
  trading day after it, and that week also has its own Friday run. When two
  weeks' slots land on the same trading day (Spring Festival closing two
  Mondays) they are the same slot (same datetime), so they make one run.
- monthly on day D: that month's D, or, when the exchange is closed then, the
  next trading day of the same month. A run never leaves its month: when D is
  past the month's end (31 in April, 29-31 in February; issue 4) or no
  trading day is left in the month from D on (30 on a Saturday at the end of a
  30-day month), the slot is the month's LAST trading day. So every month has
  exactly one run, and a later D never runs before an earlier one (with "move
  to next month" a 30 would run on December 2 while a 31 ran on November 29,
  and a January 31 on a Saturday would put two runs in February and none in
  January). Users choose a day near the month's end to rebalance at month
  end; this keeps them there.

Every lookup goes through `execution.calendar`: a date the calendar does not
know raises `CalendarUnknown` instead of assuming a weekday is open.
"""

from calendar import monthrange
from datetime import date, datetime, timedelta

from execution.calendar import (
    SHANGHAI,
    is_trading_day,
    last_trading_day_of_month,
    market_date,
    next_trading_day,
)

from .models import RotationStrategy

Schedule = RotationStrategy.Schedule

# How many periods back a slot can have been moved from. Chinese exchange
# holidays last at most ~10 days, so one week back is enough (monthly slots
# never leave their month); the margin only costs a loop that stops at the
# first earlier slot.
_MAX_PERIODS_BACK = 6
# How far next_slot() looks ahead (daily: days; weekly: weeks; monthly: months).
_MAX_PERIODS_AHEAD = 40


def _slot_at(day: date, rotation: RotationStrategy) -> datetime:
    # run_time is exchange time, whatever TIME_ZONE the deployment uses.
    return datetime.combine(day, rotation.run_time, tzinfo=SHANGHAI)


def _week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _weekly_chosen_day(rotation: RotationStrategy, day: date) -> date:
    """The weekday the user chose, in the week containing `day`."""
    if rotation.weekday is None or not 0 <= rotation.weekday <= 6:
        raise ValueError(f"rotation {rotation.name!r}: a weekly schedule needs a weekday 0-6")
    return _week_start(day) + timedelta(days=rotation.weekday)


def _monthly_slot_day(rotation: RotationStrategy, day: date) -> date:
    if rotation.month_day is None or not 1 <= rotation.month_day <= 31:
        raise ValueError(f"rotation {rotation.name!r}: a monthly schedule needs a day of the month 1-31")
    last_open = last_trading_day_of_month(day.year, day.month)
    if rotation.month_day > monthrange(day.year, day.month)[1]:
        return last_open  # issue 4: a day past the month's end means its last trading day
    chosen = day.replace(day=rotation.month_day)
    if chosen > last_open:
        return last_open  # moving forward would leave the month (see the module docstring)
    return next_trading_day(chosen, include_today=True)


def _slot_day(rotation: RotationStrategy, day: date) -> date | None:
    """The trading day the period containing `day` runs on (None: a closed day of a daily schedule)."""
    if rotation.schedule == Schedule.DAILY:
        return day if is_trading_day(day) else None
    if rotation.schedule == Schedule.WEEKLY:
        return next_trading_day(_weekly_chosen_day(rotation, day), include_today=True)
    if rotation.schedule == Schedule.MONTHLY:
        return _monthly_slot_day(rotation, day)
    raise ValueError(f"rotation {rotation.name!r}: unknown schedule {rotation.schedule!r}")


def _period_before(rotation: RotationStrategy, day: date) -> date:
    """A day in the period before the one containing `day`."""
    if rotation.schedule == Schedule.WEEKLY:
        return day - timedelta(days=7)
    if rotation.schedule == Schedule.MONTHLY:
        return day.replace(day=1) - timedelta(days=1)
    return day - timedelta(days=1)


def _period_after(rotation: RotationStrategy, day: date) -> date:
    """A day in the period after the one containing `day`."""
    if rotation.schedule == Schedule.WEEKLY:
        return day + timedelta(days=7)
    if rotation.schedule == Schedule.MONTHLY:
        return day.replace(day=monthrange(day.year, day.month)[1]) + timedelta(days=1)
    return day + timedelta(days=1)


def slot_for_date(rotation: RotationStrategy, day: date) -> datetime | None:
    """The slot of the period (day, week or month) containing `day`; None for a daily rotation's closed day.

    The slot may lie outside that period (moved past a holiday). Raises
    CalendarUnknown when the calendar does not cover a day it has to look at.
    """
    if isinstance(day, datetime):
        raise TypeError("pass a date on the exchange's clock (see market_date), not a datetime")
    slot_day = _slot_day(rotation, day)
    return None if slot_day is None else _slot_at(slot_day, rotation)


def due_slots(rotation: RotationStrategy, now: datetime) -> list[datetime]:
    """The slot falling on today's market date whose time has come (at most one: [] or [slot]).

    A slot moved from an earlier period (past a holiday) counts on the day it
    moved to. Slots of earlier days are not returned: a day the job never ran
    is the heartbeat watchdog's business, not a reason to trade late.
    """
    today = market_date(now)
    if not is_trading_day(today):  # CalendarUnknown for a day off the calendar
        return []
    due: set[datetime] = set()
    day = today
    for _period in range(_MAX_PERIODS_BACK):
        # A week whose chosen day is still ahead cannot run today (weekly moves
        # only go forward); not asking the calendar about it keeps a gap after
        # today from raising too early.
        if rotation.schedule != Schedule.WEEKLY or _weekly_chosen_day(rotation, day) <= today:
            slot_day = _slot_day(rotation, day)
            if slot_day is None or slot_day < today:
                break  # earlier periods run earlier still
            if slot_day == today:
                due.add(_slot_at(slot_day, rotation))
        day = _period_before(rotation, day)
    return sorted(slot for slot in due if slot <= now)


def next_slot(rotation: RotationStrategy, now: datetime) -> datetime | None:
    """The first slot strictly after `now` (for display); None when the rotation is disabled.

    Raises CalendarUnknown when the next slot lies beyond the known calendar.
    """
    if not rotation.enabled:
        return None
    today = market_date(now)
    # A slot of this or an earlier period may still be ahead (moved past a holiday).
    ahead = []
    day = today
    for _period in range(_MAX_PERIODS_BACK):
        slot = slot_for_date(rotation, day)
        if slot is None or slot <= now:
            break
        ahead.append(slot)
        day = _period_before(rotation, day)
    if ahead:
        return min(ahead)
    day = today
    for _period in range(_MAX_PERIODS_AHEAD):
        day = _period_after(rotation, day)
        slot = slot_for_date(rotation, day)
        if slot is not None and slot > now:
            return slot
    return None
