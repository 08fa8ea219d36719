"""Codes held for the day: orders that time out unfilled round after round are not re-sent forever."""

import logging
from dataclasses import dataclass, field
from datetime import date, datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from qmtjq import display
from qmtjq.notifications import EVENT_ROUND_BLOCKED, notify

from ..calendar import market_date
from ..models import BrokerAccount, Order, OrderStatus
from ..models.orders import CodeHold
from ..planner.texts import HOLD_TEXTS, round_parts, round_text
from ..planner.texts import coded as coded_text

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Held:
    """Why a code is held today: the English reason and its text code + parameters ({} on old rows)."""

    reason: str
    coded: dict = field(default_factory=dict)


def codes_held(*, account: BrokerAccount, now: datetime) -> dict[str, Held]:
    """{code: why} of today's unreleased holds."""
    rows = CodeHold.objects.filter(
        account=account, market_date=market_date(now), released_at__isnull=True
    ).values_list("code", "reason", "reason_params")
    return {code: Held(reason, coded if isinstance(coded, dict) else {}) for code, reason, coded in rows}


def hold_reason(held: Held) -> str:
    """A hold's reason in the reader's language (the stored text for rows from before the codes)."""
    return display.coded_message(templates=HOLD_TEXTS, coded=held.coded, stored=held.reason)


def _timed_out_unfilled(order: Order) -> bool:
    """Cancelled by the worker after `order_timeout` with nothing traded (a user's cancel does not count)."""
    return (
        order.status == OrderStatus.CANCELED
        and not order.filled_volume
        and order.cancel_requested_at is not None
        and order.user_cancel_requested_at is None
    )


def holds_update(*, account: BrokerAccount, codes: set[str], now: datetime) -> dict[str, Held]:
    """Hold every code in `codes` whose last N orders today all timed out unfilled; returns the new holds.

    N is QMT_UNFILLED_ROUNDS_HOLD (0 turns this off). Each new hold is notified once.
    """
    rounds = settings.QMT_UNFILLED_ROUNDS_HOLD
    if rounds <= 0 or not codes:
        return {}
    today = market_date(now)
    # One hold per code and day; one an admin released is not put back today.
    already = set(
        CodeHold.objects.filter(account=account, market_date=today, code__in=codes).values_list(
            "code", flat=True
        )
    )
    recent: dict[str, list[Order]] = {}
    for order in (
        Order.objects.filter(account=account, code__in=codes - already, round__isnull=False)
        .exclude(status__in=(OrderStatus.NOT_SENT, OrderStatus.CREATED))
        .order_by("-id")
    ):
        if _market_day(order) != today:
            continue
        recent.setdefault(order.code, [])
        if len(recent[order.code]) < rounds:
            recent[order.code].append(order)
    new = {}
    for code, orders in recent.items():
        if len(orders) < rounds or not all(_timed_out_unfilled(o) for o in orders):
            continue
        reason, coded = coded_text(HOLD_TEXTS, "unfilled_rounds", rounds=rounds, price=orders[0].limit_price)
        try:
            with transaction.atomic():
                CodeHold.objects.create(
                    account=account, code=code, market_date=today, reason=reason, reason_params=coded
                )
        except IntegrityError:
            continue
        held = new[code] = Held(reason, coded)
        logger.warning("account %s: holding %s for %s: %s", account.name, code, today, reason)
        notify(
            EVENT_ROUND_BLOCKED,
            title=lambda code=code: _("Code held: %(account)s %(code)s") % {"account": account.name, "code": code},
            body=lambda held=held: hold_reason(held),
            key=f"{account.name}:hold:{code}:{today}",
            level="warning",
        )
    return new


def _held_skip(order, why: Held):
    from .. import planner

    params = why.coded.get("params") if why.coded.get("text") == "unfilled_rounds" else None
    if isinstance(params, dict) and set(params) == {"rounds", "price"}:
        return planner.Skip.of(order.code, planner.SkipReason.NOT_TRADABLE, "held", order.volume, **params)
    return planner.Skip(order.code, planner.SkipReason.NOT_TRADABLE, f"held: {why.reason}", order.volume)


def _held_part(code: str, why: Held) -> tuple[str, dict]:
    params = why.coded.get("params") if why.coded.get("text") == "unfilled_rounds" else None
    if isinstance(params, dict) and set(params) == {"rounds", "price"}:
        return round_text("code_held", code=code, **params)
    english = f"{code} held: {why.reason}"
    return english, {"stored": english}  # a hold from before the codes: shown as stored


def plan_without_held(plan, held: dict[str, Held]) -> None:
    """Drop the orders of held codes from a plan, each with a visible skip; nothing left means blocked."""
    from .. import planner

    kept = []
    for order in plan.orders:
        if order.code in held:
            plan.skips.append(_held_skip(order, held[order.code]))
        else:
            kept.append(order)
    if len(kept) == len(plan.orders):
        return
    plan.orders = kept
    if plan.status is planner.PlanStatus.PLACE and not kept:
        plan.status = planner.PlanStatus.BLOCKED
        plan.message, plan.message_params = round_parts([_held_part(code, why) for code, why in sorted(held.items())])


def _market_day(order: Order) -> date:
    return market_date(order.created_at)
