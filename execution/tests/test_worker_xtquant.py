"""The worker over the live adapter: the genuine xttrader.py over a stand-in MiniQMT (see xt_stub).

Crashes around sending and a MiniQMT restart must never produce a second order.
"""

import pytest

from execution.brokers.xtquant import XtQuantBroker
from execution.models import Order, OrderStatus, WorkerLease
from execution.runtime import quote_source_for
from execution.tests import xt_stub
from execution.tests.conftest import upload_target
from execution.tests.test_worker import FAST, Crash, _run_forever_until
from execution.worker import EXIT_CONVERGED, Worker

USERDATA = r"D:\国金QMT交易端\userdata_mini"


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    xt_stub.refuse_network(monkeypatch)


@pytest.fixture
def miniqmt(paper_account):
    with xt_stub.genuine_xtquant():
        terminal = xt_stub.FakeMiniQmt(USERDATA)
        terminal.open_account(paper_account.account_id, cash=1_000_000)
        yield terminal
        terminal.shutdown()


def xt_worker(account, lines=None):
    quote_source = quote_source_for(account)
    return Worker(
        account=account,
        broker=XtQuantBroker(userdata_mini_path=USERDATA, account_id=account.account_id),
        quote_source=quote_source,
        config=FAST,
        say=(lines if lines is not None else []).append,
    )


def fill_open_orders(miniqmt, account_id):
    """The market trades every open order at its limit price."""
    for order in miniqmt.orders(account_id):
        if order.order_status in (48, 49, 50, 55):
            miniqmt.fill(order.order_id)


def converge(account, miniqmt, lines):
    """Run the forever loop while the stand-in market fills orders, until a converged round exists."""
    worker = xt_worker(account, lines)
    worker.start()

    def done():
        fill_open_orders(miniqmt, account.account_id)
        return any(line.startswith("converged") for line in lines) or _converged_round(account)

    try:
        return worker, _run_forever_until(worker, done)
    finally:
        worker.stop()


def _converged_round(account):
    from execution.models import Round

    latest = Round.objects.filter(account=account).order_by("-id").first()
    return latest is not None and latest.status == Round.Status.CONVERGED


def expire_lease(account):
    WorkerLease.objects.filter(account=account).delete()


pytestmark = pytest.mark.django_db(transaction=True)  # the stand-in answers on its own threads


def test_worker_converges_through_the_genuine_xttrader(paper_account, miniqmt):
    upload_target("S", [("600000.SH", 1000, "10")])
    lines = []
    _worker, code = converge(paper_account, miniqmt, lines)
    assert code == EXIT_CONVERGED
    assert [(o.stock_code, o.order_volume, o.order_remark) for o in miniqmt.orders("P1")] == [
        ("600000.SH", 500, Order.objects.get().key)
    ]
    assert Order.objects.get().status == OrderStatus.SUCCEEDED


def test_crash_after_storing_before_sending(paper_account, miniqmt, monkeypatch):
    upload_target("S", [("600000.SH", 1000, "10")])
    monkeypatch.setattr("execution.services.rounds.order_send", lambda **kw: (_ for _ in ()).throw(Crash))
    worker = xt_worker(paper_account)
    worker.start()
    with pytest.raises(Crash):
        worker.run_once(timeout=5)
    worker.broker.close()
    assert miniqmt.orders("P1") == []
    monkeypatch.undo()
    expire_lease(paper_account)

    lines = []
    _worker, code = converge(paper_account, miniqmt, lines)
    assert code == EXIT_CONVERGED
    first, second = Order.objects.order_by("id")
    assert first.status == OrderStatus.NOT_SENT
    assert second.status == OrderStatus.SUCCEEDED
    assert [o.order_remark for o in miniqmt.orders("P1")] == [second.key]  # one order reached MiniQMT


def test_crash_after_sending_before_storing_the_order_id(paper_account, miniqmt, monkeypatch):
    upload_target("S", [("600000.SH", 1000, "10")])
    real_place = XtQuantBroker.place_order

    def place_then_die(self, request):
        real_place(self, request)
        raise Crash

    monkeypatch.setattr(XtQuantBroker, "place_order", place_then_die)
    worker = xt_worker(paper_account)
    worker.start()
    with pytest.raises(Crash):
        worker.run_once(timeout=5)
    worker.broker.close()
    stored = Order.objects.get()
    assert stored.broker_order_id is None and len(miniqmt.orders("P1")) == 1
    monkeypatch.undo()
    expire_lease(paper_account)

    lines = []
    _worker, code = converge(paper_account, miniqmt, lines)
    assert code == EXIT_CONVERGED
    stored.refresh_from_db()
    assert stored.broker_order_id == miniqmt.orders("P1")[0].order_id
    assert stored.status == OrderStatus.SUCCEEDED
    assert len(miniqmt.orders("P1")) == 1
    assert any("linked" in line for line in lines)


def test_miniqmt_restart_reconnects_with_a_new_session_and_no_duplicate(paper_account, miniqmt):
    upload_target("S", [("600000.SH", 1000, "10")])
    lines = []
    worker = xt_worker(paper_account, lines)
    worker.start()
    state = {"dropped": False}

    def done():
        if not state["dropped"] and miniqmt.orders("P1"):
            miniqmt.disconnect()  # MiniQMT restarts with our order still open
            state["dropped"] = True
            return False
        if state["dropped"] and miniqmt.live_clients():
            fill_open_orders(miniqmt, "P1")
        return _converged_round(paper_account)

    try:
        code = _run_forever_until(worker, done)
    finally:
        worker.stop()
    assert code == EXIT_CONVERGED
    assert any("broker unreachable" in line for line in lines)
    assert len(set(miniqmt.session_ids)) >= 2  # a fresh session id after the restart
    assert len(miniqmt.orders("P1")) == 1
    assert Order.objects.get().status == OrderStatus.SUCCEEDED
