"""A parsed report → the server's mirror of the PC's ledger, upserted by natural keys in one transaction.

Natural keys: round (account, uid), order (key, which must be this
account's), fill (account, trade_id), order event (order, at, status, filled
volume, message), equity point (account, at), quote (code). The same report
twice changes nothing; an older report never wins: a final order status stays
final, an order changes only when the PC's `updated_at` is not older than the
last one applied, filled volumes never shrink, a finished round never
reopens, and state older than the stored state is ignored.
"""

import logging
from datetime import datetime

from django.db import transaction
from django.utils.translation import gettext as _

from qmtjq import display
from qmtjq.db import serialized_writes
from qmtjq.notifications import EVENT_ROUND_BLOCKED, EVENT_ROUND_HELD, notify

from ..models import (
    BrokerAccount,
    Fill,
    ManagedCode,
    Order,
    OrderEvent,
    OrderStatus,
    Round,
    WorkerClient,
)
from ..services.order_changes import order_rejected_notify
from .mirror_state import ReportResult, heartbeat_record, quotes_upsert, state_record
from .report import OrderIn, Report, ReportError, RoundIn

logger = logging.getLogger(__name__)

ROUND_FIELDS = (
    "status",
    "trigger",
    "message",
    "message_params",
    "finished_at",
    "targets",
    "diff",
    "skips",
    "planned",
    "fingerprint",
)
ORDER_FIELDS = (
    "status",
    "filled_volume",
    "avg_fill_price",
    "broker_order_id",
    "message",
    "sent_at",
    "cancel_requested_at",
    "reported_at",
)
class ReportConflict(ReportError):
    """The report names something that belongs to another account (HTTP 409)."""


def _rounds_upsert(
    account: BrokerAccount, rounds: tuple[RoundIn, ...], result: ReportResult
) -> dict[str, int]:
    stored = {r.uid: r for r in Round.objects.filter(account=account, uid__in=[r.uid for r in rounds])}
    new, changed = [], []
    for item in rounds:
        row = stored.get(item.uid)
        if row is None:
            new.append(
                Round(account=account, uid=item.uid, created_at=item.created_at, **_round_values(item))
            )
            continue
        if row.finished_at is not None and item.finished_at is None:
            continue  # an older report of a round that has finished since
        values = _round_values(item)
        if any(getattr(row, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(row, name, value)
            changed.append(row)
    Round.objects.bulk_create(new)
    Round.objects.bulk_update(changed, ROUND_FIELDS)
    result.rounds += len(new) + len(changed)
    for row in [*new, *changed]:
        _notify_round(account, row)
    return dict(
        Round.objects.filter(account=account, uid__in=[r.uid for r in rounds]).values_list("uid", "pk")
    )


def _round_values(item: RoundIn) -> dict:
    return {name: getattr(item, name) for name in ROUND_FIELDS}


def _notify_round(account: BrokerAccount, row: Round) -> None:
    events = {
        Round.Status.BLOCKED: EVENT_ROUND_BLOCKED,
        Round.Status.HELD: EVENT_ROUND_HELD,
        Round.Status.FAILED: EVENT_ROUND_BLOCKED,
    }
    if row.status in events and not (row.status == Round.Status.HELD and row.finished_at):
        notify(
            events[row.status],
            title=lambda: _("%(account)s: round %(status)s")
            % {"account": account.name, "status": row.get_status_display()},
            body=lambda: display.round_message(row),
            key=f"{account.name}:{row.message}",
            level="error" if row.status == Round.Status.FAILED else "warning",
        )


def _order_newer(row: Order, item: OrderIn) -> dict:
    """The fields of `row` the incoming order changes; {} when the report is older or equal."""
    if row.reported_at is not None and item.updated_at < row.reported_at:
        return {}
    values = {
        "status": item.status,
        "filled_volume": item.filled_volume,
        "avg_fill_price": item.avg_fill_price,
        "broker_order_id": item.broker_order_id if item.broker_order_id is not None else row.broker_order_id,
        "message": item.message,
        "sent_at": item.sent_at or row.sent_at,
        "cancel_requested_at": item.cancel_requested_at or row.cancel_requested_at,
        "reported_at": item.updated_at,
    }
    if row.is_final and not item.is_final:
        values["status"] = row.status  # final stays final, whatever arrives late
    if item.filled_volume < row.filled_volume:
        values["filled_volume"], values["avg_fill_price"] = row.filled_volume, row.avg_fill_price
    return {name: value for name, value in values.items() if getattr(row, name) != value}


def _orders_upsert(
    account: BrokerAccount,
    orders: tuple[OrderIn, ...],
    round_pks: dict[str, int],
    now: datetime,
    result: ReportResult,
) -> dict[str, Order]:
    keys = [o.key for o in orders]
    stored = {o.key: o for o in Order.objects.filter(key__in=keys)}
    foreign = sorted(key for key, row in stored.items() if row.account_id != account.pk)
    if foreign:
        raise ReportConflict(f"orders: key {foreign[0]!r} belongs to another account")
    missing_rounds = {o.round_uid for o in orders if o.round_uid} - set(round_pks)
    if missing_rounds:
        round_pks |= dict(
            Round.objects.filter(account=account, uid__in=missing_rounds).values_list("uid", "pk")
        )
    new, changed, rejected = [], [], []
    for item in orders:
        round_pk = round_pks.get(item.round_uid)
        row = stored.get(item.key)
        if row is None:
            row = Order(
                key=item.key,
                account=account,
                round_id=round_pk,
                code=item.code,
                side=item.side,
                volume=item.volume,
                price_type=item.price_type,
                limit_price=item.limit_price,
                price_source=item.price_source,
                reason=item.reason,
                strategies=item.strategies,
                created_at=item.created_at,
            )
            updates = _order_newer(row, item)
            for name, value in updates.items():
                setattr(row, name, value)
            new.append(row)
            stored[item.key] = row
            rejected += [row] if row.status == OrderStatus.JUNK else []
            continue
        updates = _order_newer(row, item)
        if row.round_id is None and round_pk is not None:
            updates["round_id"] = round_pk  # the round arrived after its order
        if updates:
            if updates.get("status") == OrderStatus.JUNK:
                rejected.append(row)
            for name, value in updates.items():
                setattr(row, name, value)
            row.updated_at = now  # bulk_update does not touch auto_now fields
            changed.append(row)
    Order.objects.bulk_create(new)
    Order.objects.bulk_update(changed, [*ORDER_FIELDS, "round_id", "updated_at"])
    ManagedCode.objects.bulk_create(
        [ManagedCode(account=account, code=code) for code in sorted({o.code for o in new})],
        ignore_conflicts=True,
    )
    result.orders += len(new) + len(changed)
    _events_insert(orders, stored, result)
    for row in rejected:
        order_rejected_notify(row)
    return stored


def _events_insert(orders: tuple[OrderIn, ...], stored: dict[str, Order], result: ReportResult) -> None:
    pks = [stored[o.key].pk for o in orders if o.events]
    known = set(
        OrderEvent.objects.filter(order_id__in=pks).values_list(
            "order_id", "at", "status", "filled_volume", "message"
        )
    )
    new = []
    for item in orders:
        order = stored[item.key]
        for event in item.events:
            natural = (order.pk, event.at, event.status, event.filled_volume, event.message)
            if natural not in known:
                known.add(natural)
                new.append(
                    OrderEvent(
                        order=order,
                        at=event.at,
                        status=event.status,
                        filled_volume=event.filled_volume,
                        message=event.message,
                    )
                )
    OrderEvent.objects.bulk_create(new)
    result.events += len(new)


def _fills_insert(
    account: BrokerAccount, report: Report, orders: dict[str, Order], result: ReportResult
) -> None:
    ids = [f.trade_id for f in report.fills]
    known = set(Fill.objects.filter(account=account, trade_id__in=ids).values_list("trade_id", flat=True))
    wanted = {f.order_key for f in report.fills if f.order_key} - set(orders)
    if wanted:
        orders = {**orders, **{o.key: o for o in Order.objects.filter(account=account, key__in=wanted)}}
    new = [
        Fill(
            account=account,
            order=orders.get(f.order_key),
            trade_id=f.trade_id,
            code=f.code,
            side=f.side,
            volume=f.volume,
            price=f.price,
            amount=f.amount,
            fee=f.fee,
            traded_at=f.traded_at,
        )
        for f in report.fills
        if f.trade_id not in known
    ]
    Fill.objects.bulk_create(new)
    result.fills += len(new)


def report_apply(
    *,
    account: BrokerAccount,
    client: WorkerClient,
    report: Report,
    now: datetime,
    remote_addr: str | None = None,
) -> ReportResult:
    """Store one report, all or nothing. Raises ReportConflict when it names another account's order."""
    result = ReportResult()
    with serialized_writes(), transaction.atomic():
        round_pks = _rounds_upsert(account, report.rounds, result) if report.rounds else {}
        orders = _orders_upsert(account, report.orders, round_pks, now, result) if report.orders else {}
        if report.fills:
            _fills_insert(account, report, orders, result)
        state_record(account, report, result)
        heartbeat_record(account, client, report, now, remote_addr)
        if report.quotes:
            quotes_upsert(account, report, now, result)
    return result
