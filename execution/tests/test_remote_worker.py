"""Remote mode end to end over real HTTP: a live server (the test database) and a trading PC that is a
separate `manage.py qmt_worker --server URL` process with its own SQLite database and the paper broker."""

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.test import override_settings
from django.urls import reverse

from execution.models import AccountState, Fill, Order, OrderStatus, Round, WorkerStatus
from execution.remote.credentials import worker_client_create
from execution.tests.conftest import upload_target

pytestmark = pytest.mark.django_db(transaction=True)

BASE_DIR = Path(__file__).resolve().parents[2]
FEED_WAIT = 2  # seconds a long-poll waits here (25 in production): a stopped PC's poll ends soon


@pytest.fixture(scope="session")
def pc_template(tmp_path_factory) -> Path:
    """A migrated, empty trading-PC database (copied for each test)."""
    path = tmp_path_factory.mktemp("pc") / "template.sqlite3"
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        cwd=BASE_DIR,
        env=_env(path),
        check=True,
        capture_output=True,
        timeout=300,
    )
    return path


def _env(db: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QMTJQ_", "DATABASE_URL", "DJANGO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="qmtjq.settings",
        DATABASE_URL=f"sqlite:///{db}",
        SECRET_KEY="pc-test-only",
        LOG_LEVEL="WARNING",
        NOTIFICATION_SEND_ASYNC="false",
        WORKER_FEED_WAIT_SECONDS=str(FEED_WAIT),
        **extra,
    )
    return env


class TradingPC:
    def __init__(self, db: Path, server: str, key: str):
        self.db, self.server, self.key = db, server, key

    def run(self, *args: str, server: str | None = None, timeout: float = 90) -> subprocess.CompletedProcess:
        command = [sys.executable, "manage.py", "qmt_worker", "--account", "p1", "--interval", "0.2", *args]
        env = _env(self.db, QMTJQ_SERVER_URL=server or self.server, QMTJQ_WORKER_API_KEY=self.key)
        return subprocess.run(command, cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=timeout)

    def query(self, sql: str, *params) -> list[tuple]:
        with sqlite3.connect(self.db) as db:
            return db.execute(sql, params).fetchall()


@pytest.fixture
def pc(live_server, paper_account, pc_template, tmp_path):
    db = tmp_path / "pc.sqlite3"
    shutil.copy(pc_template, db)
    _client, key = worker_client_create(account=paper_account)
    with override_settings(WORKER_FEED_WAIT_SECONDS=FEED_WAIT):
        yield TradingPC(db, live_server.url, key)
        _long_polls_ended()


def _long_polls_ended(timeout: float = FEED_WAIT + 3) -> None:
    """The server's waiting feed requests end before the test database goes away."""
    from execution.remote.longpoll import feed_watcher

    deadline = time.monotonic() + timeout
    while feed_watcher()._waiting and time.monotonic() < deadline:
        time.sleep(0.1)


def test_upload_to_fills_on_the_server_pages(pc, client, superuser):
    """An upload on the server reaches the PC, which trades it on its own ledger; the server shows the mirror."""
    upload_target("S", [("600000.SH", 1000, "10")])
    done = pc.run("--once")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "converged" in done.stdout and "still queued" not in done.stdout, done.stdout + done.stderr
    # The PC's own database is the ledger: its order key was stored there before sending.
    ((local_key, local_status),) = pc.query("select key, status from execution_order")
    assert local_status == OrderStatus.SUCCEEDED
    order = Order.objects.get(key=local_key)
    assert order.status == OrderStatus.SUCCEEDED and order.volume == 500 and order.filled_volume == 500
    assert order.round.uid == pc.query("select uid from execution_round order by id limit 1")[0][0]
    assert Fill.objects.get(order=order).volume == 500
    assert AccountState.objects.get(account__name="p1").cash < 1_000_000
    assert WorkerStatus.objects.get(account__name="p1").holder
    assert order.events.count() == pc.query("select count(*) from execution_orderevent")[0][0]
    # The round records the server's snapshot id (the PC keeps the server's ids).
    assert Round.objects.filter(uid=order.round.uid).first().targets == {"S": paper_account_snapshot("S")}
    client.force_login(superuser)
    page = client.get(reverse("execution:order-list"))
    assert page.status_code == 200 and "600000.SH" in page.content.decode()


def paper_account_snapshot(strategy: str) -> int:
    from positions.models import Strategy

    return Strategy.objects.get(name=strategy).current_snapshot_id


DEAD_SERVER = "http://127.0.0.1:9"  # discard port: nothing listens, connections are refused at once


def test_server_down_keeps_target_then_blocks_when_stale_and_flushes_after(pc):
    """Offline the PC trades its last pulled target and queues reports; stale, it blocks and sells nothing;
    back online, the queue reaches the server in order."""
    upload_target("S", [("600000.SH", 1000, "10")])
    assert pc.run("--dry-run").returncode == 0  # pulls the target into the PC's database, sends nothing
    offline = pc.run("--once", server=DEAD_SERVER)
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert "server unreachable" in offline.stdout and "still queued" in offline.stdout
    assert pc.query("select status, volume from execution_order") == [(OrderStatus.SUCCEEDED, 500)]
    assert not Order.objects.exists()
    # Days pass without the server: the last target is stale and the account blocks (never sells).
    pc.query("update positions_strategy set confirmed_at = '2000-01-01 00:00:00'")
    pc.query("update execution_paperposition set volume = volume + 300")
    stale = pc.run("--once", server=DEAD_SERVER)
    assert stale.returncode == 3 and "stale" in stale.stdout, stale.stdout + stale.stderr
    assert pc.query("select count(*) from execution_order") == [(1,)]
    back = pc.run("--once")  # the server's fresh target again: the extra 300 are sold now
    assert "still queued" not in back.stdout, back.stdout + back.stderr
    assert pc.query("select side, volume from execution_order order by id") == [("buy", 500), ("sell", 300)]
    order = Order.objects.get(side="buy")
    assert (order.status, order.filled_volume) == (OrderStatus.SUCCEEDED, 500) and order.fills.count() == 1
    assert Round.objects.filter(status=Round.Status.BLOCKED, message__contains="stale").exists()


def test_approval_flows_down(pc, superuser):
    """A large round waits on the PC; its approval on the server reaches the PC, which then places it."""
    from execution.models import BrokerAccount
    from execution.services.rounds import round_approve

    BrokerAccount.objects.filter(name="p1").update(approval_threshold="0.0001")
    upload_target("S", [("600000.SH", 1000, "10")])
    held = pc.run("--once")
    assert held.returncode == 3 and "hold" in held.stderr, held.stdout + held.stderr
    server_round = Round.objects.get(status=Round.Status.HELD)
    assert not Order.objects.exists()
    round_approve(round_=server_round, user=superuser)
    placed = pc.run("--once")
    assert placed.returncode == 0, placed.stdout + placed.stderr
    order = Order.objects.get()
    assert order.status == OrderStatus.SUCCEEDED and order.round.trigger == Round.Trigger.APPROVED
    assert pc.query(
        "select approved_at is not null from execution_round where uid = ?", server_round.uid
    ) == [(1,)]


def test_kill_and_restart_never_sends_twice(pc):
    """A PC killed while running and started again sends nothing twice: one order, one paper trade."""
    upload_target("S", [("600000.SH", 1000, "10")])
    command = [sys.executable, "manage.py", "qmt_worker", "--account", "p1", "--interval", "0.2"]
    env = _env(pc.db, QMTJQ_SERVER_URL=pc.server, QMTJQ_WORKER_API_KEY=pc.key)
    running = subprocess.Popen(
        command, cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not Order.objects.filter(status=OrderStatus.SUCCEEDED).exists():
            time.sleep(0.2)
    finally:
        running.kill()  # no clean shutdown: the lease stays, the last report may be half sent
        running.wait(timeout=10)
    again = pc.run("--once")
    assert again.returncode == 0, again.stdout + again.stderr
    assert pc.query("select count(*) from execution_order") == [(1,)]
    assert pc.query("select count(*) from execution_papertrade") == [(1,)]
    assert Order.objects.count() == 1 and Fill.objects.count() == 1


@pytest.mark.skipif(os.name == "nt", reason="SIGINT to a child process is POSIX here; Windows uses Ctrl+C")
def test_ctrl_c_stops_the_remote_worker_cleanly(pc):
    """Ctrl+C finishes the step, flushes the queue and exits 0, even with a long-poll in flight."""
    import signal

    upload_target("S", [("600000.SH", 1000, "10")])
    command = [sys.executable, "manage.py", "qmt_worker", "--account", "p1", "--interval", "0.2"]
    env = _env(pc.db, QMTJQ_SERVER_URL=pc.server, QMTJQ_WORKER_API_KEY=pc.key)
    running = subprocess.Popen(
        command, cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not pc.query("select count(*) from execution_fill")[0][0]:
            time.sleep(0.2)
        time.sleep(0.5)
        running.send_signal(signal.SIGINT)
        output, _ = running.communicate(timeout=30)
    finally:
        if running.poll() is None:
            running.kill()
    assert running.returncode == 0 and "worker stopped" in output, output
    assert "still queued" not in output
    assert Fill.objects.count() == 1 and Order.objects.get().status == OrderStatus.SUCCEEDED
