"""Remote mode over real HTTP (live server): credential scope, feed and long-poll, idempotent reports."""

import json
import threading
import time
from decimal import Decimal

import pytest
import requests
from django.test import override_settings

from execution.models import Order, Round, WorkerQuote
from execution.remote.credentials import worker_client_create
from execution.tests.conftest import upload_target
from positions import tokens

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def remote(live_server, paper_account, rsa_keys):
    upload_target("S", [("600000.SH", 1000, "10")])
    client, key = worker_client_create(account=paper_account, public_key_pem=rsa_keys[1])
    return live_server.url, client, key


def _report(order_status=50, updated="2026-12-02T10:00:01+08:00"):
    return {
        "rounds": [{"uid": "r1", "status": "placed", "trigger": "target_changed", "created_at": "2026-12-02T10:00:00+08:00"}],
        "orders": [
            {
                "key": "qjabc", "round_uid": "r1", "code": "600000.SH", "side": "buy", "volume": 500,
                "limit_price": "10.02", "status": order_status, "created_at": "2026-12-02T10:00:00+08:00",
                "updated_at": updated, "events": [{"at": updated, "status": order_status}],
            }
        ],
        "quotes": [{"code": "600000.SH", "last": "10.01", "at": "2099-01-01T00:00:00+08:00"}],
        "heartbeat": {"at": "2026-12-02T10:00:01+08:00", "holder": "pc:1", "status": "ok"},
    }


def test_scope_wrong_account_ingest_key_and_replay(remote, make_api_client, rsa_keys):
    """Another account is 403, a JoinQuant key is 403, a replayed signed token is 401."""
    url, client, key = remote
    assert requests.get(f"{url}/api/v1/worker/feed?account=other", headers={"X-API-Key": key}, timeout=10).status_code == 403
    _, ingest_key = make_api_client("jq")
    response = requests.get(f"{url}/api/v1/worker/feed", headers={"X-API-Key": ingest_key}, timeout=10)
    assert response.status_code == 403 and "error" in response.json()
    token = tokens.token_sign(rsa_keys[0], client.client_id, version=2, method="GET", path="/api/v1/worker/feed")
    assert requests.get(f"{url}/api/v1/worker/feed", headers={"X-Auth-Token": token}, timeout=10).status_code == 200
    assert requests.get(f"{url}/api/v1/worker/feed", headers={"X-Auth-Token": token}, timeout=10).status_code == 401


@override_settings(WORKER_FEED_WAIT_SECONDS=3)
def test_feed_long_poll_wakes_on_upload_and_times_out(remote):
    """A waiting poll returns the new target within a round trip of an upload; unchanged it answers 304."""
    url, _client, key = remote
    feed = requests.get(f"{url}/api/v1/worker/feed", headers={"X-API-Key": key}, timeout=10).json()
    assert feed["subscriptions"][0]["lines"] == [{"code": "600000.SH", "volume": 1000, "cost": "10.000000"}]
    started = time.monotonic()
    assert requests.get(f"{url}/api/v1/worker/feed?version={feed['version']}", headers={"X-API-Key": key}, timeout=10).status_code == 304
    assert time.monotonic() - started >= 2.5
    threading.Timer(0.5, upload_target, args=("S", [("600000.SH", 2000, "10")])).start()
    response = requests.get(f"{url}/api/v1/worker/feed?version={feed['version']}", headers={"X-API-Key": key}, timeout=10)
    assert response.status_code == 200 and response.json()["target"]["volumes"] == {"600000.SH": 1000}


def test_report_twice_and_out_of_order(remote):
    """The same report twice stores once; an older report never moves a final order back."""
    url, _client, key = remote
    post = lambda body: requests.post(f"{url}/api/v1/worker/report", data=json.dumps(body), headers={"X-API-Key": key, "Content-Type": "application/json"}, timeout=10)  # noqa: E731
    assert post(_report(56, "2026-12-02T10:00:05+08:00")).status_code == 200
    again = post(_report(56, "2026-12-02T10:00:05+08:00")).json()["stored"]
    assert again["orders"] == again["rounds"] == again["events"] == 0
    assert post(_report(50, "2026-12-02T10:00:01+08:00")).status_code == 200
    order = Order.objects.get(key="qjabc")
    assert order.status == 56 and order.round == Round.objects.get(uid="r1")
    assert WorkerQuote.objects.get(code="600000.SH").last_price == Decimal("10.01")
    bad = post({"orders": [{**_report()["orders"][0], "volume": "x"}]})
    assert bad.status_code == 400 and "orders[0].volume" in bad.json()["error"]
