"""Broker news about orders applied in memory and written in a few queries, whatever the order count (issue 9)."""

import logging
from datetime import datetime

from django.utils import timezone
from django.utils.translation import gettext as _

from qmtjq import display
from qmtjq.notifications import EVENT_ORDER_REJECTED, notify

from ..brokers.base import BrokerOrder
from ..models import FINAL_STATUSES, Order, OrderEvent, OrderStatus

logger = logging.getLogger(__name__)


def order_history_row(order: Order, message: str = "", *, at: datetime | None = None) -> OrderEvent:
    """An OrderEvent (status history row) of the order as it is now, not yet saved."""
    return OrderEvent(
        order=order,
        at=at or timezone.now(),
        status=order.status,
        filled_volume=order.filled_volume,
        message=message,
    )


def order_rejected_notify(order: Order) -> None:
    """The broker refused an order (or it could not be sent): someone should look. Sent after commit."""
    try:
        account_name = order.account.name

        def title() -> str:
            return _("Order rejected: %(account)s %(side)s %(code)s × %(volume)s") % {
                "account": account_name,
                "side": order.get_side_display(),
                "code": order.code,
                "volume": display.volume(order.volume),
            }

        def body() -> str:
            return _("Order %(key)s (%(status)s): %(message)s") % {
                "key": order.key,
                "status": display.order_status(order),
                "message": display.text(order.message) or "-",
            }
    except Exception:  # a notification must never stop the order bookkeeping
        logger.exception("could not describe rejected order %s", order.key)
        title, body = f"Order rejected: {order.key}", ""
    notify(EVENT_ORDER_REJECTED, title=title, body=body, key=order.key, level="error")


def _order_take(order: Order, update: BrokerOrder) -> list[str]:
    """Take the broker's view of an order in memory; returns the fields that changed."""
    changed = []
    if order.broker_order_id != update.broker_order_id:
        order.broker_order_id = update.broker_order_id
        changed.append("broker_order_id")
    if update.status != order.status and not (order.is_final and update.status not in FINAL_STATUSES):
        order.status = update.status
        changed.append("status")
    if update.traded_volume != order.filled_volume:
        order.filled_volume = update.traded_volume
        order.avg_fill_price = update.traded_price if update.traded_volume else None
        changed += ["filled_volume", "avg_fill_price"]
    if update.message and update.message != order.message:
        order.message = update.message
        changed.append("message")
    if order.sent_at is None and update.broker_order_id:
        order.sent_at = update.order_time or timezone.now()
        changed.append("sent_at")
    return changed


class OrderChanges:
    """Broker news about many orders, applied in memory and written in a few queries (issue 9)."""

    def __init__(self) -> None:
        self.fields: dict[int, tuple[Order, set[str]]] = {}
        self.history: list[OrderEvent] = []
        self.rejected: list[Order] = []

    def _changed(self, order: Order, fields: list[str], message: str, rejected: bool) -> None:
        self.fields.setdefault(order.pk, (order, set()))[1].update(fields)
        self.history.append(order_history_row(order, message))
        if rejected:
            self.rejected.append(order)

    def apply(self, order: Order, update: BrokerOrder) -> bool:
        fields = _order_take(order, update)
        if fields:
            self._changed(
                order, fields, update.message, "status" in fields and order.status == OrderStatus.JUNK
            )
        return bool(fields)

    def error(self, order: Order, kind: str, message: str) -> None:
        rejected = kind == "order_error" and not order.is_final
        if rejected:
            order.status = OrderStatus.JUNK
        order.message = message
        self._changed(order, ["status", "message"], f"{kind}: {message}", rejected)

    def save(self) -> None:
        """One UPDATE per set of changed fields (usually one for all orders), one INSERT of history."""
        now = timezone.now()
        groups: dict[frozenset, list[Order]] = {}
        for order, fields in self.fields.values():
            order.updated_at = now  # bulk_update does not touch auto_now fields
            groups.setdefault(frozenset(fields), []).append(order)
        for fields, orders in groups.items():
            Order.objects.bulk_update(orders, [*sorted(fields), "updated_at"])
        if self.history:
            OrderEvent.objects.bulk_create(self.history)
        for order in self.rejected:
            order_rejected_notify(order)
        self.fields, self.history, self.rejected = {}, [], []
