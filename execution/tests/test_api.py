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
