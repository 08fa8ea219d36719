"""The feed (server → trading PC): everything one account needs to trade, and its version.

The version is a digest of a cheap signature (five small indexed queries):
the account's settings row, its subscriptions with their strategies' current
snapshot and confirmation time, reserved holdings, approvals of held rounds
and open cancel requests, plus the global kill switch. Snapshots are
immutable, so anything else in the feed follows from those.
"""

import hashlib
from dataclasses import asdict

from django.conf import settings
from django.utils import timezone

from qmtjq.models import TradingPause
from qmtjq.trading import trading_globally_off

from .. import planner, selectors
from ..models import FINAL_STATUSES, BrokerAccount, ManagedCode, Order, ReservedHolding, Round, Subscription
from .wire import dec_out, policy_out, subscription_out, time_out

ACCOUNT_FIELDS = (
    "name",
    "mode",
    "account_id",
    "enabled",
    "userdata_mini_path",
    "trading_enabled",
    "max_order_value",
    "max_daily_turnover",
    "slippage",
    "order_timeout",
    "stale_after",
    "approval_threshold",
    "hold_rule_exits",
    "sell_unmanaged",
    "ignore_codes",
    "enforce_trading_hours",
    "allow_closing_auction",
    "paper_starting_cash",
    "commission_rate",
    "min_commission",
    "stamp_duty_rate",
)


def _approvals(account_id: int):
    return Round.objects.filter(
        account_id=account_id, status=Round.Status.HELD, approved_at__isnull=False, finished_at__isnull=True
    ).order_by("pk")


def _cancel_requests(account_id: int):
    return (
        Order.objects.filter(account_id=account_id, user_cancel_requested_at__isnull=False)
        .exclude(status__in=FINAL_STATUSES)
        .order_by("pk")
    )


def feed_signature(*, account_id: int) -> tuple:
    """Everything the feed depends on, in five small queries (polled every ~0.5 s while a PC waits)."""
    return (
        settings.TRADING_ENABLED,
        tuple(TradingPause.objects.filter(paused=True).values_list("pk", "reason")),
        BrokerAccount.objects.filter(pk=account_id).values_list(*ACCOUNT_FIELDS).first(),
        tuple(
            Subscription.objects.filter(account_id=account_id, enabled=True)
            .order_by("pk")
            .values_list(
                "pk",
                "scaling",
                "ratio",
                "capital",
                "strategy_id",
                "strategy__name",
                "strategy__current_snapshot_id",
                "strategy__confirmed_at",
            )
        ),
        tuple(
            ReservedHolding.objects.filter(account_id=account_id)
            .order_by("code")
            .values_list("code", "volume")
        ),
        tuple(_approvals(account_id).values_list("uid", "approved_at")),
        tuple(_cancel_requests(account_id).values_list("key", "user_cancel_requested_at")),
    )


def feed_version(*, account_id: int) -> str:
    material = repr(feed_signature(account_id=account_id)).encode("utf-8")
    return hashlib.sha256(material).hexdigest()[:32]


def _account_out(account: BrokerAccount) -> dict:
    return {
        "name": account.name,
        "mode": account.mode,
        "account_id": account.account_id,
        "enabled": account.enabled,
        "userdata_mini_path": account.userdata_mini_path,
        "trading_enabled": account.trading_enabled,
        "enforce_trading_hours": account.hours_enforced,
        "allow_closing_auction": account.allow_closing_auction,
        "order_timeout_seconds": account.order_timeout.total_seconds(),
        "paper_starting_cash": dec_out(account.paper_starting_cash),
        "stamp_duty_rate": dec_out(account.stamp_duty_rate),
    }


def feed_build(*, account_id: int) -> dict:
    """The account's feed. The version is read first, so the content is never older than it says."""
    version = feed_version(account_id=account_id)
    account = BrokerAccount.objects.get(pk=account_id)
    subscriptions = selectors.subscribed_targets(account=account)
    target, skips = planner.account_target(subscriptions)
    off_reason, off_text = trading_globally_off()
    return {
        "version": version,
        "server_time": time_out(timezone.now()),
        "trading_enabled_globally": not off_reason,
        "trading_off_reason": off_reason,
        "trading_off_text": off_text,  # its text code + parameters (absent from older servers)
        "account": _account_out(account),
        "policy": policy_out(selectors.account_policy(account=account)),
        "reserved": [
            {"code": code, "volume": volume}
            for code, volume in ReservedHolding.objects.filter(account=account)
            .order_by("code")
            .values_list("code", "volume")
        ],
        "subscriptions": [subscription_out(sub) for sub in subscriptions],
        # For display and checks only: the PC recomputes it from `subscriptions` with the same planner.
        "target": {
            "volumes": dict(sorted(target.items())),
            "skips": [{**asdict(skip), "reason": str(skip.reason)} for skip in skips],
        },
        "approvals": [
            {
                "round_uid": round_.uid,
                "approved_at": time_out(round_.approved_at),
                "approved_by": str(round_.approved_by) if round_.approved_by else "",
            }
            for round_ in _approvals(account_id).select_related("approved_by")
        ],
        # Codes this account traded before (e.g. in shared-database mode): the PC may sell them too.
        "managed_codes": sorted(ManagedCode.objects.filter(account=account).values_list("code", flat=True)),
        # Codes server jobs need prices for (rotation selections): the PC reports their xtdata quotes.
        "quote_codes": _quote_codes(account),
        "cancel_requests": [
            {"order_key": key, "requested_at": time_out(at)}
            for key, at in _cancel_requests(account_id).values_list("key", "user_cancel_requested_at")
        ],
    }


def _quote_codes(account: BrokerAccount) -> list[str]:
    """The latest selection of each enabled rotation trading this account (one small query per rotation)."""
    from rotation.models import RotationStrategy, SelectionItem

    codes = set()
    for rotation in RotationStrategy.objects.filter(account=account, enabled=True).only("pk"):
        latest = (
            rotation.selections.order_by("-trade_date", "-created_at").values_list("pk", flat=True).first()
        )
        if latest is not None:
            codes |= set(SelectionItem.objects.filter(selection_id=latest).values_list("code", flat=True))
    return sorted(codes)
