"""qmt_worker and create_account commands: arguments, exit codes, output."""

from decimal import Decimal as D
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from execution.models import BrokerAccount, Order, PaperPosition, Subscription
from execution.tests.conftest import set_price, upload_target


def run(*args):
    out, err = StringIO(), StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue() + err.getvalue()


@pytest.mark.django_db
def test_create_account_with_subscriptions():
    code, output = run(
        "create_account",
        "demo",
        "--mode",
        "paper",
        "--account-id",
        "D1",
        "--cash",
        "500000",
        "--subscribe",
        "甲",
        "--subscribe",
        "乙:ratio:0.3",
        "--subscribe",
        "丙:capital:100000",
        "--no-trading-hours",
    )
    assert code == 0, output
    account = BrokerAccount.objects.get(name="demo")
    assert (
        account.paper_starting_cash == D("500000")
        and account.trading_enabled
        and not account.enforce_trading_hours
    )
    subs = {
        s.strategy.name: (s.scaling, s.ratio, s.capital)
        for s in Subscription.objects.select_related("strategy")
    }
    assert subs == {
        "甲": ("ratio", D(1), D(0)),
        "乙": ("ratio", D("0.3"), D(0)),
        "丙": ("capital", D(1), D("100000")),
    }


@pytest.mark.django_db
def test_live_account_starts_with_trading_off():
    run(
        "create_account",
        "real",
        "--mode",
        "live",
        "--account-id",
        "8881",
        "--userdata",
        r"C:\QMT\userdata_mini",
    )
    assert BrokerAccount.objects.get(name="real").trading_enabled is False


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mode", "live", "--account-id", "1", "--no-trading-hours"], "paper accounts only"),
        (["--mode", "live", "--account-id", "1", "--cash", "10"], "paper accounts only"),
        (["--mode", "paper", "--account-id", "1", "--cash", "abc"], "not a number"),
        (["--mode", "paper", "--account-id", "1", "--cash", "-5"], "positive"),
        (["--mode", "paper", "--account-id", "1", "--subscribe", "S:ratio:x"], "not a number"),
        (["--mode", "paper", "--account-id", "1", "--subscribe", "S:capital:0"], "capital"),
        (["--mode", "paper", "--account-id", "1", "--subscribe", "a/b"], "'/'"),
    ],
)
def test_create_account_errors_store_nothing(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_account", "ok", *args, stdout=StringIO())
    assert not BrokerAccount.objects.exists()


@pytest.mark.django_db
def test_create_account_rejects_bad_name_and_duplicates():
    with pytest.raises(CommandError, match="name"):
        call_command("create_account", "has space", "--mode", "paper", "--account-id", "1", stdout=StringIO())
    call_command("create_account", "dup", "--mode", "paper", "--account-id", "1", stdout=StringIO())
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_account", "dup", "--mode", "paper", "--account-id", "2", stdout=StringIO())


def test_qmt_worker_once_exit_codes(paper_account):
    upload_target("S", [("600000.SH", 1000, "10")])
    code, output = run("qmt_worker", "--account", "p1", "--once", "--interval", "0.05")
    assert code == 0, output
    assert "converged" in output
    assert dict(PaperPosition.objects.values_list("code", "volume")) == {"600000.SH": 500}
    paper_account.trading_enabled = False
    paper_account.save()
    upload_target("S", [("600000.SH", 2000, "10")])
    code, output = run("qmt_worker", "--account", "p1", "--once", "--interval", "0.05")
    assert code == 3 and "trading switch" in output


def test_qmt_worker_dry_run_prints_and_sends_nothing(paper_account):
    upload_target("S", [("600000.SH", 1000, "10")])
    set_price("600000.SH", "10.00")
    code, output = run("qmt_worker", "--account", "p1", "--dry-run")
    assert code == 0
    assert "would buy 600000.SH 500 @ 10.02" in output
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_qmt_worker_unknown_account():
    with pytest.raises(CommandError, match="no broker account named"):
        call_command("qmt_worker", "--account", "nope", "--once", stdout=StringIO())


def test_qmt_worker_refuses_when_another_holds_the_lease(paper_account):
    from django.utils import timezone

    from execution.services.lease import LeaseHolder, lease_acquire

    lease_acquire(account=paper_account, holder=LeaseHolder("pc2:42:x"), now=timezone.now())
    code, output = run("qmt_worker", "--account", "p1", "--once")
    assert code == 2 and "pc2:42:x" in output
