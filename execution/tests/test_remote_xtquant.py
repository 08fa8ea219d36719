"""Remote mode over the genuine xttrader.py: the trading PC is a separate `qmt_worker --server URL` process
(own SQLite database) talking to the stand-in MiniQMT, which lives in the test process as a real MiniQMT
lives beside the worker (xt_stub/remote.py). The PC is killed at several steps and started again: the
broker never sees an order twice, nothing goes above target, and the server's mirror ends with exactly
the broker's orders."""

import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal as D
from pathlib import Path

import pytest
from django.test import override_settings

from execution.models import BrokerAccount, Fill, Order, OrderStatus
from execution.remote.credentials import worker_client_create
from execution.services.accounts import SubscriptionSpec, account_create
from execution.tests import xt_stub
from execution.tests.conftest import upload_target
from execution.tests.test_remote_worker import FEED_WAIT, _env, _long_polls_ended, pc_template  # noqa: F401
from execution.tests.xt_stub.remote import TerminalServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BASE_DIR = Path(__file__).resolve().parents[2]
USERDATA = r"D:\国金QMT交易端\userdata_mini"
OPEN = (48, 49, 50, 55)
KILLED = -signal.SIGKILL if hasattr(signal, "SIGKILL") else 1  # exit code of a killed PC (Windows: 1)


@pytest.fixture
def live_account(paper_account):
    """Live account 'x1' (MiniQMT account X1, trading on) following 'S' at 0.5, on the server."""
    account = account_create(
        name="x1",
        mode="live",
        account_id="X1",
        subscriptions=[SubscriptionSpec("S", "ratio", D("0.5"))],
        userdata_mini_path=USERDATA,
    )
    BrokerAccount.objects.filter(pk=account.pk).update(trading_enabled=True, enforce_trading_hours=False)
    return account


@pytest.fixture
def miniqmt(live_account):
    terminal = xt_stub.FakeMiniQmt(USERDATA)
    terminal.open_account("X1", cash=1_000_000)
    server = TerminalServer(terminal)
    yield terminal, server
    server.close()
    terminal.shutdown()


class LivePC:
    """The trading PC: its database, the server's URL and key, the stand-in MiniQMT's address."""

    def __init__(self, db: Path, server: str, key: str, terminal, terminal_server):
        self.db, self.server, self.key = db, server, key
        self.terminal, self.terminal_server = terminal, terminal_server

    def start(self, *args: str, die_at: str = "") -> subprocess.Popen:
        command = [sys.executable, "-m", "execution.tests.xt_stub.remote", "qmt_worker", "--account", "x1"]
        env = _env(
            self.db,
            QMTJQ_SERVER_URL=self.server,
            QMTJQ_WORKER_API_KEY=self.key,
            XT_STUB_TERMINAL=self.terminal_server.address,
            XT_STUB_DIE_AT=die_at,
            XT_STUB_PRICES="600000.SH=10.00",
        )
        return subprocess.Popen(
            [*command, "--interval", "0.2", *args],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def run(
        self,
        *args: str,
        die_at: str = "",
        until=None,
        kill_on_order: bool = False,
        timeout: float = 25,
        market=None,
    ):
        """Run the PC while the stand-in market fills open orders (or `market(terminal)` steers it); kill it
        once `until()` holds, or (with kill_on_order) as soon as the broker accepted its first order.
        Returns (exit code, output)."""
        process = self.start(*args, die_at=die_at)
        if kill_on_order:
            self.terminal_server.on_order = lambda order: process.kill()
        deadline = time.monotonic() + timeout
        try:
            while process.poll() is None and time.monotonic() < deadline:
                (market or fill_open_orders)(self.terminal)
                if until is not None and until():
                    process.kill()
                    break
                time.sleep(0.1)
        finally:
            if process.poll() is None:
                process.kill()
            output, _ = process.communicate(timeout=10)
        return process.returncode, output


def fill_open_orders(terminal) -> None:
    for order in terminal.orders("X1"):
        if order.order_status in OPEN:
            terminal.fill(order.order_id)


@pytest.fixture
def pc(live_server, miniqmt, pc_template, tmp_path):  # noqa: F811
    db = tmp_path / "pc.sqlite3"
    shutil.copy(pc_template, db)
    account = BrokerAccount.objects.get(name="x1")
    _client, key = worker_client_create(account=account)
    with override_settings(WORKER_FEED_WAIT_SECONDS=FEED_WAIT):
        yield LivePC(db, live_server.url, key, *miniqmt)
        _long_polls_ended()


def assert_once_at_target(pc, *, target: int = 500) -> None:
    """One order per remark at the broker, nothing above target, the server mirrors the broker's orders."""
    orders = pc.terminal.orders("X1")
    remarks = [o.order_remark for o in orders]
    assert len(remarks) == len(set(remarks)), remarks
    held = pc.terminal.books["X1"].positions["600000.SH"].volume
    assert held == target
    mirrored = {
        o.key: (o.broker_order_id, o.status, o.filled_volume)
        for o in Order.objects.filter(broker_order_id__isnull=False)
    }
    assert mirrored == {o.order_remark: (o.order_id, OrderStatus.SUCCEEDED, o.traded_volume) for o in orders}
    assert Fill.objects.count() == len(pc.terminal.books["X1"].trades)


def test_remote_pc_converges_through_the_genuine_xttrader(pc):
    upload_target("S", [("600000.SH", 1000, "10")])
    code, output = pc.run("--once", "--timeout", "20")
    assert code == 0 and "converged" in output and "still queued" not in output, output
    assert [(o.stock_code, o.order_volume) for o in pc.terminal.orders("X1")] == [("600000.SH", 500)], output
    assert_once_at_target(pc)


def assert_mirror_complete(pc) -> None:
    """Every order on the PC's ledger reached the server, with its final status: the queue was flushed."""
    with sqlite3.connect(pc.db) as db:
        local = dict(db.execute("select key, status from execution_order").fetchall())
        fills = db.execute("select count(*) from execution_fill").fetchone()[0]
    assert dict(Order.objects.values_list("key", "status")) == local
    assert Fill.objects.count() == fills


def restart_converges(pc, *, target: int = 500) -> None:
    code, output = pc.run("--once", "--timeout", "20")
    assert code == 0 and "converged" in output and "still queued" not in output, output
    assert_once_at_target(pc, target=target)
    assert_mirror_complete(pc)


def test_kill_after_storing_before_sending(pc):
    """Killed with the order stored on the PC, not sent: the restart sends one (a new key), never two."""
    upload_target("S", [("600000.SH", 1000, "10")])
    code, output = pc.run(die_at="before_send")
    assert code == KILLED, output
    assert pc.terminal.orders("X1") == []
    restart_converges(pc)
    assert len(pc.terminal.orders("X1")) == 1
    assert Order.objects.filter(status=OrderStatus.NOT_SENT).count() == 1


def test_kill_after_the_broker_accepted_before_the_answer(pc):
    """Killed once MiniQMT took the order, before the PC heard back: the restart links it by its remark."""
    upload_target("S", [("600000.SH", 1000, "10")])
    code, output = pc.run(kill_on_order=True)
    assert code == KILLED, output
    (accepted,) = pc.terminal.orders("X1")
    restart_converges(pc)
    assert [o.order_id for o in pc.terminal.orders("X1")] == [accepted.order_id]
    assert Order.objects.get().broker_order_id == accepted.order_id


def test_kill_before_the_report_went_out(pc):
    """Killed with the order placed (and filled) before the server heard of it: reported after restart."""
    upload_target("S", [("600000.SH", 1000, "10")])
    code, output = pc.run(die_at="before_report")
    assert code == KILLED, output
    assert len(pc.terminal.orders("X1")) == 1
    assert not Order.objects.filter(broker_order_id__isnull=False).exists()
    restart_converges(pc)
    assert len(pc.terminal.orders("X1")) == 1


def test_kill_after_the_server_stored_a_report_the_pc_never_marked_sent(pc):
    """Killed between the server's answer and the PC's bookkeeping: the report goes again, stored once."""
    upload_target("S", [("600000.SH", 1000, "10")])
    code, output = pc.run(die_at="after_report")
    assert code == KILLED, output
    assert Fill.objects.count() == 1
    restart_converges(pc)
    assert Order.objects.count() == 1 and Fill.objects.count() == 1


def test_killed_at_each_step_while_the_target_moves(pc):
    """New targets arrive between kills; each run dies at another step (order stored, order at the broker,
    trade done). Run to the end: one order per remark at the broker, at the last target, all mirrored."""

    def local_orders() -> int:
        with sqlite3.connect(pc.db) as db:
            return db.execute("select count(*) from execution_order").fetchone()[0]

    steps = (
        (1000, local_orders),
        (2000, lambda: len(pc.terminal.orders("X1"))),
        (3000, lambda: len(pc.terminal.books["X1"].trades)),
    )
    for volume, count in steps:
        upload_target("S", [("600000.SH", volume, "10")])
        before = count()
        code, output = pc.run(until=lambda: count() > before)  # noqa: B023 (called within this turn)
        assert code == KILLED, output
    restart_converges(pc, target=1500)
