"""One round: target vs fresh actual → orders the exchange accepts (DESIGN §4, §5)."""

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from .. import market
from .diff import diff_lines
from .targets import account_target, rule_exit_codes, targets_block
from .texts import round_text
from .types import (
    ZERO,
    AccountPolicy,
    AccountView,
    Plan,
    PlannedOrder,
    PlanStatus,
    Quote,
    Skip,
    SkipReason,
    SubscribedTarget,
)


def _quote_problem(side: str, quote: Quote | None) -> tuple[SkipReason, str, dict] | None:
    """(reason, text code, parameters) when the quote forbids the order."""
    if quote is None or quote.last is None or quote.last <= 0:
        return SkipReason.NO_QUOTE, "no_price", {}
    if quote.suspended:
        return SkipReason.SUSPENDED, "suspended", {}
    if side == "buy" and quote.up_stop is not None and quote.last >= quote.up_stop:
        return SkipReason.LIMIT_UP, "at_limit_up", {"price": quote.up_stop}
    if side == "sell" and quote.down_stop is not None and quote.last <= quote.down_stop:
        return SkipReason.LIMIT_DOWN, "at_limit_down", {"price": quote.down_stop}
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


class _RoundBuilder:
    """Accumulates one round's orders and skips; each line is planned on its own."""

    def __init__(self, plan: Plan, account: AccountView, quotes: dict[str, Quote], policy: AccountPolicy):
        self.plan, self.account, self.quotes, self.policy = plan, account, quotes, policy
        self.turnover = account.turnover_today
        # Sell proceeds are not cash until filled: buys use cash actually available.
        self.cash = account.cash - account.pending_buy_value

    def skip(self, code: str, reason: SkipReason, detail: str, volume: int = 0) -> None:
        self.plan.skips.append(Skip(code, reason, detail, volume))

    def skip_with(self, code: str, reason: SkipReason, text: str, volume: int = 0, **params) -> None:
        self.plan.skips.append(Skip.of(code, reason, text, volume, **params))

    def guarded(self, code: str, volume: int, step: Callable[[], None]) -> None:
        """No exception from one line may stop the round: it becomes that line's skip."""
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - any defect on one line must not sell or stop others
            self.skip(
                code, SkipReason.ERROR, f"could not plan this line: {type(exc).__name__}: {exc}", volume
            )

    def within_caps(self, code: str, volume: int, price: Decimal, rounder: Callable[[int], int]) -> int:
        policy = self.policy
        if policy.max_order_value is not None and volume * price > policy.max_order_value:
            capped = rounder(int(policy.max_order_value / price))
            self.skip_with(
                code, SkipReason.RISK_ORDER_CAP, "order_cap", volume - capped, cap=policy.max_order_value
            )
            volume = capped
        if (
            policy.max_daily_turnover is not None
            and self.turnover + volume * price > policy.max_daily_turnover
        ):
            room = max(policy.max_daily_turnover - self.turnover, ZERO)
            capped = rounder(int(room / price))
            self.skip_with(
                code, SkipReason.RISK_TURNOVER_CAP, "turnover_cap", volume - capped, cap=policy.max_daily_turnover
            )
            volume = capped
        self.turnover += volume * price
        return volume

    def add_orders(
        self, code: str, side: str, volume: int, price: Decimal, quote: Quote, reason: str
    ) -> None:
        rules = market.rules_for(code)
        # Exchange per-order maximum: one round may send several orders for a code.
        for piece in market.split_order(volume, rules, cap=quote.max_order_volume):
            self.plan.orders.append(PlannedOrder(code, side, piece, price, quote.source, reason))

    def sell(self, code: str, wanted: int, sellable: int, held: int) -> None:
        rules = market.rules_for(code)
        quote = self.quotes.get(code)
        if problem := _quote_problem("sell", quote):
            self.skip_with(code, problem[0], problem[1], wanted, **problem[2])
            return
        volume = rules.round_sell(wanted, sellable, held=held)
        if volume < wanted:
            if sellable < wanted:
                self.skip_with(code, SkipReason.T_PLUS_1, "t1_sellable", wanted - volume, n=sellable)
            else:
                reserved = self.account.reserved.get(code, 0)
                if reserved:
                    self.skip_with(
                        code, SkipReason.LOT_TOO_SMALL, "reserved_sell", wanted - volume,
                        wanted=wanted, reserved=reserved, sold=volume,
                    )
                else:
                    self.skip_with(code, SkipReason.LOT_TOO_SMALL, "odd_lot_kept", wanted - volume)
        if volume <= 0:
            return
        price = _limit_price("sell", quote, rules, self.policy)
        volume = self.within_caps(
            code, volume, price, lambda v: rules.round_sell(v, sellable, held=held) if v else 0
        )
        if volume > 0:
            self.add_orders(code, "sell", volume, price, quote, "reduce to target")

    def price_buy(self, code: str, wanted: int, priced: list) -> None:
        rules = market.rules_for(code)
        quote = self.quotes.get(code)
        if problem := _quote_problem("buy", quote):
            self.skip_with(code, problem[0], problem[1], wanted, **problem[2])
            return
        volume = rules.round_buy(wanted)
        if volume == 0:
            self.skip_with(code, SkipReason.LOT_TOO_SMALL, "below_lot", wanted, volume=wanted)
            return
        priced.append((code, volume, _limit_price("buy", quote, rules, self.policy), quote))

    def cost(self, code: str, volume: int, price: Decimal, quote: Quote) -> Decimal:
        pieces = market.split_order(volume, market.rules_for(code), cap=quote.max_order_volume)
        return sum((_buy_cost(piece * price, self.policy) for piece in pieces), ZERO)

    def buy(self, code: str, volume: int, price: Decimal, quote: Quote) -> None:
        rules = market.rules_for(code)
        affordable = volume
        while affordable > 0 and self.cost(code, affordable, price, quote) > self.cash:
            affordable = rules.round_buy(min(affordable - 1, int(self.cash / price)))
        if affordable < volume:
            self.skip_with(
                code, SkipReason.CASH, "cash_covers", volume - affordable, cash=f"{self.cash:.2f}", n=affordable
            )
        if affordable <= 0:
            return
        affordable = self.within_caps(code, affordable, price, rules.round_buy)
        if affordable <= 0:
            return
        self.cash -= self.cost(code, affordable, price, quote)
        self.add_orders(code, "buy", affordable, price, quote, "increase to target")


def _apply_approval(plan: Plan, subscriptions: list[SubscribedTarget], account: AccountView, policy) -> None:
    """Hold a large round for a human (DESIGN §5.2); exits the user's own rules ordered go out anyway."""
    threshold = policy.approval_threshold
    if threshold is None or account.total_asset <= 0:
        return
    exits = frozenset() if policy.hold_rule_exits else rule_exit_codes(subscriptions)
    exit_orders = [o for o in plan.orders if o.side == "sell" and o.code in exits]
    changes = [o for o in plan.orders if not (o.side == "sell" and o.code in exits)]
    changed_value = sum((o.value for o in changes), ZERO)
    share = changed_value / account.total_asset
    if share <= threshold:
        return
    numbers = {"value": changed_value.quantize(Decimal("0.01")), "share": share, "threshold": threshold}
    if exit_orders:
        # An exit that waits is a loss the user asked to avoid: send the exits now;
        # the rest is planned again next round, where it waits for approval.
        plan.orders = exit_orders
        plan.message, plan.message_params = round_text("approval_exits_sent", **numbers)
        return
    plan.status = PlanStatus.HOLD
    plan.message, plan.message_params = round_text("approval_hold", **numbers)


def plan_round(
    *,
    subscriptions: list[SubscribedTarget],
    account: AccountView,
    quotes: dict[str, Quote],
    policy: AccountPolicy,
    now: datetime,
) -> Plan:
    """Compute the next round: sells first, then buys with cash actually available."""
    block, block_params = targets_block(subscriptions, now=now, stale_after=policy.stale_after)
    if block:
        return Plan(PlanStatus.BLOCKED, message=block, message_params=block_params)

    target, skips = account_target(subscriptions)
    unsized = frozenset(s.code for s in skips if s.reason in (SkipReason.NOT_TRADABLE, SkipReason.ERROR))
    lines, diff_skips = diff_lines(target, account, policy, unsized=unsized)
    managed = [line for line in lines if line.managed]
    plan = Plan(PlanStatus.CONVERGED, skips=skips + diff_skips, diff=managed, target=target)
    builder = _RoundBuilder(plan, account, quotes, policy)

    for line in managed:
        if line.delta < 0:
            holding = account.holdings.get(line.code)
            held = holding.volume if holding else 0
            # Reserved shares are kept out of what the system may sell.
            sellable = max(min(holding.can_use_volume, held - line.reserved), 0) if holding else 0
            builder.guarded(
                line.code,
                -line.delta,
                lambda c=line.code, w=-line.delta, s=sellable, h=held: builder.sell(c, w, s, h),
            )

    priced: list = []
    for line in managed:
        if line.delta > 0:
            builder.guarded(
                line.code, line.delta, lambda c=line.code, w=line.delta: builder.price_buy(c, w, priced)
            )
    # Largest shortfall first, so the positions that matter most are filled first.
    priced.sort(key=lambda item: (-(item[1] * item[2]), item[0]))
    for code, volume, price, quote in priced:
        builder.guarded(code, volume, lambda c=code, v=volume, p=price, q=quote: builder.buy(c, v, p, q))

    if not plan.orders:
        return plan
    plan.status = PlanStatus.PLACE
    _apply_approval(plan, subscriptions, account, policy)
    return plan
