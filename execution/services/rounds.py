"""One convergence round: fresh state → plan → stored round → stored orders → sent orders."""

import contextlib
import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from qmtjq import display
from qmtjq.notifications import EVENT_ROUND_BLOCKED, EVENT_ROUND_HELD, notify

from .. import planner, selectors
from ..brokers.base import Broker
from ..models import BrokerAccount, Order, OrderStatus, Round
from ..planner.texts import round_parts, round_text
from .holds import codes_held, holds_update, plan_without_held
from .lease import Fence
from .orders import orders_create
from .sending import SendLog, order_send
from .state import account_state_record

logger = logging.getLogger(__name__)

QuoteSource = Callable[[list[str]], dict[str, planner.Quote]]
APPROVAL_TOLERANCE = Decimal("1.05")  # an approved round may be re-priced by up to 5%
REJECTED_RETRY_AFTER = timedelta(minutes=10)


@dataclass
class RoundOutcome:
    plan: planner.Plan
    round: Round | None  # None for dry runs and repeats of an unchanged no-op round
    orders: list[Order]


def _fingerprint(subs: list[planner.SubscribedTarget], view: planner.AccountView, plan: planner.Plan) -> str:
    material = {
        "targets": [(s.strategy_id, s.snapshot_id, str(s.ratio), str(s.capital), s.mode) for s in subs],
        "holdings": sorted((h.code, h.volume, h.can_use_volume) for h in view.holdings.values()),
        "cash": str(view.cash.quantize(Decimal("1"))),
        "status": plan.status,
        "orders": [(o.code, o.side, o.volume) for o in plan.orders],
        "skips": sorted((s.code, s.reason) for s in plan.skips),
        "message": plan.message,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


def _notify_round(account: BrokerAccount, status: str, message: str, *, round_: Round | None = None) -> None:
    """Tell someone a round cannot proceed, in the notification language; the same account and reason
    (its stored English, which does not depend on the language) fold into one notification."""
    titles = {
        Round.Status.BLOCKED: (EVENT_ROUND_BLOCKED, gettext_noop("Round blocked: %(account)s"), "warning"),
        Round.Status.HELD: (EVENT_ROUND_HELD, gettext_noop("Round held for approval: %(account)s"), "warning"),
        Round.Status.FAILED: (EVENT_ROUND_BLOCKED, gettext_noop("Round failed: %(account)s"), "error"),
    }
    if status not in titles:
        return
    event, title, level = titles[status]
    notify(
        event,
        title=lambda: _(title) % {"account": account.name},
        body=lambda: display.round_message(round_) if round_ is not None else display.text(message),
        key=f"{account.name}:{message}",
        level=level,
    )


def _strategies_by_code(subs: list[planner.SubscribedTarget]) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for sub in subs:
        for line in sub.lines:
            result.setdefault(line.code, []).append(sub.strategy_name)
    return result


def _approved_plan_covers(approved: Round, plan: planner.Plan) -> bool:
    """The fresh plan may only do what a human approved (same lines, no more volume, value within tolerance)."""
    allowed = {(o["code"], o["side"]): o["volume"] for o in approved.planned}
    approved_value = sum(Decimal(o["limit_price"]) * o["volume"] for o in approved.planned)
    if any(allowed.get((o.code, o.side), 0) < o.volume for o in plan.orders):
        return False
    return plan.traded_value <= approved_value * APPROVAL_TOLERANCE


_STATUS = {
    planner.PlanStatus.PLACE: Round.Status.PLACED,
    planner.PlanStatus.CONVERGED: Round.Status.CONVERGED,
    planner.PlanStatus.BLOCKED: Round.Status.BLOCKED,
    planner.PlanStatus.HOLD: Round.Status.HELD,
}


def round_run(
    *,
    account: BrokerAccount,
    broker: Broker,
    quote_source: QuoteSource,
    now: datetime,
    trigger: str,
    dry_run: bool = False,
    approved: Round | None = None,
    fence: Fence | None = None,
) -> RoundOutcome:
    """Plan against FRESH broker state and, unless dry-run, record the round and send its orders.

    The caller guarantees there is no open own order and trading is allowed now.
    Every send is claimed under `fence` (the caller's lease); a refused claim
    raises LeaseLost and the rest of the round is not sent.
    """
    if fence is None and not dry_run:
        raise ValueError("sending a round needs the fence of the account's lease")
    asset, positions = broker.query_account()
    holdings = account_state_record(account=account, asset=asset, positions=positions, now=now)
    subs = selectors.subscribed_targets(account=account)
    view = selectors.account_view(account=account, now=now, holdings=holdings, asset=asset)
    policy = selectors.account_policy(account=account)
    if approved is not None:
        policy = dataclasses.replace(policy, approval_threshold=None)
    wanted_codes = {line.code for sub in subs for line in sub.lines} | set(view.holdings)
    quotes = quote_source(sorted(wanted_codes)) if wanted_codes else {}
    plan = planner.plan_round(subscriptions=subs, account=view, quotes=quotes, policy=policy, now=now)
    held = codes_held(account=account, now=now)
    if not dry_run:
        held |= holds_update(account=account, codes={o.code for o in plan.orders} - set(held), now=now)
    plan_without_held(plan, held)
    if (
        approved is not None
        and plan.status is planner.PlanStatus.PLACE
        and not _approved_plan_covers(approved, plan)
    ):
        plan.status = planner.PlanStatus.HOLD
        plan.message, plan.message_params = round_text("market_moved")
    if dry_run:
        return RoundOutcome(plan, None, [])

    fingerprint = _fingerprint(subs, view, plan)
    previous = selectors.latest_round(account=account)
    if (
        plan.status is planner.PlanStatus.PLACE
        and previous is not None
        and previous.fingerprint == fingerprint
        and previous.status in (Round.Status.FAILED, Round.Status.BLOCKED)
        and now - previous.created_at < REJECTED_RETRY_AFTER
    ):
        # The broker refused these very orders and nothing changed since: do
        # not send them again every second (a rejection loop), say why once.
        plan.status = planner.PlanStatus.BLOCKED
        plan.message, plan.message_params = round_text(
            "rejected_again",
            previous={**(previous.message_params or {}), "stored": previous.message},
            minutes=int(REJECTED_RETRY_AFTER.total_seconds() // 60),
        )
        plan.orders = []
        if previous.status == Round.Status.BLOCKED:
            return RoundOutcome(plan, None, [])
    elif (
        plan.status is not planner.PlanStatus.PLACE
        and previous is not None
        and previous.fingerprint == fingerprint
        and previous.status != Round.Status.PLACED
    ):
        return RoundOutcome(plan, None, [])  # nothing changed since the last no-progress round

    # A round that stores nothing but itself needs no transaction (three round trips fewer on MariaDB).
    writes_more = approved is not None or plan.status is planner.PlanStatus.PLACE
    with transaction.atomic() if writes_more else contextlib.nullcontext():
        if approved is not None:
            Round.objects.filter(pk=approved.pk).update(finished_at=now)
        round_ = Round.objects.create(
            account=account,
            trigger=trigger,
            status=_STATUS[plan.status],
            targets={s.strategy_name: s.snapshot_id for s in subs},
            diff=[dataclasses.asdict(d) for d in plan.diff],
            skips=[{**dataclasses.asdict(s), "reason": str(s.reason)} for s in plan.skips],
            planned=[
                {**dataclasses.asdict(o), "limit_price": str(o.limit_price), "value": str(o.value)}
                for o in plan.orders
            ],
            message=plan.message,
            message_params=plan.message_params,
            fingerprint=fingerprint,
            finished_at=None if plan.status in (planner.PlanStatus.PLACE, planner.PlanStatus.HOLD) else now,
        )
        orders = []
        if plan.status is planner.PlanStatus.PLACE:
            orders = orders_create(
                account=account,
                round=round_,
                planned=plan.orders,
                strategies_by_code=_strategies_by_code(subs),
            )
    if round_.status in (Round.Status.BLOCKED, Round.Status.HELD):
        _notify_round(account, round_.status, round_.message, round_=round_)
    # Stored (committed) first, then sent: a crash in between is reconciled by key.
    if orders:
        _send_all(orders, broker, fence)
    logger.info(
        "round %s account=%s status=%s orders=%d skips=%d",
        round_.pk,
        account.name,
        round_.status,
        len(orders),
        len(plan.skips),
    )
    return RoundOutcome(plan, round_, orders)


def _send_all(orders: list[Order], broker: Broker, fence: Fence) -> None:
    """Send in turn, each claimed just before its call; what was sent is stored even when a send raises.

    Only a process that dies skips that write; reconciliation by key then finds the orders.
    """
    log = SendLog(fence)
    try:
        with broker.sending(orders=len(orders)):
            for order in orders:
                order_send(order=order, broker=broker, fence=fence, now=timezone.now(), log=log)
    except Exception:
        log.save()
        raise
    log.save()


def round_finish_if_done(*, account: BrokerAccount, now: datetime) -> int:
    """Mark placed rounds finished once all their orders are final; returns how many finished now."""
    finished = 0
    for round_ in Round.objects.filter(account=account, status=Round.Status.PLACED, finished_at__isnull=True):
        orders = list(round_.orders.all())
        if any(not o.is_final for o in orders):
            continue
        # Refused by the broker (not "never sent" after a crash: those are simply planned again).
        refused = {OrderStatus.JUNK, OrderStatus.SEND_FAILED}
        if orders and all(o.status in refused and not o.filled_volume for o in orders):
            # Nothing reached the market: the round failed (visible, and not repeated blindly).
            round_.message, round_.message_params = _refused_message(orders)
            round_.status, round_.finished_at = Round.Status.FAILED, now
            Round.objects.filter(pk=round_.pk).update(
                status=round_.status, finished_at=now, message=round_.message, message_params=round_.message_params
            )
            _notify_round(account, Round.Status.FAILED, round_.message, round_=round_)
        else:
            Round.objects.filter(pk=round_.pk).update(finished_at=now)
        finished += 1
    return finished


def _refused_message(orders: list[Order]) -> tuple[str, dict]:
    """A failed round's message: per order its own (broker's) text, else its status, one part per code."""
    parts = {}
    for order in orders:
        if order.message:
            part = round_text("order_refused", code=order.code, detail=order.message)
        else:
            with translation.override("en"):  # the stored text is English, whoever's language is active
                english = f"{order.code}: {OrderStatus(order.status).label}"
            part = (english, {"text": "order_refused_status", "params": {"code": order.code, "status": order.status}})
        parts.setdefault(part[0], part)
    return round_parts([parts[english] for english in sorted(parts)])


def round_approve(*, round_: Round, user) -> None:
    """A human approved a held round; the worker re-plans and places it if the market still matches."""
    if round_.status != Round.Status.HELD or round_.approved_at is not None:
        raise ValueError("only an unapproved held round can be approved")
    round_.approved_by, round_.approved_at = user, timezone.now()
    round_.save(update_fields=["approved_by", "approved_at"])
