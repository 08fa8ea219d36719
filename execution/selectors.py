"""Reads for execution: the planner's inputs and what pages show."""

from datetime import datetime, time, timedelta
from decimal import Decimal

from django.db.models import Q, Sum
from django.utils import timezone

from positions.models import TargetLine as StoredTargetLine

from . import planner
from .brokers.base import BrokerAsset
from .models import (
    FINAL_STATUSES,
    AccountState,
    BrokerAccount,
    Fill,
    Holding,
    ManagedCode,
    Order,
    ReservedHolding,
    Round,
    Subscription,
)


def subscriptions_active(*, account: BrokerAccount) -> list[Subscription]:
    return list(
        account.subscriptions.filter(enabled=True)
        .select_related("strategy", "strategy__current_snapshot")
        .order_by("strategy__name")
    )


def subscribed_targets(*, account: BrokerAccount) -> list[planner.SubscribedTarget]:
    """Each enabled subscription with its strategy's current target, in two queries."""
    subscriptions = subscriptions_active(account=account)
    snapshot_ids = [s.strategy.current_snapshot_id for s in subscriptions if s.strategy.current_snapshot_id]
    lines: dict[int, list[planner.TargetLine]] = {sid: [] for sid in snapshot_ids}
    for snapshot_id, code, volume, cost in StoredTargetLine.objects.filter(
        snapshot_id__in=snapshot_ids
    ).values_list("snapshot_id", "code", "volume", "cost"):
        lines[snapshot_id].append(planner.TargetLine(code, volume, cost))
    result = []
    for sub in subscriptions:
        strategy, snapshot = sub.strategy, sub.strategy.current_snapshot
        result.append(
            planner.SubscribedTarget(
                strategy_id=strategy.pk,
                strategy_name=strategy.name,
                mode=sub.scaling,
                ratio=sub.ratio,
                capital=sub.capital,
                snapshot_id=snapshot.pk if snapshot else None,
                confirmed_at=strategy.confirmed_at,
                total_value=snapshot.total_value if snapshot else None,
                lines=tuple(lines.get(snapshot.pk, ())) if snapshot else (),
                rule_exits=frozenset(snapshot.rule_exits or ()) if snapshot else frozenset(),
            )
        )
    return result


def targets_signature(*, account: BrokerAccount) -> tuple:
    """Cheap change detector polled every cycle: one small indexed query."""
    return tuple(
        account.subscriptions.filter(enabled=True)
        .order_by("pk")
        .values_list("pk", "scaling", "ratio", "capital", "strategy__current_snapshot_id")
    )


def account_policy(*, account: BrokerAccount) -> planner.AccountPolicy:
    return planner.AccountPolicy(
        slippage=account.slippage,
        max_order_value=account.max_order_value,
        max_daily_turnover=account.max_daily_turnover,
        approval_threshold=account.approval_threshold,
        hold_rule_exits=account.hold_rule_exits,
        stale_after=account.stale_after,
        sell_unmanaged=account.sell_unmanaged,
        ignore_codes=frozenset(account.ignore_code_list()),
        commission_rate=account.commission_rate,
        min_commission=account.min_commission,
    )


def trading_day_start(now: datetime) -> datetime:
    local = timezone.localtime(now)
    return timezone.make_aware(datetime.combine(local.date(), time.min), local.tzinfo)


def turnover_today(*, account: BrokerAccount, now: datetime) -> Decimal:
    start = trading_day_start(now)
    total = Fill.objects.filter(
        account=account, traded_at__gte=start, traded_at__lt=start + timedelta(days=1)
    )
    return total.aggregate(value=Sum("amount"))["value"] or Decimal(0)


def open_orders(*, account: BrokerAccount):
    return Order.objects.filter(account=account).exclude(status__in=FINAL_STATUSES)


def _open_status_ranges() -> list[Q]:
    finals = sorted(FINAL_STATUSES)
    ranges = [Q(status__lt=finals[0]), Q(status__gt=finals[-1])]
    ranges += [
        Q(status__gt=low, status__lt=high)
        for low, high in zip(finals, finals[1:], strict=False)
        if high - low > 1
    ]
    return ranges


def open_orders_list(*, account: BrokerAccount) -> list[Order]:
    """open_orders() newest first, for pages: one query per gap between final statuses.

    Each range seeks the (account, status) index; NOT IN reads every entry of the account
    (hundreds of thousands after a few years), and ORDER BY created_at walks them all.
    Any status not final, even one the enum does not know, is open, as in open_orders().
    """
    rows = []
    for status_range in _open_status_ranges():
        rows += Order.objects.filter(status_range, account=account).select_related("account").order_by()
    return sorted(rows, key=lambda order: (order.created_at, order.pk), reverse=True)


def account_view(
    *,
    account: BrokerAccount,
    now: datetime,
    holdings: list[Holding] | None = None,
    cash: Decimal | None = None,
    asset: BrokerAsset | None = None,
) -> planner.AccountView:
    """The planner's view of the account from the state the worker just stored (`asset`: just reported)."""
    state = asset or AccountState.objects.get(account=account)
    cent = Decimal("0.01")  # as AccountState stores them
    rows = holdings if holdings is not None else list(account.holdings.all())
    pending = Decimal(0)
    for order in open_orders(account=account).filter(side=Order.Side.BUY):
        pending += order.limit_price * (order.volume - order.filled_volume)
    return planner.AccountView(
        cash=state.cash.quantize(cent) if cash is None else cash,
        total_asset=state.total_asset.quantize(cent),
        holdings={
            h.code: planner.Holding(h.code, h.volume, h.can_use_volume, h.avg_cost, h.last_price)
            for h in rows
        },
        reserved=dict(ReservedHolding.objects.filter(account=account).values_list("code", "volume")),
        managed_codes=frozenset(ManagedCode.objects.filter(account=account).values_list("code", flat=True)),
        pending_buy_value=pending,
        turnover_today=turnover_today(account=account, now=now),
    )


def latest_round(*, account: BrokerAccount) -> Round | None:
    return Round.objects.filter(account=account).order_by("-created_at", "-id").first()


def drift(*, account: BrokerAccount) -> list[dict]:
    """Target vs actual per code for the account page and API (no quotes needed).

    Uses the planner's own diff, so "managed" means here what the round does:
    a code a strategy dropped is managed with target 0, not "unmanaged".
    """
    subscriptions = subscribed_targets(account=account)
    target, skips = planner.account_target(subscriptions)
    unsized = frozenset(
        s.code for s in skips if s.reason in (planner.SkipReason.NOT_TRADABLE, planner.SkipReason.ERROR)
    )
    holdings = list(account.holdings.all())
    view = planner.AccountView(
        cash=Decimal(0),
        total_asset=Decimal(0),
        holdings={h.code: planner.Holding(h.code, h.volume, h.can_use_volume, h.avg_cost) for h in holdings},
        reserved=dict(ReservedHolding.objects.filter(account=account).values_list("code", "volume")),
        managed_codes=frozenset(ManagedCode.objects.filter(account=account).values_list("code", flat=True)),
    )
    lines, _skips = planner.diff_lines(target, view, account_policy(account=account), unsized=unsized)
    return [
        {
            "code": line.code,
            "target": line.target,
            "actual": line.actual,
            "reserved": line.reserved,
            "delta": line.delta,
            "managed": line.managed,
        }
        for line in lines
    ]
