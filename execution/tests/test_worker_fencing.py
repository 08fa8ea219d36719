"""Exactly-once across workers: a worker frozen mid-round past its lease must never send its stale round.

Reproduces issue 8 the way it broke: worker A freezes in the middle of a
multi-order round, its lease expires, worker B takes over, reconciles and
converges; then A wakes up. With the paper broker and with the genuine
xttrader.py over the MiniQMT stand-in.
"""

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection

from execution.brokers.xtquant import XtQuantBroker
from execution.models import Order, OrderStatus, PaperOrder, PaperPosition, WorkerLease
from execution.runtime import quote_source_for
from execution.services import lease as lease_service
from execution.services.orders import order_claim
from execution.tests import xt_stub
from execution.tests.conftest import upload_target
from execution.tests.test_worker import _run_forever_until, make_worker
from execution.worker import EXIT_CONVERGED, EXIT_LEASE

USERDATA = r"D:\国金QMT交易端\userdata_mini"
TARGET = [("600000.SH", 1000, "10"), ("000001.SZ", 1000, "12"), ("113050.SH", 100, "120")]
WANTED = {"600000.SH": 500, "000001.SZ": 500, "113050.SH": 50}  # ratio 0.5

pytestmark = pytest.mark.django_db(transaction=True)  # two workers on two threads


@pytest.fixture(autouse=True)
def short_lease(settings):
    settings.QMT_LEASE_TTL_SECONDS = 0.4


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    xt_stub.refuse_network(monkeypatch)


class Freezer:
    """Wraps a broker's place_order: the n-th call freezes the calling worker (before or after the real call)."""

    def __init__(self, broker, *, nth: int, when: str):
        self.broker, self.nth, self.when = broker, nth, when
        self.calls = 0
        self.frozen, self.thaw = threading.Event(), threading.Event()
        real = broker.place_order

        def place_order(request):
            self.calls += 1
            freeze = self.calls == self.nth
            if freeze and self.when == "before_call":
                self._freeze()
            result = real(request)
            if freeze and self.when == "after_call":
                self._freeze()
            return result

        broker.place_order = place_order

    def _freeze(self):
        self.frozen.set()
        assert self.thaw.wait(30), "never thawed"


def _run_in_thread(worker, results):
    def run():
        try:
            results["code"] = worker.run_forever()
        except BaseException as exc:  # surfaced by the test
            results["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run, name="worker-A", daemon=True)
    thread.start()
    return thread


def _stall_and_take_over(make_a, make_b, broker_volumes, broker_remarks, *, when, fill=lambda: None):
    upload_target("S", TARGET)
    worker_a = make_a()
    freezer = Freezer(worker_a.broker, nth=2, when=when)
    worker_a.start()
    results = {}
    thread = _run_in_thread(worker_a, results)
    assert freezer.frozen.wait(20), "worker A never reached its second send"

    # A is frozen mid-round; its lease runs out and B takes over.
    worker_b = make_b()
    threading.Event().wait(0.6)  # past A's lease (0.4 s)
    worker_b.start()
    assert WorkerLease.objects.get().holder == worker_b.holder.name
    assert worker_b.fence.epoch == worker_a.fence.epoch + 1

    def b_busy():
        fill()
        return False

    _run_forever_until(worker_b, b_busy, limit=30)  # B reconciles and trades while A is frozen
    del worker_b.cycle  # undo the test wrapper
    worker_b.stop_event.clear()

    # A wakes up: whatever it still holds in its hands, its next claim is refused and it stops.
    freezer.thaw.set()
    thread.join(20)
    assert not thread.is_alive()
    assert "error" not in results, results
    assert results["code"] == EXIT_LEASE

    def converged():
        fill()
        return (
            broker_volumes() == WANTED
            and not Order.objects.exclude(
                status__in=[OrderStatus.SUCCEEDED, OrderStatus.NOT_SENT, OrderStatus.CANCELED]
            ).exists()
        )

    try:
        assert _run_forever_until(worker_b, converged) == EXIT_CONVERGED
    finally:
        worker_b.stop()
    remarks = broker_remarks()
    assert [r for r, n in Counter(remarks).items() if n > 1] == []  # no remark twice at the broker
    assert set(remarks) <= set(Order.objects.values_list("key", flat=True))
    assert broker_volumes() == WANTED  # nothing above target
    # Only the two holders ever claimed orders, each under its own epoch.
    assert set(Order.objects.exclude(claimed_by="").values_list("claimed_by", "claim_epoch")) <= {
        (worker_a.holder.name, worker_a.fence.epoch),
        (worker_b.holder.name, worker_b.fence.epoch),
    }
    return worker_a, worker_b


@pytest.mark.parametrize("when", ["before_call", "after_call"])
def test_paper_worker_frozen_mid_round_never_sends_its_stale_round(paper_account, when):
    """Frozen after claiming an order, or after sending one but before storing its id: no duplicate, no overshoot."""

    def volumes():
        return dict(
            PaperPosition.objects.filter(account=paper_account, volume__gt=0).values_list("code", "volume")
        )

    _stall_and_take_over(
        lambda: make_worker(paper_account),
        lambda: make_worker(paper_account),
        volumes,
        lambda: list(PaperOrder.objects.values_list("remark", flat=True)),
        when=when,
    )


@pytest.fixture
def miniqmt(paper_account):
    with xt_stub.genuine_xtquant():
        terminal = xt_stub.FakeMiniQmt(USERDATA)
        terminal.open_account(paper_account.account_id, cash=1_000_000)
        yield terminal
        terminal.shutdown()


def xt_worker(account, **broker_options):
    quote_source = quote_source_for(account)
    return make_worker(
        account,
        broker=XtQuantBroker(userdata_mini_path=USERDATA, account_id=account.account_id, **broker_options),
        quote_source=quote_source,
    )


def _fill_all(miniqmt):
    with miniqmt._lock:
        for order in miniqmt.orders("P1"):
            if order.order_status in (48, 49, 50, 55):
                miniqmt.fill(order.order_id)


def _xt_volumes(miniqmt):
    return {p.stock_code: p.volume for p in miniqmt.books["P1"].positions.values() if p.volume}


@pytest.mark.parametrize("when", ["before_call", "after_call"])
def test_xtquant_worker_frozen_mid_round_never_sends_its_stale_round(paper_account, miniqmt, when):
    """The same stall through the genuine xttrader.py: every remark reaches MiniQMT at most once."""
    _stall_and_take_over(
        lambda: xt_worker(paper_account),
        lambda: xt_worker(paper_account),
        lambda: _xt_volumes(miniqmt),
        lambda: [o.order_remark for o in miniqmt.orders("P1")],
        when=when,
        fill=lambda: _fill_all(miniqmt),
    )


def test_claim_is_refused_under_an_old_epoch(paper_account):
    """A conditional update: the same holder name under an older epoch, or an expired lease, claims nothing."""
    from django.utils import timezone

    upload_target("S", [("600000.SH", 1000, "10")])
    worker = make_worker(paper_account)
    worker.start()
    order = Order.objects.create(
        account=paper_account, code="600000.SH", side="buy", volume=100, limit_price=10
    )
    now = timezone.now()
    stale = lease_service.Fence(worker.fence.holder, worker.fence.epoch - 1)
    assert not order_claim(order=order, fence=stale, now=now)
    assert not order_claim(order=order, fence=worker.fence, now=now + timedelta(seconds=5))  # expired by then
    assert Order.objects.get(pk=order.pk).status == OrderStatus.CREATED
    assert order_claim(order=order, fence=worker.fence, now=now)
    assert not order_claim(order=order, fence=worker.fence, now=now)  # claimed once only
    order.refresh_from_db()
    assert (order.status, order.claimed_by, order.claim_epoch) == (
        OrderStatus.SENDING,
        worker.fence.holder,
        worker.fence.epoch,
    )
    worker.stop()


def test_reconcile_keeps_an_order_another_live_holder_claimed(paper_account):
    """B's reconcile leaves A's claimed order open (A may still send it), but marks A's unclaimed ones never sent."""
    from django.utils import timezone

    upload_target("S", [("600000.SH", 1000, "10")])
    worker_a = make_worker(paper_account)
    worker_a.start()
    claimed = Order.objects.create(
        account=paper_account, code="600000.SH", side="buy", volume=100, limit_price=10
    )
    unclaimed = Order.objects.create(
        account=paper_account, code="000001.SZ", side="buy", volume=100, limit_price=12
    )
    assert order_claim(order=claimed, fence=worker_a.fence, now=timezone.now())
    WorkerLease.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    lines = []
    worker_b = make_worker(paper_account, lines=lines)
    worker_b.start()
    claimed.refresh_from_db()
    unclaimed.refresh_from_db()
    assert claimed.status == OrderStatus.SENDING and claimed.claimed_by == worker_a.holder.name
    assert "never re-sent blind" in claimed.message
    assert unclaimed.status == OrderStatus.NOT_SENT
    assert any("not yet at the broker" in line and claimed.key in line for line in lines)
    assert worker_b.cycle().open_orders == 1  # no new round while A's send is unresolved
    worker_b.stop()
