"""Sending a round's stored orders: each claimed under the lease just before its broker call (DESIGN §5.3).

What the sends did (broker ids, history rows) is written in bulk when the
sending stops, after the broker's own bookkeeping (`Broker.sending`): a
round of N orders costs N claims plus a constant, which matters when the
shared database is a WAN link away (issue 9). A crash before that write
leaves sent orders SENDING without their broker id; reconciliation links
them by key (the order remark), so nothing is ever sent twice.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import Case, Value, When
from django.utils import timezone

from ..brokers.base import Broker, BrokerDisconnected, BrokerError, BrokerNotConnected, OrderRequest
from ..models import Order, OrderEvent, OrderStatus
from .lease import Fence, LeaseLost, lease_renew
from .order_changes import order_history_row, order_rejected_notify
from .orders import order_claim

logger = logging.getLogger(__name__)


@dataclass
class SendLog:
    """The sends of one round not yet written: broker ids and history rows."""

    fence: Fence
    sent: list[tuple[Order, int, datetime]] = field(default_factory=list)
    history: list[OrderEvent] = field(default_factory=list)

    def save(self) -> None:
        """Store the broker ids of the sent orders (one conditional UPDATE) and the history (one INSERT)."""
        sent, self.sent = self.sent, []
        with transaction.atomic():
            if sent:
                self._store_sent(sent)
            history, self.history = self.history, []
            if history:
                OrderEvent.objects.bulk_create(history)

    def _store_sent(self, sent: list[tuple[Order, int, datetime]]) -> None:
        pks = [order.pk for order, _, _ in sent]
        ids = Case(
            *[When(pk=o.pk, then=Value(i)) for o, i, _ in sent], output_field=Order.broker_order_id.field
        )
        times = Case(*[When(pk=o.pk, then=Value(t)) for o, _, t in sent], output_field=Order.sent_at.field)
        fence, now = self.fence, timezone.now()
        updated = Order.objects.filter(
            pk__in=pks, status=OrderStatus.SENDING, claimed_by=fence.holder, claim_epoch=fence.epoch
        ).update(broker_order_id=ids, sent_at=times, status=OrderStatus.UNREPORTED, updated_at=now)
        if updated == len(sent):
            for order, broker_order_id, at in sent:
                order.broker_order_id, order.sent_at, order.status = (
                    broker_order_id,
                    at,
                    OrderStatus.UNREPORTED,
                )
        else:
            # Reconciled or updated by a broker event meanwhile: keep that status, only fill in the id.
            Order.objects.filter(pk__in=pks, broker_order_id__isnull=True).update(
                broker_order_id=ids, sent_at=times
            )
            stored = {
                pk: row
                for pk, *row in Order.objects.filter(pk__in=pks).values_list(
                    "pk", "broker_order_id", "sent_at", "status"
                )
            }
            for order, _, _ in sent:
                order.broker_order_id, order.sent_at, order.status = stored[order.pk]
        for order, broker_order_id, at in sent:
            self.history.append(order_history_row(order, f"sent, broker order id {broker_order_id}", at=at))


def _mine(order: Order, fence: Fence):
    return Order.objects.filter(
        pk=order.pk, status=OrderStatus.SENDING, claimed_by=fence.holder, claim_epoch=fence.epoch
    )


def order_send(
    *, order: Order, broker: Broker, fence: Fence, now: datetime, log: SendLog | None = None
) -> None:
    """Claim one stored order, then send it. Raises LeaseLost (nothing sent) when the claim is refused.

    With `log`, the broker id and history are written by `log.save()`;
    without, before returning. A call that times out or loses the connection
    leaves the order SENDING: it may have arrived, so only reconciliation by
    its key decides (never re-sent blind).
    """
    own_log = log is None
    log = log or SendLog(fence)
    try:
        _send(order, broker, fence, now, log)
    finally:
        if own_log:
            log.save()


def _send(order: Order, broker: Broker, fence: Fence, now: datetime, log: SendLog) -> None:
    if not order_claim(order=order, fence=fence, now=now):
        # Still ours but expired (we were slow, nobody took over)? Renew once and retry.
        if not (
            lease_renew(account=order.account, fence=fence, now=now)
            and order_claim(order=order, fence=fence, now=now)
        ):
            raise LeaseLost(
                f"order {order.key} not sent: the lease of account {order.account.name} is no longer "
                f"ours (epoch {fence.epoch}); another worker took over, stopping at once"
            )
    log.history.append(
        order_history_row(order, f"claimed for sending by {fence.holder} (lease epoch {fence.epoch})", at=now)
    )
    request = OrderRequest(
        key=order.key,
        code=order.code,
        side=order.side,
        volume=order.volume,
        price=order.limit_price,
        price_type=order.price_type,
    )
    try:
        broker_order_id = broker.place_order(request)
    except BrokerNotConnected:
        # Refused before the call: certainly not sent, so give the claim back.
        _mine(order, fence).update(
            status=OrderStatus.CREATED, claimed_by="", claim_epoch=None, claimed_at=None
        )
        order.status = OrderStatus.CREATED
        raise
    except BrokerDisconnected as exc:
        order.message = f"outcome unknown ({exc}); waiting for the broker to report it by key"
        _mine(order, fence).update(message=order.message, updated_at=timezone.now())
        log.history.append(order_history_row(order, order.message))
        raise
    except BrokerError as exc:
        order.status, order.message = OrderStatus.SEND_FAILED, str(exc)
        _mine(order, fence).update(status=order.status, message=order.message, updated_at=timezone.now())
        log.history.append(order_history_row(order, f"send failed: {exc}"))
        logger.warning("order %s send failed: %s", order.key, exc)
        order_rejected_notify(order)
        return
    log.sent.append((order, broker_order_id, now))
