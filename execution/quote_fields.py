"""Feed fields into quote values: positive prices, names, listing dates, and the limits to use (DESIGN §4).

Shared by every quote provider in `quotes`. A price that is 0, blank or junk
is no price; limits the source gives win, otherwise `limits` computes them
from the previous close.
"""

from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from . import limits, market
from .models import TradingDay

PRICE_QUANTUM = Decimal("0.0001")  # the precision of every price column


def feed_price(value: object) -> Decimal | None:
    """A positive price as Decimal, or None for 0, blanks, NaN and junk (feeds use 0 for 'no price')."""
    if value is None or isinstance(value, bool):
        return None
    try:
        # str() first: Decimal(10.23) would carry the float's binary noise.
        price = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    if not price.is_finite() or price <= 0:
        return None
    return price.quantize(PRICE_QUANTUM)


def with_limits(
    code: str,
    *,
    up_stop: Decimal | None,
    down_stop: Decimal | None,
    prev_close: Decimal | None,
    name: str = "",
    listing: limits.Listing | None = None,
    tick: Decimal | None = None,
) -> tuple[Decimal | None, Decimal | None]:
    """Keep the source's limits; otherwise compute both from the previous close (DESIGN §4).

    A code without a daily limit today (a new listing) gets none: no limit
    is invented for it. An unknown listing date means the ordinary limits.
    """
    if up_stop is not None and down_stop is not None:
        if down_stop < up_stop:
            return up_stop, down_stop
        up_stop = down_stop = None  # an inverted pair is junk, not a market
    if prev_close is None:
        return up_stop, down_stop
    try:
        computed_up, computed_down = limits.fallback_limit_prices(
            code, prev_close, name=name, listing=listing, tick=tick
        )
    except market.NotTradable:
        return up_stop, down_stop
    return up_stop or computed_up, down_stop or computed_down


def feed_name(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


# Any month holds more than five trading days: a listing older than this is
# past its no-limit days whatever the calendar says.
_LISTING_WINDOW = timedelta(days=31)


def _listed_on(value: object) -> date | None:
    """xtdata's OpenDate (YYYYMMDD as text or number); None for 0, blanks and junk."""
    text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
    try:
        return datetime.strptime(text, "%Y%m%d").date() if len(text) == 8 else None
    except ValueError:
        return None


def listing_from_open_date(open_date: object, today: date) -> limits.Listing | None:
    """Today's trading-day number since listing, from the trading calendar; None when not known.

    None (unknown) makes the fallback use the ordinary limits, which is also
    right for anything listed more than a month ago. A calendar gap between
    the listing and today makes the session unknown too.
    """
    listed_on = _listed_on(open_date)
    if listed_on is None or listed_on > today or today - listed_on > _LISTING_WINDOW:
        return None
    days = dict(TradingDay.objects.filter(date__range=(listed_on, today)).values_list("date", "is_open"))
    if len(days) != (today - listed_on).days + 1 or not days[listed_on]:
        return None
    return limits.Listing(listed_on=listed_on, session=sum(days.values()))
