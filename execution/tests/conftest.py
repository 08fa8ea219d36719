"""Shared set-up for worker tests: a paper account following a strategy with admin-entered prices."""

from decimal import Decimal as D

import pytest

from execution.models import ManualQuote
from execution.services.accounts import SubscriptionSpec, account_create
from positions import services as positions_services
from positions.validation import parse_upload


def upload_target(strategy: str, lines, *, total_value=None) -> None:
    """Store a strategy target the way the API does (through the ingest service)."""
    client, _ = positions_services.api_client_create(name=f"uploader-{strategy}")
    payload = {
        "strategy_name": strategy,
        "positions": [{"code": c, "volume": v, "cost": float(cost)} for c, v, cost in lines],
    }
    if total_value is not None:
        payload["total_value"] = total_value
    positions_services.snapshot_ingest(
        upload=parse_upload(payload), client=client, auth_type="api_key", remote_addr=None
    )


def set_price(code: str, last: str, **extra) -> None:
    ManualQuote.objects.update_or_create(code=code, defaults={"last_price": D(last), **extra})


@pytest.fixture
def paper_account(db):
    """Paper account 'p1' (1,000,000 cash, hours not enforced) following strategy 'S' at ratio 0.5."""
    account = account_create(
        name="p1",
        mode="paper",
        account_id="P1",
        starting_cash=D("1000000"),
        subscriptions=[SubscriptionSpec("S", "ratio", D("0.5"))],
        enforce_trading_hours=False,
    )
    set_price("600000.SH", "10.00")
    set_price("000001.SZ", "12.00")
    set_price("113050.SH", "120.000")
    return account
