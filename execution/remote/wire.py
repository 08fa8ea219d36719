"""The wire format's scalar rules and the planner's inputs on the wire, both ways.

Money, ratios and prices travel as decimal strings (exact), times as ISO 8601
with an offset, durations as seconds. The trading PC decodes the feed into the
very `SubscribedTarget` / `AccountPolicy` the planner takes, so the stale rule
and the scaling work there exactly as on a shared database.
"""

from datetime import datetime, timedelta
from decimal import Decimal

from django.utils.dateparse import parse_datetime

from .. import planner


def time_out(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def time_in(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = parse_datetime(value)
    if parsed is None or parsed.tzinfo is None:
        raise ValueError(f"not an ISO 8601 time with an offset: {value!r}")
    return parsed


def dec_out(value: Decimal | None) -> str | None:
    return str(value) if value is not None else None


def dec_in(value: str | None) -> Decimal | None:
    return Decimal(value) if value is not None else None


def subscription_out(sub: planner.SubscribedTarget) -> dict:
    return {
        "strategy_id": sub.strategy_id,
        "strategy_name": sub.strategy_name,
        "mode": sub.mode,
        "ratio": dec_out(sub.ratio),
        "capital": dec_out(sub.capital),
        "snapshot_id": sub.snapshot_id,
        "confirmed_at": time_out(sub.confirmed_at),
        "total_value": dec_out(sub.total_value),
        "lines": [{"code": ln.code, "volume": ln.volume, "cost": dec_out(ln.cost)} for ln in sub.lines],
        "rule_exits": sorted(sub.rule_exits),
    }


def subscription_in(row: dict) -> planner.SubscribedTarget:
    """The PC side: one feed subscription back into the planner's input."""
    return planner.SubscribedTarget(
        strategy_id=row["strategy_id"],
        strategy_name=row["strategy_name"],
        mode=row["mode"],
        ratio=dec_in(row["ratio"]),
        capital=dec_in(row["capital"]),
        snapshot_id=row["snapshot_id"],
        confirmed_at=time_in(row["confirmed_at"]),
        total_value=dec_in(row["total_value"]),
        lines=tuple(planner.TargetLine(ln["code"], ln["volume"], dec_in(ln["cost"])) for ln in row["lines"]),
        rule_exits=frozenset(row["rule_exits"]),
    )


def policy_out(policy: planner.AccountPolicy) -> dict:
    return {
        "slippage": dec_out(policy.slippage),
        "max_order_value": dec_out(policy.max_order_value),
        "max_daily_turnover": dec_out(policy.max_daily_turnover),
        "approval_threshold": dec_out(policy.approval_threshold),
        "hold_rule_exits": policy.hold_rule_exits,
        "stale_after_seconds": policy.stale_after.total_seconds(),
        "sell_unmanaged": policy.sell_unmanaged,
        "ignore_codes": sorted(policy.ignore_codes),
        "commission_rate": dec_out(policy.commission_rate),
        "min_commission": dec_out(policy.min_commission),
    }


def policy_in(row: dict) -> planner.AccountPolicy:
    """The PC side: the feed's `policy` back into the planner's AccountPolicy."""
    return planner.AccountPolicy(
        slippage=dec_in(row["slippage"]),
        max_order_value=dec_in(row["max_order_value"]),
        max_daily_turnover=dec_in(row["max_daily_turnover"]),
        approval_threshold=dec_in(row["approval_threshold"]),
        hold_rule_exits=row["hold_rule_exits"],
        stale_after=timedelta(seconds=row["stale_after_seconds"]),
        sell_unmanaged=row["sell_unmanaged"],
        ignore_codes=frozenset(row["ignore_codes"]),
        commission_rate=dec_in(row["commission_rate"]),
        min_commission=dec_in(row["min_commission"]),
    )
