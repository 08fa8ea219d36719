"""Pages: rotation strategies with today's selection, their holdings against cost with the TP/SL lines, and runs.

The display helpers here (schedule text, effective ratios, next run, decision rows)
are shared with the rotation admin.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.contrib.auth.decorators import login_required
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.shortcuts import get_object_or_404, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.dates import WEEKDAYS
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from execution.calendar import market_date
from execution.models import AccountState, Holding, Subscription
from execution.selectors_status import held_rounds
from positions.models import TargetLine
from qmtjq import display

from .budget import budget_use
from .models import RotationRun, RotationStrategy, Selection, TpSlEvent
from .services import _ratios

try:  # the schedule module is optional here: without it the pages show no next run
    from .schedule import next_slot
except ImportError:  # pragma: no cover - depends on the deployment's modules
    next_slot = None

PRICE_TICK = Decimal("0.001")  # convertible bonds trade at a 0.001 tick
PERCENT_PLACES = Decimal("0.01")
LIST_RUNS = 5
DETAIL_RUNS = 30
LIST_EVENTS = 10
DETAIL_EVENTS = 50

ACTION_LABELS = {
    "keep": gettext_lazy("keep"),
    "sell": gettext_lazy("sell"),
    "buy": gettext_lazy("buy"),
    "skip": gettext_lazy("skip"),
}


# --- shared display helpers ------------------------------------------------------------------


def schedule_describe(rotation: RotationStrategy) -> str:
    at = rotation.run_time.strftime("%H:%M") if rotation.run_time else "?"
    if rotation.schedule == RotationStrategy.Schedule.DAILY:
        return _("every trading day at %(time)s") % {"time": at}
    if rotation.schedule == RotationStrategy.Schedule.WEEKLY and rotation.weekday in WEEKDAYS:
        return _("weekly on %(weekday)s at %(time)s") % {"weekday": WEEKDAYS[rotation.weekday], "time": at}
    if rotation.schedule == RotationStrategy.Schedule.MONTHLY and rotation.month_day:
        return _("monthly on day %(day)s at %(time)s") % {"day": rotation.month_day, "time": at}
    return f"{rotation.get_schedule_display()} {at}"


def next_run(rotation: RotationStrategy, now: datetime) -> datetime | None:
    """The next scheduled slot, or None when unknown (disabled, no schedule module, calendar not loaded)."""
    if next_slot is None:
        return None
    try:
        return next_slot(rotation, now)
    except Exception:  # CalendarUnknown, a half-filled schedule: the page shows "—" instead of failing
        return None


def ratio_percent(ratio: Decimal | None) -> str:
    """0.15 → "15%"; 0 or None → "off" (a ratio of 0 disables the check, DESIGN §8)."""
    if not ratio:
        return _("off")
    return f"{(ratio * 100).normalize():f}%"


def ratios_effective(rotation: RotationStrategy) -> tuple[Decimal | None, Decimal | None]:
    """(take-profit, stop-loss) as the TP/SL check uses them: the override, else the record's parameters."""
    return _ratios(rotation)


def decision_rows(decision: object) -> list[dict]:
    """A run's stored decision as table rows; anything that is not a row dict is left out."""
    rows = []
    for row in decision if isinstance(decision, list) else []:
        if not isinstance(row, dict):
            continue
        action = str(row.get("action") or "")
        rows.append(
            {
                "code": str(row.get("code") or ""),
                "name": str(row.get("name") or ""),
                "action": action,
                "action_label": ACTION_LABELS.get(action, action),
                "volume": row.get("volume"),
                "reason": display.decision_reason(row),  # in the reader's language
                "price": row.get("price"),
            }
        )
    return rows


def admin_url(name: str, *args) -> str | None:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


# --- holdings against cost ---------------------------------------------------------------------


@dataclass(frozen=True)
class HoldingLine:
    code: str
    name: str
    target_volume: int
    volume: int | None  # the account's whole holding of the code (other strategies may hold some too)
    avg_cost: Decimal | None
    last_price: Decimal | None
    profit_percent: Decimal | None
    take_profit_price: Decimal | None
    stop_loss_price: Decimal | None


def holding_line(
    *,
    code: str,
    name: str,
    target_volume: int,
    holding: Holding | None,
    take_profit: Decimal | None,
    stop_loss: Decimal | None,
) -> HoldingLine:
    """Profit versus the cost basis, and the prices at which take-profit / stop-loss would trigger."""
    cost = holding.avg_cost if holding is not None and holding.avg_cost and holding.avg_cost > 0 else None
    last = holding.last_price if holding is not None and holding.last_price else None
    profit = ((last - cost) / cost * 100).quantize(PERCENT_PLACES) if cost and last else None
    return HoldingLine(
        code=code,
        name=name,
        target_volume=target_volume,
        volume=holding.volume if holding is not None else None,
        avg_cost=cost,
        last_price=last,
        profit_percent=profit,
        take_profit_price=(cost * (1 + take_profit)).quantize(PRICE_TICK) if cost and take_profit else None,
        stop_loss_price=(cost * (1 - stop_loss)).quantize(PRICE_TICK) if cost and stop_loss else None,
    )


# --- page data ---------------------------------------------------------------------------------


def _latest_runs(rotations: list[RotationStrategy], limit: int) -> dict[int, list[RotationRun]]:
    runs = (
        RotationRun.objects.filter(rotation__in=rotations)
        .select_related("selection")
        .annotate(
            position=Window(
                RowNumber(), partition_by=[F("rotation_id")], order_by=[F("slot").desc(), F("id").desc()]
            )
        )
        .filter(position__lte=limit)
        .order_by("rotation_id", "-slot", "-id")
    )
    by_rotation = defaultdict(list)
    for run in runs:
        by_rotation[run.rotation_id].append(run)
    return by_rotation


def rotation_cards(rotations: list[RotationStrategy], *, runs_limit: int, now: datetime) -> list[dict]:
    """Everything the pages show per rotation, in a fixed number of queries whatever the count."""
    if not rotations:
        return []
    today = market_date(now)
    snapshot_ids = [r.strategy.current_snapshot_id for r in rotations if r.strategy.current_snapshot_id]
    lines = defaultdict(list)
    for line in TargetLine.objects.filter(snapshot_id__in=snapshot_ids).order_by("code"):
        lines[line.snapshot_id].append(line)
    codes = {line.code for snapshot_lines in lines.values() for line in snapshot_lines}
    holdings = {
        (holding.account_id, holding.code): holding
        for holding in Holding.objects.filter(
            account_id__in={r.account_id for r in rotations}, code__in=codes
        )
    }
    todays = {}
    for selection in (
        Selection.objects.filter(rotation__in=rotations, trade_date=today)
        .order_by("-created_at", "-id")
        .prefetch_related("items")
    ):
        todays.setdefault(selection.rotation_id, selection)
    runs = _latest_runs(rotations, runs_limit)
    account_ids = {r.account_id for r in rotations}
    total_assets = dict(
        AccountState.objects.filter(account_id__in=account_ids).values_list("account_id", "total_asset")
    )
    followed = defaultdict(list)  # account → [(strategy id, name)] of its enabled subscriptions
    for account_id, strategy_id, strategy_name in (
        Subscription.objects.filter(account_id__in=account_ids, enabled=True)
        .order_by("strategy__name")
        .values_list("account_id", "strategy_id", "strategy__name")
    ):
        followed[account_id].append((strategy_id, strategy_name))

    cards = []
    for rotation in rotations:
        rotation_runs = [{"run": run, "rows": decision_rows(run.decision)} for run in runs[rotation.pk]]
        selection = todays.get(rotation.pk)
        items = list(selection.items.all()) if selection else []
        names = {}
        for entry in reversed(rotation_runs):  # newer names win
            names.update({row["code"]: row["name"] for row in entry["rows"] if row["name"]})
        names.update({item.code: item.name for item in items if item.name})
        take_profit, stop_loss = ratios_effective(rotation)
        held = [
            holding_line(
                code=line.code,
                name=line.name or names.get(line.code, ""),
                target_volume=line.volume,
                holding=holdings.get((rotation.account_id, line.code)),
                take_profit=take_profit,
                stop_loss=stop_loss,
            )
            for line in lines.get(rotation.strategy.current_snapshot_id, [])
            if line.volume > 0
        ]
        own_lines = [
            (line.code, line.volume, line.cost)
            for line in lines.get(rotation.strategy.current_snapshot_id, [])
            if line.volume > 0
        ]
        budget = budget_use(
            rotation=rotation,
            total_asset=total_assets.get(rotation.account_id),
            lines=own_lines,
            last_prices={line.code: line.last_price for line in held if line.last_price},
            others=[name for sid, name in followed[rotation.account_id] if sid != rotation.strategy_id],
        )
        cards.append(
            {
                "rotation": rotation,
                "schedule": schedule_describe(rotation),
                "next_run": next_run(rotation, now),
                "take_profit": ratio_percent(take_profit),
                "stop_loss": ratio_percent(stop_loss),
                "take_profit_on": bool(take_profit),
                "stop_loss_on": bool(stop_loss),
                "selection": selection,
                "selection_items": items,
                "holdings": held,
                "budget": budget,
                "runs": rotation_runs,
            }
        )
    return cards


def _events(queryset) -> list[dict]:
    return [
        {
            "event": event,
            "profit_percent": ((event.price - event.cost) / event.cost * 100).quantize(PERCENT_PLACES)
            if event.cost
            else None,
            "ratio": ratio_percent(event.ratio),
        }
        for event in queryset
    ]


def _rotations():
    return RotationStrategy.objects.select_related("account", "strategy", "factorcat_account").order_by(
        "name"
    )


@login_required
def rotation_list(request):
    now = timezone.now()
    rotations = list(_rotations())
    return render(
        request,
        "rotation/rotation_list.html",
        {
            "cards": rotation_cards(rotations, runs_limit=LIST_RUNS, now=now),
            "today": market_date(now),
            "events": _events(TpSlEvent.objects.select_related("rotation")[:LIST_EVENTS]),
            "held_rounds": held_rounds(accounts=sorted({r.account for r in rotations}, key=lambda a: a.name)),
        },
    )


@login_required
def rotation_detail(request, name: str):
    now = timezone.now()
    rotation = get_object_or_404(_rotations(), name=name)
    (card,) = rotation_cards([rotation], runs_limit=DETAIL_RUNS, now=now)
    return render(
        request,
        "rotation/rotation_detail.html",
        {
            "card": card,
            "rotation": rotation,
            "today": market_date(now),
            "events": _events(rotation.tp_sl_events.select_related("rotation")[:DETAIL_EVENTS]),
            "held_rounds": held_rounds(accounts=[rotation.account]),
            "admin_url": admin_url("admin:rotation_rotationstrategy_change", rotation.pk)
            if request.user.is_staff
            else None,
        },
    )
