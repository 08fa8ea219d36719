"""Shared-database mode stays cheap: a round costs a constant number of queries plus at most 3 per order (issue 9).

Over a 40 ms link every query is a round trip, so the count is the cost.
The worker runs as `qmt_worker --once` does (default timers), in process.
"""

import sys
from collections import Counter
from decimal import Decimal as D

from django.db import connection
from django.test.utils import CaptureQueriesContext

from execution.models import Order, OrderStatus, PaperPosition
from execution.services.accounts import SubscriptionSpec, account_create
from execution.tests.conftest import set_price, upload_target
from execution.tests.test_worker import make_worker
from execution.worker import EXIT_CONVERGED, WorkerConfig

# What converging costs whatever the order count: taking the lease and reconciling
# (~14), two worker cycles (~30), two rounds planned from fresh broker state and
# stored (~28 each: state, targets, holdings, quotes, holds, the round), the paper
# book read and written once (~15) and the sends' bookkeeping (~4).
CONSTANT = 120
PER_ORDER = 3  # the fenced claim is one conditional UPDATE per order; the rest is batched


def _phase() -> str:
    """The outermost execution function (below the worker loop) that issued the query."""
    frame, phase = sys._getframe(2), "?"
    while frame is not None:
        path = frame.f_code.co_filename.replace("\\", "/")
        if "/execution/" in path and "/tests/" not in path and not path.endswith("/worker.py"):
            phase = f"{path.rsplit('/execution/', 1)[1]}:{frame.f_code.co_name}"
        frame = frame.f_back
    return phase


def _converge(name: str, lines: int) -> tuple[int, int]:
    """A fresh paper account following a `lines`-line target, converged once; (queries, orders)."""
    account = account_create(
        name=name,
        mode="paper",
        account_id=name.upper(),
        starting_cash=D("1000000"),
        subscriptions=[SubscriptionSpec(f"S-{name}", "ratio", D("0.5"))],
        enforce_trading_hours=False,
    )
    account.approval_threshold = None
    account.save(update_fields=["approval_threshold"])
    codes = [f"6000{n:02d}.SH" for n in range(lines)]
    for code in codes:
        set_price(code, "10.00")
    upload_target(f"S-{name}", [(code, 1000, "10") for code in codes])
    phases = Counter()

    def count(execute, sql, params, many, context):
        phases[_phase()] += 1
        return execute(sql, params, many, context)

    worker = make_worker(account, config=WorkerConfig(interval=0.01))
    with CaptureQueriesContext(connection) as queries, connection.execute_wrapper(count):
        worker.start()
        try:
            assert worker.run_once(timeout=20) == EXIT_CONVERGED
        finally:
            worker.stop()

    orders = Order.objects.filter(account=account)
    assert orders.count() == lines and not orders.exclude(status=OrderStatus.SUCCEEDED).exists()
    assert set(PaperPosition.objects.filter(account=account).values_list("volume", flat=True)) == {500}
    print(f"\n{len(queries)} queries for {lines} orders:")
    for phase, n in phases.most_common():
        print(f"{n:5d}  {phase}")
    return len(queries), lines


def test_converging_a_20_line_target_costs_a_constant_plus_3_queries_per_order(db):
    """From start to converged: at most 120 + 3 per order, for 4 orders and for 20 (each is stored, claimed, sent, filled)."""
    few, few_orders = _converge("few", 4)
    many, many_orders = _converge("many", 20)
    assert few <= CONSTANT + PER_ORDER * few_orders
    assert many <= CONSTANT + PER_ORDER * many_orders
    assert many - few <= PER_ORDER * (many_orders - few_orders)
