"""Codes held for the day: orders that time out unfilled round after round are not re-sent forever."""

import logging
from datetime import date, datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from qmtjq.notifications import EVENT_ROUND_BLOCKED, notify

from ..calendar import market_date
from ..models import BrokerAccount, Order, OrderStatus
from ..models.orders import CodeHold

logger = logging.getLogger(__name__)


def codes_held(*, account: BrokerAccount, now: datetime) -> dict[str, str]:
    """{code: reason} of today's unreleased holds."""
    return dict(
        CodeHold.objects.filter(
            account=account, market_date=market_date(now), released_at__isnull=True
        ).values_list("code", "reason")
    )


def _timed_out_unfilled(order: Order) -> bool:
    """Cancelled by the worker after `order_timeout` with nothing traded (a user's cancel does not count)."""
    return (
        order.status == OrderStatus.CANCELED
        and not order.filled_volume
        and order.cancel_requested_at is not None
        and order.user_cancel_requested_at is None
    )


def holds_update(*, account: BrokerAccount, codes: set[str], now: datetime) -> dict[str, str]:
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
        reason = _(
            "%(rounds)d orders in a row timed out without any fill (last at %(price)s): not re-sent today"
        ) % {"rounds": rounds, "price": orders[0].limit_price}
        try:
            with transaction.atomic():
                CodeHold.objects.create(account=account, code=code, market_date=today, reason=reason)
        except IntegrityError:
            continue
        new[code] = reason
        logger.warning("account %s: holding %s for %s: %s", account.name, code, today, reason)
        notify(
            EVENT_ROUND_BLOCKED,
            title=_("Code held: %(account)s %(code)s") % {"account": account.name, "code": code},
            body=reason,
            key=f"{account.name}:hold:{code}:{today}",
            level="warning",
        )
    return new


def plan_without_held(plan, held: dict[str, str]) -> None:
    """Drop the orders of held codes from a plan, each with a visible skip; nothing left means blocked."""
    from .. import planner

    kept = []
    for order in plan.orders:
        if order.code in held:
            plan.skips.append(
                planner.Skip(
                    order.code, planner.SkipReason.NOT_TRADABLE, f"held: {held[order.code]}", order.volume
                )
            )
        else:
            kept.append(order)
    if len(kept) == len(plan.orders):
        return
    plan.orders = kept
    if plan.status is planner.PlanStatus.PLACE and not kept:
        plan.status = planner.PlanStatus.BLOCKED
        plan.message = "; ".join(f"{code} held: {reason}" for code, reason in sorted(held.items()))
        plan.message_params = {}


def _market_day(order: Order) -> date:
    return market_date(order.created_at)
