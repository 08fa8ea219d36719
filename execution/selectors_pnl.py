"""P&L for the account page: the equity curve, drawdown, holdings against cost, tracking and slippage."""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.core.cache import cache
from django.db import connection
from django.db.models import (
    Case,
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    FloatField,
    Max,
    Q,
    Sum,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Cast
from django.utils import timezone

from positions.models import TargetLine, TargetSnapshot

from .models import BrokerAccount, EquityPoint, Fill, Holding, Round

CURVE_POINTS = 1500  # enough for a smooth curve; older points are thinned, never the last one
SLIPPAGE_DAYS = 30
SLIPPAGE_CACHE_SECONDS = 24 * 3600  # the key changes with every fill and every day anyway
TEN_THOUSAND = Decimal(10000)


def equity_curve(*, account: BrokerAccount, since: datetime | None = None) -> list[tuple[datetime, Decimal]]:
    """(time, total assets) in time order, thinned evenly to at most CURVE_POINTS."""
    points = EquityPoint.objects.filter(account=account)
    if since is not None:
        points = points.filter(at__gte=since)
    rows = list(points.order_by("at").values_list("at", "total_asset"))
    if len(rows) <= CURVE_POINTS:
        return rows
    step = len(rows) / (CURVE_POINTS - 1)
    thinned = [rows[int(i * step)] for i in range(CURVE_POINTS - 1)]
    return [*thinned, rows[-1]]


@dataclass(frozen=True)
class Drawdown:
    max_drawdown: Decimal | None  # worst fall from a peak, as a ratio (0.12 = 12%)
    current: Decimal | None  # fall from the highest value so far to now
    peak: Decimal | None


def drawdown(curve: list[tuple[datetime, Decimal]]) -> Drawdown:
    peak, worst = None, Decimal(0)
    for _at, value in curve:
        peak = value if peak is None or value > peak else peak
        if peak and peak > 0:
            worst = max(worst, (peak - value) / peak)
    if peak is None:
        return Drawdown(None, None, None)
    last = curve[-1][1]
    return Drawdown(worst, (peak - last) / peak if peak > 0 else None, peak)


@dataclass(frozen=True)
class HoldingPnl:
    code: str
    volume: int
    can_use_volume: int
    avg_cost: Decimal | None
    last_price: Decimal | None
    market_value: Decimal
    pnl: Decimal | None
    pnl_ratio: Decimal | None
    weight: Decimal | None


def holdings_pnl(*, account: BrokerAccount, total_asset: Decimal | None) -> list[HoldingPnl]:
    rows = []
    for holding in Holding.objects.filter(account=account).order_by("code"):
        cost = holding.avg_cost if holding.avg_cost and holding.avg_cost > 0 else None
        last = holding.last_price or None
        pnl = (last - cost) * holding.volume if cost and last else None
        rows.append(
            HoldingPnl(
                code=holding.code,
                volume=holding.volume,
                can_use_volume=holding.can_use_volume,
                avg_cost=cost,
                last_price=last,
                market_value=holding.market_value,
                pnl=pnl,
                pnl_ratio=(last - cost) / cost if cost and last else None,
                weight=holding.market_value / total_asset if total_asset else None,
            )
        )
    return rows


@dataclass(frozen=True)
class Tracking:
    strategy: str
    since: datetime | None
    account_return: Decimal | None
    strategy_return: Decimal | None
    difference: Decimal | None  # account minus strategy: how far the account lags (−) or leads (+)
    series: list[tuple[datetime, Decimal | None, Decimal]]  # (time, account return, strategy return)


def _value_at(curve: list[tuple[datetime, Decimal]], at: datetime) -> Decimal | None:
    """The last account value recorded at or before `at` (None before the first point)."""
    value = None
    for point_at, total in curve:
        if point_at > at:
            break
        value = total
    return value


def tracking(*, account: BrokerAccount, curve: list[tuple[datetime, Decimal]]) -> list[Tracking]:
    """Per strategy followed: the account's return against the strategy's own total_value from its uploads.

    Both are rebased to the first upload that has an account value at or before it, so
    the lines start together; the gap between them is how closely the account follows.
    """
    result = []
    subscriptions = account.subscriptions.filter(enabled=True).select_related("strategy").order_by("strategy__name")
    for sub in subscriptions:
        values = list(
            TargetSnapshot.objects.filter(strategy=sub.strategy, total_value__isnull=False, total_value__gt=0)
            .order_by("created_at")
            .values_list("created_at", "total_value")
        )
        series, base = [], None
        for at, strategy_value in values:
            account_value = _value_at(curve, at)
            if base is None:
                if account_value is None or account_value <= 0:
                    continue
                base = (strategy_value, account_value, at)
            strategy_return = strategy_value / base[0] - 1
            account_return = account_value / base[1] - 1 if account_value else None
            series.append((at, account_return, strategy_return))
        if base is not None and curve and curve[-1][0] > series[-1][0]:
            series.append((curve[-1][0], curve[-1][1] / base[1] - 1, series[-1][2]))
        last = series[-1] if series else None
        account_return = last[1] if last else None
        strategy_return = last[2] if last else None
        result.append(
            Tracking(
                strategy=sub.strategy.name,
                since=base[2] if base else None,
                account_return=account_return,
                strategy_return=strategy_return,
                difference=account_return - strategy_return
                if account_return is not None and strategy_return is not None
                else None,
                series=series,
            )
        )
    return result


@dataclass(frozen=True)
class Slippage:
    strategy: str
    fills: int
    amount: Decimal
    vs_cost_bps: Decimal | None  # fill price against the strategy's own cost for the code (+ = worse)
    vs_limit_bps: Decimal | None  # fill price against our limit price (− = better than the limit)


def _number(field: str):
    """A decimal column for SQL arithmetic: SQLite keeps decimals as REAL or INTEGER (10.00 is 10),
    so there it is read as float (10 / 11 is not 0); elsewhere the exact DECIMAL."""
    return Cast(field, FloatField()) if connection.vendor == "sqlite" else F(field)


def _as_decimal(value) -> Decimal:
    if value is None:
        return Decimal(0)
    return value if isinstance(value, Decimal) else Decimal(str(value))


def slippage(*, account: BrokerAccount, now: datetime, days: int = SLIPPAGE_DAYS) -> list[Slippage]:
    """Value-weighted slippage of the fills since local midnight `days` days ago, per strategy that
    wanted the code.

    With ~9,000 fills a month this is most of the account page's SQL (~100 ms on MariaDB), and it
    changes only when a fill arrives or the day turns: the result is kept in the cache under the
    window's start and the count and newest id of its fills (one index-only query), so a new fill
    shows at once and a reload in between costs that query and a cache read.
    """
    since = timezone.localtime(now - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    in_window = Fill.objects.filter(account=account, traded_at__gte=since)
    state = in_window.aggregate(fills=Count("id"), newest=Max("id"))
    key = f"qmtjq:slippage:{account.pk}:{since.isoformat()}:{state['fills']}:{state['newest']}"
    rows = cache.get(key)
    if rows is None:
        rows = _slippage_of(in_window.filter(order__isnull=False))
        cache.set(key, rows, SLIPPAGE_CACHE_SECONDS)
    return rows


def _slippage_of(recent) -> list[Slippage]:
    """Fills, amounts and the slippage against our limit price are summed in SQL per list of
    strategies (a handful of rows, not one per fill). Only fills of a code some strategy gave a
    cost for are read one by one, for the cost."""
    # The strategies JSON as text: a few distinct lists, each decoded once.
    by_strategies = recent.order_by().annotate(strategies_text=Cast("order__strategies", output_field=TextField()))
    limit_known = Q(order__limit_price__gt=0)
    sign = Case(When(side="buy", then=Value(1)), default=Value(-1))
    number = FloatField() if connection.vendor == "sqlite" else DecimalField(max_digits=40, decimal_places=12)
    versus_limit = ExpressionWrapper(
        sign * (_number("price") - _number("order__limit_price")) * _number("amount") / _number("order__limit_price"),
        output_field=number,
    )
    groups = by_strategies.values("strategies_text").annotate(
        fills=Count("id"),
        amount_sum=Sum("amount"),
        limit_sum=Sum(Case(When(limit_known, then=versus_limit), output_field=number)),
        limit_amount=Sum("amount", filter=limit_known),
    )
    decoded: dict[str, list] = {}

    def names_of(strategies_text: str | None) -> list:
        if strategies_text not in decoded:
            decoded[strategies_text] = (json.loads(strategies_text) if strategies_text else None) or [None]
        return decoded[strategies_text]

    totals: dict[str, dict] = {}

    def entry_of(name) -> dict:
        key = str(name or "—")
        if key not in totals:
            totals[key] = {
                "fills": 0, "amount": Decimal(0), "cost": [Decimal(0), Decimal(0)], "limit": [Decimal(0), Decimal(0)]
            }
        return totals[key]

    for group in groups:
        for name in names_of(group["strategies_text"]):
            entry = entry_of(name)
            entry["fills"] += group["fills"]
            entry["amount"] += _as_decimal(group["amount_sum"])
            entry["limit"][0] += _as_decimal(group["limit_sum"])
            entry["limit"][1] += _as_decimal(group["limit_amount"])
    round_targets = {
        pk: targets or {}
        # A subquery, not thousands of ids as parameters (Django prepares each one: ~30 ms for 2,000).
        for pk, targets in Round.objects.filter(
            pk__in=recent.filter(order__round__isnull=False).order_by().values("order__round_id")
        ).values_list("pk", "targets")
    }
    snapshot_ids = set()
    for targets in round_targets.values():
        snapshot_ids.update(v for v in targets.values() if isinstance(v, int))
    costs = {
        (snapshot_id, code): cost
        for snapshot_id, code, cost in TargetLine.objects.filter(
            snapshot_id__in=snapshot_ids, cost__gt=0
        ).values_list("snapshot_id", "code", "cost")
    }
    fills = (
        by_strategies.filter(code__in={code for _, code in costs})
        .annotate(
            # Decimals as text, made Decimal here: exact, and without SQLite's float-then-quantize converter.
            price_text=Cast("price", output_field=TextField()),
            amount_text=Cast("amount", output_field=TextField()),
        )
        .values_list("side", "code", "price_text", "amount_text", "strategies_text", "order__round_id")
        if costs
        else []
    )
    for side, code, price_text, amount_text, strategies_text, round_id in fills:
        price, amount = Decimal(price_text), Decimal(amount_text)
        sign = 1 if side == "buy" else -1
        targets = round_targets.get(round_id, {})
        for name in names_of(strategies_text):
            cost = costs.get((targets.get(name), code)) if name else None
            if cost:
                entry = entry_of(name)
                entry["cost"][0] += sign * (price - cost) / cost * amount
                entry["cost"][1] += amount
    return [
        Slippage(
            strategy=name,
            fills=entry["fills"],
            amount=entry["amount"],
            vs_cost_bps=entry["cost"][0] / entry["cost"][1] * TEN_THOUSAND if entry["cost"][1] else None,
            vs_limit_bps=entry["limit"][0] / entry["limit"][1] * TEN_THOUSAND if entry["limit"][1] else None,
        )
        for name, entry in sorted(totals.items())
    ]
