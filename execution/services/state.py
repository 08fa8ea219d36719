"""Broker state → database: cash, holdings and the equity curve."""

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction

from ..brokers.base import BrokerAsset, BrokerPosition
from ..models import AccountState, BrokerAccount, EquityPoint, Holding

EQUITY_EVERY = timedelta(minutes=5)


@transaction.atomic
def account_state_record(
    *, account: BrokerAccount, asset: BrokerAsset, positions: list[BrokerPosition], now: datetime
) -> list[Holding]:
    """Replace the stored holdings with what the broker reports now; returns the holdings."""
    values = {
        "cash": asset.cash,
        "frozen_cash": asset.frozen_cash,
        "market_value": asset.market_value,
        "total_asset": asset.total_asset,
        "updated_at": now,
    }
    # The row exists after the first round: one UPDATE, not a locked read then a write.
    if not AccountState.objects.filter(account=account).update(**values):
        AccountState.objects.create(account=account, **values)
    existing = {h.code: h for h in Holding.objects.filter(account=account)}
    reported = {p.code: p for p in positions if p.volume > 0}
    gone = [h.pk for code, h in existing.items() if code not in reported]
    if gone:
        Holding.objects.filter(pk__in=gone).delete()
    to_create, to_update = [], []
    for code, position in reported.items():
        holding = existing.get(code) or Holding(account=account, code=code)
        holding.volume = position.volume
        holding.can_use_volume = position.can_use_volume
        holding.avg_cost = position.avg_price
        holding.last_price = position.last_price
        holding.market_value = position.market_value
        holding.updated_at = now
        (to_update if holding.pk else to_create).append(holding)
    if to_create:
        Holding.objects.bulk_create(to_create)
    if to_update:
        Holding.objects.bulk_update(
            to_update, ["volume", "can_use_volume", "avg_cost", "last_price", "market_value", "updated_at"]
        )
    last = EquityPoint.objects.filter(account=account).order_by("-at").values_list("at", flat=True).first()
    if last is None or now - last >= EQUITY_EVERY:
        EquityPoint.objects.create(
            account=account,
            at=now,
            cash=asset.cash + asset.frozen_cash,
            market_value=asset.market_value,
            total_asset=asset.total_asset,
        )
    return sorted([*to_create, *to_update], key=lambda h: h.code)


def holdings_signature(holdings: list[Holding], cash: Decimal) -> tuple:
    return (tuple((h.code, h.volume, h.can_use_volume) for h in holdings), str(cash))
