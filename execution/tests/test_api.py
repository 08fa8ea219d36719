"""Account and order read API: shapes, auth, scope, errors."""

import pytest

from execution.tests.conftest import upload_target
from execution.tests.test_worker import run_once


@pytest.fixture
def key(make_api_client):
    return make_api_client("reader")[1]


def test_account_positions_after_a_worker_run(client, paper_account, key):
    upload_target("S", [("600000.SH", 1000, "10")])
    run_once(paper_account)
    body = client.get("/api/v1/accounts/p1/positions", HTTP_X_API_KEY=key).json()
    assert body["account"] == "p1" and body["mode"] == "paper"
    assert body["cash"] < 1_000_000 and body["total_asset"] > 0 and body["updated_at"]
    assert [(p["code"], p["volume"], p["can_use_volume"]) for p in body["positions"]] == [
        ("600000.SH", 500, 0)
    ]
    assert set(body["positions"][0]) == {
        "code",
        "volume",
        "can_use_volume",
        "avg_cost",
        "last_price",
        "market_value",
    }


def test_account_drift(client, paper_account, key):
    upload_target("S", [("600000.SH", 1000, "10"), ("000001.SZ", 100, "12")])
    body = client.get("/api/v1/accounts/p1/drift", HTTP_X_API_KEY=key).json()
    rows = {r["code"]: r for r in body["rows"]}
    assert rows["600000.SH"]["target"] == 500 and rows["600000.SH"]["actual"] == 0
    assert rows["600000.SH"]["delta"] == 500
    assert rows["000001.SZ"]["target"] == 0  # 50 rounds down below one lot


def test_unknown_account_404(client, db, key):
    response = client.get("/api/v1/accounts/nope/positions", HTTP_X_API_KEY=key)
    assert response.status_code == 404 and "does not exist" in response.json()["error"]


def test_account_api_requires_auth(client, paper_account):
    assert client.get("/api/v1/accounts/p1/positions").status_code == 401
    assert client.get("/api/v1/accounts/p1/drift").status_code == 401


def test_scoped_client_may_not_read_accounts(client, paper_account, make_api_client):
    _, key = make_api_client("scoped", strategy_names=["S"])
    response = client.get("/api/v1/accounts/p1/positions", HTTP_X_API_KEY=key)
    assert response.status_code == 403 and "may not read accounts" in response.json()["error"]


def test_staff_session_reads_accounts(client, paper_account, staff_user):
    client.force_login(staff_user)
    assert client.get("/api/v1/accounts/p1/drift").status_code == 200


def _orders(account, n, **fields):
    from decimal import Decimal

    from execution.models import Order

    return [
        Order.objects.create(
            account=account, code="600000.SH", side="buy", volume=100, limit_price=Decimal("10"), **fields
        )
        for _ in range(n)
    ]


def test_orders_list_paginates_and_filters(client, paper_account, key):
    from execution.models import OrderStatus

    _orders(paper_account, 120, status=OrderStatus.SUCCEEDED, strategies=["S"])
    _orders(paper_account, 3, status=OrderStatus.REPORTED, strategies=["其他"])
    first = client.get("/api/v1/orders?account=p1", HTTP_X_API_KEY=key).json()
    assert first["count"] == 123 and len(first["results"]) == 100 and first["next"] and not first["previous"]
    second = client.get(first["next"], HTTP_X_API_KEY=key).json()
    assert len(second["results"]) == 23 and second["previous"]
    open_ = client.get("/api/v1/orders?status=open", HTTP_X_API_KEY=key).json()
    assert open_["count"] == 3 and all(not o["final"] for o in open_["results"])
    by_strategy = client.get("/api/v1/orders?strategy=其他", HTTP_X_API_KEY=key).json()
    assert by_strategy["count"] == 3
    assert set(by_strategy["results"][0]) >= {"key", "code", "side", "status", "filled_volume", "strategies"}


def test_orders_since(client, paper_account, key):
    from datetime import timedelta

    from django.utils import timezone

    from execution.models import Order

    old, new = _orders(paper_account, 2)
    Order.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    since = (timezone.now() - timedelta(days=1)).isoformat()
    body = client.get("/api/v1/orders", {"since": since}, HTTP_X_API_KEY=key).json()
    assert [o["id"] for o in body["results"]] == [new.pk]


@pytest.mark.parametrize(
    "query", ["status=abc", "since=yesterday", "page=0", "page=x", "account=nope", "side=hold"]
)
def test_orders_bad_filters_are_400(client, paper_account, key, query):
    response = client.get(f"/api/v1/orders?{query}", HTTP_X_API_KEY=key)
    assert response.status_code == 400
    assert response.json()["error"]


def test_orders_require_auth(client, db):
    assert client.get("/api/v1/orders").status_code == 401
