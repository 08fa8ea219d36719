"""The server switches an account paper ↔ live (or changes its broker account / MiniQMT path) while the
trading PC runs: from the moment the feed is written into the PC's database, nothing more is sent through
the broker the worker started with; the worker records its open orders and exits with EXIT_RESTART."""

import threading

import pytest
from django.utils import timezone

from execution.brokers.paper import PaperBroker
from execution.models import Order, OrderStatus, PaperOrder, WorkerLease
from execution.remote.apply import feed_apply
from execution.runtime import quote_source_for
from execution.tests.conftest import set_price
from execution.tests.test_remote_pc import _feed
from execution.worker import EXIT_RESTART, LeaseLost, Worker, WorkerConfig

pytestmark = pytest.mark.django_db

FAST = WorkerConfig(interval=0.01, backoff=(0.01,))


def _fresh_feed(**changes) -> dict:
    """The test feed with its target confirmed just now (it is otherwise stale)."""
    feed = _feed(**changes)
    for sub in feed["subscriptions"]:
        sub["confirmed_at"] = timezone.now().isoformat()
    return feed


def _account(**changes) -> dict:
    return {**_feed()["account"], **changes}


def _pc_worker(lines: list[str]):
    set_price("600000.SH", "10")
    account, _ = feed_apply(feed=_fresh_feed(), server_url="https://s", now=timezone.now())
    quote_source = quote_source_for(account)
    worker = Worker(
        account=account,
        broker=PaperBroker(account, quote_source=quote_source),
        quote_source=quote_source,
        config=FAST,
        say=lines.append,
        warn=lines.append,
    )
    worker.start()
    return worker


def _run_bounded(worker) -> int:
    """run_forever, stopped (exit 0) after 30 s if it never notices: the test then fails, it does not hang."""
    timer = threading.Timer(30, worker.stop_event.set)
    timer.start()
    try:
        return worker.run_forever()
    finally:
        timer.cancel()


def _sent() -> list[Order]:
    return list(Order.objects.exclude(status__in=(OrderStatus.CREATED, OrderStatus.NOT_SENT)))


@pytest.mark.parametrize(
    "switch",
    [
        {"mode": "live", "userdata_mini_path": r"D:\QMT\userdata_mini"},
        {"account_id": "H2"},
        {"userdata_mini_path": r"E:\other\userdata_mini"},
    ],
    ids=["paper-to-live", "broker-account", "miniqmt-path"],
)
def test_a_switch_fetched_mid_cycle_sends_nothing_through_the_old_broker(switch, monkeypatch):
    """The feed thread writes the switch while the worker is between its checks and its round: the round's
    sends are refused (the fence), not placed with the paper broker the worker started with."""
    monkeypatch.setattr("execution.calendar.can_place_orders", lambda now, **kw: (True, ""))  # market open
    lines: list[str] = []
    worker = _pc_worker(lines)
    try:
        feed_apply(
            feed=_fresh_feed(version="v2", account=_account(**switch)),
            server_url="https://s",
            now=timezone.now(),
        )
        with pytest.raises(LeaseLost):
            worker.cycle(force_round=True)
        assert PaperOrder.objects.count() == 0 and _sent() == []
    finally:
        worker.stop()


def test_the_worker_stops_with_exit_restart_and_one_line():
    """Running, it notices the switch and exits EXIT_RESTART with a line saying what changed and to restart."""
    lines: list[str] = []
    worker = _pc_worker(lines)
    feed_apply(
        feed=_fresh_feed(
            version="v2", account=_account(mode="live", userdata_mini_path=r"D:\QMT\userdata_mini")
        ),
        server_url="https://s",
        now=timezone.now(),
    )
    try:
        assert _run_bounded(worker) == EXIT_RESTART
    finally:
        worker.stop()
    assert PaperOrder.objects.count() == 0 and _sent() == []
    last = lines[-1]
    assert "paper → live" in last and "restart qmt_worker" in last, lines
    assert not WorkerLease.objects.exists()  # released: the restarted worker starts at once


def test_other_settings_from_the_server_do_not_stop_the_worker():
    """A new risk cap or order timeout is applied in place: the worker keeps trading (and sends)."""
    lines: list[str] = []
    worker = _pc_worker(lines)
    try:
        feed_apply(
            feed=_fresh_feed(version="v2", account=_account(order_timeout_seconds=30.0)),
            server_url="https://s",
            now=timezone.now(),
        )
        worker.cycle(force_round=True)
        assert PaperOrder.objects.count() == 1 and len(_sent()) == 1
    finally:
        worker.stop()


def test_shared_database_admin_switch_stops_the_running_worker(paper_account, superuser, monkeypatch):
    """Shared-database mode: paper → live in admin (then trading on again) while a paper worker runs on the
    same database: it sends nothing more through the paper broker and exits EXIT_RESTART."""
    from execution.services.admin_actions import account_switch_to_live, account_trading_set
    from execution.tests.conftest import upload_target

    monkeypatch.setattr("execution.calendar.can_place_orders", lambda now, **kw: (True, ""))
    set_price("600000.SH", "10")
    paper_account.userdata_mini_path = r"D:\QMT\userdata_mini"
    paper_account.save(update_fields=["userdata_mini_path"])
    lines: list[str] = []
    quote_source = quote_source_for(paper_account)
    worker = Worker(
        account=paper_account,
        broker=PaperBroker(paper_account, quote_source=quote_source),
        quote_source=quote_source,
        config=FAST,
        say=lines.append,
        warn=lines.append,
    )
    worker.start()
    try:
        account_switch_to_live(account=paper_account, user=superuser)
        account_trading_set(account=paper_account, enabled=True, user=superuser)
        upload_target("S", [("600000.SH", 1000, "10")])
        assert _run_bounded(worker) == EXIT_RESTART
    finally:
        worker.stop()
    assert PaperOrder.objects.count() == 0 and _sent() == []
    assert "paper → live in admin" in lines[-1], lines
