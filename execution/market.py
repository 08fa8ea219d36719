"""Market rules per instrument class (DESIGN §4): lots, ticks, limits, T+0/T+1, price protection.

Pure functions. The broker's own instrument detail (limit prices, tick,
status) wins when available; this table is the fallback. The fallback daily
limits (ST, index ETFs, new listings, first-day bonds) are computed in
`limits`; which ETFs are T+0 is in `funds`.
"""

import functools
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from positions.codes import InstrumentClass, instrument_class

from . import funds


@dataclass(frozen=True)
class Rules:
    klass: InstrumentClass
    buy_lot: int  # buys are multiples of this ...
    buy_min: int  # ... and at least this many (STAR 200, BJ 100)
    buy_step: int  # beyond the minimum, in steps of this (STAR/BJ: 1)
    sell_lot: int  # sells are multiples of this, or the whole remainder
    sell_min: int
    tick: Decimal
    t_plus_zero: bool
    limit_pct: Decimal  # the class's daily limit (ST the same since 2025-07-07); exceptions in `limits`

    def round_buy(self, volume: int) -> int:
        """Largest valid buy volume ≤ volume (0 when below the minimum)."""
        if volume < self.buy_min:
            return 0
        if self.buy_step == 1:
            return volume  # STAR/BJ: at least the minimum, then any share
        return volume - volume % self.buy_lot

    def round_sell(self, volume: int, sellable: int, *, held: int | None = None) -> int:
        """Largest valid sell ≤ volume given what can be sold now and what is held.

        Main board, ChiNext, ETFs, bonds: whole lots, or whole lots plus the
        whole odd remainder of the holding (< one lot) in one order. STAR and
        BJ: at least the minimum (200 / 100), or the whole holding.
        `held` defaults to `sellable` (the broker's own check knows no more).
        """
        held = sellable if held is None else held
        volume = min(volume, sellable)
        if volume <= 0:
            return 0
        if volume == held:
            return volume  # the whole holding may always go, odd part included
        if self.sell_min > self.sell_lot:
            # STAR/BJ: ≥ minimum, then any share; below it only the whole holding.
            return volume if volume >= self.sell_min else 0
        whole_lots = volume - volume % self.sell_lot
        odd = held % self.sell_lot
        if odd and volume >= odd:
            with_odd = volume - (volume - odd) % self.sell_lot
            return max(whole_lots, with_odd)
        return whole_lots

    @property
    def min_order(self) -> int:
        return max(self.buy_min, self.sell_min)


_D = Decimal
_STOCK_TICK, _FUND_TICK, _BOND_TICK = _D("0.01"), _D("0.001"), _D("0.001")

RULES = {
    InstrumentClass.MAIN_BOARD: Rules(
        InstrumentClass.MAIN_BOARD, 100, 100, 100, 100, 100, _STOCK_TICK, False, _D("0.10")
    ),
    InstrumentClass.CHINEXT: Rules(
        InstrumentClass.CHINEXT, 100, 100, 100, 100, 100, _STOCK_TICK, False, _D("0.20")
    ),
    # STAR market: buy at least 200, then +1; sell ≥ 200 or the whole remainder.
    InstrumentClass.STAR: Rules(InstrumentClass.STAR, 1, 200, 1, 1, 200, _STOCK_TICK, False, _D("0.20")),
    # Beijing exchange: at least 100, then +1.
    InstrumentClass.BJ: Rules(InstrumentClass.BJ, 1, 100, 1, 1, 100, _STOCK_TICK, False, _D("0.30")),
    # Convertible bonds trade in 10s (张) and are T+0.
    InstrumentClass.CONVERTIBLE_BOND: Rules(
        InstrumentClass.CONVERTIBLE_BOND, 10, 10, 10, 10, 10, _BOND_TICK, True, _D("0.20")
    ),
    InstrumentClass.FUND: Rules(InstrumentClass.FUND, 100, 100, 100, 100, 100, _FUND_TICK, False, _D("0.10")),
}


class NotTradable(ValueError):
    """A code the sync never trades (reverse repo, IPO codes, unknown classes)."""


@functools.lru_cache(maxsize=8192)
def rules_for(code: str) -> Rules:
    klass = instrument_class(code)
    rules = RULES.get(klass)
    if rules is None:
        raise NotTradable(f"{code} is not traded by qmtjq ({klass})")
    if funds.is_t_plus_zero_fund(code):
        # Bond, gold, money-market and cross-border ETFs are T+0 (DESIGN §4).
        return replace(rules, t_plus_zero=True)
    return rules


def round_to_tick(price: Decimal, tick: Decimal, *, direction: str) -> Decimal:
    """Round onto the tick grid: 'down' for buys, 'up' for sells, 'nearest' for limits."""
    mode = {"down": ROUND_FLOOR, "up": ROUND_CEILING, "nearest": ROUND_HALF_UP}[direction]
    return ((price / tick).to_integral_value(rounding=mode) * tick).quantize(tick)


def price_cage(reference: Decimal, tick: Decimal) -> Decimal:
    """Half-width of the price cage: within max(2%, 10 ticks) of the reference price."""
    return max(reference * _D("0.02"), tick * 10)


def protected_limit_price(
    *,
    side: str,
    last: Decimal,
    slippage: Decimal,
    up_stop: Decimal | None,
    down_stop: Decimal | None,
    tick: Decimal,
) -> Decimal:
    """Limit price for a marketable order that cannot run away (DESIGN §4).

    Buy at min(last × (1+slip), up_stop) rounded down; sell at
    max(last × (1−slip), down_stop) rounded up; both kept in the price cage.
    """
    cage = price_cage(last, tick)
    if side == "buy":
        price = min(last * (1 + slippage), last + cage)
        if up_stop is not None:
            price = min(price, up_stop)
        return max(round_to_tick(price, tick, direction="down"), tick)
    price = max(last * (1 - slippage), last - cage)
    if down_stop is not None:
        price = max(price, down_stop)
    return round_to_tick(price, tick, direction="up")


# Per-order maximums for limit orders (DESIGN §4): main board 1,000,000 shares,
# ChiNext 300,000, STAR 100,000. The broker's own figure wins when it gives one.
# Bonds and funds are capped conservatively: splitting more often is harmless,
# an order above the exchange's maximum is rejected.
MAX_ORDER_VOLUME = {
    InstrumentClass.MAIN_BOARD: 1_000_000,
    InstrumentClass.CHINEXT: 300_000,
    InstrumentClass.STAR: 100_000,
    InstrumentClass.BJ: 1_000_000,
    InstrumentClass.CONVERTIBLE_BOND: 100_000,
    InstrumentClass.FUND: 1_000_000,
}


def split_order(volume: int, rules: Rules, *, cap: int | None = None) -> list[int]:
    """Split one order into pieces no larger than the per-order maximum.

    Full pieces are whole lots; whatever is odd (a bond's or a main-board
    stock's odd remainder) stays in the last piece, which never falls below
    the class minimum (STAR 200, BJ 100): it borrows from the piece before.
    """
    cap = cap or MAX_ORDER_VOLUME.get(rules.klass) or volume
    cap -= cap % max(rules.buy_lot, rules.sell_lot)  # full pieces stay whole lots
    if volume <= cap or cap <= 0:
        return [volume] if volume > 0 else []
    pieces = [cap] * (volume // cap)
    rest = volume - sum(pieces)
    if rest:
        pieces.append(rest)
        # Lot-based classes may send the odd remainder alone; STAR/BJ may not go below the minimum.
        shortfall = rules.min_order - rest if rules.sell_min > rules.sell_lot else 0
        if shortfall > 0:
            pieces[-2] -= shortfall
            pieces[-1] += shortfall
    return pieces
