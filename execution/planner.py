"""The convergence planner: target vs fresh actual → one round of orders (DESIGN §4, §5).

Pure: no database, no broker, no clock. The worker gathers the inputs, the
planner decides, the worker records and sends. Every line that is not traded
gets a `Skip` with a reason a trader understands.
"""

import enum
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

from positions.codes import is_never_traded

from . import market

ZERO = Decimal(0)


class SkipReason(enum.StrEnum):
    IGNORED = "ignored"  # never-traded code or on the account's ignore list
    UNMANAGED = "unmanaged"  # held, never targeted or traded by qmtjq
    NO_QUOTE = "no_quote"
    SUSPENDED = "suspended"
    LIMIT_UP = "limit_up"
    LIMIT_DOWN = "limit_down"
    LOT_TOO_SMALL = "lot_too_small"
    T_PLUS_1 = "t_plus_1"  # shares bought today (or frozen) cannot be sold yet
    CASH = "cash"
    RISK_ORDER_CAP = "risk_order_cap"
    RISK_TURNOVER_CAP = "risk_turnover_cap"
    NOT_TRADABLE = "not_tradable"


class PlanStatus(enum.StrEnum):
    PLACE = "place"  # orders to send
    CONVERGED = "converged"  # nothing to do (up to lots and recorded skips)
    BLOCKED = "blocked"  # targets missing or stale: do nothing, tell the user
    HOLD = "hold"  # large change: wait for approval


@dataclass(frozen=True)
class TargetLine:
    code: str
    volume: int
    cost: Decimal


@dataclass(frozen=True)
class SubscribedTarget:
    """One subscription of the account with its strategy's current target."""

    strategy_id: int
    strategy_name: str
    mode: str  # "ratio" | "capital"
    ratio: Decimal = Decimal(1)
    capital: Decimal = ZERO
    snapshot_id: int | None = None  # None: the strategy never sent a target
    confirmed_at: datetime | None = None
    total_value: Decimal | None = None
    lines: tuple[TargetLine, ...] = ()


@dataclass(frozen=True)
class Holding:
    code: str
    volume: int
    can_use_volume: int
    avg_cost: Decimal = ZERO
    last_price: Decimal | None = None


@dataclass(frozen=True)
class Quote:
    code: str
    last: Decimal | None
    up_stop: Decimal | None = None
    down_stop: Decimal | None = None
    tick: Decimal | None = None  # broker's PriceTick; table fallback when None
    suspended: bool = False
    source: str = ""


@dataclass(frozen=True)
class AccountPolicy:
    slippage: Decimal = Decimal("0.002")
    max_order_value: Decimal | None = None
    max_daily_turnover: Decimal | None = None
    approval_threshold: Decimal | None = None  # share of total assets; None = never hold
    stale_after: timedelta = timedelta(days=3)
    sell_unmanaged: bool = False
    ignore_codes: frozenset[str] = frozenset()
    commission_rate: Decimal = Decimal("0.00025")
    min_commission: Decimal = Decimal("5")
    fee_buffer_rate: Decimal = Decimal("0.001")


@dataclass(frozen=True)
class AccountView:
    """Fresh broker state, as reported by the worker moments ago."""

    cash: Decimal
    total_asset: Decimal
    holdings: dict[str, Holding]
    reserved: dict[str, int] = field(default_factory=dict)
    managed_codes: frozenset[str] = frozenset()  # ever targeted or traded for this account
    pending_buy_value: Decimal = ZERO
    turnover_today: Decimal = ZERO


@dataclass(frozen=True)
class PlannedOrder:
    code: str
    side: str  # "buy" | "sell"
    volume: int
    limit_price: Decimal
    price_source: str
    reason: str

    @property
    def value(self) -> Decimal:
        return self.limit_price * self.volume


@dataclass(frozen=True)
class Skip:
    code: str
    reason: SkipReason
    detail: str = ""
    volume: int = 0  # how much of the wanted change was not traded


@dataclass(frozen=True)
class DiffLine:
    code: str
    target: int
    actual: int  # held minus reserved
    reserved: int
    delta: int


@dataclass
class Plan:
    status: PlanStatus
    orders: list[PlannedOrder] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)
    diff: list[DiffLine] = field(default_factory=list)
    target: dict[str, int] = field(default_factory=dict)
    message: str = ""

    @property
    def traded_value(self) -> Decimal:
        return sum((order.value for order in self.orders), ZERO)


# --- account target -----------------------------------------------------------


def scale_factor(sub: SubscribedTarget) -> Decimal | None:
    """Shares of the account per share of the strategy.

    capital mode: the account holds the same fraction of capital in each line
    as the strategy does of its total value, so volume × capital / total_value
    (prices cancel). Without total_value, Σ volume × cost stands in for it.
    """
    if sub.mode == "ratio":
        return sub.ratio
    total = sub.total_value
    if not total:
        total = sum((Decimal(line.volume) * line.cost for line in sub.lines), ZERO)
    if not total:
        return None  # holds nothing (or costs unknown): nothing to scale
    return sub.capital / total


def account_target(subscriptions: list[SubscribedTarget]) -> tuple[dict[str, int], list[Skip]]:
    """Σ scaled targets, rounded down to valid lots once per code (after summing)."""
    raw: dict[str, Decimal] = defaultdict(Decimal)
    for sub in subscriptions:
        factor = scale_factor(sub)
        if factor is None:
            continue
        for line in sub.lines:
            raw[line.code] += Decimal(line.volume) * factor
    target, skips = {}, []
    for code, amount in raw.items():
        whole = int(amount.to_integral_value(rounding=ROUND_FLOOR))
        try:
            rules = market.rules_for(code)
        except market.NotTradable as exc:
            skips.append(Skip(code, SkipReason.NOT_TRADABLE, str(exc), whole))
            continue
        rounded = rules.round_buy(whole)
        target[code] = rounded
        if rounded == 0 and whole > 0:
            skips.append(
                Skip(code, SkipReason.LOT_TOO_SMALL, f"scaled target {amount:.2f} is below one lot", whole)
            )
    return target, skips


def targets_block_reason(
    subscriptions: list[SubscribedTarget], *, now: datetime, stale_after: timedelta
) -> str:
    """Why the account must not trade on these targets, or '' (DESIGN §5.1)."""
    if not subscriptions:
        return "the account subscribes to no strategy"
    for sub in subscriptions:
        if sub.snapshot_id is None:
            return f"strategy {sub.strategy_name!r} has not sent a target yet"
        if sub.confirmed_at is None or now - sub.confirmed_at > stale_after:
            return f"target of strategy {sub.strategy_name!r} is stale (last confirmed {sub.confirmed_at})"
    return ""


# --- the round ---------------------------------------------------------------------


def _quote_problem(side: str, quote: Quote | None) -> tuple[SkipReason, str] | None:
    if quote is None or quote.last is None or quote.last <= 0:
        return SkipReason.NO_QUOTE, "no usable price"
    if quote.suspended:
        return SkipReason.SUSPENDED, "suspended or not trading"
    if side == "buy" and quote.up_stop is not None and quote.last >= quote.up_stop:
        return SkipReason.LIMIT_UP, f"at limit-up {quote.up_stop}"
    if side == "sell" and quote.down_stop is not None and quote.last <= quote.down_stop:
        return SkipReason.LIMIT_DOWN, f"at limit-down {quote.down_stop}"
    return None


def _limit_price(side: str, quote: Quote, rules: market.Rules, policy: AccountPolicy) -> Decimal:
    return market.protected_limit_price(
        side=side,
        last=quote.last,
        slippage=policy.slippage,
        up_stop=quote.up_stop,
        down_stop=quote.down_stop,
        tick=quote.tick or rules.tick,  # the broker's PriceTick wins over the table
    )


def _buy_cost(value: Decimal, policy: AccountPolicy) -> Decimal:
    commission = max(value * policy.commission_rate, policy.min_commission)
    return value + commission + value * policy.fee_buffer_rate


def plan_round(
    *,
    subscriptions: list[SubscribedTarget],
    account: AccountView,
    quotes: dict[str, Quote],
    policy: AccountPolicy,
    now: datetime,
) -> Plan:
    """Compute the next round: sells first, then buys with cash actually available."""
    block = targets_block_reason(subscriptions, now=now, stale_after=policy.stale_after)
    if block:
        return Plan(PlanStatus.BLOCKED, message=block)

    target, skips = account_target(subscriptions)
    diff: list[DiffLine] = []
    sells: list[tuple[str, int, int]] = []  # code, wanted, sellable
    buys: list[tuple[str, int]] = []
    for code in sorted(set(target) | set(account.holdings)):
        if is_never_traded(code) or code in policy.ignore_codes:
            if code in target or account.holdings[code].volume:
                skips.append(Skip(code, SkipReason.IGNORED, "never traded by sync or on the ignore list"))
            continue
        holding = account.holdings.get(code)
        reserved = account.reserved.get(code, 0)
        held = holding.volume if holding else 0
        actual = max(held - reserved, 0)
        if code not in target:
            if actual and code not in account.managed_codes and not policy.sell_unmanaged:
                skips.append(Skip(code, SkipReason.UNMANAGED, "held but never targeted or traded by qmtjq"))
                continue
            wanted = 0
        else:
            wanted = target[code]
        delta = wanted - actual
        diff.append(DiffLine(code, wanted, actual, reserved, delta))
        if delta < 0:
            # Reserved shares are kept out of what the system may sell.
            sellable = min(holding.can_use_volume, held - reserved) if holding else 0
            sells.append((code, -delta, max(sellable, 0)))
        elif delta > 0:
            buys.append((code, delta))

    plan = Plan(PlanStatus.CONVERGED, skips=skips, diff=diff, target=target)
    turnover = account.turnover_today

    def within_caps(code: str, volume: int, price: Decimal, rounder) -> int:
        nonlocal turnover
        if policy.max_order_value is not None and volume * price > policy.max_order_value:
            capped = rounder(int(policy.max_order_value / price))
            plan.skips.append(
                Skip(
                    code,
                    SkipReason.RISK_ORDER_CAP,
                    f"order capped at {policy.max_order_value}",
                    volume - capped,
                )
            )
            volume = capped
        if policy.max_daily_turnover is not None and turnover + volume * price > policy.max_daily_turnover:
            room = max(policy.max_daily_turnover - turnover, ZERO)
            capped = rounder(int(room / price))
            plan.skips.append(
                Skip(
                    code,
                    SkipReason.RISK_TURNOVER_CAP,
                    f"daily turnover cap {policy.max_daily_turnover}",
                    volume - capped,
                )
            )
            volume = capped
        turnover += volume * price
        return volume

    for code, wanted, sellable in sells:
        rules = market.rules_for(code)
        quote = quotes.get(code)
        if problem := _quote_problem("sell", quote):
            plan.skips.append(Skip(code, problem[0], problem[1], wanted))
            continue
        volume = rules.round_sell(wanted, sellable)
        if volume < wanted and sellable < wanted:
            plan.skips.append(
                Skip(code, SkipReason.T_PLUS_1, f"only {sellable} sellable now (T+1/frozen)", wanted - volume)
            )
        elif volume < wanted:
            plan.skips.append(
                Skip(code, SkipReason.LOT_TOO_SMALL, "odd lot kept until it can go whole", wanted - volume)
            )
        if volume <= 0:
            continue
        price = _limit_price("sell", quote, rules, policy)
        volume = within_caps(
            code, volume, price, lambda v, s=sellable, r=rules: r.round_sell(v, s) if v else 0
        )
        if volume > 0:
            plan.orders.append(PlannedOrder(code, "sell", volume, price, quote.source, "reduce to target"))

    # Sell proceeds are not cash until filled: buys use cash actually available.
    cash = account.cash - account.pending_buy_value
    priced_buys = []
    for code, wanted in buys:
        rules = market.rules_for(code)
        quote = quotes.get(code)
        if problem := _quote_problem("buy", quote):
            plan.skips.append(Skip(code, problem[0], problem[1], wanted))
            continue
        volume = rules.round_buy(wanted)
        if volume == 0:
            plan.skips.append(Skip(code, SkipReason.LOT_TOO_SMALL, f"{wanted} is below one lot", wanted))
            continue
        price = _limit_price("buy", quote, rules, policy)
        priced_buys.append((code, volume, price, rules, quote))
    # Largest shortfall first, so the positions that matter most are filled first.
    priced_buys.sort(key=lambda item: (-(item[1] * item[2]), item[0]))
    for code, volume, price, rules, quote in priced_buys:
        affordable = volume
        while affordable > 0 and _buy_cost(affordable * price, policy) > cash:
            affordable = rules.round_buy(min(affordable - 1, int(cash / price)))
        if affordable < volume:
            plan.skips.append(
                Skip(code, SkipReason.CASH, f"cash {cash:.2f} covers {affordable}", volume - affordable)
            )
        if affordable <= 0:
            continue
        affordable = within_caps(code, affordable, price, rules.round_buy)
        if affordable <= 0:
            continue
        cash -= _buy_cost(affordable * price, policy)
        plan.orders.append(PlannedOrder(code, "buy", affordable, price, quote.source, "increase to target"))

    if not plan.orders:
        return plan
    plan.status = PlanStatus.PLACE
    threshold = policy.approval_threshold
    if (
        threshold is not None
        and account.total_asset > 0
        and plan.traded_value / account.total_asset > threshold
    ):
        plan.status = PlanStatus.HOLD
        plan.message = (
            f"round trades {plan.traded_value:.2f}, {plan.traded_value / account.total_asset:.1%} of total assets, "
            f"above the approval threshold {threshold:.1%}"
        )
    return plan
