"""Writes for rotation: create rotations, take in selections, run a rotation, take profit / stop loss.

A rotation never places orders: it writes its Strategy's target snapshot and
the account's worker trades the difference (DESIGN §2).
"""

import csv
import io
import logging
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from execution.calendar import market_date
from execution.models import AccountState, BrokerAccount, Subscription
from execution.planner import Quote
from positions.codes import CodeError, normalize, to_jq
from positions.models import TargetSnapshot
from positions.services import strategy_get_or_create, target_write
from positions.validation import TargetPosition
from qmtjq.names import SOURCE_SELECTION, security_names_upsert
from qmtjq.notifications import (
    EVENT_ROTATION_FAILED,
    EVENT_ROTATION_SKIPPED_BOND,
    EVENT_TP_SL_TRIGGERED,
    notify,
)

from . import decisions
from .models import RotationRun, RotationStrategy, Selection, SelectionItem, TpSlEvent

logger = logging.getLogger(__name__)

MAX_SELECTION = 500


class RotationError(Exception):
    """A run cannot go ahead; the message says why (nothing was changed)."""


# --- creating rotations --------------------------------------------------------------


@transaction.atomic
def rotation_create(*, name: str, account: BrokerAccount, **fields) -> RotationStrategy:
    """A rotation with its own target Strategy, which the account follows 1:1."""
    strategy, _ = strategy_get_or_create(name=f"rotation:{name}")
    rotation = RotationStrategy(name=name, account=account, strategy=strategy, **fields)
    rotation.full_clean()
    rotation.save()
    Subscription.objects.get_or_create(
        account=account,
        strategy=strategy,
        defaults={"scaling": Subscription.Scaling.RATIO, "ratio": Decimal(1)},
    )
    if strategy.current_snapshot_id is None:
        # A new rotation owns nothing yet; saying so explicitly keeps its account
        # trading its other strategies instead of blocking on a missing target.
        target_write(strategy=strategy, positions=(), source=TargetSnapshot.Source.ROTATION)
    return rotation


def rotations_confirm_targets(*, now: datetime) -> int:
    """The rotation job is alive: its enabled rotations still stand by their targets.

    A weekly or monthly rotation writes a target only on its run days; without
    this, its account would block on a "stale target" between runs. If the job
    stops, confirmations stop and the staleness guard works as for uploads.
    """
    from positions.models import Strategy

    return Strategy.objects.filter(rotation__enabled=True).update(confirmed_at=now)


# --- selections -------------------------------------------------------------------------


@dataclass(frozen=True)
class SelectedBond:
    code: str
    name: str = ""
    rank: int | None = None
    price: Decimal | None = None


def selection_validate(bonds: object) -> list[SelectedBond]:
    """Validate a posted or uploaded list; raises ValueError naming the bad line."""
    if not isinstance(bonds, list):
        raise ValueError("bonds: must be a list")
    if len(bonds) > MAX_SELECTION:
        raise ValueError(f"bonds: at most {MAX_SELECTION} lines")
    result, seen = [], set()
    for index, item in enumerate(bonds):
        field = f"bonds[{index}]"
        if not isinstance(item, dict):
            raise ValueError(f"{field}: must be an object with code")
        try:
            code = normalize(item.get("code"))
        except CodeError as exc:
            raise ValueError(f"{field}.code: {exc}")
        if code in seen:
            raise ValueError(f"{field}.code: {code} appears twice")
        seen.add(code)
        name = item.get("name") or ""
        if not isinstance(name, str) or len(name) > 64:
            raise ValueError(f"{field}.name: must be a string of at most 64 characters")
        rank = item.get("rank")
        if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or rank < 1):
            raise ValueError(f"{field}.rank: must be a positive whole number")
        result.append(SelectedBond(code, name.strip(), rank))
    ranks = [b.rank for b in result if b.rank is not None]
    if len(ranks) != len(set(ranks)):
        raise ValueError("bonds: two lines have the same rank")
    return result


def selection_parse_csv(data: bytes) -> list[dict]:
    """CSV with a `code` column (and optional `name`, `rank`), UTF-8 (with or without BOM) or GBK."""
    for encoding in ("utf-8-sig", "gbk"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ValueError("the file is neither UTF-8 nor GBK text")
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "code" not in [f.strip().lower() for f in reader.fieldnames]:
        raise ValueError("the CSV needs a header row with a 'code' column (and optionally 'name', 'rank')")
    bonds = []
    for line_no, row in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        if not row.get("code"):
            continue
        rank = row.get("rank")
        if rank:
            if not rank.isdigit():
                raise ValueError(f"line {line_no}: rank {rank!r} is not a whole number")
            rank = int(rank)
        bonds.append({"code": row["code"], "name": row.get("name", ""), "rank": rank or None})
    return bonds


@transaction.atomic
def selection_store(
    *,
    rotation: RotationStrategy,
    trade_date: date,
    bonds: list[SelectedBond],
    source: str,
    received_from: str = "",
) -> Selection:
    selection = Selection.objects.create(
        rotation=rotation, trade_date=trade_date, source=source, received_from=received_from[:200]
    )
    # Explicit ranks first, in their order; unranked lines follow in list order.
    ordered = sorted(enumerate(bonds), key=lambda item: (item[1].rank is None, item[1].rank or 0, item[0]))
    SelectionItem.objects.bulk_create(
        SelectionItem(selection=selection, rank=rank, code=bond.code, name=bond.name, price=bond.price)
        for rank, (_, bond) in enumerate(ordered, start=1)
    )
    security_names_upsert(names={bond.code: bond.name for bond in bonds}, source=SOURCE_SELECTION)
    return selection


def selection_fetch_factorcat(*, rotation: RotationStrategy, today: date) -> Selection:
    from .credentials import with_relogin

    account = rotation.factorcat_account
    bonds = with_relogin(account, lambda client: client.today_selection(rotation.factorcat_history_id))
    if not bonds:
        raise RotationError("Factor Cat returned an empty selection for today; nothing changed")
    dates = {b.trade_date for b in bonds if b.trade_date}
    if dates and today not in dates:
        raise RotationError(f"Factor Cat's selection is for {sorted(dates)}, not {today}; nothing changed")
    return selection_store(
        rotation=rotation,
        trade_date=today,
        bonds=[SelectedBond(b.code, b.name, b.rank, b.price) for b in bonds],
        source=Selection.Source.FACTORCAT,
        received_from=account.base_url,
    )


def selection_for(*, rotation: RotationStrategy, trade_date: date, fetch: bool = True) -> Selection:
    """Today's list: fetched from Factor Cat, or the latest uploaded for that date. Never an older one."""
    if rotation.source == RotationStrategy.Source.FACTORCAT and fetch:
        return selection_fetch_factorcat(rotation=rotation, today=trade_date)
    selection = (
        Selection.objects.filter(rotation=rotation, trade_date=trade_date)
        .order_by("-created_at", "-id")
        .first()
    )
    if selection is None:
        raise RotationError(f"no selection for {trade_date}: upload one (CSV or API) first; nothing changed")
    return selection


# --- running -------------------------------------------------------------------------------


def _quotes(account: BrokerAccount, codes: list[str]) -> dict[str, Quote]:
    from execution.runtime import quote_source_for

    return quote_source_for(account)(sorted(set(codes))) if codes else {}


def _current_target(rotation: RotationStrategy) -> dict[str, int]:
    snapshot = rotation.strategy.current_snapshot
    if snapshot is None:
        return {}
    return dict(snapshot.lines.values_list("code", "volume"))


def rotation_decide(*, rotation: RotationStrategy, selection: Selection) -> decisions.Decision:
    items = list(selection.items.all())
    held = _current_target(rotation)
    state = AccountState.objects.filter(account=rotation.account).first()
    if state is None:
        raise RotationError(
            f"account {rotation.account.name} has no reported state yet: start its worker first"
        )
    quotes = _quotes(rotation.account, [i.code for i in items] + list(held))
    return decisions.decide(
        selection=[decisions.Candidate(i.code, i.name, i.rank, i.price) for i in items],
        held=held,
        quotes=quotes,
        excluded=rotation.excluded_code_set(),
        top_n=rotation.top_n,
        sizing=rotation.sizing,
        amount_per_bond=rotation.amount_per_bond,
        cash=state.cash,
        fee_rate=rotation.account.commission_rate + Decimal("0.0005"),  # commission plus a small buffer
    )


def _write_target(
    rotation: RotationStrategy, target: dict[str, int], prices: dict[str, Decimal]
) -> TargetSnapshot:
    lines = tuple(
        TargetPosition(
            code, to_jq(code), "", volume, (prices.get(code) or Decimal(0)).quantize(Decimal("1e-6"))
        )
        for code, volume in sorted(target.items())
        if volume > 0
    )
    snapshot, _changed = target_write(
        strategy=rotation.strategy, positions=lines, source=TargetSnapshot.Source.ROTATION
    )
    return snapshot


def run_execute(*, run: RotationRun, now: datetime) -> RotationRun:
    """Carry out a claimed run: selection → decision → the rotation's new target. Failures change nothing."""
    rotation = run.rotation
    trade_date = market_date(run.slot)
    try:
        selection = selection_for(rotation=rotation, trade_date=trade_date)
        decision = rotation_decide(rotation=rotation, selection=selection)
        snapshot = _write_target(rotation, decision.target, decision.prices)
    except Exception as exc:  # recorded and notified; the job goes on with other rotations
        run.status, run.message, run.finished_at = RotationRun.Status.FAILED, str(exc), timezone.now()
        run.save(update_fields=["status", "message", "finished_at"])
        notify(
            EVENT_ROTATION_FAILED,
            title=f"rotation {rotation.name} failed",
            body=str(exc),
            key=f"{rotation.name}:{exc}",
        )
        if not isinstance(exc, RotationError):
            logger.exception("rotation %s failed", rotation.name)
        return run
    run.status, run.selection, run.decision = (
        RotationRun.Status.DONE,
        selection,
        [r.as_dict() for r in decision.rows],
    )
    run.target_snapshot_id, run.finished_at = snapshot.pk, timezone.now()
    run.save(update_fields=["status", "selection", "decision", "target_snapshot_id", "finished_at"])
    for row in decision.notify_rows:
        notify(
            EVENT_ROTATION_SKIPPED_BOND,
            title=f"rotation {rotation.name} skipped {row.code} {row.name}",
            body=row.reason,
            key=f"{rotation.name}:{row.code}:{row.reason}",
        )
    return run


def rotation_run_now(
    *, rotation: RotationStrategy, now: datetime, trade_date: date | None = None, dry_run: bool = False
) -> tuple[RotationRun | None, decisions.Decision | None, str]:
    """Run one now (manual). Dry run: decide from stored data only, write nothing."""
    trade_date = trade_date or timezone.localtime(now).date()
    if dry_run:
        try:
            selection = selection_for(
                rotation=rotation,
                trade_date=trade_date,
                fetch=rotation.source == RotationStrategy.Source.FACTORCAT,
            )
            return None, rotation_decide(rotation=rotation, selection=selection), ""
        except RotationError as exc:
            return None, None, str(exc)
    slot = timezone.make_aware(
        datetime.combine(trade_date, timezone.localtime(now).time().replace(microsecond=0))
    )
    try:
        run = RotationRun.objects.create(rotation=rotation, slot=slot, trigger=RotationRun.Trigger.MANUAL)
    except IntegrityError:
        raise RotationError(f"a run of {rotation.name} for {slot} already exists")
    run = run_execute(run=run, now=now)
    return run, None, run.message


# --- take-profit / stop-loss ------------------------------------------------------------------


def _ratios(rotation: RotationStrategy) -> tuple[Decimal | None, Decimal | None]:
    """Effective (take-profit, stop-loss): the rotation's own setting, else the backtest record's."""
    from .factorcat import tp_sl_ratios

    record_tp, record_sl = tp_sl_ratios(rotation.factorcat_parameters or {})
    take_profit = rotation.take_profit_ratio if rotation.take_profit_ratio is not None else record_tp
    stop_loss = rotation.stop_loss_ratio if rotation.stop_loss_ratio is not None else record_sl
    return take_profit, stop_loss


def _refill(
    rotation: RotationStrategy, target: dict[str, int], value: Decimal, quotes: dict
) -> tuple[str, int, Decimal]:
    """The next-ranked bond of the latest selection not held, sized to the value sold."""
    selection = Selection.objects.filter(rotation=rotation).order_by("-trade_date", "-created_at").first()
    if selection is None:
        return "", 0, Decimal(0)
    excluded = rotation.excluded_code_set()
    for item in selection.items.all():
        if item.code in target or item.code in excluded:
            continue
        quote = quotes.get(item.code)
        if quote is None or quote.suspended or not quote.last:
            continue
        if quote.up_stop is not None and quote.last >= quote.up_stop:
            continue
        volume = decisions.lots_for(value, quote.last, rotation.account.commission_rate)
        if volume:
            return item.code, volume, quote.last
    return "", 0, Decimal(0)


def tp_sl_check(*, now: datetime, dry_run: bool = False) -> list[dict]:
    """One pass over every enabled rotation's own held bonds; each trigger rewrites the target without the bond.

    Idempotent: a triggered bond leaves the target, so a repeated pass finds nothing more to do.
    """
    results = []
    rotations = RotationStrategy.objects.filter(enabled=True).select_related(
        "account", "strategy", "strategy__current_snapshot"
    )
    for rotation in rotations:
        take_profit, stop_loss = _ratios(rotation)
        if not take_profit and not stop_loss:
            continue
        target = _current_target(rotation)
        if not target:
            continue
        held = {h.code: h for h in rotation.account.holdings.filter(code__in=list(target), volume__gt=0)}
        if not held:
            continue
        selection_codes = []
        if rotation.refill_after_tp_sl:
            latest = (
                Selection.objects.filter(rotation=rotation).order_by("-trade_date", "-created_at").first()
            )
            selection_codes = list(latest.items.values_list("code", flat=True)) if latest else []
        quotes = _quotes(rotation.account, list(held) + selection_codes)
        positions = {
            code: (quotes[code].last if code in quotes else None, holding.avg_cost)
            for code, holding in held.items()
        }
        triggers = decisions.tp_sl_triggers(positions=positions, take_profit=take_profit, stop_loss=stop_loss)
        for trigger in triggers:
            new_target = {code: volume for code, volume in target.items() if code != trigger.code}
            refill_code, refill_volume, refill_price = "", 0, Decimal(0)
            if rotation.refill_after_tp_sl:
                value = trigger.price * held[trigger.code].volume
                refill_code, refill_volume, refill_price = _refill(rotation, new_target, value, quotes)
                if refill_code:
                    new_target[refill_code] = refill_volume
            result = {
                "rotation": rotation.name,
                "code": trigger.code,
                "kind": trigger.kind,
                "price": trigger.price,
                "cost": trigger.cost,
                "ratio": trigger.ratio,
                "refill": refill_code,
            }
            results.append(result)
            if dry_run:
                continue
            prices = {code: quotes[code].last for code in new_target if code in quotes and quotes[code].last}
            snapshot = _write_target(rotation, new_target, prices)
            TpSlEvent.objects.create(
                rotation=rotation,
                kind=trigger.kind,
                code=trigger.code,
                price=trigger.price,
                cost=trigger.cost,
                ratio=trigger.ratio,
                refill_code=refill_code,
                target_snapshot_id=snapshot.pk,
            )
            notify(
                EVENT_TP_SL_TRIGGERED,
                title=f"{rotation.name}: {trigger.kind.replace('_', '-')} {trigger.code}",
                body=(
                    f"price {trigger.price} vs cost {trigger.cost} ({trigger.profit:+.2%}), ratio {trigger.ratio}"
                    + (f"; refilled with {refill_code} × {refill_volume}" if refill_code else "")
                ),
                key=f"{rotation.name}:{trigger.code}:{trigger.kind}",
            )
            target = new_target
    return results
