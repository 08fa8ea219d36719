"""Remote mode over the genuine xttrader.py, orders that do not simply fill: cancelled after the account's
order timeout, cancelled by an admin on the server (the request flows down the feed), partly filled then
cancelled or filled, and MiniQMT restarting while an order is open. The trading PC is a separate
`qmt_worker --server URL` process (xt_stub/remote.py); the test steers the stand-in market. Each ends with
the server's mirror equal to the broker (orders, fills, holdings) and exactly once (one order per remark,
nothing bought above target)."""

import os
import signal
import time
from datetime import timedelta

import pytest

from execution.models import BrokerAccount, Fill, Holding, Order, OrderStatus
from execution.services.admin_actions import orders_ask_cancel
from execution.tests.conftest import upload_target
from execution.tests.test_remote_xtquant import (  # noqa: F401 (fixtures)
    OPEN,
    assert_mirror_complete,
    live_account,
    miniqmt,
    pc,
    pc_template,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

STOCK_BUY = 23
CODE = "600000.SH"


def _order_timeout(seconds: float) -> None:
    BrokerAccount.objects.filter(name="x1").update(order_timeout=timedelta(seconds=seconds))


def assert_mirror_is_the_broker(pc, *, target: int = 500) -> None:  # noqa: F811
    """Exactly once and the server's mirror = the broker: orders (status, filled), fills, holdings."""
    orders = pc.terminal.orders("X1")
    book = pc.terminal.books["X1"]
    remarks = [o.order_remark for o in orders]
    assert len(remarks) == len(set(remarks)), remarks
    assert book.positions[CODE].volume == target
    assert sum(o.traded_volume for o in orders if o.order_type == STOCK_BUY) == target  # nothing above it
    mirrored = {
        o.key: (o.broker_order_id, o.status, o.filled_volume)
        for o in Order.objects.filter(broker_order_id__isnull=False)
    }
    assert mirrored == {o.order_remark: (o.order_id, o.order_status, o.traded_volume) for o in orders}
    assert sorted(Fill.objects.values_list("trade_id", "volume")) == sorted(
        (t.traded_id, t.traded_volume) for t in book.trades
    )
    holdings = dict(Holding.objects.filter(account__name="x1", volume__gt=0).values_list("code", "volume"))
    assert holdings == {code: p.volume for code, p in book.positions.items() if p.volume}
    assert_mirror_complete(pc)


def _open(terminal) -> list:
    return [o for o in terminal.orders("X1") if o.order_status in OPEN]


def fill_all_but_the_first(terminal) -> None:
    """The market never reaches the first order's price; later orders fill."""
    orders = terminal.orders("X1")
    for order in orders[1:]:
        if order.order_status in OPEN:
            terminal.fill(order.order_id)


def test_order_cancelled_after_the_timeout_then_the_rest_is_bought(pc):  # noqa: F811
    """An order left unfilled past order_timeout is cancelled by the PC; the next round buys the target."""
    _order_timeout(1)
    upload_target("S", [(CODE, 1000, "10")])
    code, output = pc.run("--once", "--timeout", "30", market=fill_all_but_the_first, timeout=40)
    assert code == 0 and "converged" in output and "still queued" not in output, output
    first, second = pc.terminal.orders("X1")
    assert (first.order_status, first.traded_volume) == (OrderStatus.CANCELED, 0)
    assert (second.order_status, second.order_volume) == (OrderStatus.SUCCEEDED, 500)
    assert Order.objects.get(key=first.order_remark).cancel_requested_at is not None
    assert_mirror_is_the_broker(pc)


def test_admin_cancel_on_the_server_reaches_the_broker(pc, superuser):  # noqa: F811
    """An admin asks the server to cancel an open order; the request flows down the feed and the PC
    cancels it at the broker (long before the order timeout); the cancel is mirrored back."""
    _order_timeout(3600)
    upload_target("S", [(CODE, 1000, "10")])
    asked = []

    def market(terminal):
        orders = terminal.orders("X1")
        if not orders:
            return
        first = Order.objects.filter(key=orders[0].order_remark).first()
        if first is not None and not asked:  # the server has heard of it: ask there, as an admin does
            orders_ask_cancel(orders=[first], user=superuser)
            asked.append(first.key)
        fill_all_but_the_first(terminal)

    code, output = pc.run("--once", "--timeout", "30", market=market, timeout=40)
    assert code == 0 and "converged" in output, output
    first, second = pc.terminal.orders("X1")
    assert asked == [first.order_remark]
    assert (first.order_status, first.traded_volume) == (OrderStatus.CANCELED, 0)
    assert second.order_status == OrderStatus.SUCCEEDED
    mirrored = Order.objects.get(key=first.order_remark)
    assert mirrored.user_cancel_requested_at is not None and mirrored.cancel_requested_at is not None
    assert_mirror_is_the_broker(pc)


def test_partly_filled_then_cancelled_then_the_rest_is_bought(pc):  # noqa: F811
    """200 of 500 trade, the rest times out and is cancelled (partly cancelled); the next round buys 300."""
    _order_timeout(1)
    upload_target("S", [(CODE, 1000, "10")])

    def market(terminal):
        orders = terminal.orders("X1")
        if orders and orders[0].traded_volume == 0 and orders[0].order_status in OPEN:
            terminal.fill(orders[0].order_id, volume=200)
        fill_all_but_the_first(terminal)

    code, output = pc.run("--once", "--timeout", "30", market=market, timeout=40)
    assert code == 0 and "converged" in output, output
    first, second = pc.terminal.orders("X1")
    assert (first.order_status, first.traded_volume) == (OrderStatus.PART_CANCEL, 200)
    assert (second.order_volume, second.order_status) == (300, OrderStatus.SUCCEEDED)
    assert_mirror_is_the_broker(pc)


def test_partly_filled_then_filled(pc):  # noqa: F811
    """200 trade, the PC and the server see the partial fill, then the rest trades: one order, two fills."""
    upload_target("S", [(CODE, 1000, "10")])

    def market(terminal):
        orders = terminal.orders("X1")
        if not orders or orders[0].order_status not in OPEN:
            return
        if orders[0].traded_volume == 0:
            terminal.fill(orders[0].order_id, volume=200)
        elif Order.objects.filter(status=OrderStatus.PART_SUCC, filled_volume=200).exists():
            terminal.fill(orders[0].order_id)  # only once the server mirrors the partial fill

    code, output = pc.run("--once", "--timeout", "30", market=market, timeout=40)
    assert code == 0 and "converged" in output, output
    (order,) = pc.terminal.orders("X1")
    assert (order.order_status, order.traded_volume) == (OrderStatus.SUCCEEDED, 500)
    assert len(pc.terminal.books["X1"].trades) == 2
    assert_mirror_is_the_broker(pc)


@pytest.mark.skipif(os.name == "nt", reason="SIGINT to a child process is POSIX here; Windows uses Ctrl+C")
def test_miniqmt_restart_while_an_order_is_open(pc):  # noqa: F811
    """MiniQMT drops the PC with an order partly filled; the rest trades while the PC is away (it never
    hears the push). The PC reconnects with a fresh session, reconciles the missed trade, sends nothing
    twice; the server mirrors the broker."""
    _order_timeout(3600)
    upload_target("S", [(CODE, 1000, "10")])
    terminal = pc.terminal
    process = pc.start()
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and not _open(terminal):
            time.sleep(0.05)
        (order,) = _open(terminal)
        terminal.fill(order.order_id, volume=200)
        while time.monotonic() < deadline and not Order.objects.filter(filled_volume=200).exists():
            time.sleep(0.05)
        sessions = len(terminal.session_ids)
        terminal.disconnect()
        terminal.fill(order.order_id)  # traded while MiniQMT restarts: no push reaches the PC
        while time.monotonic() < deadline and not (
            len(terminal.session_ids) > sessions
            and Order.objects.filter(status=OrderStatus.SUCCEEDED, filled_volume=500).exists()
            and Holding.objects.filter(account__name="x1", code=CODE, volume=500).exists()
        ):
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    assert process.returncode == 0 and "still queued" not in output, output
    assert len(terminal.session_ids) == len(set(terminal.session_ids)) > sessions, output
    assert [o.order_id for o in terminal.orders("X1")] == [order.order_id]
    assert_mirror_is_the_broker(pc)


def test_a_refused_cancel_is_asked_again(pc):  # noqa: F811
    """MiniQMT refuses the first cancel of an overdue order (it stays open): the PC asks again after another
    order timeout instead of leaving the order, and the account's round, open all day."""
    _order_timeout(1)
    pc.terminal.reject_next_cancel()
    upload_target("S", [(CODE, 1000, "10")])
    code, output = pc.run("--once", "--timeout", "30", market=fill_all_but_the_first, timeout=40)
    assert code == 0 and "converged" in output, output
    first, second = pc.terminal.orders("X1")
    assert (first.order_status, second.order_status) == (OrderStatus.CANCELED, OrderStatus.SUCCEEDED)
    messages = list(Order.objects.get(key=first.order_remark).events.values_list("message", flat=True))
    assert any("撤单失败" in m for m in messages), messages
    assert_mirror_is_the_broker(pc)
