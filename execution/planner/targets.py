"""The account target: subscribed strategy targets, scaled and summed (DESIGN §5.1).

Anything the target is computed from that is missing or unusable blocks the
account with a reason: it never turns into "target 0", which would sell.
"""

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

from .. import market
from .texts import round_text
from .types import ZERO, Skip, SkipReason, SubscribedTarget


def scale_problem_text(sub: SubscribedTarget) -> tuple[str, dict]:
    """(why this subscription's scale factor cannot be computed or '', its text code and parameters)."""
    name = sub.strategy_name
    if sub.mode == "ratio":
        if sub.ratio is None or sub.ratio <= 0:
            return round_text("ratio_not_positive", name=name, ratio=str(sub.ratio))
        return "", {}
    if sub.capital is None or sub.capital <= 0:
        return round_text("capital_not_positive", name=name, capital=str(sub.capital))
    if not sub.lines:
        return "", {}  # an explicit empty target: the strategy went to cash, nothing to scale
    if sub.total_value is not None and sub.total_value < 0:
        return round_text("negative_total_value", name=name, total_value=str(sub.total_value))
    if sub.total_value:
        return "", {}
    # Without total_value, Σ volume × cost stands in for the strategy's size: every
    # line needs its cost, or the priced lines would get the whole capital.
    unpriced = sorted(line.code for line in sub.lines if line.volume and not line.cost > 0)
    if len(unpriced) == len(sub.lines):
        return round_text("capital_needs_total_value", name=name)
    if unpriced:
        shown = ", ".join(unpriced[:5]) + (" …" if len(unpriced) > 5 else "")
        return round_text("capital_needs_costs", name=name, codes=shown)
    return "", {}


def scale_problem(sub: SubscribedTarget) -> str:
    """Why this subscription's scale factor cannot be computed, or '' (English)."""
    return scale_problem_text(sub)[0]


def scale_factor(sub: SubscribedTarget) -> Decimal | None:
    """Shares of the account per share of the strategy; None when it cannot be computed.

    capital mode: the account holds the same fraction of capital in each line
    as the strategy does of its total value, so volume × capital / total_value
    (prices cancel). Without total_value, Σ volume × cost stands in for it.
    """
    if scale_problem(sub):
        return None
    if sub.mode == "ratio":
        return sub.ratio
    if not sub.lines:
        return ZERO  # nothing to scale
    total = sub.total_value or sum((Decimal(line.volume) * line.cost for line in sub.lines), ZERO)
    return sub.capital / total


def account_target(subscriptions: list[SubscribedTarget]) -> tuple[dict[str, int], list[Skip]]:
    """Σ scaled targets, rounded down to valid lots once per code (after summing).

    Callers check `targets_block_reason` first: a subscription whose scale
    cannot be computed contributes nothing here, which is only safe because
    the account is then blocked.
    """
    raw: dict[str, Decimal] = defaultdict(Decimal)
    for sub in subscriptions:
        factor = scale_factor(sub)
        if factor is None:
            continue
        for line in sub.lines:
            raw[line.code] += Decimal(line.volume) * factor
    target, skips = {}, []
    for code, amount in raw.items():
        whole = int(amount.to_integral_value(rounding=ROUND_FLOOR))
        try:
            rules = market.rules_for(code)
        except market.NotTradable as exc:
            skips.append(Skip(code, SkipReason.NOT_TRADABLE, str(exc), whole))
            continue
        except Exception as exc:  # noqa: BLE001 - left out of the target; diff_lines leaves it alone
            skips.append(
                Skip(code, SkipReason.ERROR, f"could not size this line: {type(exc).__name__}", whole)
            )
            continue
        rounded = rules.round_buy(whole)
        target[code] = rounded
        if rounded == 0 and whole > 0:
            skips.append(
                Skip.of(code, SkipReason.LOT_TOO_SMALL, "scaled_below_lot", whole, amount=f"{amount:.2f}")
            )
    return target, skips


def targets_block(
    subscriptions: list[SubscribedTarget], *, now: datetime, stale_after: timedelta
) -> tuple[str, dict]:
    """(why the account must not trade on these targets or '', its text code and parameters) (DESIGN §5.1)."""
    if not subscriptions:
        return round_text("no_subscription")
    for sub in subscriptions:
        if sub.snapshot_id is None:
            return round_text("no_target_yet", name=sub.strategy_name)
        if sub.confirmed_at is None or now - sub.confirmed_at > stale_after:
            return round_text("target_stale", name=sub.strategy_name, at=str(sub.confirmed_at))
        problem = scale_problem_text(sub)
        if problem[0]:
            return problem
    return "", {}


def targets_block_reason(
    subscriptions: list[SubscribedTarget], *, now: datetime, stale_after: timedelta
) -> str:
    """Why the account must not trade on these targets, or '' (DESIGN §5.1)."""
    return targets_block(subscriptions, now=now, stale_after=stale_after)[0]


def rule_exit_codes(subscriptions: list[SubscribedTarget]) -> frozenset[str]:
    """Codes some strategy's own rules closed (see SubscribedTarget.rule_exits)."""
    codes: set[str] = set()
    for sub in subscriptions:
        codes |= sub.rule_exits
    return frozenset(codes)
