"""`qmt_worker` as a person runs it: exit codes with one readable line on stderr, lease times, dry runs.

The live account goes through the genuine xttrader.py over the MiniQMT stand-in (see xt_stub).
"""

import os
import re
import socket
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal as D
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from execution import worker as worker_module
from execution.models import BrokerAccount, Order, WorkerLease
from execution.services.accounts import SubscriptionSpec, account_create
from execution.services.lease import LeaseHolder, lease_acquire
from execution.services.process import process_alive
from execution.tests import xt_stub
from execution.tests.conftest import set_price, upload_target
from qmtjq.names import security_names_upsert

USERDATA = r"D:\国金QMT交易端\userdata_mini"

pytestmark = pytest.mark.django_db(transaction=True)  # the stand-in answers on its own threads


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    xt_stub.refuse_network(monkeypatch)


@pytest.fixture
def live_account(paper_account, monkeypatch):
    """Live account 'x1' (MiniQMT account X1, trading on, market open) following 'S' at 0.5."""
    # The start-up calendar refresh would import xtdata; not what these tests are about.
    monkeypatch.setattr("execution.calendar.calendar_refresh_from_xtdata", lambda **kw: 0)
    account = account_create(
        name="x1",
        mode="live",
        account_id="X1",
        subscriptions=[SubscriptionSpec("S", "ratio", D("0.5"))],
        userdata_mini_path=USERDATA,
    )
    BrokerAccount.objects.filter(pk=account.pk).update(trading_enabled=True)
    # A live account always keeps market hours; these tests run in them.
    monkeypatch.setattr("execution.calendar.can_place_orders", lambda now, **kw: (True, ""))
    monkeypatch.setattr("execution.calendar.can_cancel_orders", lambda now: True)
    return account


@pytest.fixture
def miniqmt(live_account):
    with xt_stub.genuine_xtquant():
        terminal = xt_stub.FakeMiniQmt(USERDATA)
        terminal.open_account("X1", cash=1_000_000)
        yield terminal
        terminal.shutdown()


def run(*args):
    """(exit code, stdout, stderr) of the command, as a shell would see them."""
    out, err = StringIO(), StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


def after_first_cycle(monkeypatch, action):
    """Run `action()` once, right after the worker's first cycle."""
    real = worker_module.Worker.cycle
    state = {"done": False}

    def cycle(self, **kwargs):
        result = real(self, **kwargs)
        if not state["done"]:
            state["done"] = True
            action(self)
        return result

    monkeypatch.setattr(worker_module.Worker, "cycle", cycle)


def quick_reconcile(monkeypatch):
    """Reconcile (a MiniQMT query) every 0.2 s instead of 15 s, so a dead link is noticed quickly."""
    from functools import partial

    from execution.management.commands import qmt_worker

    monkeypatch.setattr(
        qmt_worker,
        "WorkerConfig",
        partial(worker_module.WorkerConfig, reconcile_every=timedelta(seconds=0.2)),
    )


LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) ")


def one_line(err: str) -> str:
    """The command's own message on stderr: exactly one line (log records, also on stderr, aside)."""
    lines = [line for line in err.splitlines() if line.strip() and not LOG_LINE.match(line)]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# --- item 1: --once exits with a documented code and one line on stderr -------------------------


def test_once_with_miniqmt_refusing_connections_exits_5(miniqmt):
    """MiniQMT not running: exit 5 and one line saying so, no traceback, nothing sent."""
    miniqmt.connect_result = -1
    upload_target("S", [("600000.SH", 1000, "10")])
    code, _out, err = run("qmt_worker", "--account", "x1", "--once", "--interval", "0.05")
    assert code == 5
    assert one_line(err).startswith("MiniQMT unreachable:")
    assert "is MiniQMT running" in err
    assert miniqmt.orders("X1") == []


def test_once_with_miniqmt_dropping_us_mid_round_exits_5(miniqmt, monkeypatch):
    """MiniQMT restarts while our order is open: exit 5 with one line, the order stays for the next run."""
    upload_target("S", [("600000.SH", 1000, "10")])
    quick_reconcile(monkeypatch)
    after_first_cycle(monkeypatch, lambda worker: miniqmt.disconnect())
    code, _out, err = run("qmt_worker", "--account", "x1", "--once", "--interval", "0.05")
    assert code == 5
    assert one_line(err).startswith("MiniQMT unreachable:")
    assert len(miniqmt.orders("X1")) == 1


def test_once_with_miniqmt_hanging_exits_5_after_the_call_deadline(miniqmt, monkeypatch, settings):
    """MiniQMT stops answering: the bounded call gives up, exit 5 with one line naming the deadline."""
    settings.QMT_CALL_TIMEOUT_SECONDS = 0.3
    upload_target("S", [("600000.SH", 1000, "10")])
    quick_reconcile(monkeypatch)
    after_first_cycle(monkeypatch, lambda worker: miniqmt.stall())
    code, _out, err = run("qmt_worker", "--account", "x1", "--once", "--interval", "0.05")
    assert code == 5
    assert "within 0.3 s" in one_line(err)


def test_once_losing_the_lease_mid_round_exits_2(paper_account, monkeypatch):
    """Another worker takes the account while this one runs: exit 2, one line naming the new holder."""
    upload_target("S", [("600000.SH", 1000, "10"), ("000001.SZ", 1000, "12")])

    def take_over(worker):
        WorkerLease.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
        lease_acquire(account=paper_account, holder=LeaseHolder("pc2:42:other"), now=timezone.now())
        upload_target("S", [("600000.SH", 2000, "10")])  # something left to send

    after_first_cycle(monkeypatch, take_over)
    code, _out, err = run("qmt_worker", "--account", "p1", "--once", "--interval", "0.05")
    assert code == 2
    line = one_line(err)
    assert "lease of account p1" in line and "now held by pc2:42:other" in line


def test_once_blocked_and_timeout_are_one_line_on_stderr(paper_account):
    """Exit 3 (trading off) and exit 4 (orders still open) each end with one line on stderr."""
    paper_account.trading_enabled = False
    paper_account.save()
    upload_target("S", [("600000.SH", 1000, "10")])
    code, _out, err = run("qmt_worker", "--account", "p1", "--once", "--interval", "0.05")
    assert code == 3 and "trading switch" in one_line(err)


def test_real_process_exits_2_with_one_line_and_no_traceback(tmp_path):
    """The process itself, as a script sees it: exit status 2 and one stderr line when the account is taken."""
    env = {
        "PATH": "/usr/bin:/bin",
        "SECRET_KEY": "x",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "LANGUAGE_CODE": "en",
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v", "0"], env=env, check=True, capture_output=True)
    subprocess.run(
        [*manage, "create_account", "p9", "--mode", "paper", "--account-id", "P9"],
        env=env,
        check=True,
        capture_output=True,
    )
    take = (
        "from django.utils import timezone; from execution.models import BrokerAccount; "
        "from execution.services.lease import LeaseHolder, lease_acquire; "
        "lease_acquire(account=BrokerAccount.objects.get(name='p9'), holder=LeaseHolder('pc2:42:x'), "
        "now=timezone.now())"
    )
    subprocess.run([*manage, "shell", "-c", take], env=env, check=True, capture_output=True)
    done = subprocess.run(
        [*manage, "qmt_worker", "--account", "p9", "--once"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "pc2:42:x" in one_line(done.stderr)


# --- item 3: a crashed worker's lease on this host is taken over at once ------------------------


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_restart_after_a_crash_takes_over_at_once_and_says_so(paper_account):
    """The lease of a dead process of this host is taken at once; the message gives Shanghai time."""
    crashed = f"{socket.gethostname()}:{dead_pid()}:deadbeef"
    lease_acquire(account=paper_account, holder=LeaseHolder(crashed), now=timezone.now())
    upload_target("S", [("600000.SH", 1000, "10")])
    code, out, err = run("qmt_worker", "--account", "p1", "--once", "--interval", "0.05")
    assert code == 0, err
    assert f"took over the lease from {crashed}" in out
    assert "its process no longer exists" in out
    assert "+08:00" in out
    lease_row_gone = not WorkerLease.objects.exists()
    assert lease_row_gone  # released on exit


def test_a_live_process_of_this_host_is_not_taken_over(paper_account):
    """Only a process that is gone loses its lease early: a running one keeps it until it expires."""
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        holder = f"{socket.gethostname()}:{running.pid}:cafe"
        lease_acquire(account=paper_account, holder=LeaseHolder(holder), now=timezone.now())
        code, _out, err = run("qmt_worker", "--account", "p1", "--once")
        assert code == 2 and holder in one_line(err)
    finally:
        running.kill()
        running.wait()
    assert not process_alive(running.pid) and process_alive(os.getpid())


def test_refusal_gives_lease_times_in_shanghai_time(paper_account, settings):
    """A live holder elsewhere: exit 2, one line, times on the Shanghai clock whatever the server's zone."""
    lease_acquire(account=paper_account, holder=LeaseHolder("pc2:42:x"), now=timezone.now())
    code, _out, err = run("qmt_worker", "--account", "p1", "--once")
    assert code == 2
    line = one_line(err)
    stamps = re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+08:00", line)
    assert len(stamps) == 2, line
    expires = WorkerLease.objects.get().expires_at
    assert f"{timezone.localtime(expires):%H:%M:%S}" in line


# --- item 6: --dry-run says what it would do ----------------------------------------------------


def test_dry_run_lists_each_order_with_name_and_each_skip_with_its_reason(paper_account):
    security_names_upsert(names={"600000.SH": "浦发银行"}, source="test")
    upload_target("S", [("600000.SH", 1000, "10"), ("000001.SZ", 1000, "12"), ("113050.SH", 100, "120")])
    set_price("000001.SZ", "12.00", suspended=True)
    code, out, err = run("qmt_worker", "--account", "p1", "--dry-run")
    assert code == 0, err
    assert "dry run: would place 2 order(s)" in out
    assert re.search(r"buy\s+600000\.SH 浦发银行\s+500 @ 10\.02", out), out
    assert re.search(r"buy\s+113050\.SH\s+50 @ 120\.\d+", out), out
    assert re.search(r"skip 000001\.SZ: suspended", out), out
    assert not Order.objects.exists()


def test_dry_run_with_nothing_to_do_says_why(paper_account):
    upload_target("S", [])
    code, out, _err = run("qmt_worker", "--account", "p1", "--dry-run")
    assert code == 0
    assert "dry run: nothing to do: the account matches its target" in out


def test_dry_run_blocked_says_why_and_exits_3(paper_account):
    code, out, err = run("qmt_worker", "--account", "p1", "--dry-run")
    assert code == 3
    summary = next(line for line in out.splitlines() if line.startswith("dry run:"))
    assert summary == "dry run: nothing to do: blocked: strategy 'S' has not sent a target yet"
