"""The worker loop: convergence, gates, exactly-once after crashes, outages, leases and approval."""

import threading
from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.db import OperationalError
from django.utils import timezone

from execution import worker as worker_module
from execution.brokers.paper import PaperBroker
from execution.models import Holding, Order, OrderStatus, PaperOrder, PaperPosition, Round, WorkerLease
from execution.runtime import quote_source_for
from execution.services import lease as lease_service
from execution.services.rounds import round_approve
from execution.tests.conftest import set_price, upload_target
from execution.worker import EXIT_BLOCKED, EXIT_CONVERGED, LeaseLost, Worker, WorkerConfig

FAST = WorkerConfig(interval=0.01, backoff=(0.01,), reconcile_every=timedelta(0), drift_every=timedelta(0))


class Crash(BaseException):
    """Stands in for the process dying (not an Exception: nothing may catch it)."""


def make_worker(account, *, broker=None, quote_source=None, lines=None, config=FAST):
    quote_source = quote_source or quote_source_for(account)
    broker = broker or PaperBroker(account, quote_source=quote_source)
    return Worker(
        account=account,
        broker=broker,
        quote_source=quote_source,
        config=config,
        say=(lines if lines is not None else []).append,
    )


def run_once(account, **kwargs):
    worker = make_worker(account, **kwargs)
    worker.start()
    try:
        return worker.run_once(timeout=20)
    finally:
        worker.stop()


def paper_volumes(account):
    return dict(PaperPosition.objects.filter(account=account, volume__gt=0).values_list("code", "volume"))


def test_once_converges_to_the_scaled_lot_rounded_target(paper_account):
    upload_target("S", [("600000.SH", 1000, "10"), ("000001.SZ", 330, "12"), ("113050.SH", 25, "120")])
    assert run_once(paper_account) == EXIT_CONVERGED
    # ratio 0.5: 500 sh; 165 → 100 (lots of 100); bonds 12.5 → 10 (lots of 10)
    assert paper_volumes(paper_account) == {"600000.SH": 500, "000001.SZ": 100, "113050.SH": 10}
    assert dict(Holding.objects.filter(account=paper_account).values_list("code", "volume")) == paper_volumes(
        paper_account
    )
    assert Order.objects.filter(account=paper_account, status=OrderStatus.SUCCEEDED).count() == 3


def test_second_once_places_nothing(paper_account):
    upload_target("S", [("600000.SH", 1000, "10")])
    assert run_once(paper_account) == EXIT_CONVERGED
    orders_before = Order.objects.count()
    assert run_once(paper_account) == EXIT_CONVERGED
    assert Order.objects.count() == orders_before
    assert PaperOrder.objects.count() == orders_before


def test_new_target_sells_then_buys(paper_account):
    upload_target("S", [("600000.SH", 1000, "10")])
    run_once(paper_account)
    # T+1: today's shares cannot be sold today; move the paper clock is not needed:
    # unlock them as if bought yesterday.
    PaperPosition.objects.update(bought_today=0, bought_on=None)
    upload_target("S", [("000001.SZ", 1000, "12")])
    assert run_once(paper_account) == EXIT_CONVERGED
    assert paper_volumes(paper_account) == {"000001.SZ": 500}
    sides = list(Order.objects.order_by("id").values_list("code", "side"))
    assert sides[-2:] == [("600000.SH", "sell"), ("000001.SZ", "buy")]


def test_t_plus_1_shares_bought_today_are_kept_with_a_reason(paper_account):
    upload_target("S", [("600000.SH", 1000, "10")])
    run_once(paper_account)
    upload_target("S", [])
    lines = []
    assert run_once(paper_account, lines=lines) == EXIT_CONVERGED
    assert paper_volumes(paper_account) == {"600000.SH": 500}
    assert any("t_plus_1" in line for line in lines)
    assert Round.objects.filter(skips__icontains="t_plus_1").exists()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda a: setattr(a, "trading_enabled", False) or a.save(), "trading switch"),
        (lambda a: None, "global kill switch"),
    ],
)
def test_kill_switches_block_with_exit_3(paper_account, settings, setup, message):
    upload_target("S", [("600000.SH", 1000, "10")])
    if message == "global kill switch":
        settings.TRADING_ENABLED = False
    setup(paper_account)
    lines = []
    assert run_once(paper_account, lines=lines) == EXIT_BLOCKED
    assert any(message in line for line in lines)
    assert not Order.objects.exists()


def test_stale_target_blocks_and_never_sells(paper_account):
    upload_target("S", [("600000.SH", 1000, "10")])
    run_once(paper_account)
    PaperPosition.objects.update(bought_today=0, bought_on=None)
    paper_account.subscriptions.get().strategy.__class__.objects.update(
        confirmed_at=timezone.now() - timedelta(days=10)
    )
    lines = []
    assert run_once(paper_account, lines=lines) == EXIT_BLOCKED
    assert any("stale" in line for line in lines)
    assert paper_volumes(paper_account) == {"600000.SH": 500}
    assert Round.objects.filter(status=Round.Status.BLOCKED, message__contains="stale").exists()


def test_trading_hours_enforced_when_asked(paper_account, monkeypatch):
    paper_account.enforce_trading_hours = True
    paper_account.save()
    upload_target("S", [("600000.SH", 1000, "10")])
    monkeypatch.setattr(
        "execution.calendar.can_place_orders", lambda now, **kw: (False, "market closed (test)")
    )
    lines = []
    assert run_once(paper_account, lines=lines) == EXIT_BLOCKED
    assert any("market closed" in line for line in lines)
    assert not Order.objects.exists()


def test_dry_run_sends_nothing(paper_account):
    upload_target("S", [("600000.SH", 1000, "10")])
    worker = make_worker(paper_account)
    worker.broker.connect()
    outcome = worker.dry_run()
    assert [(o.code, o.volume) for o in outcome.plan.orders] == [("600000.SH", 500)]
    assert not Order.objects.exists() and not PaperOrder.objects.exists() and not Round.objects.exists()


def test_large_round_waits_for_approval_then_places(paper_account, superuser):
    paper_account.approval_threshold = D("0.001")
    paper_account.save()
    upload_target("S", [("600000.SH", 1000, "10")])
    assert run_once(paper_account) == EXIT_BLOCKED
    held = Round.objects.get(status=Round.Status.HELD)
    assert not Order.objects.exists()
    round_approve(round_=held, user=superuser)
    assert run_once(paper_account) == EXIT_CONVERGED
    assert paper_volumes(paper_account) == {"600000.SH": 500}
    assert Round.objects.filter(trigger=Round.Trigger.APPROVED, status=Round.Status.PLACED).exists()


def test_unfilled_order_cancelled_after_timeout_then_recomputed(paper_account):
    """The planner saw 10.00, the market jumped to 10.50 before the order arrived: cancel, then re-plan."""
    paper_account.order_timeout = timedelta(0)
    paper_account.save()
    upload_target("S", [("600000.SH", 1000, "10")])
    base = quote_source_for(paper_account)
    calls = {"n": 0}

    def jumpy(codes):
        calls["n"] += 1
        if calls["n"] == 2:  # the paper broker's check right after placing
            set_price("600000.SH", "10.50")
        return base(codes)

    assert run_once(paper_account, quote_source=jumpy) == EXIT_CONVERGED
    statuses = list(Order.objects.order_by("id").values_list("status", "limit_price"))
    assert statuses[0] == (OrderStatus.CANCELED, D("10.02"))
    assert statuses[-1][0] == OrderStatus.SUCCEEDED and statuses[-1][1] > D("10.5")
    assert paper_volumes(paper_account) == {"600000.SH": 500}


# --- exactly once across crashes ------------------------------------------------------------


def _expire_lease(account):
    WorkerLease.objects.filter(account=account).update(expires_at=timezone.now() - timedelta(seconds=1))


def test_crash_after_storing_before_sending_does_not_duplicate(paper_account, monkeypatch):
    upload_target("S", [("600000.SH", 1000, "10")])

    def die(**kwargs):
        raise Crash

    monkeypatch.setattr("execution.services.rounds.order_send", die)
    worker = make_worker(paper_account)
    worker.start()
    with pytest.raises(Crash):
        worker.run_once(timeout=5)
    stored = Order.objects.get()
    assert stored.status == OrderStatus.CREATED and not PaperOrder.objects.exists()
    monkeypatch.undo()

    lines = []
    with pytest.raises(lease_service.LeaseHeld, match="is run by worker"):
        make_worker(paper_account).start()  # the dead worker's lease is still valid
    _expire_lease(paper_account)
    assert run_once(paper_account, lines=lines) == EXIT_CONVERGED
    stored.refresh_from_db()
    assert stored.status == OrderStatus.NOT_SENT
    assert any("never sent" in line and stored.key in line for line in lines)
    assert PaperOrder.objects.count() == 1  # exactly one order reached the broker
    assert paper_volumes(paper_account) == {"600000.SH": 500}


def test_crash_after_sending_before_storing_broker_id_does_not_duplicate(paper_account, monkeypatch):
    upload_target("S", [("600000.SH", 1000, "10")])
    real_place = PaperBroker.place_order

    def place_then_die(self, request):
        real_place(self, request)
        raise Crash

    monkeypatch.setattr(PaperBroker, "place_order", place_then_die)
    worker = make_worker(paper_account)
    worker.start()
    with pytest.raises(Crash):
        worker.run_once(timeout=5)
    stored = Order.objects.get()
    assert stored.broker_order_id is None and PaperOrder.objects.count() == 1
    monkeypatch.undo()

    _expire_lease(paper_account)
    lines = []
    assert run_once(paper_account, lines=lines) == EXIT_CONVERGED
    stored.refresh_from_db()
    assert stored.broker_order_id == PaperOrder.objects.get().broker_order_id
    assert stored.status == OrderStatus.SUCCEEDED
    assert any("linked" in line and stored.key in line for line in lines)
    assert PaperOrder.objects.count() == 1
    assert paper_volumes(paper_account) == {"600000.SH": 500}


# --- outages, disconnects, leases -------------------------------------------------------------


def _run_forever_until(worker, done, *, limit=400):
    """Run the forever loop in this thread, stopping once `done()` holds (or after `limit` cycles)."""
    real_cycle = worker.cycle
    count = {"n": 0}

    def cycle(**kwargs):
        count["n"] += 1
        if done() or count["n"] > limit:
            worker.stop_event.set()
            return worker_module.CycleResult()
        return real_cycle(**kwargs)

    worker.cycle = cycle
    return worker.run_forever()


@pytest.mark.django_db(transaction=True)  # the worker closes broken connections, as in production
def test_database_outage_during_a_cycle_is_survived(paper_account, monkeypatch):
    upload_target("S", [("600000.SH", 1000, "10")])
    real = worker_module.events_apply
    failures = {"left": 2}

    def flaky(**kwargs):
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError("(2006, 'MySQL server has gone away')")
        return real(**kwargs)

    monkeypatch.setattr(worker_module, "events_apply", flaky)
    lines = []
    worker = make_worker(paper_account, lines=lines)
    worker.start()
    try:
        code = _run_forever_until(worker, lambda: paper_volumes(paper_account) == {"600000.SH": 500})
    finally:
        worker.stop()
    assert code == EXIT_CONVERGED
    assert sum("database error" in line for line in lines) == 2
    assert paper_volumes(paper_account) == {"600000.SH": 500}
    assert PaperOrder.objects.count() == 1


def test_second_worker_refused_then_takes_over_after_expiry(paper_account):
    first = make_worker(paper_account)
    first.start()
    second = make_worker(paper_account)
    with pytest.raises(lease_service.LeaseHeld) as refused:
        second.start()
    assert first.holder.name in str(refused.value)
    _expire_lease(paper_account)
    second.start()
    assert WorkerLease.objects.get().holder == second.holder.name
    first._timers.last.clear()  # its next heartbeat is due now
    with pytest.raises(LeaseLost):
        first.cycle()
    second.stop()


def test_ctrl_c_finishes_the_step_and_exits(paper_account):
    upload_target("S", [("600000.SH", 1000, "10")])
    worker = make_worker(paper_account, config=WorkerConfig(interval=0.05))
    worker.start()
    stopper = threading.Timer(0.3, worker.stop_event.set)
    stopper.start()
    try:
        assert worker.run_forever() == EXIT_CONVERGED
    finally:
        worker.stop()
    assert not WorkerLease.objects.exists()  # released on a clean stop


def test_rejected_orders_are_not_resent_every_cycle(paper_account):
    """The broker refuses an order the planner thought fine: the round fails once, then the account
    is blocked with the broker's reason instead of re-sending the same order every second."""
    import dataclasses

    upload_target("S", [("600000.SH", 1000, "10")])
    planner_quotes = quote_source_for(paper_account)

    def broker_quotes(codes):  # the broker sees the stock suspended
        return {code: dataclasses.replace(q, suspended=True) for code, q in planner_quotes(codes).items()}

    lines = []
    broker = PaperBroker(paper_account, quote_source=broker_quotes)
    code = run_once(paper_account, broker=broker, quote_source=planner_quotes, lines=lines)
    assert code == EXIT_BLOCKED
    assert PaperOrder.objects.count() == 1 and Order.objects.get().status == OrderStatus.JUNK
    statuses = list(Round.objects.order_by("id").values_list("status", flat=True))
    assert statuses == [Round.Status.FAILED, Round.Status.BLOCKED]
    assert any("rejected by the broker" in line for line in lines)
    # Running again changes nothing: still blocked, still one order at the broker.
    assert (
        run_once(
            paper_account,
            broker=PaperBroker(paper_account, quote_source=broker_quotes),
            quote_source=planner_quotes,
        )
        == EXIT_BLOCKED
    )
    assert PaperOrder.objects.count() == 1 and Round.objects.count() == 2


class _DownBroker(PaperBroker):
    """MiniQMT is down: every connect fails."""

    def connect(self):
        from execution.brokers.base import BrokerDisconnected

        raise BrokerDisconnected("connect() returned -1")


@pytest.mark.parametrize(("session_open", "expected"), [(True, 0.01), (False, 300)])
def test_reconnect_backs_off_slowly_outside_sessions(paper_account, monkeypatch, session_open, expected):
    """Outside trading sessions a down MiniQMT is retried every 5 minutes, not every few seconds."""
    paper_account.enforce_trading_hours = True
    paper_account.save()
    monkeypatch.setattr(
        "execution.calendar.can_place_orders",
        lambda now, **kw: (session_open, "" if session_open else "closed"),
    )
    lines = []
    worker = make_worker(
        paper_account,
        broker=_DownBroker(paper_account, quote_source=quote_source_for(paper_account)),
        lines=lines,
    )
    waits = []

    def wait(seconds):
        waits.append(seconds)
        worker.stop_event.set()

    worker._wait = wait
    worker.run_forever()
    assert waits == [expected]
    assert "broker unreachable" in lines[0]


def test_kill_switch_does_not_slow_reconnects(paper_account, monkeypatch):
    """With trading switched off the worker still reconnects promptly (it keeps reporting state)."""
    paper_account.enforce_trading_hours = True
    paper_account.trading_enabled = False
    paper_account.save()
    monkeypatch.setattr("execution.calendar.can_place_orders", lambda now, **kw: (True, ""))
    worker = make_worker(
        paper_account, broker=_DownBroker(paper_account, quote_source=quote_source_for(paper_account))
    )
    waits = []
    worker._wait = lambda seconds: (waits.append(seconds), worker.stop_event.set())
    worker.run_forever()
    assert waits == [0.01]
