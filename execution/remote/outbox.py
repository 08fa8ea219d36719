"""The trading PC's report queue: what of the local ledger the server has not stored yet, in order.

The queue is the local ledger itself read past cursors kept in `RemoteSync`
(it survives restarts). `report_build` reads the next batch and what the
cursors become once it is stored; `report_done` moves them, only after the
server answered 200. A batch sent again after a crash or a lost answer
changes nothing on the server (upserts by natural key), so the order of
events is kept and nothing is lost or doubled.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q

from ..models import (
    FINAL_STATUSES,
    AccountState,
    BrokerAccount,
    EquityPoint,
    Fill,
    Order,
    OrderEvent,
    RemoteSync,
    Round,
)
from .wire import dec_out, time_out

# Rows changed this close to the last report are read again: a transaction that
# committed late (its timestamps earlier than the last read) is never skipped.
OVERLAP = timedelta(seconds=60)
MAX_ROUNDS, MAX_ORDERS, MAX_EVENTS, MAX_FILLS, MAX_EQUITY = 100, 300, 500, 300, 500
TEXT_MAX = 2000


@dataclass
class Batch:
    body: dict
    cursors: dict  # RemoteSync field → value once the server stored the batch
    sent: dict  # the new `sent` map
    more: bool = False  # a limit was hit: build again right after this one
    counts: dict = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return not any(self.body.get(key) for key in ("rounds", "orders", "fills", "equity", "state"))


def _round_signature(row: Round) -> list:
    return [row.status, time_out(row.finished_at), row.message[:200]]


def _order_signature(row: Order) -> list:
    return [
        row.status,
        row.filled_volume,
        row.broker_order_id,
        time_out(row.sent_at),
        time_out(row.cancel_requested_at),
        row.message[:200],
    ]


def _round_out(row: Round) -> dict:
    return {
        "uid": row.uid,
        "status": row.status,
        "trigger": row.trigger,
        "created_at": time_out(row.created_at),
        "finished_at": time_out(row.finished_at),
        "message": row.message[:TEXT_MAX],
        "message_params": row.message_params,
        "targets": row.targets,
        "diff": row.diff,
        "skips": row.skips,
        "planned": row.planned,
        "fingerprint": row.fingerprint,
    }


def _order_out(row: Order, events: list[OrderEvent]) -> dict:
    return {
        "key": row.key,
        "round_uid": row.round.uid if row.round_id else "",
        "code": row.code,
        "side": row.side,
        "volume": row.volume,
        "limit_price": dec_out(row.limit_price),
        "price_type": row.price_type,
        "price_source": row.price_source[:16],
        "reason": row.reason[:200],
        "strategies": row.strategies,
        "status": row.status,
        "filled_volume": row.filled_volume,
        "avg_fill_price": dec_out(row.avg_fill_price),
        "broker_order_id": row.broker_order_id,
        "message": row.message[:TEXT_MAX],
        "created_at": time_out(row.created_at),
        "sent_at": time_out(row.sent_at),
        "cancel_requested_at": time_out(row.cancel_requested_at),
        "updated_at": time_out(row.updated_at),
        "events": [
            {
                "at": time_out(e.at),
                "status": e.status,
                "filled_volume": e.filled_volume,
                "message": e.message[:TEXT_MAX],
            }
            for e in events
        ],
    }


def _fill_out(row: Fill, keys: dict[int, str]) -> dict:
    return {
        "trade_id": row.trade_id,
        "order_key": keys.get(row.order_id, ""),
        "code": row.code,
        "side": row.side,
        "volume": row.volume,
        "price": dec_out(row.price),
        "amount": dec_out(row.amount),
        "fee": dec_out(row.fee),
        "traded_at": time_out(row.traded_at),
    }


def _state_out(account: BrokerAccount, state: AccountState) -> dict:
    return {
        "at": time_out(state.updated_at),
        "cash": dec_out(state.cash),
        "frozen_cash": dec_out(state.frozen_cash),
        "market_value": dec_out(state.market_value),
        "total_asset": dec_out(state.total_asset),
        "holdings": [
            {
                "code": h.code,
                "volume": h.volume,
                "can_use_volume": h.can_use_volume,
                "avg_cost": dec_out(h.avg_cost),
                "last_price": dec_out(h.last_price),
                "market_value": dec_out(h.market_value),
            }
            for h in account.holdings.filter(volume__gt=0).order_by("code")
        ],
    }


def _rounds(account: BrokerAccount, sync: RemoteSync, sent: dict, cursors: dict) -> tuple[list[Round], bool]:
    recent = Q(finished_at__gte=sync.rounds_since) if sync.rounds_since else Q(pk__gte=0)
    candidates = (
        Round.objects.filter(account=account)
        .filter(Q(pk__gt=sync.round_pk) | Q(finished_at__isnull=True) | recent)
        .order_by("pk")
    )
    chosen, more, seen = [], False, set()
    for row in candidates:
        key = f"round:{row.uid}"
        seen.add(key)
        signature = _round_signature(row)
        if sent.get(key) == signature:
            continue
        if len(chosen) == MAX_ROUNDS:
            more = True
            cursors.pop("rounds_since")  # read the same window again next time
            break
        chosen.append(row)
        sent[key] = signature
    if not more:
        for key in [k for k in sent if k.startswith("round:") and k not in seen]:
            del sent[key]  # left the window: never changes again
    if chosen:
        cursors["round_pk"] = max(sync.round_pk, *(r.pk for r in chosen))
    return chosen, more


def _orders(
    account: BrokerAccount, sync: RemoteSync, sent: dict, cursors: dict, wanted_pks: set[int]
) -> tuple[list[Order], bool]:
    """Orders changed since the last report, still open, or with events or fills in this batch."""
    changed = Q(updated_at__gte=sync.orders_since) if sync.orders_since else Q(pk__gte=0)
    still_open = ~Q(status__in=[int(s) for s in FINAL_STATUSES])
    chosen, more, seen = [], False, set()
    for row in (
        Order.objects.filter(account=account)
        .filter(changed | still_open | Q(pk__in=wanted_pks))
        .select_related("round")
        .order_by("pk")
    ):
        key = f"order:{row.key}"
        seen.add(key)
        signature = _order_signature(row)
        if row.pk not in wanted_pks:
            if sent.get(key) == signature:
                continue
            if len(chosen) >= MAX_ORDERS:
                more = True
                cursors.pop("orders_since", None)
                continue
        chosen.append(row)
        sent[key] = signature
    if not more:
        for key in [k for k in sent if k.startswith("order:") and k not in seen]:
            del sent[key]
    return chosen, more


def report_build(
    *, account: BrokerAccount, now: datetime, heartbeat: dict | None = None, quotes: list[dict] = ()
) -> Batch:
    """The next batch of the local ledger not yet stored by the server (rounds, orders, fills, state…)."""
    sync, _ = RemoteSync.objects.get_or_create(account=account)
    sent = dict(sync.sent)
    cursors: dict = {"orders_since": now - OVERLAP, "rounds_since": now - OVERLAP}
    rounds, more = _rounds(account, sync, sent, cursors)

    events = list(
        OrderEvent.objects.filter(order__account=account, pk__gt=sync.event_pk).order_by("pk")[
            : MAX_EVENTS + 1
        ]
    )
    if len(events) > MAX_EVENTS:
        events, more = events[:MAX_EVENTS], True
    if events:
        cursors["event_pk"] = events[-1].pk
    fills = list(Fill.objects.filter(account=account, pk__gt=sync.fill_pk).order_by("pk")[: MAX_FILLS + 1])
    if len(fills) > MAX_FILLS:
        fills, more = fills[:MAX_FILLS], True
    if fills:
        cursors["fill_pk"] = fills[-1].pk

    wanted_pks = {e.order_id for e in events} | {f.order_id for f in fills if f.order_id}
    orders, more_orders = _orders(account, sync, sent, cursors, wanted_pks)
    more = more or more_orders
    by_order: dict[int, list[OrderEvent]] = {}
    for event in events:
        by_order.setdefault(event.order_id, []).append(event)
    # Rounds referenced by these orders travel with them, so the server links each order to its round.
    round_uids = {r.uid for r in rounds}
    for order in orders:
        if order.round_id and order.round.uid not in round_uids:
            round_uids.add(order.round.uid)
            rounds.append(order.round)

    equity = list(
        EquityPoint.objects.filter(account=account, pk__gt=sync.equity_pk).order_by("pk")[:MAX_EQUITY]
    )
    if equity:
        cursors["equity_pk"] = equity[-1].pk
    body: dict = {
        "account": account.name,
        "rounds": [_round_out(r) for r in rounds],
        "orders": [_order_out(o, by_order.get(o.pk, [])) for o in orders],
        "fills": [_fill_out(f, {o.pk: o.key for o in orders}) for f in fills],
        "equity": [
            {
                "at": time_out(p.at),
                "cash": dec_out(p.cash),
                "market_value": dec_out(p.market_value),
                "total_asset": dec_out(p.total_asset),
            }
            for p in equity
        ],
        "quotes": list(quotes),
    }
    state = AccountState.objects.filter(account=account).first()
    if state is not None and (sync.state_sent_at is None or state.updated_at > sync.state_sent_at):
        body["state"] = _state_out(account, state)
        cursors["state_sent_at"] = state.updated_at
    if heartbeat is not None:
        body["heartbeat"] = heartbeat
    return Batch(
        body=body,
        cursors=cursors,
        sent=sent,
        more=more,
        counts={"rounds": len(rounds), "orders": len(orders), "events": len(events), "fills": len(fills)},
    )


def report_done(*, account: BrokerAccount, batch: Batch, now: datetime) -> None:
    """The server stored `batch`: move the cursors past it."""
    with transaction.atomic():
        sync = RemoteSync.objects.select_for_update().get(account=account)
        for name, value in batch.cursors.items():
            setattr(sync, name, value)
        sync.sent, sync.reported_at, sync.last_error = batch.sent, now, ""
        sync.save()


def report_failed(*, account: BrokerAccount, error: str) -> None:
    RemoteSync.objects.filter(account=account).update(last_error=error[:300])


def reports_pending(*, account: BrokerAccount) -> bool:
    """True while some ledger row is past the cursors (for --once: flush before exiting)."""
    sync = RemoteSync.objects.filter(account=account).first()
    if sync is None:
        return Round.objects.filter(account=account).exists()
    return (
        Round.objects.filter(account=account, pk__gt=sync.round_pk).exists()
        or OrderEvent.objects.filter(order__account=account, pk__gt=sync.event_pk).exists()
        or Fill.objects.filter(account=account, pk__gt=sync.fill_pk).exists()
    )
