"""The trading PC's side in one process: the feed applied to the local database, the report queue, the client."""

import logging

import pytest
from django.utils import timezone

from execution.models import BrokerAccount, ManagedCode, Order, OrderEvent, RemoteSync, ReservedHolding, Round
from execution.remote import outbox
from execution.remote.apply import FeedError, feed_apply
from execution.remote.client import ServerClient, ServerRefused, ServerUnreachable
from execution.remote.credentials import worker_client_create
from execution.tests.conftest import upload_target
from positions.models import Strategy, TargetSnapshot
from qmtjq.models import TradingPause


def _feed(**changes) -> dict:
    feed = {
        "version": "v1",
        "trading_enabled_globally": True,
        "trading_off_reason": "",
        "account": {
            "name": "home",
            "mode": "paper",
            "account_id": "H1",
            "enabled": True,
            "userdata_mini_path": "",
            "trading_enabled": True,
            "enforce_trading_hours": False,
            "allow_closing_auction": False,
            "order_timeout_seconds": 60.0,
            "paper_starting_cash": "1000000.00",
            "stamp_duty_rate": "0.000500",
        },
        "policy": {
            "slippage": "0.0020",
            "max_order_value": "50000.00",
            "max_daily_turnover": None,
            "approval_threshold": "0.3000",
            "hold_rule_exits": False,
            "stale_after_seconds": 3600.0,
            "sell_unmanaged": False,
            "ignore_codes": ["600519.SH"],
            "commission_rate": "0.000250",
            "min_commission": "5.00",
        },
        "reserved": [{"code": "000001.SZ", "volume": 300}],
        "subscriptions": [
            {
                "strategy_id": 7,
                "strategy_name": "S",
                "mode": "ratio",
                "ratio": "0.500000",
                "capital": "0.00",
                "snapshot_id": 4242,
                "confirmed_at": "2026-12-02T10:00:00+08:00",
                "total_value": None,
                "lines": [{"code": "600000.SH", "volume": 1000, "cost": "10.000000"}],
                "rule_exits": [],
            }
        ],
        "approvals": [],
        "cancel_requests": [],
        "managed_codes": ["113050.SH"],
        "quote_codes": [],
    }
    feed.update(changes)
    return feed


pytestmark = pytest.mark.django_db


def test_feed_written_into_the_local_database_with_the_servers_ids():
    """Settings, risk caps, reserved and ignored codes, the target under the server's snapshot id and time."""
    account, changed = feed_apply(feed=_feed(), server_url="https://s", now=timezone.now())
    assert changed == ["account created from the server"]
    assert account.max_order_value == 50000 and account.ignore_code_list() == ["600519.SH"]
    strategy = Strategy.objects.get(name="S")
    assert (
        strategy.current_snapshot_id == 4242
        and strategy.confirmed_at.isoformat() == "2026-12-02T02:00:00+00:00"
    )
    assert list(TargetSnapshot.objects.get(pk=4242).lines.values_list("code", "volume")) == [
        ("600000.SH", 1000)
    ]
    assert list(ReservedHolding.objects.values_list("code", "volume")) == [("000001.SZ", 300)]
    assert ManagedCode.objects.filter(account=account, code="113050.SH").exists()
    assert RemoteSync.objects.get(account=account).feed_version == "v1"
    # The server changes the cap and drops the subscription: the PC follows.
    policy = {**_feed()["policy"], "max_order_value": None}
    _account, changed = feed_apply(
        feed=_feed(policy=policy, subscriptions=[]), server_url="https://s", now=timezone.now()
    )
    assert changed == ["max_order_value"] and not account.subscriptions.filter(enabled=True).exists()


def test_pause_approvals_and_cancels_flow_down():
    """The global pause, an approval of a held round and a cancel request reach the PC's rows."""
    account, _ = feed_apply(feed=_feed(), server_url="https://s", now=timezone.now())
    held = Round.objects.create(account=account, trigger="target_changed", status=Round.Status.HELD)
    order = Order.objects.create(
        account=account, code="600000.SH", side="buy", volume=100, limit_price=10, status=50
    )
    feed = _feed(
        trading_enabled_globally=False,
        trading_off_reason="all trading paused in admin",
        approvals=[
            {"round_uid": held.uid, "approved_at": "2026-12-02T10:01:00+08:00", "approved_by": "root"}
        ],
        cancel_requests=[{"order_key": order.key, "requested_at": "2026-12-02T10:02:00+08:00"}],
    )
    feed_apply(feed=feed, server_url="https://s", now=timezone.now())
    held.refresh_from_db()
    order.refresh_from_db()
    assert held.approved_at is not None and order.user_cancel_requested_at is not None
    assert TradingPause.objects.get(pk=1).paused
    feed_apply(feed=_feed(), server_url="https://s", now=timezone.now())
    assert not TradingPause.objects.get(pk=1).paused  # the server's pause is lifted by the server


def test_feed_refused_on_the_servers_database_or_a_colliding_target(paper_account):
    """A database holding worker credentials is the server's own: remote mode refuses to write into it."""
    worker_client_create(account=paper_account)
    with pytest.raises(FeedError, match="server's database"):
        feed_apply(feed=_feed(), server_url="https://s", now=timezone.now())


def test_snapshot_collision_is_refused_and_nothing_written():
    """A local target of another strategy under the server's snapshot id: refused, nothing written."""
    other = Strategy.objects.create(name="local")
    TargetSnapshot.objects.create(pk=4242, strategy=other, content_hash="x")
    with pytest.raises(FeedError, match="collides"):
        feed_apply(feed=_feed(), server_url="https://s", now=timezone.now())
    assert not BrokerAccount.objects.filter(name="home").exists()


def test_report_queue_resends_until_stored_then_moves_on():
    """Built twice without the server's answer: the same batch; once stored: only what changed since."""
    account, _ = feed_apply(feed=_feed(), server_url="https://s", now=timezone.now())
    round_ = Round.objects.create(account=account, trigger="target_changed", status=Round.Status.PLACED)
    order = Order.objects.create(
        account=account, round=round_, code="600000.SH", side="buy", volume=100, limit_price=10
    )
    OrderEvent.objects.create(order=order, status=0, message="stored")
    first = outbox.report_build(account=account, now=timezone.now())
    again = outbox.report_build(account=account, now=timezone.now())
    assert first.body == again.body and [o["key"] for o in first.body["orders"]] == [order.key]
    outbox.report_done(account=account, batch=first, now=timezone.now())
    quiet = outbox.report_build(account=account, now=timezone.now())
    assert quiet.is_empty and not outbox.reports_pending(account=account)
    Order.objects.filter(pk=order.pk).update(status=56, filled_volume=100, updated_at=timezone.now())
    OrderEvent.objects.create(order=order, status=56, filled_volume=100)
    after = outbox.report_build(account=account, now=timezone.now())
    assert [(o["status"], len(o["events"])) for o in after.body["orders"]] == [(56, 1)]
    assert [r["uid"] for r in after.body["rounds"]] == [round_.uid]  # travels with its order


@pytest.mark.django_db(transaction=True)
def test_client_signs_v2_tokens_and_maps_errors(live_server, paper_account, rsa_keys, caplog):
    """Signed v2 requests with a path prefix-free URL work; 403 is ServerRefused; no answer is ServerUnreachable;
    turning TLS verification off is logged."""
    upload_target("S", [("600000.SH", 1000, "10")])
    client, _key = worker_client_create(account=paper_account, public_key_pem=rsa_keys[1], require_v2=True)
    signed = ServerClient(
        server_url=live_server.url, account="p1", client_id=client.client_id, private_key_pem=rsa_keys[0]
    )
    feed = signed.feed()
    assert feed["account"]["name"] == "p1" and feed["subscriptions"][0]["snapshot_id"]
    assert signed.report({"heartbeat": {"at": timezone.now().isoformat(), "holder": "pc:1"}})["stored"]
    wrong = ServerClient(
        server_url=live_server.url, account="other", client_id=client.client_id, private_key_pem=rsa_keys[0]
    )
    with pytest.raises(ServerRefused) as refused:
        wrong.feed()
    assert refused.value.status == 403
    with pytest.raises(ServerUnreachable):
        ServerClient(server_url="http://127.0.0.1:9", account="p1", api_key="qw_x").feed()
    with caplog.at_level(logging.WARNING):
        ServerClient(server_url="https://example.invalid", account="p1", api_key="qw_x", verify=False)
    assert "TLS verification" in caplog.text
    with pytest.raises(ValueError):
        ServerClient(server_url="ftp://x", account="p1", api_key="k")
