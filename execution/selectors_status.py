"""Status at a glance: one row per account for `/` and the admin control room.

Each row says, with a level (ok / warn / bad) and words, whether the account
matches its target, waits for approval, is blocked, has a live worker, may
trade, and what it did and earned today.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Sum

from qmtjq.trading import trading_globally_enabled, trading_pause_get

from . import selectors
from .models import AccountState, BrokerAccount, EquityPoint, Fill, Order, Round, WorkerLease
from .services.admin_actions import round_approval_problem

OK, WARN, BAD = "ok", "warn", "bad"
_RANK = {OK: 0, WARN: 1, BAD: 2}


@dataclass
class DriftSummary:
    lines_off: int = 0
    biggest_code: str = ""
    biggest_delta: int = 0
    biggest_value: Decimal | None = None


@dataclass
class AccountStatus:
    account: BrokerAccount
    level: str = OK
    drift: DriftSummary = field(default_factory=DriftSummary)
    latest_round: Round | None = None
    held_round: Round | None = None
    approvable: bool = False
    blocked_reason: str = ""
    failed_reason: str = ""
    worker: str = "down"  # alive / stale / down / off
    heartbeat_at: datetime | None = None
    trading_enabled: bool = False
    global_trading: bool = True
    orders_today: int = 0
    filled_today: Decimal = Decimal(0)
    total_asset: Decimal | None = None
    day_pnl: Decimal | None = None
    day_pnl_ratio: Decimal | None = None

    def raise_level(self, level: str) -> None:
        if _RANK[level] > _RANK[self.level]:
            self.level = level


def drift_summary(*, account: BrokerAccount, drift: list[dict] | None = None) -> DriftSummary:
    """How many managed lines differ from the target, and the one worth the most (by last price).

    `drift`: selectors.drift's rows when the caller has them already (the account page).
    """
    drift = selectors.drift(account=account) if drift is None else drift
    rows = [row for row in drift if row["managed"] and row["delta"]]
    summary = DriftSummary(lines_off=len(rows))
    if not rows:
        return summary
    prices = dict(account.holdings.filter(code__in=[r["code"] for r in rows]).values_list("code", "last_price"))

    def size(row) -> tuple:
        price = prices.get(row["code"])
        return (abs(row["delta"]) * price if price else Decimal(-1), abs(row["delta"]))

    biggest = max(rows, key=size)
    price = prices.get(biggest["code"])
    summary.biggest_code, summary.biggest_delta = biggest["code"], biggest["delta"]
    summary.biggest_value = abs(biggest["delta"]) * price if price else None
    return summary


def worker_state(lease: WorkerLease | None, *, account: BrokerAccount, now: datetime) -> str:
    """alive: heartbeat within the lease; stale: lease ran out; down: never started; off: worker disabled."""
    if not account.enabled:
        return "off"
    if lease is None:
        return "down"
    return "alive" if lease.expires_at > now else "stale"


def day_pnl(*, account: BrokerAccount, total_asset: Decimal | None, now: datetime) -> Decimal | None:
    """Total assets now minus the last recorded value before today (else the first value of today)."""
    if total_asset is None:
        return None
    start = selectors.trading_day_start(now)
    points = EquityPoint.objects.filter(account=account)
    base = points.filter(at__lt=start).order_by("-at").values_list("total_asset", flat=True).first()
    if base is None:
        base = points.filter(at__gte=start).order_by("at").values_list("total_asset", flat=True).first()
    return None if base is None else total_asset - base


def account_status(
    *, account: BrokerAccount, now: datetime, global_trading: bool | None = None, drift: list[dict] | None = None
) -> AccountStatus:
    status = AccountStatus(account=account)
    status.global_trading = trading_globally_enabled() if global_trading is None else global_trading
    status.trading_enabled = account.trading_enabled
    status.drift = drift_summary(account=account, drift=drift)
    if status.drift.lines_off:
        status.raise_level(WARN)

    latest = selectors.latest_round(account=account)
    status.latest_round = latest
    if latest is not None and latest.status == Round.Status.HELD and not latest.finished_at:
        status.held_round = latest
        status.approvable = latest.approved_at is None and not round_approval_problem(round_=latest)
        status.raise_level(WARN)
    elif latest is not None and latest.status == Round.Status.BLOCKED:
        status.blocked_reason = latest.message
        status.raise_level(BAD)
    elif latest is not None and latest.status == Round.Status.FAILED:
        status.failed_reason = latest.message
        status.raise_level(BAD)

    lease = WorkerLease.objects.filter(account=account).first()
    status.worker = worker_state(lease, account=account, now=now)
    status.heartbeat_at = lease.heartbeat_at if lease else None
    if status.worker in ("down", "stale"):
        status.raise_level(BAD)
    if not (status.trading_enabled and status.global_trading):
        status.raise_level(WARN)

    start = selectors.trading_day_start(now)
    day = {"created_at__gte": start, "created_at__lt": start + timedelta(days=1)}
    status.orders_today = Order.objects.filter(account=account, **day).aggregate(n=Count("id"))["n"]
    status.filled_today = Fill.objects.filter(
        account=account, traded_at__gte=start, traded_at__lt=start + timedelta(days=1)
    ).aggregate(value=Sum("amount"))["value"] or Decimal(0)

    state = AccountState.objects.filter(account=account).first()
    status.total_asset = state.total_asset if state else None
    status.day_pnl = day_pnl(account=account, total_asset=status.total_asset, now=now)
    if status.day_pnl is not None and status.total_asset and status.total_asset != status.day_pnl:
        status.day_pnl_ratio = status.day_pnl / (status.total_asset - status.day_pnl)
    return status


def account_statuses(*, now: datetime, accounts=None) -> list[AccountStatus]:
    """Every account's status (worst first keeps the order stable by name: pages sort by name)."""
    global_trading = trading_globally_enabled()
    accounts = BrokerAccount.objects.order_by("name") if accounts is None else accounts
    return [account_status(account=account, now=now, global_trading=global_trading) for account in accounts]


def held_rounds(*, accounts=None) -> list[Round]:
    """Rounds waiting for a human: the latest round of an account, held and not yet decided."""
    accounts = BrokerAccount.objects.order_by("name") if accounts is None else accounts
    held = []
    for account in accounts:
        latest = selectors.latest_round(account=account)
        if latest is not None and latest.status == Round.Status.HELD and not latest.finished_at:
            held.append(latest)
    return held


def control_room(*, now: datetime) -> dict:
    """What the admin index shows on top: approvals, workers down, blocked accounts, failed rotations."""
    from rotation.models import RotationRun

    statuses = account_statuses(now=now)
    since = now - timedelta(days=3)
    return {
        "pause": trading_pause_get(),
        "global_trading": trading_globally_enabled(),
        "held": [s for s in statuses if s.held_round is not None],
        "workers_down": [s for s in statuses if s.worker in ("down", "stale")],
        "blocked": [s for s in statuses if s.blocked_reason or s.failed_reason],
        "failed_rotations": list(
            RotationRun.objects.filter(status=RotationRun.Status.FAILED, started_at__gte=since)
            .select_related("rotation")
            .order_by("-started_at")[:10]
        ),
    }
