"""The server changes a running trading PC's broker settings (the genuine xttrader, the PC a separate
`qmt_worker --server URL` process): the PC stops sending through the broker it started with as soon as
it fetched the change, exits with EXIT_RESTART (6) and one line saying why; restarted, it trades the new
broker account. Nothing is ever sent to the old account after the switch."""

import time
from datetime import timedelta

import pytest

from execution.models import BrokerAccount, Holding, Order, OrderStatus
from execution.services.admin_actions import account_switch_to_paper, account_trading_set
from execution.tests.conftest import upload_target
from execution.tests.test_remote_xtquant import (  # noqa: F401 (fixtures)
    fill_open_orders,
    live_account,
    miniqmt,
    pc,
    pc_template,
)
from execution.worker import EXIT_RESTART

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CODE = "600000.SH"


def _fill_everywhere(terminal) -> None:
    for account_id in terminal.books:
        for order in terminal.orders(account_id):
            if order.order_status in (48, 49, 50, 55):
                terminal.fill(order.order_id)


def _run_until_switched(trading_pc, switch, *, timeout: float = 60):
    """Start the PC, let it converge on X1, `switch()` on the server with a new target, then wait for the
    PC to exit while the market fills whatever reaches it. Returns (exit code, output)."""
    process = trading_pc.start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not Holding.objects.filter(code=CODE, volume=500).exists():
            fill_open_orders(trading_pc.terminal)
            time.sleep(0.1)
        assert Holding.objects.filter(code=CODE, volume=500).exists()
        switch()
        upload_target("S", [(CODE, 2000, "10")])  # work to do: the old broker must not get it
        while time.monotonic() < deadline and process.poll() is None:
            _fill_everywhere(trading_pc.terminal)
            time.sleep(0.1)
    finally:
        if process.poll() is None:
            process.kill()
        output, _ = process.communicate(timeout=10)
    return process.returncode, output


def test_a_new_broker_account_id_stops_the_pc_and_the_restart_trades_the_new_account(pc, superuser):  # noqa: F811
    pc.terminal.open_account("X2", cash=1_000_000)
    upload_target("S", [(CODE, 1000, "10")])
    code, output = _run_until_switched(
        pc, lambda: BrokerAccount.objects.filter(name="x1").update(account_id="X2")
    )
    assert code == EXIT_RESTART, output
    assert "broker account id X1 → X2" in output and "restart qmt_worker" in output, output
    assert len(pc.terminal.orders("X1")) == 1 and pc.terminal.orders("X2") == []
    code, output = pc.run("--once", "--timeout", "20", market=_fill_everywhere)
    assert code == 0 and "converged" in output, output
    assert len(pc.terminal.orders("X1")) == 1  # never again the old account
    assert pc.terminal.books["X2"].positions[CODE].volume == 1000
    assert Order.objects.count() == 1 + len(pc.terminal.orders("X2"))


def test_live_to_paper_on_the_server_stops_the_live_pc(pc, superuser):  # noqa: F811
    """Switched to paper (and trading turned on again) on the server: no further live order."""

    def switch():
        account = BrokerAccount.objects.get(name="x1")
        account_switch_to_paper(account=account, user=superuser)
        account_trading_set(account=account, enabled=True, user=superuser)

    upload_target("S", [(CODE, 1000, "10")])
    code, output = _run_until_switched(pc, switch)
    assert code == EXIT_RESTART, output
    assert "mode live → paper" in output, output
    assert len(pc.terminal.orders("X1")) == 1


def test_an_order_open_at_the_switch_is_followed_to_its_end_then_the_pc_exits(pc):  # noqa: F811
    """The switch arrives with an order open at the old broker: nothing new is sent; the open order is
    cancelled after its timeout through the old broker, recorded, reported to the server, then exit 6."""
    BrokerAccount.objects.filter(name="x1").update(order_timeout=timedelta(seconds=8))
    pc.terminal.open_account("X2", cash=1_000_000)
    upload_target("S", [(CODE, 1000, "10")])
    process = pc.start()
    deadline = time.monotonic() + 60
    try:
        while (
            time.monotonic() < deadline and not Order.objects.filter(broker_order_id__isnull=False).exists()
        ):
            time.sleep(0.05)
        BrokerAccount.objects.filter(name="x1").update(account_id="X2")
        output, _ = process.communicate(timeout=45)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    assert process.returncode == EXIT_RESTART, output
    (order,) = pc.terminal.orders("X1")
    assert order.order_status == OrderStatus.CANCELED and pc.terminal.orders("X2") == []
    assert Order.objects.count() == 1  # the switch came while it was open: no next round anywhere
    mirrored = Order.objects.get(key=order.order_remark)
    assert (mirrored.status, mirrored.broker_order_id) == (OrderStatus.CANCELED, order.order_id)
    assert "still open" not in output.splitlines()[-1], output
