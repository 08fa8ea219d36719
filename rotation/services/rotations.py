"""Creating rotations: each gets its own target Strategy, which its account follows 1:1."""

from datetime import datetime
from decimal import Decimal

from django.db import transaction

from execution.models import BrokerAccount, Subscription
from positions.models import TargetSnapshot
from positions.services import strategy_get_or_create, target_write

from ..models import RotationStrategy


class RotationError(Exception):
    """A run cannot go ahead; the message says why (nothing was changed).

    `coded` is the message's text code and parameters (rotation.texts.ROTATION_RUN_TEXTS), so pages
    read it in the reader's language; {} for free texts (e.g. a Factor Cat error)."""

    def __init__(self, message: str, coded: dict | None = None):
        super().__init__(message)
        self.coded = coded or {}

    @classmethod
    def of(cls, text: str, **params) -> "RotationError":
        from ..texts import run_text

        return cls(*run_text(text, **params))


# --- creating rotations --------------------------------------------------------------


def _whole_positive(value) -> int | None:
    if isinstance(value, bool):
        return None  # JSON true is not a count
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return value if isinstance(value, int) and value > 0 else None


def record_top_n(*, parameters: dict) -> int | None:
    """How many bonds a Factor Cat backtest record holds; None when it does not say (never guessed).

    Factor Cat's records carry it as `bond_selection_params.top_n`; older ones
    only as `holdNum`. A value that is not a positive whole number is not used.
    """
    selection_params = parameters.get("bond_selection_params")
    if isinstance(selection_params, dict) and (top_n := _whole_positive(selection_params.get("top_n"))):
        return top_n
    return _whole_positive(parameters.get("holdNum"))


@transaction.atomic
def rotation_create(*, name: str, account: BrokerAccount, **fields) -> RotationStrategy:
    """A rotation with its own target Strategy, which the account follows 1:1."""
    strategy, _ = strategy_get_or_create(name=f"rotation:{name}")
    rotation = RotationStrategy(name=name, account=account, strategy=strategy, **fields)
    rotation.full_clean()
    rotation.save()
    Subscription.objects.get_or_create(
        account=account,
        strategy=strategy,
        defaults={"scaling": Subscription.Scaling.RATIO, "ratio": Decimal(1)},
    )
    if strategy.current_snapshot_id is None:
        # A new rotation owns nothing yet; saying so explicitly keeps its account
        # trading its other strategies instead of blocking on a missing target.
        target_write(strategy=strategy, positions=(), source=TargetSnapshot.Source.ROTATION)
    return rotation


def rotations_confirm_targets(*, now: datetime) -> int:
    """The rotation job is alive: its enabled rotations still stand by their targets.

    A weekly or monthly rotation writes a target only on its run days; without
    this, its account would block on a "stale target" between runs. If the job
    stops, confirmations stop and the staleness guard works as for uploads.
    """
    from positions.models import Strategy

    return Strategy.objects.filter(rotation__enabled=True).update(confirmed_at=now)
