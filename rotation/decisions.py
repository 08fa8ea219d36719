"""Rotation decisions (DESIGN §8): keep, sell, buy — pure functions, no database, no network.

The rotation only decides its own target; the execution side trades the
difference. Bonds trade in lots of 10 (张) at a 0.001 tick.
"""

import enum
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_FLOOR, Decimal

from execution.planner import Quote
from positions.codes import InstrumentClass, instrument_class

from .texts import rotation_text

BOND_LOT = 10
ZERO = Decimal(0)


class Action(enum.StrEnum):
    KEEP = "keep"
    SELL = "sell"
    BUY = "buy"
    SKIP = "skip"


@dataclass(frozen=True)
class Candidate:
    code: str
    name: str
    rank: int
    price: Decimal | None = None  # the selection's own price, a fallback when no quote


@dataclass(frozen=True)
class Row:
    code: str
    name: str
    action: Action
    volume: int
    reason: str
    price: Decimal | None = None
    notify: bool = False  # a skip the user should hear about (suspended, limit-up)
    coded: dict = field(default_factory=dict)  # {"text": code, "params": {...}} of the reason (rotation.texts)

    def as_dict(self) -> dict:
        return {
            **self.coded,
            "code": self.code,
            "name": self.name,
            "action": str(self.action),
            "volume": self.volume,
            "reason": self.reason,
            "price": str(self.price) if self.price is not None else None,
        }


def _row(code: str, name: str, action: Action, volume: int, text: str, price=None, *, notify=False, **params) -> Row:
    reason, coded = rotation_text(text, **params)
    return Row(code, name, action, volume, reason, price, notify=notify, coded=coded)


class BudgetUnknown(ValueError):
    """A held bond has neither a price nor a cost: how much of the capital budget is used cannot be told."""

    def __init__(self, codes: list[str]):
        super().__init__(f"no price or cost for {', '.join(codes)}: the capital budget's use cannot be measured")
        self.codes = codes


@dataclass
class Decision:
    rows: list[Row] = field(default_factory=list)
    target: dict[str, int] = field(default_factory=dict)
    prices: dict[str, Decimal] = field(default_factory=dict)  # price used per code (target cost)
    budget: Decimal = ZERO  # money for the buys
    budget_limit: Decimal | None = None  # the rotation's capital budget (None: the whole account)
    held_value: Decimal = ZERO  # market value of the rotation's own holdings before this run

    @property
    def notify_rows(self) -> list[Row]:
        return [row for row in self.rows if row.notify]


def lots_for(amount: Decimal, price: Decimal, fee_rate: Decimal) -> int:
    """Whole lots of 10 that `amount` buys at `price` including fees."""
    if amount <= 0 or price <= 0:
        return 0
    bonds = (amount / (price * (1 + fee_rate))).to_integral_value(rounding=ROUND_FLOOR)
    return int(bonds) // BOND_LOT * BOND_LOT


def _price(code: str, quotes: dict[str, Quote], fallback: Decimal | None) -> Decimal | None:
    quote = quotes.get(code)
    if quote is not None and quote.last and quote.last > 0:
        return quote.last
    return fallback if fallback and fallback > 0 else None


def holdings_value(
    *, held: dict[str, int], quotes: dict[str, Quote], costs: dict[str, Decimal] | None = None
) -> tuple[Decimal, list[str]]:
    """Market value of the rotation's own holdings (its cost basis when no price), and the codes with neither."""
    costs = costs or {}
    value, unknown = ZERO, []
    for code in sorted(held):
        price = _price(code, quotes, costs.get(code))
        if price is None:
            unknown.append(code)
        else:
            value += price * held[code]
    return value, unknown


def decide(
    *,
    selection: list[Candidate],
    held: dict[str, int],
    names: dict[str, str] | None = None,
    quotes: dict[str, Quote],
    excluded: frozenset[str] = frozenset(),
    top_n: int,
    sizing: str,
    amount_per_bond: Decimal | None,
    cash: Decimal,
    fee_rate: Decimal = Decimal("0.0005"),
    cooling: dict[str, str | tuple[str, dict]] | None = None,
    budget: Decimal | None = None,
    held_costs: dict[str, Decimal] | None = None,
) -> Decision:
    """Keep held bonds still selected, sell those that left, buy new ones by rank while money and the cap allow.

    `held` is this rotation's own current target — never other strategies'
    or manual holdings, so selling only ever touches the rotation's bonds.
    `cooling` maps bonds not to be bought back yet (take-profit/stop-loss
    cooldown) to the reason shown in the decision.
    `budget` is the rotation's capital budget (None: the whole account's cash):
    buys get the budget minus the market value of the rotation's holdings plus
    its expected sale proceeds, never more than cash plus those proceeds. A held
    bond with neither price nor `held_costs` entry raises BudgetUnknown.
    """
    cooling = cooling or {}
    names = dict(names or {})
    decision = Decision(budget_limit=budget)
    if budget is not None:
        decision.held_value, unknown = holdings_value(held=held, quotes=quotes, costs=held_costs)
        if unknown:
            raise BudgetUnknown(unknown)
    ranked = sorted(selection, key=lambda c: c.rank)
    for candidate in ranked:
        names.setdefault(candidate.code, candidate.name)
    selected_codes = {c.code for c in ranked if c.code not in excluded}

    # Held bonds: keep those still selected (best ranks first, up to top_n), sell the rest.
    rank_of = {c.code: c.rank for c in ranked}
    kept_codes = sorted((code for code in held if code in selected_codes), key=lambda code: rank_of[code])
    over_cap = kept_codes[top_n:]
    kept_codes = kept_codes[:top_n]
    proceeds = ZERO
    for code in sorted(held):
        volume = held[code]
        price = _price(code, quotes, None)
        if code in kept_codes:
            decision.rows.append(_row(code, names.get(code, ""), Action.KEEP, volume, "still_selected", price))
            decision.target[code] = volume
            if price:
                decision.prices[code] = price
            continue
        if code in excluded:
            reason = "excluded"
        elif code in over_cap:
            reason = "ranked_beyond_top"
        else:
            reason = "left_selection"
        quote = quotes.get(code)
        if quote is not None and quote.suspended:
            reason += "+sells_when_trading"
        elif price:
            proceeds += price * volume  # expected proceeds count toward the new buys
        params = {"n": top_n} if reason.startswith("ranked_beyond_top") else {}
        decision.rows.append(_row(code, names.get(code, ""), Action.SELL, volume, reason, price, **params))

    # New buys in rank order.
    slots = top_n - len(kept_codes)
    buyable: list[tuple[Candidate, Decimal]] = []
    for candidate in ranked:
        code = candidate.code
        if code in held:
            continue
        if code in excluded:
            decision.rows.append(_row(code, candidate.name, Action.SKIP, 0, "excluded"))
            continue
        if code in cooling:
            reason, coded = cooling[code] if isinstance(cooling[code], tuple) else (cooling[code], {})
            decision.rows.append(Row(code, candidate.name, Action.SKIP, 0, reason, coded=coded))
            continue
        if instrument_class(code) is not InstrumentClass.CONVERTIBLE_BOND:
            decision.rows.append(_row(code, candidate.name, Action.SKIP, 0, "not_cb"))
            continue
        quote = quotes.get(code)
        if quote is not None and quote.suspended:
            decision.rows.append(_row(code, candidate.name, Action.SKIP, 0, "suspended", notify=True))
            continue
        price = _price(code, quotes, candidate.price)
        if price is None:
            decision.rows.append(_row(code, candidate.name, Action.SKIP, 0, "no_price", notify=True))
            continue
        if quote is not None and quote.up_stop is not None and quote.last and quote.last >= quote.up_stop:
            decision.rows.append(_row(code, candidate.name, Action.SKIP, 0, "at_limit_up", price, notify=True))
            continue
        buyable.append((candidate, price))

    money = cash + proceeds
    short = "cash"
    if budget is not None and budget - decision.held_value + proceeds < money:
        money, short = max(budget - decision.held_value + proceeds, ZERO), "budget"
    decision.budget = money
    wanted = buyable[: max(slots, 0)]
    per_bond = (money / len(wanted)) if wanted and sizing == "equal" else amount_per_bond or ZERO
    for index, (candidate, price) in enumerate(buyable):
        code = candidate.code
        if index >= len(wanted):
            reason = "top_held" if slots <= 0 else "beyond_top"
            decision.rows.append(_row(code, candidate.name, Action.SKIP, 0, reason, price, n=top_n))
            continue
        if sizing == "fixed" and money < per_bond:
            decision.rows.append(
                _row(code, candidate.name, Action.SKIP, 0, f"{short}_short_fixed", price)
            )
            continue
        volume = lots_for(min(per_bond, money), price, fee_rate)
        if volume <= 0:
            decision.rows.append(
                _row(code, candidate.name, Action.SKIP, 0, f"{short}_short_lots", price)
            )
            continue
        money -= volume * price * (1 + fee_rate)
        decision.rows.append(_row(code, candidate.name, Action.BUY, volume, "rank", price, rank=candidate.rank))
        decision.target[code] = volume
        decision.prices[code] = price
    return decision


# --- the selection's date ----------------------------------------------------------


def selection_date_problem(
    *, trade_date: date, listed: date | None, bond_dates: dict[str, date | None]
) -> str | None:
    """Why a list may not be traded on `trade_date` (None: it may).

    Every date the list carries (its own and each bond's) must be that day, and
    each bond must be dated, by itself or by the list: a list with an older,
    a later or no date at all could be yesterday's, and trading it buys what the
    strategy no longer holds (DESIGN §5.1).
    """
    other = {day for day in (listed, *bond_dates.values()) if day is not None and day != trade_date}
    if other:
        days = ", ".join(day.isoformat() for day in sorted(other))
        stale = [code for code, day in bond_dates.items() if day is not None and day != trade_date]
        where = []
        if listed is not None and listed != trade_date:
            where.append(f"the list is dated {listed.isoformat()}")
        if stale:
            where.append(
                f"{len(stale)} of {len(bond_dates)} bonds are dated otherwise ({', '.join(stale[:5])})"
            )
        return f"is for {days}, not {trade_date.isoformat()} ({'; '.join(where)})"
    if listed is None:
        undated = [code for code, day in bond_dates.items() if day is None]
        if undated or not bond_dates:
            return (
                f"carries no trade date for {len(undated)} of {len(bond_dates)} bonds and none for the list: "
                f"it cannot be shown to be made for {trade_date.isoformat()}"
            )
    return None


# --- take-profit / stop-loss ------------------------------------------------------


def ratio_from_parameter(value) -> Decimal | None:
    """Factor Cat's profitTargetRatio/stopLossRatio: 0 = off; values above 1 are percentages (15 = 15%)."""
    if value is None or value == "":
        return None
    try:
        ratio = Decimal(str(value))
    except ArithmeticError:
        return None
    if not ratio.is_finite() or ratio < 0:
        return None
    return ratio / 100 if ratio > 1 else ratio


@dataclass(frozen=True)
class Trigger:
    code: str
    kind: str  # "take_profit" | "stop_loss"
    price: Decimal
    cost: Decimal
    ratio: Decimal

    @property
    def profit(self) -> Decimal:
        return (self.price - self.cost) / self.cost


def tp_sl_triggers(
    *, positions: dict[str, tuple[Decimal, Decimal]], take_profit: Decimal | None, stop_loss: Decimal | None
) -> list[Trigger]:
    """Profit versus the holding's cost basis (not the day's move); a ratio of 0 or None is off.

    `positions` maps code → (last price, cost basis) for the rotation's own held bonds.
    """
    triggers = []
    for code in sorted(positions):
        price, cost = positions[code]
        if not price or not cost or price <= 0 or cost <= 0:
            continue  # never act on missing data
        profit = (price - cost) / cost
        if take_profit and profit >= take_profit:
            triggers.append(Trigger(code, "take_profit", price, cost, take_profit))
        elif stop_loss and profit <= -stop_loss:
            triggers.append(Trigger(code, "stop_loss", price, cost, stop_loss))
    return triggers
