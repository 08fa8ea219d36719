"""Creating accounts and their subscriptions."""

from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction

from positions.services import strategy_get_or_create
from positions.validation import UploadError, validate_strategy_name

from ..models import BrokerAccount, Subscription


@dataclass(frozen=True)
class SubscriptionSpec:
    strategy_name: str
    scaling: str  # "ratio" | "capital"
    amount: Decimal


@transaction.atomic
def account_create(
    *,
    name: str,
    mode: str,
    account_id: str,
    starting_cash: Decimal | None = None,
    subscriptions: list[SubscriptionSpec] = (),
    enforce_trading_hours: bool = True,
    userdata_mini_path: str = "",
) -> BrokerAccount:
    """Create an account; paper accounts start with trading on, live ones off (a human turns them on)."""
    if BrokerAccount.objects.filter(name=name).exists():
        raise ValidationError({"name": [f"an account named {name!r} already exists"]})
    account = BrokerAccount(
        name=name,
        mode=mode,
        account_id=account_id,
        enforce_trading_hours=enforce_trading_hours,
        userdata_mini_path=userdata_mini_path,
        trading_enabled=mode == BrokerAccount.Mode.PAPER,
    )
    if starting_cash is not None:
        account.paper_starting_cash = starting_cash
    account.full_clean()
    account.save()
    for spec in subscriptions:
        try:
            strategy_name = validate_strategy_name(spec.strategy_name, "--subscribe")
        except UploadError as exc:
            raise ValidationError({"subscribe": [str(exc)]})
        strategy, _ = strategy_get_or_create(name=strategy_name)
        subscription = Subscription(account=account, strategy=strategy, scaling=spec.scaling)
        if spec.scaling == Subscription.Scaling.CAPITAL:
            subscription.capital = spec.amount
        else:
            subscription.ratio = spec.amount
        subscription.full_clean()
        subscription.save()
    return account
