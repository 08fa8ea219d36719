"""Reads for a rotation's capital budget: how much it may hold, and whether its account needs it to have one.

An account that follows other strategies too must not let a rotation's
"available cash split equally" (DESIGN §8) spend the cash those strategies
need; so such a rotation runs only with a budget of its own.
"""

from dataclasses import dataclass
from decimal import Decimal

from execution.models import Subscription

from .models import RotationStrategy


def budget_limit(*, rotation: RotationStrategy, total_asset: Decimal | None) -> Decimal | None:
    """The budget in CNY: the amount, or the share of the account's total assets; None: no budget set.

    A share with no known total asset is 0, never "the whole account".
    """
    if rotation.budget_amount is not None:
        return rotation.budget_amount
    if rotation.budget_share is not None:
        return (rotation.budget_share * (total_asset or Decimal(0))).quantize(Decimal("0.01"))
    return None


def other_strategies(*, rotation: RotationStrategy) -> list[str]:
    """Names of the other strategies the rotation's account follows (enabled subscriptions)."""
    return list(
        Subscription.objects.filter(account_id=rotation.account_id, enabled=True)
        .exclude(strategy_id=rotation.strategy_id)
        .order_by("strategy__name")
        .values_list("strategy__name", flat=True)
    )


def budget_missing(*, rotation: RotationStrategy, others: list[str] | None = None) -> tuple[str, dict] | None:
    """(why the rotation may not run without a budget, its text code and parameters); None: it may run."""
    from .texts import run_text

    if rotation.budget_amount is not None or rotation.budget_share is not None:
        return None
    others = other_strategies(rotation=rotation) if others is None else others
    if not others:
        return None
    shown = ", ".join(others[:5]) + (" …" if len(others) > 5 else "")
    return run_text("budget_missing", account=rotation.account.name, others=shown, name=rotation.name)


def budget_missing_reason(*, rotation: RotationStrategy, others: list[str] | None = None) -> str | None:
    """Why the rotation may not run without a budget, in English (None: it may run)."""
    missing = budget_missing(rotation=rotation, others=others)
    return missing[0] if missing else None


@dataclass(frozen=True)
class BudgetUse:
    """What the pages show: the budget, how much the rotation's holdings use of it, what is left."""

    limit: Decimal | None
    share: Decimal | None
    used: Decimal
    missing_reason: str | None = None

    @property
    def left(self) -> Decimal | None:
        return None if self.limit is None else max(self.limit - self.used, Decimal(0))

    @property
    def share_percent(self) -> str:
        return f"{(self.share * 100).normalize():f}%" if self.share is not None else ""


def budget_use(
    *,
    rotation: RotationStrategy,
    total_asset: Decimal | None,
    lines: list[tuple[str, int, Decimal]],
    last_prices: dict[str, Decimal],
    others: list[str],
) -> BudgetUse:
    """The rotation's holdings (its target lines: code, volume, cost) at the last reported price, else cost."""
    used = Decimal(0)
    for code, volume, cost in lines:
        price = last_prices.get(code) or cost or Decimal(0)
        used += price * volume
    return BudgetUse(
        limit=budget_limit(rotation=rotation, total_asset=total_asset),
        share=rotation.budget_share,
        used=used.quantize(Decimal("0.01")),
        missing_reason=budget_missing_reason(rotation=rotation, others=others),
    )


def rotation_budget_use(*, rotation: RotationStrategy) -> BudgetUse:
    """`budget_use` for one rotation, read from its target, the account's reported state and holdings."""
    from execution.models import AccountState, Holding
    from positions.models import TargetLine

    lines = list(
        TargetLine.objects.filter(snapshot_id=rotation.strategy.current_snapshot_id, volume__gt=0).values_list(
            "code", "volume", "cost"
        )
    )
    last_prices = dict(
        Holding.objects.filter(
            account_id=rotation.account_id, code__in=[code for code, _, _ in lines], last_price__gt=0
        ).values_list("code", "last_price")
    )
    state = AccountState.objects.filter(account_id=rotation.account_id).values_list("total_asset", flat=True)
    return budget_use(
        rotation=rotation,
        total_asset=state.first(),
        lines=lines,
        last_prices=last_prices,
        others=other_strategies(rotation=rotation),
    )
