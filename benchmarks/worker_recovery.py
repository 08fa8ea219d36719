"""Worker recovery figures: how soon a hung or restarted MiniQMT is noticed, how soon trading resumes.

    python benchmarks/worker_recovery.py [--interval 1.0] [-v]

Runs an in-process worker (the forever loop, default WorkerConfig and the
default MiniQMT timeouts unless overridden by QMT_*_TIMEOUT_SECONDS) over the
genuine xttrader.py driven by the MiniQMT stand-in of the tests
(execution/tests/xt_stub), on a fresh SQLite database in a temporary
directory. Needs `pip install -r requirements-dev.txt` (xtquant's files).

Measured, in this order:
1. MiniQMT restarts (on_disconnected) while converged → next round computed.
2. An unfilled order is cancelled as overdue → next round computed.
3. MiniQMT hangs while the account is idle, just after a state query (worst
   case: the last answer it gave) → the worker reports "broker unreachable".
4. MiniQMT hangs while an order is open (unfilled, not yet overdue), just
   after a reconcile → "broker unreachable".
5. MiniQMT hangs while an order is being sent → "broker unreachable".

Figures are printed, never asserted. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

WORKDIR = Path(tempfile.mkdtemp(prefix="qmtjq-recovery-"))
os.environ.setdefault("SECRET_KEY", "benchmark-only")
os.environ["DATABASE_URL"] = f"sqlite:///{WORKDIR / 'db.sqlite3'}"
os.environ["DJANGO_SETTINGS_MODULE"] = "qmtjq.settings"
os.environ.setdefault("LOG_LEVEL", "ERROR")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

USERDATA = r"D:\userdata_mini"


class Timeline:
    """What the worker said and which rounds it computed, with monotonic times."""

    def __init__(self, verbose: bool):
        self.verbose = verbose
        self.lines: list[tuple[float, str]] = []
        self.rounds: list[tuple[float, str]] = []
        self.lock = threading.Lock()

    def say(self, line: str) -> None:
        with self.lock:
            self.lines.append((time.monotonic(), line))
        if self.verbose:
            print(f"    worker: {line}")

    def first_line_after(self, start: float, prefix: str, timeout: float) -> float | None:
        return _poll(
            lambda: next((t for t, ln in list(self.lines) if t >= start and ln.startswith(prefix)), None),
            timeout,
        )

    def first_round_after(self, start: float, trigger: str, timeout: float) -> float | None:
        return _poll(
            lambda: next((t for t, tr in list(self.rounds) if t >= start and tr == trigger), None), timeout
        )


def _poll(probe, timeout: float, every: float = 0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(every)
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--interval", type=float, default=1.0, help="worker cycle interval (qmt_worker default 1)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print the worker's lines")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    from execution import worker as worker_module
    from execution.brokers.xtquant import XtQuantBroker
    from execution.models import BrokerAccount, Round
    from execution.runtime import quote_source_for
    from execution.services.accounts import SubscriptionSpec, account_create
    from execution.tests import xt_stub
    from execution.tests.conftest import set_price, upload_target

    account = account_create(
        name="bench",
        mode="paper",  # the worker below talks to MiniQMT through XtQuantBroker all the same
        account_id="B1",
        starting_cash=Decimal("1000000"),
        subscriptions=[SubscriptionSpec("BENCH", "ratio", Decimal("1"))],
        enforce_trading_hours=False,
    )
    set_price("600000.SH", "10.00")
    timeline = Timeline(args.verbose)
    real_round_run = worker_module.round_run

    def round_run(**kwargs):
        timeline.rounds.append((time.monotonic(), str(kwargs["trigger"])))
        return real_round_run(**kwargs)

    worker_module.round_run = round_run
    config = worker_module.WorkerConfig(interval=args.interval)
    call_timeout = settings.QMT_CALL_TIMEOUT_SECONDS
    print(
        f"worker: interval {args.interval:g} s, state query every {config.state_every.total_seconds():g} s, "
        f"reconcile every {config.reconcile_every.total_seconds():g} s, probe when quiet for "
        f"{config.probe_every.total_seconds():g} s, reconnect backoff {config.backoff[0]:g} s first; MiniQMT call "
        f"timeout {call_timeout:g} s, probe timeout {settings.QMT_PROBE_TIMEOUT_SECONDS:g} s, connect timeout "
        f"{settings.QMT_CONNECT_TIMEOUT_SECONDS:g} s"
    )
    results = []

    with xt_stub.genuine_xtquant():
        terminal = xt_stub.FakeMiniQmt(USERDATA)
        terminal.open_account("B1", cash=1_000_000)
        broker = XtQuantBroker(userdata_mini_path=USERDATA, account_id="B1")
        worker = worker_module.Worker(
            account=account,
            broker=broker,
            quote_source=quote_source_for(account),
            config=config,
            say=timeline.say,
        )
        filling = threading.Event()
        filling.set()
        cancels: list[float] = []
        real_cancel = terminal.cancel_order_stock

        def cancel_order_stock(client, seq, req):
            cancels.append(time.monotonic())
            return real_cancel(client, seq, req)

        terminal.cancel_order_stock = cancel_order_stock
        sends: list[float] = []
        real_place = broker.place_order

        hang_on_send = threading.Event()

        def place_order(request):
            sends.append(time.monotonic())
            if hang_on_send.is_set():
                terminal.stall()  # MiniQMT stops answering just as our order goes out
            return real_place(request)

        broker.place_order = place_order
        state_queries: list[float] = []
        real_query_positions = broker.query_positions  # the last call of a state query

        def query_positions():
            answer = real_query_positions()
            state_queries.append(time.monotonic())
            return answer

        broker.query_positions = query_positions
        reconciles: list[float] = []
        real_query_trades = broker.query_trades  # the last call of a reconcile

        def query_trades():
            answer = real_query_trades()
            reconciles.append(time.monotonic())
            return answer

        broker.query_trades = query_trades

        def market():
            while not worker.stop_event.is_set():
                if filling.is_set() and terminal.live_clients() and terminal._answering.is_set():
                    with terminal._lock:
                        for order in terminal.orders("B1"):
                            if order.order_status == 50:
                                terminal.fill(order.order_id)
                time.sleep(0.02)

        def converged() -> bool:
            latest = Round.objects.order_by("-id").first()
            open_at_broker = any(o.order_status == 50 for o in terminal.orders("B1"))
            return latest is not None and latest.status == Round.Status.CONVERGED and not open_at_broker

        worker.start()
        runner = threading.Thread(target=lambda: (worker.run_forever(), connection.close()), daemon=True)
        runner.start()
        threading.Thread(target=market, daemon=True).start()
        try:
            volume = 1000
            upload_target("BENCH", [("600000.SH", volume, "10")])
            _poll(converged, 60)

            # 1. MiniQMT restarts.
            start = time.monotonic()
            terminal.disconnect()
            noticed = timeline.first_line_after(start, "broker unreachable", 60)
            resumed = timeline.first_round_after(start, Round.Trigger.RECONNECT, 60)
            results.append(("MiniQMT restart → disconnect noticed", start, noticed))
            results.append(("MiniQMT restart → next round computed", start, resumed))
            _poll(converged, 60)

            # 2. An unfilled order, cancelled as overdue.
            BrokerAccount.objects.filter(pk=account.pk).update(order_timeout=timedelta(seconds=2))
            filling.clear()
            volume += 100
            upload_target("BENCH", [("600000.SH", volume, "10")])
            _poll(lambda: cancels, 60)
            filling.set()
            cancelled = cancels[0]
            resumed = timeline.first_round_after(cancelled, Round.Trigger.FOLLOW_UP, 60)
            results.append(("overdue order cancelled → next round computed", cancelled, resumed))
            _poll(converged, 60)

            # 3. MiniQMT hangs while idle, right after a state query (the worst moment).
            count = len(state_queries)
            _poll(lambda: len(state_queries) > count, 60, every=0.001)
            terminal.stall()
            start = time.monotonic()
            noticed = timeline.first_line_after(start, "broker unreachable", 120)
            results.append(("MiniQMT hangs while idle → noticed (worst case)", start, noticed))
            terminal.resume(deliver=False)
            _poll(lambda: timeline.first_round_after(noticed or start, Round.Trigger.RECONNECT, 0.01), 120)
            _poll(lambda: broker.connected and converged(), 60)

            # 4. MiniQMT hangs while an order is open (not yet overdue), right after a reconcile.
            BrokerAccount.objects.filter(pk=account.pk).update(order_timeout=timedelta(hours=1))
            filling.clear()
            count = len(sends)
            volume += 100
            upload_target("BENCH", [("600000.SH", volume, "10")])
            _poll(lambda: len(sends) > count, 60)
            count = len(reconciles)
            _poll(lambda: len(reconciles) > count, 60, every=0.001)
            terminal.stall()
            start = time.monotonic()
            noticed = timeline.first_line_after(start, "broker unreachable", 120)
            results.append(("MiniQMT hangs with an order open → noticed (worst case)", start, noticed))
            terminal.resume(deliver=False)
            filling.set()  # the open order fills after the reconnect; the follow-up round converges
            _poll(lambda: broker.connected and converged(), 120)

            # 5. MiniQMT hangs while an order is being sent.
            hang_on_send.set()
            count = len(sends)
            volume += 100
            upload_target("BENCH", [("600000.SH", volume, "10")])
            _poll(lambda: len(sends) > count, 60)
            start = sends[count]
            noticed = timeline.first_line_after(start, "broker unreachable", 120)
            results.append(("MiniQMT hangs during a send → noticed", start, noticed))
            terminal.resume(deliver=False)
        finally:
            worker.stop_event.set()
            runner.join(30)
            worker.stop()
            terminal.shutdown()

    print()
    for label, start, end in results:
        figure = f"{end - start:6.2f} s" if end is not None else "  not seen"
        print(f"{label:<52} {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
