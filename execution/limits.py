"""Fallback daily price limits (DESIGN §4): the exchange's rules, for when the broker gives no limit prices.

Pure functions. Broker data always wins: callers use these only when a
quote source gives no limit prices, from the previous close.

The rules, with the date each took effect:
- Main board ±10%. ST and *ST main-board stocks ±10% too since 2025-07-07
  (SSE/SZSE rule change; ±5% before).
- ChiNext ±20% (since 2020-08-24), STAR ±20%, Beijing ±30%; ST the same.
- New listings have no daily limit in their first five trading days: STAR
  (since 2019-07-22), ChiNext (since 2020-08-24) and the main board (since
  2023-04-10, registration system). Beijing: the listing day only.
- Convertible bonds ±20%, and +57.3% / −43.3% on their first trading day
  (since 2022-08-01; the ±20% and ±30% intraday halts of that day are halts,
  not limits).
- Funds and ETFs ±10%; funds tracking ChiNext or STAR indices ±20%
  (see `funds.has_twenty_pct_limit`).

The listing date is known only when the broker's instrument detail gives it
(xtdata `OpenDate`); without it the ordinary limits of the table apply.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from positions.codes import InstrumentClass

from . import funds
from .market import round_to_tick, rules_for

NO_LIMIT_SESSIONS = 5  # new stocks trade without a daily limit on their first five trading days
# The day each board began listing new stocks without first-day limits (registration system).
NO_LIMIT_SINCE = {
    InstrumentClass.STAR: date(2019, 7, 22),
    InstrumentClass.CHINEXT: date(2020, 8, 24),
    InstrumentClass.MAIN_BOARD: date(2023, 4, 10),
    InstrumentClass.BJ: date(2021, 11, 15),
}
NO_LIMIT_SESSIONS_BJ = 1
BOND_FIRST_DAY = (Decimal("0.573"), Decimal("0.433"))
TWENTY_PCT = Decimal("0.20")


@dataclass(frozen=True)
class Listing:
    """When a code was listed, and which trading day of its life today is."""

    listed_on: date
    session: int  # today's trading-day number since listing: 1 on the listing day


def _without_limit(klass: InstrumentClass, listing: Listing) -> bool:
    since = NO_LIMIT_SINCE.get(klass)
    if since is None or listing.listed_on < since:
        return False
    sessions = NO_LIMIT_SESSIONS_BJ if klass is InstrumentClass.BJ else NO_LIMIT_SESSIONS
    return listing.session <= sessions


def limit_band(
    code: str, *, name: str = "", listing: Listing | None = None
) -> tuple[Decimal, Decimal] | None:
    """(up, down) as fractions of the previous close, or None when the code has no daily limit today.

    `name` is the instrument's name when the source gives it (for ETFs that
    track ChiNext/STAR indices); `listing` is None when the listing date is
    unknown. Raises market.NotTradable for codes the product never trades.
    """
    rules = rules_for(code)
    klass = rules.klass
    if listing is not None and _without_limit(klass, listing):
        return None
    if klass is InstrumentClass.CONVERTIBLE_BOND and listing is not None and listing.session == 1:
        return BOND_FIRST_DAY
    if klass is InstrumentClass.FUND and funds.has_twenty_pct_limit(code, name=name):
        return TWENTY_PCT, TWENTY_PCT
    return rules.limit_pct, rules.limit_pct


def fallback_limit_prices(
    code: str,
    prev_close: Decimal,
    *,
    name: str = "",
    listing: Listing | None = None,
    tick: Decimal | None = None,
) -> tuple[Decimal | None, Decimal | None]:
    """(up_stop, down_stop) from the previous close, rounded to the tick; (None, None) without a limit."""
    band = limit_band(code, name=name, listing=listing)
    if band is None:
        return None, None
    tick = tick or rules_for(code).tick
    up, down = band
    return (
        round_to_tick(prev_close * (1 + up), tick, direction="nearest"),
        round_to_tick(prev_close * (1 - down), tick, direction="nearest"),
    )
