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
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction

from qmtjq.db import serialized_writes
from qmtjq.notifications import EVENT_ORDER_REJECTED, EVENT_ROUND_BLOCKED, EVENT_ROUND_HELD, notify

from ..brokers.base import BrokerAsset, BrokerPosition
from ..models import (
    AccountState,
    BrokerAccount,
    EquityPoint,
    Fill,
    ManagedCode,
    Order,
    OrderEvent,
    OrderStatus,
    Round,
    WorkerClient,
    WorkerLease,
    WorkerQuote,
    WorkerStatus,
)
from ..services.state import account_state_record
from .report import OrderIn, Report, ReportError, RoundIn

logger = logging.getLogger(__name__)

ROUND_FIELDS = (
    "status",
    "trigger",
    "message",
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
REMOTE_HOLDER_PREFIX = "remote:"
# A remote heartbeat keeps the account's lease on the server (the watchdog reads it; a
# shared-database worker cannot start next to the PC) for this long.
REMOTE_LEASE_TTL = timedelta(seconds=60)


class ReportConflict(ReportError):
    """The report names something that belongs to another account (HTTP 409)."""


@dataclass
class ReportResult:
    rounds: int = 0
    orders: int = 0
    events: int = 0
    fills: int = 0
    state: bool = False
    equity: int = 0
    quotes: int = 0
    warnings: list[str] = field(default_factory=list)


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
            title=f"{account.name}: round {row.get_status_display()}",
            body=row.message,
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
        notify(
            EVENT_ORDER_REJECTED,
            title=f"Order rejected: {account.name} {row.get_side_display()} {row.code} × {row.volume}",
            body=f"Order {row.key}: {row.message or '-'}",
            key=row.key,
            level="error",
        )
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


def _state_record(account: BrokerAccount, report: Report, result: ReportResult) -> None:
    state = report.state
    if state is not None:
        stored_at = AccountState.objects.filter(account=account).values_list("updated_at", flat=True).first()
        if stored_at is None or state.at > stored_at:
            account_state_record(
                account=account,
                asset=BrokerAsset(state.cash, state.frozen_cash, state.market_value, state.total_asset),
                positions=[
                    BrokerPosition(
                        h.code, h.volume, h.can_use_volume, h.avg_cost, h.market_value, h.last_price
                    )
                    for h in state.holdings
                ],
                now=state.at,
            )
            result.state = True
    if report.equity:
        ats = [p.at for p in report.equity]
        known = set(EquityPoint.objects.filter(account=account, at__in=ats).values_list("at", flat=True))
        new = []
        for point in report.equity:
            if point.at not in known:
                known.add(point.at)
                new.append(
                    EquityPoint(
                        account=account,
                        at=point.at,
                        cash=point.cash,
                        market_value=point.market_value,
                        total_asset=point.total_asset,
                    )
                )
        EquityPoint.objects.bulk_create(new)
        result.equity += len(new)


def _heartbeat_record(
    account: BrokerAccount, client: WorkerClient, report: Report, now: datetime, remote_addr: str | None
) -> None:
    beat = report.heartbeat
    if beat is None:
        return
    WorkerStatus.objects.update_or_create(
        account=account,
        defaults={
            "client": client,
            "holder": beat.holder,
            "status": beat.status,
            "heartbeat_at": now,
            "worker_time": beat.at,
            "remote_addr": remote_addr,
        },
    )
    holder = f"{REMOTE_HOLDER_PREFIX}{beat.holder or client.client_id}"[:200]
    lease = WorkerLease.objects.filter(account=account).first()
    if lease is None:
        WorkerLease.objects.create(
            account=account,
            holder=holder,
            acquired_at=now,
            heartbeat_at=now,
            expires_at=now + REMOTE_LEASE_TTL,
        )
    elif lease.holder == holder or lease.holder.startswith(REMOTE_HOLDER_PREFIX) or lease.expires_at <= now:
        if lease.holder != holder:
            lease.acquired_at = now
        lease.holder, lease.heartbeat_at, lease.expires_at = holder, now, now + REMOTE_LEASE_TTL
        lease.save(update_fields=["holder", "acquired_at", "heartbeat_at", "expires_at"])
    else:
        logger.warning(
            "account %s: remote worker %s reports while %s holds the lease",
            account.name,
            holder,
            lease.holder,
        )


def _quotes_upsert(account: BrokerAccount, report: Report, now: datetime, result: ReportResult) -> None:
    newest = {}
    for quote in report.quotes:
        # A PC clock running ahead must not make its quotes look fresh for longer.
        at = min(quote.at, now)
        if quote.code not in newest or at > newest[quote.code][0]:
            newest[quote.code] = (at, quote)
    stored = {q.code: q for q in WorkerQuote.objects.filter(code__in=list(newest))}
    new, changed = [], []
    for code, (at, quote) in sorted(newest.items()):
        row = stored.get(code) or WorkerQuote(code=code)
        if row.pk and row.quoted_at >= at:
            continue
        row.last_price, row.prev_close, row.up_stop, row.down_stop = (
            quote.last,
            quote.prev_close,
            quote.up_stop,
            quote.down_stop,
        )
        row.tick, row.suspended, row.quoted_at, row.received_at, row.account = (
            quote.tick,
            quote.suspended,
            at,
            now,
            account,
        )
        (changed if row.pk else new).append(row)
    WorkerQuote.objects.bulk_create(new)
    WorkerQuote.objects.bulk_update(
        changed,
        [
            "last_price",
            "prev_close",
            "up_stop",
            "down_stop",
            "tick",
            "suspended",
            "quoted_at",
            "received_at",
            "account",
        ],
    )
    result.quotes += len(new) + len(changed)


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
        _state_record(account, report, result)
        _heartbeat_record(account, client, report, now, remote_addr)
        if report.quotes:
            _quotes_upsert(account, report, now, result)
    return result
