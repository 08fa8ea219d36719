"""Recovery of the forever loop over the genuine xttrader.py (see xt_stub): MiniQMT down at start,
Ctrl+C during a backoff, and the next round right after a disconnect, a cancel or a partial fill.

Rounds are measured in worker cycles, never in wall time: the drift timer is set to an hour, so a
round that is not started by the event itself would not start at all within the test.
"""

import os
import signal
import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from execution import worker as worker_module
from execution.brokers.xtquant import XtQuantBroker
from execution.models import BrokerAccount, Order, OrderStatus, Round, WorkerLease
from execution.runtime import quote_source_for
from execution.tests import xt_stub
from execution.tests.conftest import upload_target
from execution.worker import EXIT_CONVERGED, Worker, WorkerConfig

USERDATA = r"D:\国金QMT交易端\userdata_mini"
NO_DRIFT = timedelta(hours=1)

pytestmark = pytest.mark.django_db(transaction=True)  # the stand-in answers on its own threads


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


def xt_worker(account, lines, *, clock=None, say=None, broker_options=None, **config):
    options = {"interval": 0.01, "backoff": (0.01, 0.02, 0.03), "drift_every": NO_DRIFT, **config}
    return Worker(
        account=account,
        broker=XtQuantBroker(
            userdata_mini_path=USERDATA, account_id=account.account_id, **(broker_options or {})
        ),
        quote_source=quote_source_for(account),
        config=WorkerConfig(**options),
        say=say or lines.append,
        **({"clock": clock} if clock else {}),
    )


class CycleCounter:
    """Wraps worker.cycle: counts cycles, runs `step(n)` before each, stops when it returns True."""

    def __init__(self, worker, step, *, limit=300):
        self.n = 0
        real = worker.cycle

        def cycle(**kwargs):
            self.n += 1
            if step(self.n) or self.n > limit:
                worker.stop_event.set()
                return worker_module.CycleResult()
            return real(**kwargs)

        worker.cycle = cycle


def rounds():
    return list(Round.objects.order_by("id"))


# --- item 2: MiniQMT down when the worker starts ---------------------------------------------


def test_miniqmt_refusing_the_first_connects_is_retried_with_a_line_per_attempt(paper_account, miniqmt):
    """Three refused connects, then MiniQMT is up: three numbered lines, then the account converges."""
    miniqmt.refuse_connects(3)
    upload_target("S", [("600000.SH", 1000, "10")])
    lines = []
    worker = xt_worker(paper_account, lines)
    worker.start()

    def step(n):
        for order in miniqmt.orders("P1") if miniqmt.live_clients() else []:
            if order.order_status == 50:
                miniqmt.fill(order.order_id)
        return any(r.status == Round.Status.CONVERGED for r in rounds())

    CycleCounter(worker, step)
    try:
        assert worker.run_forever() == EXIT_CONVERGED
    finally:
        worker.stop()
    unreachable = [line for line in lines if line.startswith("broker unreachable")]
    assert [line.split("; ")[-1] for line in unreachable] == [
        "attempt 1, retrying in 0.01 s",
        "attempt 2, retrying in 0.02 s",
        "attempt 3, retrying in 0.03 s",
    ]
    assert miniqmt.connect_attempts == 4
    assert len(miniqmt.orders("P1")) == 1


@pytest.mark.parametrize(("market_open", "first_pause"), [(True, "1 s"), (False, "300 s")])
def test_command_retries_a_down_miniqmt_and_ctrl_c_stops_it(
    paper_account, miniqmt, monkeypatch, market_open, first_pause
):
    """`qmt_worker` (no --once) with MiniQMT down: a line per attempt, backoff slower when the market is
    closed, and Ctrl+C during the pause stops it cleanly (exit 0, lease released)."""
    BrokerAccount.objects.filter(pk=paper_account.pk).update(
        mode="live", userdata_mini_path=USERDATA, enforce_trading_hours=True
    )
    monkeypatch.setattr("execution.calendar.calendar_refresh_from_xtdata", lambda **kw: 0)
    monkeypatch.setattr(
        "execution.calendar.can_place_orders",
        lambda now, **kw: (market_open, "" if market_open else "closed"),
    )
    miniqmt.connect_result = -1
    out = StringIO()
    # Ctrl+C once the second attempt is under way (market open) or during the first long pause.
    ctrl_c = threading.Timer(1.6 if market_open else 0.5, os.kill, (os.getpid(), signal.SIGINT))
    ctrl_c.start()
    try:
        call_command("qmt_worker", "--account", "p1", stdout=out, stderr=StringIO())
    finally:
        ctrl_c.cancel()
    attempts = [line for line in out.getvalue().splitlines() if line.startswith("broker unreachable")]
    assert attempts[0].endswith(f"attempt 1, retrying in {first_pause}")
    if market_open:
        assert attempts[1].endswith("attempt 2, retrying in 2 s")
    else:
        assert len(attempts) == 1
    assert out.getvalue().rstrip().endswith("worker stopped")
    assert not WorkerLease.objects.exists()


# --- item 4: the next round comes at the next cycle --------------------------------------------


def test_round_follows_a_partial_fill_and_cancel_at_the_next_cycle(paper_account, miniqmt):
    """An order partly filled, then cancelled as overdue: the follow-up round starts in the cycle that
    sees the cancel, not when the (hour-long) drift timer fires."""
    paper_account.order_timeout = timedelta(seconds=0)
    paper_account.save()
    upload_target("S", [("600000.SH", 1000, "10")])
    lines = []
    worker = xt_worker(paper_account, lines)
    worker.start()
    seen = {}

    def step(n):
        first = Order.objects.order_by("id").first()
        if first is None:
            return False
        broker_order = next(o for o in miniqmt.orders("P1") if o.order_remark == first.key)
        if broker_order.traded_volume == 0 and broker_order.order_status == 50:
            miniqmt.fill(broker_order.order_id, volume=200)
        first.refresh_from_db()
        if first.is_final and "final" not in seen:
            seen["final"] = n
        if len(rounds()) >= 2 and "round" not in seen:
            seen["round"] = n
        return "round" in seen

    CycleCounter(worker, step)
    try:
        worker.run_forever()
    finally:
        worker.stop()
    first = Order.objects.order_by("id").first()
    assert (first.status, first.filled_volume) == (OrderStatus.PART_CANCEL, 200)
    follow_up = rounds()[1]
    assert follow_up.trigger == Round.Trigger.FOLLOW_UP
    assert seen["round"] - seen["final"] <= 1, seen  # the cycle that applied the cancel starts the round


def test_round_follows_a_reconnect_at_the_next_cycle(paper_account, miniqmt, monkeypatch):
    """MiniQMT restarts while the account is converged: the worker notices the dropped link at once,
    reconnects and re-plans from fresh state in the cycle right after the reconnect."""
    upload_target("S", [("600000.SH", 1000, "10")])
    lines = []
    worker = xt_worker(paper_account, lines)
    worker.start()
    seen = {}
    planned = []  # (cycle, trigger) of every round the worker computed
    real_round_run = worker_module.round_run

    def round_run(**kwargs):
        planned.append((counter.n, kwargs["trigger"]))
        return real_round_run(**kwargs)

    monkeypatch.setattr(worker_module, "round_run", round_run)

    def step(n):
        for order in miniqmt.orders("P1") if miniqmt.live_clients() else []:
            if order.order_status == 50:
                miniqmt.fill(order.order_id)
        if "dropped" not in seen and any(r.status == Round.Status.CONVERGED for r in rounds()):
            seen["dropped"] = n
            miniqmt.disconnect()
        elif "dropped" in seen and "reconnected" not in seen and len(miniqmt.session_ids) >= 2:
            seen["reconnected"] = n
        return "reconnected" in seen and planned[-1][0] >= seen["dropped"]

    counter = CycleCounter(worker, step)
    try:
        worker.run_forever()
    finally:
        worker.stop()
    assert "reconnected" in seen, lines
    assert seen["reconnected"] - seen["dropped"] <= 2, seen  # the dropped link is noticed at once
    cycle, trigger = planned[-1]
    assert trigger == Round.Trigger.RECONNECT
    assert cycle - seen["reconnected"] <= 1, (seen, planned)
    assert any(line.startswith("broker unreachable") for line in lines)


# --- an idle MiniQMT that stops answering is noticed within the probe period -------------------


class StepClock:
    """The worker's clock, moved on by hand: one second per cycle in these tests."""

    def __init__(self):
        self.now = timezone.now()

    def __call__(self):
        return self.now


def _idle_worker(paper_account, miniqmt, settings, lines, on_line=None, **config):
    """A worker on a 1-second-per-cycle clock, converged and idle, with the default timers."""
    settings.QMT_PROBE_TIMEOUT_SECONDS = 0.2  # the probe's own bound in wall time; the clock counts cycles
    clock = StepClock()

    def say(line):
        lines.append(line)
        if on_line:
            on_line(line)

    worker = xt_worker(
        paper_account,
        lines,
        clock=clock,
        say=say,
        broker_options={"call_timeout": 0.2, "connect_timeout": 0.2},
        drift_every=timedelta(seconds=30),
        **config,
    )
    state_queries = []  # the worker's clock at each state query (positions come last in it)
    real_positions = worker.broker.query_positions

    def query_positions():
        answer = real_positions()
        state_queries.append(clock.now)
        return answer

    worker.broker.query_positions = query_positions
    return worker, clock, state_queries


def test_idle_miniqmt_hang_is_noticed_within_the_probe_period(paper_account, miniqmt, settings):
    """MiniQMT stops answering right after a state query while nothing is to do: "broker unreachable"
    is reported within QMT_PROBE_EVERY_SECONDS (2 s) of the worker's clock, not at the next state query
    (10 s) — and through the same heartbeat status as any other outage."""
    upload_target("S", [("600000.SH", 1000, "10")])
    lines, seen = [], {}

    def on_line(line):
        if line.startswith("broker unreachable") and "stalled" in seen and "noticed" not in seen:
            seen["noticed"] = clock.now
            worker.stop_event.set()

    # No reconcile in the window either: without a probe the hang would wait for the next state query.
    worker, clock, state_queries = _idle_worker(
        paper_account, miniqmt, settings, lines, on_line, reconcile_every=NO_DRIFT
    )
    worker.start()

    def step(n):
        clock.now += timedelta(seconds=1)
        if "stalled" in seen:
            return False
        for order in miniqmt.orders("P1"):
            if order.order_status == 50:
                miniqmt.fill(order.order_id)
        idle = any(r.status == Round.Status.CONVERGED for r in rounds()) and not any(
            o.order_status == 50 for o in miniqmt.orders("P1")
        )
        # The worst moment: the last answer MiniQMT gave was the state query of the previous cycle.
        if idle and n > 3 and state_queries and state_queries[-1] == clock.now - timedelta(seconds=1):
            miniqmt.stall()
            seen["stalled"] = clock.now
        return False

    CycleCounter(worker, step, limit=80)
    try:
        worker.run_forever()
        lease_status = WorkerLease.objects.get(account=paper_account).status
    finally:
        miniqmt.resume(deliver=False)
        worker.stop()
    assert "stalled" in seen, lines
    assert "noticed" in seen, lines
    # Noticed within the probe period after the last answer (the stall came one cycle after it).
    assert seen["noticed"] - seen["stalled"] <= timedelta(seconds=1), seen
    assert lease_status.startswith("broker unreachable: MiniQMT did not answer query_stock_asset")


def test_healthy_idle_miniqmt_gets_at_most_one_probe_per_period(paper_account, miniqmt, settings):
    """While MiniQMT answers, the probe adds at most one asset query per QMT_PROBE_EVERY_SECONDS of the
    worker's clock, and none in a period in which the worker already talked to MiniQMT."""
    upload_target("S", [("600000.SH", 1000, "10")])
    lines, seen = [], {}
    worker, clock, state_queries = _idle_worker(paper_account, miniqmt, settings, lines)
    worker.start()
    idle_cycles = 40

    def step(n):
        clock.now += timedelta(seconds=1)
        for order in miniqmt.orders("P1"):
            if order.order_status == 50:
                miniqmt.fill(order.order_id)
        if "idle_from" not in seen:
            if any(r.status == Round.Status.CONVERGED for r in rounds()):
                seen["idle_from"] = n
                seen["calls"] = len(miniqmt.calls)
                seen["state_queries"] = len(state_queries)
            return False
        return n - seen["idle_from"] >= idle_cycles

    CycleCounter(worker, step, limit=200)
    try:
        worker.run_forever()
    finally:
        worker.stop()
    idle_calls = [request for request, _thread, _session in miniqmt.calls[seen["calls"] :]]
    state = len(state_queries) - seen["state_queries"]
    probes = idle_calls.count("queryStockAssetWithSeq") - state  # each state query asks the asset once
    assert idle_cycles // 10 - 1 <= state <= idle_cycles // 10  # still a state query every 10 s
    # At most one probe per 2 s (+1: the window need not start on a probe's cycle), none more.
    assert idle_cycles // 2 - 2 <= probes <= idle_cycles // 2 + 1, (probes, idle_calls)
    assert not any(line.startswith("broker unreachable") for line in lines)


def test_periodic_queries_wait_for_a_probe_so_a_hang_meets_the_short_timeout(paper_account, miniqmt, settings):
    """Reconcile and state queries due at every cycle still go out only right after a probe answered:
    whenever MiniQMT hangs, the probe (3 s bound) meets it first, not a query with the 10 s bound."""
    upload_target("S", [("600000.SH", 1000, "10")])
    lines, seen = [], {}

    def on_line(line):
        if line.startswith("broker unreachable") and "stalled" in seen and "noticed" not in seen:
            seen["noticed"] = clock.now
            worker.stop_event.set()

    worker, clock, _state_queries = _idle_worker(
        paper_account,
        miniqmt,
        settings,
        lines,
        on_line,
        reconcile_every=timedelta(seconds=1),
        state_every=timedelta(seconds=1),
    )
    calls_at_stall = {}
    worker.start()

    def step(n):
        clock.now += timedelta(seconds=1)
        if "stalled" in seen:
            return False
        for order in miniqmt.orders("P1"):
            if order.order_status == 50:
                miniqmt.fill(order.order_id)
        if n == 12:  # converged and idle by now; the previous cycle asked its periodic questions
            miniqmt.stall()
            seen["stalled"] = clock.now
            calls_at_stall["n"] = len(miniqmt.stalled_calls)
        return False

    CycleCounter(worker, step, limit=40)
    try:
        worker.run_forever()
        lease_status = WorkerLease.objects.get(account=paper_account).status
    finally:
        miniqmt.resume(deliver=False)
        worker.stop()
    assert any(r.status == Round.Status.CONVERGED for r in rounds())
    assert "noticed" in seen, lines
    assert seen["noticed"] - seen["stalled"] <= timedelta(seconds=2), seen
    assert "query_stock_asset (probe) within 0.2 s" in lease_status, lease_status
    assert miniqmt.stalled_calls == ["queryStockAssetWithSeq"], miniqmt.stalled_calls
