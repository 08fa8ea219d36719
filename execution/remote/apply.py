"""The trading PC's side of the feed: the server's view of one account, written into the LOCAL database.

The worker then converges against local rows exactly as in the shared
database mode. Snapshots keep the server's ids and strategies its
confirmation times, so a round records the server's target versions and the
stale rule (DESIGN §5.1) works unchanged: when the server is away, the last
target pulled ages until `stale_after`, then blocks; nothing is ever sold
because the server cannot be reached.
"""

import hashlib
import json
import logging
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction

from positions.codes import CodeError, to_jq
from positions.models import Strategy, TargetLine, TargetSnapshot, exact_key
from qmtjq.models import TradingPause
from qmtjq.trading import PAUSE_PK, TRADING_TEXTS, trading_text

from ..models import (
    BrokerAccount,
    ManagedCode,
    Order,
    RemoteSync,
    ReservedHolding,
    Round,
    Subscription,
    WorkerClient,
)
from ..services.lease import lease_revoke
from .wire import dec_in, time_in

logger = logging.getLogger(__name__)

SERVER_PAUSE_PREFIX = "server: "


class FeedError(Exception):
    """The feed cannot be applied here; the message says why (nothing was written)."""


def local_database_check() -> None:
    """Refuse to run remote mode on the server's own database (it would overwrite the server's rows)."""
    if WorkerClient.objects.exists():
        raise FeedError(
            "this database holds worker credentials: it is the server's database. In remote mode the "
            "trading PC needs its own database (DATABASE_URL, SQLite by default)"
        )


def _account_apply(feed: dict) -> tuple[BrokerAccount, list[str]]:
    row, policy = feed["account"], feed["policy"]
    values = {
        "account_id": row["account_id"],
        "enabled": row["enabled"],
        "trading_enabled": row["trading_enabled"],
        "enforce_trading_hours": row["enforce_trading_hours"],
        "allow_closing_auction": row["allow_closing_auction"],
        "order_timeout": timedelta(seconds=row["order_timeout_seconds"]),
        "paper_starting_cash": dec_in(row["paper_starting_cash"]),
        "stamp_duty_rate": dec_in(row["stamp_duty_rate"]),
        "slippage": dec_in(policy["slippage"]),
        "max_order_value": dec_in(policy["max_order_value"]),
        "max_daily_turnover": dec_in(policy["max_daily_turnover"]),
        "approval_threshold": dec_in(policy["approval_threshold"]),
        "hold_rule_exits": policy["hold_rule_exits"],
        "stale_after": timedelta(seconds=policy["stale_after_seconds"]),
        "sell_unmanaged": policy["sell_unmanaged"],
        "ignore_codes": "\n".join(policy["ignore_codes"]),
        "commission_rate": dec_in(policy["commission_rate"]),
        "min_commission": dec_in(policy["min_commission"]),
    }
    if row.get("userdata_mini_path"):
        values["userdata_mini_path"] = row["userdata_mini_path"]  # else the PC's own path stays
    account = BrokerAccount.objects.filter(name=row["name"]).first()
    if account is None:
        account = BrokerAccount.objects.create(name=row["name"], mode=row["mode"], **values)
        return account, ["account created from the server"]
    changed = [name for name, value in values.items() if getattr(account, name) != value]
    broker_changes = _broker_changes(account, row, values)
    if account.mode != row["mode"]:
        account.mode = row["mode"]
        changed.append("mode")
    if broker_changes:
        # The running worker's broker was built for the old settings: fence it off in this very
        # transaction, so not one more order goes out through it (it records its orders, then exits).
        lease_revoke(
            account=account,
            reason=f"stopped: the server changed {'; '.join(broker_changes)}: restart qmt_worker",
        )
    for name in changed:
        setattr(account, name, values.get(name, getattr(account, name)))
    if changed:
        account.save(update_fields=changed)
    return account, changed


def _broker_changes(account: BrokerAccount, row: dict, values: dict) -> list[str]:
    """What the worker's broker adapter was built from (execution.runtime.broker_for) and changes now."""
    changes = []
    if account.mode != row["mode"]:
        changes.append(f"mode {account.mode} → {row['mode']}")
    if values["account_id"] != account.account_id:
        changes.append(f"broker account id {account.account_id or '-'} → {values['account_id'] or '-'}")
    if values.get("userdata_mini_path", account.userdata_mini_path) != account.userdata_mini_path:
        changes.append("MiniQMT userdata_mini path")
    return changes


def _content_hash(lines: list[dict]) -> str:
    return hashlib.sha256(json.dumps(lines, sort_keys=True).encode("utf-8")).hexdigest()


def _snapshot_store(strategy: Strategy, sub: dict) -> TargetSnapshot | None:
    """The server's snapshot under the server's id; snapshots are immutable, so an existing one is kept."""
    snapshot_id = sub["snapshot_id"]
    if snapshot_id is None:
        return None
    existing = TargetSnapshot.objects.filter(pk=snapshot_id).first()
    if existing is not None:
        if existing.strategy_id != strategy.pk:
            raise FeedError(
                f"target #{snapshot_id} of strategy {sub['strategy_name']!r} collides with a local target "
                "of another strategy: use a database of its own for the trading PC"
            )
        return existing
    snapshot = TargetSnapshot.objects.create(
        pk=snapshot_id,
        strategy=strategy,
        source=TargetSnapshot.Source.API,
        total_value=dec_in(sub["total_value"]),
        content_hash=_content_hash(sub["lines"]),
        rule_exits=list(sub["rule_exits"]),
        positions_count=len(sub["lines"]),
    )
    TargetLine.objects.bulk_create(
        [
            TargetLine(
                snapshot=snapshot,
                code=line["code"],
                jq_code=_jq(line["code"]),
                volume=line["volume"],
                cost=dec_in(line["cost"]) or Decimal(0),
            )
            for line in sub["lines"]
        ]
    )
    return snapshot


def _jq(code: str) -> str:
    try:
        return to_jq(code)
    except (CodeError, KeyError, ValueError):
        return code[:16]


def _subscriptions_apply(account: BrokerAccount, feed: dict) -> None:
    wanted = []
    for sub in feed["subscriptions"]:
        strategy = Strategy.objects.filter(name_key=exact_key(sub["strategy_name"])).first() or Strategy(
            name=sub["strategy_name"]
        )
        if strategy.pk is None:
            strategy.save()
        snapshot = _snapshot_store(strategy, sub)
        confirmed_at = time_in(sub["confirmed_at"])
        if strategy.current_snapshot_id != (snapshot.pk if snapshot else None) or (
            strategy.confirmed_at != confirmed_at
        ):
            strategy.current_snapshot, strategy.confirmed_at = snapshot, confirmed_at
            strategy.save(update_fields=["current_snapshot", "confirmed_at"])
        Subscription.objects.update_or_create(
            account=account,
            strategy=strategy,
            defaults={
                "scaling": sub["mode"],
                "ratio": dec_in(sub["ratio"]) or Decimal(0),
                "capital": dec_in(sub["capital"]) or Decimal(0),
                "enabled": True,
            },
        )
        wanted.append(strategy.pk)
    Subscription.objects.filter(account=account).exclude(strategy_id__in=wanted).update(enabled=False)


def _reserved_apply(account: BrokerAccount, feed: dict) -> None:
    reserved = {row["code"]: row["volume"] for row in feed["reserved"]}
    ReservedHolding.objects.filter(account=account).exclude(code__in=list(reserved)).delete()
    for code, volume in reserved.items():
        ReservedHolding.objects.update_or_create(account=account, code=code, defaults={"volume": volume})


def _pause_apply(feed: dict, now: datetime) -> None:
    """The server's global pause, mirrored into the PC's own pause row (the worker's gate reads it)."""
    paused = not feed["trading_enabled_globally"]
    server_reason, server_text = feed.get("trading_off_reason") or "", feed.get("trading_off_text")
    if not server_reason:
        server_reason, server_text = trading_text("paused_on_server")
    elif not (isinstance(server_text, dict) and server_text.get("text") in TRADING_TEXTS):
        server_text = {}  # an older server, or a reason this PC does not know: shown as the server said it
    english, coded = trading_text("server_pause", reason={**server_text, "stored": server_reason})
    reason = english[:300]  # starts with SERVER_PAUSE_PREFIX, which lifting the pause looks for
    row = TradingPause.objects.filter(pk=PAUSE_PK).first()
    if paused and (row is None or not row.paused or row.reason != reason):
        TradingPause.objects.update_or_create(
            pk=PAUSE_PK, defaults={"paused": True, "reason": reason, "reason_params": coded, "changed_at": now}
        )
    elif not paused and row is not None and row.paused and row.reason.startswith(SERVER_PAUSE_PREFIX):
        # Only a pause the server set is lifted by the server; one set on this PC stays.
        TradingPause.objects.filter(pk=PAUSE_PK).update(paused=False, reason="", reason_params={}, changed_at=now)


def _requests_apply(account: BrokerAccount, feed: dict) -> None:
    for approval in feed["approvals"]:
        Round.objects.filter(
            account=account,
            uid=approval["round_uid"],
            status=Round.Status.HELD,
            approved_at__isnull=True,
            finished_at__isnull=True,
        ).update(approved_at=time_in(approval["approved_at"]))
    for cancel in feed["cancel_requests"]:
        Order.objects.filter(
            account=account, key=cancel["order_key"], user_cancel_requested_at__isnull=True
        ).update(user_cancel_requested_at=time_in(cancel["requested_at"]))
    ManagedCode.objects.bulk_create(
        [ManagedCode(account=account, code=code) for code in feed.get("managed_codes", ())],
        ignore_conflicts=True,
    )


def feed_apply(*, feed: dict, server_url: str, now: datetime) -> tuple[BrokerAccount, list[str]]:
    """Write one feed into the local database, all or nothing; returns (account, changed account fields)."""
    local_database_check()
    try:
        with transaction.atomic():
            account, changed = _account_apply(feed)
            _subscriptions_apply(account, feed)
            _reserved_apply(account, feed)
            _pause_apply(feed, now)
            _requests_apply(account, feed)
            RemoteSync.objects.update_or_create(
                account=account,
                defaults={"server_url": server_url, "feed_version": feed["version"], "feed_pulled_at": now},
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise FeedError(f"the server's feed is not understood ({type(exc).__name__}: {exc})")
    return account, changed


def feed_pulled_at(*, account: BrokerAccount) -> datetime | None:
    return RemoteSync.objects.filter(account=account).values_list("feed_pulled_at", flat=True).first()


def held_or_targeted_codes(*, account: BrokerAccount) -> set[str]:
    """What the PC reports quotes for besides the server's `quote_codes`."""
    held = set(account.holdings.filter(volume__gt=0).values_list("code", flat=True))
    current = Strategy.objects.filter(
        subscriptions__account=account, subscriptions__enabled=True, current_snapshot__isnull=False
    ).values_list("current_snapshot_id", flat=True)
    return held | set(TargetLine.objects.filter(snapshot_id__in=current).values_list("code", flat=True))
