"""Order lifecycle: stored before sent, reconciled by key, updated from the broker, exactly once (DESIGN §5.3)."""

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Exists, Q
from django.utils import timezone

from ..brokers.base import (
    CANCEL_ALREADY_FINAL,
    CANCEL_NOT_FOUND,
    CANCEL_OK,
    Broker,
    BrokerEvent,
    BrokerOrder,
    BrokerTrade,
)
from ..models import FINAL_STATUSES, BrokerAccount, Fill, ManagedCode, Order, OrderEvent, OrderStatus, Round
from ..planner import PlannedOrder
from .lease import Fence, holder_is_dead, lease_valid_filter
from .order_changes import OrderChanges, order_history_row

logger = logging.getLogger(__name__)


def _event(order: Order, message: str = "") -> None:
    order_history_row(order, message).save()


@transaction.atomic(savepoint=False)  # inside the round's transaction: no savepoint round trip
def orders_create(
    *,
    account: BrokerAccount,
    round: Round,
    planned: list[PlannedOrder],
    strategies_by_code: dict[str, list[str]],
) -> list[Order]:
    """Store the round's orders with fresh keys BEFORE anything is sent (three queries for any count)."""
    orders = [
        Order(
            account=account,
            round=round,
            code=item.code,
            side=item.side,
            volume=item.volume,
            limit_price=item.limit_price,
            price_source=item.price_source,
            reason=item.reason,
            strategies=strategies_by_code.get(item.code, []),
        )
        for item in planned
    ]
    Order.objects.bulk_create(orders)
    OrderEvent.objects.bulk_create([order_history_row(order, "stored") for order in orders])
    ManagedCode.objects.bulk_create(
        [ManagedCode(account=account, code=code) for code in sorted({o.code for o in orders})],
        ignore_conflicts=True,
    )
    return orders


def order_claim(*, order: Order, fence: Fence, now: datetime) -> bool:
    """Claim a stored order for sending: CREATED → SENDING, only while `fence` is the account's valid lease.

    One conditional UPDATE, so a worker whose lease was taken over (a new
    epoch) can never claim, whatever it believes (DESIGN §5.3).
    """
    claimed = (
        Order.objects.filter(pk=order.pk, status=OrderStatus.CREATED)
        .filter(Exists(lease_valid_filter(account=order.account_id, fence=fence, now=now)))
        .update(
            status=OrderStatus.SENDING,
            claimed_by=fence.holder,
            claim_epoch=fence.epoch,
            claimed_at=now,
            updated_at=now,
        )
    )
    if claimed:
        order.status, order.claimed_by, order.claim_epoch, order.claimed_at = (
            OrderStatus.SENDING,
            fence.holder,
            fence.epoch,
            now,
        )
    return bool(claimed)


def order_apply(*, order: Order, update: BrokerOrder) -> bool:
    """Take the broker's view of an order; returns True when something changed."""
    changes = OrderChanges()
    changed = changes.apply(order, update)
    changes.save()
    return changed


def fill_record(*, account: BrokerAccount, trade: BrokerTrade, order: Order | None) -> bool:
    """Store a fill once per broker trade id; returns True when new."""
    try:
        with transaction.atomic():
            _fill(account, trade, order).save(force_insert=True)
    except IntegrityError:
        return False
    return True


def _fill(account: BrokerAccount, trade: BrokerTrade, order: Order | None) -> Fill:
    return Fill(
        account=account,
        order=order,
        trade_id=trade.trade_id,
        code=trade.code,
        side=trade.side,
        volume=trade.volume,
        price=trade.price,
        amount=trade.amount,
        fee=trade.fee,
        traded_at=trade.traded_at,
    )


def fills_record(*, account: BrokerAccount, trades: list[tuple[BrokerTrade, Order | None]]) -> int:
    """Store the fills not stored yet (by broker trade id) in two queries; returns how many were new."""
    if not trades:
        return 0
    known = set(
        Fill.objects.filter(account=account, trade_id__in=[t.trade_id for t, _ in trades]).values_list(
            "trade_id", flat=True
        )
    )
    new = {t.trade_id: (t, o) for t, o in trades if t.trade_id not in known}
    try:
        with transaction.atomic():
            Fill.objects.bulk_create([_fill(account, t, o) for t, o in new.values()])
    except IntegrityError:  # stored meanwhile by someone else: one at a time, each once
        return sum(fill_record(account=account, trade=t, order=o) for t, o in new.values())
    return len(new)


def _orders_by_broker_keys(account: BrokerAccount, remarks: set[str], ids: set[int]) -> tuple[dict, dict]:
    rows = list(Order.objects.filter(account=account, key__in=remarks)) if remarks else []
    by_key = {o.key: o for o in rows}
    missing_ids = ids - {o.broker_order_id for o in rows}
    by_id = {o.broker_order_id: o for o in rows if o.broker_order_id}
    if missing_ids:
        by_id |= {
            o.broker_order_id: o
            for o in Order.objects.filter(account=account, broker_order_id__in=missing_ids)
        }
    return by_key, by_id


@dataclass
class ReconcileReport:
    linked: list[str] = field(default_factory=list)  # stored-but-unconfirmed orders found at the broker
    never_sent: list[str] = field(default_factory=list)  # stored orders the broker never received
    unknown: list[str] = field(default_factory=list)  # claimed orders not (yet) at the broker
    updated: int = 0
    new_fills: int = 0


def orders_reconcile(*, account: BrokerAccount, broker: Broker) -> ReconcileReport:
    """Match the broker's orders and trades to ours by key before anything new is sent.

    After a crash an order may be stored but not sent (→ never sent, the next
    round recomputes from the truth), or sent but its broker id not stored
    (→ linked by its remark). Either way nothing is sent twice.
    """
    report = ReconcileReport()
    broker_orders = broker.query_orders()
    trades = broker.query_trades()
    by_remark = {o.remark: o for o in broker_orders if o.remark}
    by_id = {o.broker_order_id: o for o in broker_orders}
    changes = OrderChanges()
    for order in Order.objects.filter(account=account).exclude(status__in=FINAL_STATUSES):
        update = by_remark.get(order.key) or (
            by_id.get(order.broker_order_id) if order.broker_order_id else None
        )
        if update is not None:
            if order.status in (OrderStatus.CREATED, OrderStatus.SENDING) or order.broker_order_id is None:
                report.linked.append(order.key)
            report.updated += changes.apply(order, update)
        elif order.status == OrderStatus.CREATED:
            # Never claimed, so never sent: only a claim (under the current lease) may send it.
            if _status_move(order, OrderStatus.CREATED, OrderStatus.NOT_SENT, NEVER_SENT):
                report.never_sent.append(order.key)
        elif order.status == OrderStatus.SENDING and order.broker_order_id is None:
            _reconcile_sending(order, report)
        elif (order.sent_at or order.claimed_at) and timezone.localtime(
            order.sent_at or order.claimed_at
        ).date() < timezone.localdate():
            # Day orders expire at the close; the holdings report is the truth for fills.
            status = OrderStatus.PART_CANCEL if order.filled_volume else OrderStatus.CANCELED
            _status_move(order, order.status, status, "not among today's broker orders: expired at the close")
    if changes.fields:
        with transaction.atomic():
            changes.save()
    # One read of the fills already stored, so a quiet day costs one query,
    # not a failed insert per trade (benchmarks/latency.py: 658 queries at 205 trades).
    known = set(
        Fill.objects.filter(account=account, trade_id__in=[t.trade_id for t in trades]).values_list(
            "trade_id", flat=True
        )
    )
    new_trades = [t for t in trades if t.trade_id not in known]
    if new_trades:
        orders_by_key, orders_by_id = _orders_by_broker_keys(
            account, {t.remark for t in new_trades if t.remark}, {t.broker_order_id for t in new_trades}
        )
        report.new_fills = fills_record(
            account=account,
            trades=[
                (t, orders_by_key.get(t.remark) or orders_by_id.get(t.broker_order_id)) for t in new_trades
            ],
        )
    if report.linked or report.never_sent:
        logger.warning(
            "reconciled account %s: linked %s, never sent %s", account.name, report.linked, report.never_sent
        )
    return report


NEVER_SENT = "not found at the broker after a restart: never sent"


def _status_move(order: Order, old: int, new: int, message: str) -> bool:
    """Change the status only if nobody changed it meanwhile (a claim, a broker event)."""
    moved = Order.objects.filter(pk=order.pk, status=old).update(
        status=new, message=message, updated_at=timezone.now()
    )
    if moved:
        order.status, order.message = new, message
        _event(order, message)
    return bool(moved)


def _reconcile_sending(order: Order, report: ReconcileReport) -> None:
    """A claimed order the broker does not list: never sent only if its claimer is provably gone.

    A claimer that may still be alive (a stalled worker on another host, or a
    call of ours that timed out) may still deliver it: the order stays open,
    blocking new rounds, until the broker lists it or the day ends.
    """
    if order.claimed_at and timezone.localtime(order.claimed_at).date() < timezone.localdate():
        _status_move(
            order,
            OrderStatus.SENDING,
            OrderStatus.NOT_SENT,
            "claimed on an earlier day, never reached the broker",
        )
        report.never_sent.append(order.key)
        return
    if holder_is_dead(order.claimed_by):
        message = f"claimed by {order.claimed_by}, whose process no longer exists, and not at the broker: never sent"
        if _status_move(order, OrderStatus.SENDING, OrderStatus.NOT_SENT, message):
            report.never_sent.append(order.key)
        return
    waiting = f"claimed by {order.claimed_by} but not (yet) at the broker: waiting for it to appear, never re-sent blind"
    if not order.message.startswith("outcome unknown") and order.message != waiting:
        Order.objects.filter(pk=order.pk, status=OrderStatus.SENDING).update(message=waiting)
        order.message = waiting
        _event(order, waiting)
    report.unknown.append(order.key)


def events_apply(*, account: BrokerAccount, events: list[BrokerEvent]) -> int:
    """Apply callback events queued by the broker; returns how many changed something.

    A round's worth of events (an order's report, its fill, its final status)
    is written in one transaction of a few queries, whatever the order count.
    """
    if not events:
        return 0
    remarks = {e.remark or (e.order.remark if e.order else "") for e in events} - {""}
    ids = {e.broker_order_id or (e.order.broker_order_id if e.order else 0) for e in events} - {0, None}
    by_key, by_id = _orders_by_broker_keys(account, remarks, ids)
    changes, trades, changed = OrderChanges(), [], 0
    for event in events:
        if event.kind == "order" and event.order:
            order = by_key.get(event.order.remark) or by_id.get(event.order.broker_order_id)
            if order is not None:
                changed += changes.apply(order, event.order)
        elif event.kind == "trade" and event.trade:
            order = by_key.get(event.trade.remark) or by_id.get(event.trade.broker_order_id)
            trades.append((event.trade, order))
        elif event.kind in ("order_error", "cancel_error"):
            order = by_key.get(event.remark) or by_id.get(event.broker_order_id)
            if order is not None:
                changes.error(order, event.kind, event.message)
                changed += 1
    with transaction.atomic():
        changes.save()
        changed += fills_record(account=account, trades=trades)
    return changed


def orders_cancel_overdue(*, account: BrokerAccount, broker: Broker, now: datetime) -> list[Order]:
    """Ask the broker to cancel own orders open longer than the account's order timeout.

    An order still open one more timeout after its last cancel request is asked
    again: MiniQMT refuses a cancel now and then (an error answer, not logged in
    while it restarts), and an order left open would hold the account's round
    (one open round at a time, DESIGN §5.4) until the close.
    """
    cutoff = now - account.order_timeout
    overdue = (
        Order.objects.filter(account=account, sent_at__lt=cutoff)
        .filter(Q(cancel_requested_at__isnull=True) | Q(cancel_requested_at__lt=cutoff))
        .exclude(status__in=FINAL_STATUSES)
        .exclude(broker_order_id__isnull=True)
    )
    cancelled = []
    for order in overdue:
        again = order.cancel_requested_at is not None
        result = broker.cancel_order(order.broker_order_id)
        order.cancel_requested_at = now
        order.save(update_fields=["cancel_requested_at", "updated_at"])
        _event(
            order, f"cancel requested {'again, still open ' if again else ''}after timeout (result {result})"
        )
        if result == CANCEL_OK:
            cancelled.append(order)
        elif result in (CANCEL_ALREADY_FINAL, CANCEL_NOT_FOUND):
            logger.info("cancel of %s returned %s: reconciling", order.key, result)
    return cancelled


def order_request_cancel(*, order: Order, broker: Broker, now: datetime) -> int:
    """A human asked (in admin) to cancel an open order."""
    if order.is_final or order.broker_order_id is None:
        return CANCEL_ALREADY_FINAL
    result = broker.cancel_order(order.broker_order_id)
    order.cancel_requested_at = now
    order.save(update_fields=["cancel_requested_at", "updated_at"])
    _event(order, f"cancel requested by a user (result {result})")
    return result
