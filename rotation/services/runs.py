"""Running a rotation: selection → decision → the rotation's new target snapshot."""

import logging
from datetime import date, datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from execution.calendar import SHANGHAI, market_date, market_time
from execution.models import AccountState, BrokerAccount
from execution.planner import Quote
from positions.codes import to_jq
from positions.models import TargetSnapshot
from positions.services import target_write
from positions.validation import TargetPosition
from qmtjq import display
from qmtjq.notifications import (
    EVENT_ROTATION_FAILED,
    EVENT_ROTATION_SKIPPED_BOND,
    notify,
)

from .. import decisions
from ..budget import budget_limit, budget_missing
from ..models import RotationRun, RotationStrategy, Selection
from .cooldown import cooldown_codes
from .rotations import RotationError
from .selections import SelectedBond, selection_for, selection_store

logger = logging.getLogger(__name__)


def _quotes(account: BrokerAccount, codes: list[str]) -> dict[str, Quote]:
    from execution.runtime import quote_source_for

    return quote_source_for(account)(sorted(set(codes))) if codes else {}


def _current_target(rotation: RotationStrategy) -> tuple[dict[str, int], dict[str, Decimal]]:
    """The rotation's own holdings (its current target) and their cost basis (0: none recorded)."""
    snapshot = rotation.strategy.current_snapshot
    if snapshot is None:
        return {}, {}
    lines = list(snapshot.lines.values_list("code", "volume", "cost"))
    return {code: volume for code, volume, _ in lines}, {code: cost for code, _, cost in lines if cost}


def rotation_decide(
    *, rotation: RotationStrategy, bonds: list[SelectedBond], trade_date: date
) -> decisions.Decision:
    if missing := budget_missing(rotation=rotation):
        raise RotationError(*missing)  # sized from the whole cash, it would starve the other strategies
    held, costs = _current_target(rotation)
    cooling = cooldown_codes(rotation=rotation, today=trade_date)
    state = AccountState.objects.filter(account=rotation.account).first()
    if state is None:
        raise RotationError.of("no_state", account=rotation.account.name)
    if rotation.budget_share is not None and not state.total_asset:
        raise RotationError.of("no_total_asset", account=rotation.account.name)
    quotes = _quotes(rotation.account, [b.code for b in bonds] + list(held))
    try:
        return decisions.decide(
            selection=[decisions.Candidate(b.code, b.name, b.rank, b.price) for b in bonds],
            held=held,
            quotes=quotes,
            excluded=rotation.excluded_code_set(),
            top_n=rotation.top_n,
            sizing=rotation.sizing,
            amount_per_bond=rotation.amount_per_bond,
            cash=state.cash,
            fee_rate=rotation.account.commission_rate + Decimal("0.0005"),  # commission plus a small buffer
            cooling=cooling,
            budget=budget_limit(rotation=rotation, total_asset=state.total_asset),
            held_costs=costs,
        )
    except decisions.BudgetUnknown as exc:
        raise RotationError.of("budget_unknown", name=rotation.name, codes=", ".join(exc.codes)) from None


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
        selection, bonds = selection_for(rotation=rotation, trade_date=trade_date)
        decision = rotation_decide(rotation=rotation, bonds=bonds, trade_date=trade_date)
        with transaction.atomic():  # the fresh list is kept only with the target made from it
            if selection is None:
                selection = selection_store(
                    rotation=rotation,
                    trade_date=trade_date,
                    bonds=bonds,
                    source=Selection.Source.FACTORCAT,
                    received_from=rotation.factorcat_account.base_url,
                )
            snapshot = _write_target(rotation, decision.target, decision.prices)
    except Exception as exc:  # recorded and notified; the job goes on with other rotations
        run.status, run.message, run.finished_at = RotationRun.Status.FAILED, str(exc), timezone.now()
        run.message_params = exc.coded if isinstance(exc, RotationError) else {}
        run.save(update_fields=["status", "message", "message_params", "finished_at"])
        notify(
            EVENT_ROTATION_FAILED,
            title=lambda: _("Rotation %(name)s failed") % {"name": rotation.name},
            body=lambda: display.run_message(run),
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
            title=lambda row=row: _("Rotation %(name)s skipped %(code)s %(bond)s")
            % {"name": rotation.name, "code": row.code, "bond": row.name},
            body=lambda row=row: display.decision_reason(row.as_dict()),
            key=f"{rotation.name}:{row.code}:{row.reason}",
        )
    return run


def rotation_run_now(
    *, rotation: RotationStrategy, now: datetime, trade_date: date | None = None, dry_run: bool = False
) -> tuple[RotationRun | None, decisions.Decision | None, str]:
    """Run one now (manual). Dry run: decide from the same list a run would use, write nothing at all."""
    trade_date = trade_date or market_date(now)
    if dry_run:
        try:
            _selection, bonds = selection_for(rotation=rotation, trade_date=trade_date)
            return None, rotation_decide(rotation=rotation, bonds=bonds, trade_date=trade_date), ""
        except RotationError as exc:
            return None, None, str(exc)
    # On the exchange's clock, so the run's trade date (market_date of its slot) is `trade_date`.
    slot = datetime.combine(trade_date, market_time(now).time().replace(microsecond=0), tzinfo=SHANGHAI)
    try:
        run = RotationRun.objects.create(rotation=rotation, slot=slot, trigger=RotationRun.Trigger.MANUAL)
    except IntegrityError:
        raise RotationError(f"a run of {rotation.name} for {slot} already exists")
    run = run_execute(run=run, now=now)
    return run, None, run.message
