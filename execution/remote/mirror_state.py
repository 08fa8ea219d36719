"""The mirror's account-wide parts of a report: state and equity points, the heartbeat (and the lease it
keeps on the server), worker quotes. Called by `mirror.report_apply` inside its transaction."""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..brokers.base import BrokerAsset, BrokerPosition
from ..models import (
    AccountState,
    BrokerAccount,
    EquityPoint,
    LeaseEvent,
    WorkerClient,
    WorkerLease,
    WorkerQuote,
    WorkerStatus,
)
from ..services.lease import lease_event_record
from ..services.state import account_state_record
from .report import Report

logger = logging.getLogger(__name__)

REMOTE_HOLDER_PREFIX = "remote:"
# A remote heartbeat keeps the account's lease on the server (the watchdog reads it; a
# shared-database worker cannot start next to the PC) for this long.
REMOTE_LEASE_TTL = timedelta(seconds=60)


@dataclass
class ReportResult:
    """What one report changed (the endpoint answers it as counts)."""

    rounds: int = 0
    orders: int = 0
    events: int = 0
    fills: int = 0
    state: bool = False
    equity: int = 0
    quotes: int = 0
    warnings: list[str] = field(default_factory=list)


def state_record(account: BrokerAccount, report: Report, result: ReportResult) -> None:
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


def heartbeat_record(
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
        lease = WorkerLease.objects.create(
            account=account,
            holder=holder,
            acquired_at=now,
            heartbeat_at=now,
            expires_at=now + REMOTE_LEASE_TTL,
        )
        lease_event_record(lease, LeaseEvent.Kind.ACQUIRED, LeaseEvent.Reason.FREE, at=now)
    elif lease.holder == holder or lease.holder.startswith(REMOTE_HOLDER_PREFIX) or lease.expires_at <= now:
        previous = (lease.holder, lease.heartbeat_at, lease.expires_at)
        if lease.holder != holder:
            lease.acquired_at = now
        lease.holder, lease.heartbeat_at, lease.expires_at = holder, now, now + REMOTE_LEASE_TTL
        lease.save(update_fields=["holder", "acquired_at", "heartbeat_at", "expires_at"])
        if previous[0] != holder:  # the report's own transaction (report_apply) holds both writes
            expired = previous[2] <= now
            why = LeaseEvent.Reason.EXPIRED if expired else LeaseEvent.Reason.REMOTE_RESTART
            lease_event_record(lease, LeaseEvent.Kind.TAKEN_OVER, why, at=now, previous=previous)
    else:
        logger.warning(
            "account %s: remote worker %s reports while %s holds the lease",
            account.name,
            holder,
            lease.holder,
        )


def quotes_upsert(account: BrokerAccount, report: Report, now: datetime, result: ReportResult) -> None:
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
