"""Reads for positions: current targets per strategy and their sum."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from .models import ApiClient, Strategy, TargetLine


@dataclass(frozen=True)
class TotalLine:
    code: str
    jq_code: str
    name: str
    total_volume: int
    avg_cost: Decimal


def strategies_visible(*, client: ApiClient | None) -> QuerySet[Strategy]:
    """Strategies a caller may read: all for staff, the allowed set for a client."""
    queryset = Strategy.objects.all()
    if client is not None and not client.all_strategies:
        queryset = queryset.filter(api_clients=client)
    return queryset


def strategies_with_targets(queryset: QuerySet[Strategy]) -> list[Strategy]:
    """Strategies with current snapshot and its lines loaded in a fixed number of queries."""
    return list(
        queryset.select_related("current_snapshot").prefetch_related(
            Prefetch("current_snapshot__lines", queryset=TargetLine.objects.order_by("code"))
        )
    )


def target_lines(strategy: Strategy) -> list[TargetLine]:
    if strategy.current_snapshot is None:
        return []
    return list(strategy.current_snapshot.lines.all())


def positions_total(strategies: list[Strategy]) -> tuple[list[TotalLine], datetime | None]:
    """Sum of the strategies' current targets; cost is the volume-weighted average."""
    volume: dict[str, int] = defaultdict(int)
    cost_value: dict[str, Decimal] = defaultdict(Decimal)
    labels: dict[str, tuple[str, str]] = {}
    latest = None
    for strategy in strategies:
        snapshot = strategy.current_snapshot
        if snapshot is None:
            continue
        latest = max(latest, snapshot.created_at) if latest else snapshot.created_at
        for line in snapshot.lines.all():
            volume[line.code] += line.volume
            cost_value[line.code] += line.cost * line.volume
            if line.name or line.code not in labels:
                labels[line.code] = (line.jq_code, line.name)
    lines = [
        TotalLine(
            code=code,
            jq_code=labels[code][0],
            name=labels[code][1],
            total_volume=volume[code],
            avg_cost=(cost_value[code] / volume[code]).quantize(Decimal("1e-6")),
        )
        for code in sorted(volume)
    ]
    return lines, latest


def strategy_staleness(strategy: Strategy, *, now: datetime | None = None) -> str:
    """'fresh', 'stale' or 'never' for the overview badge."""
    if strategy.confirmed_at is None:
        return "never"
    now = now or timezone.now()
    limit = timedelta(hours=settings.STRATEGY_STALE_AFTER_HOURS)
    return "fresh" if now - strategy.confirmed_at <= limit else "stale"
