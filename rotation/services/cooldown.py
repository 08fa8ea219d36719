"""Take-profit/stop-loss cooldown: a bond the rotation's own rule just sold is not bought back at once.

Without it a refill or the next run could buy the bond straight back, and
the next TP/SL pass sell it again (DESIGN §5.2). `cooldown_days` counts
trading days (execution.calendar): 1 = not on the trading day of the sale,
2 = nor the next trading day, …; 0 = off.
"""

from datetime import date, datetime, time

from execution.calendar import SHANGHAI, CalendarUnknown, market_date, previous_trading_day

from ..models import RotationStrategy, TpSlEvent
from ..texts import rotation_text
from .rotations import RotationError


def cooldown_codes(*, rotation: RotationStrategy, today: date) -> dict[str, tuple[str, dict]]:
    """Bonds not to be bought back on `today` → why (the English and its text code, rotation.texts);
    RotationError when the calendar cannot count the days."""
    days = rotation.cooldown_days or 0
    if days <= 0:
        return {}
    start = today
    try:
        for _day in range(days - 1):
            start = previous_trading_day(start)
    except CalendarUnknown as exc:
        raise RotationError.of("cooldown_calendar", days=days, detail=str(exc)) from None
    since = datetime.combine(start, time.min, tzinfo=SHANGHAI)
    cooling = {}
    for event in TpSlEvent.objects.filter(rotation=rotation, at__gte=since).order_by("at", "id"):
        sold_on = market_date(event.at)
        if sold_on > today:
            continue
        text = "cooldown_take_profit" if event.kind == TpSlEvent.Kind.TAKE_PROFIT else "cooldown_stop_loss"
        cooling[event.code] = rotation_text(text, day=sold_on.isoformat(), days=days)
    return cooling
