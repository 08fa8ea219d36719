"""`serve` runs a worker thread per enabled paper account."""

import time

import pytest

from execution.models import BrokerAccount, PaperPosition, WorkerLease
from execution.paper_workers import PaperWorkerPool
from execution.services.lease import LeaseHolder, lease_acquire
from execution.tests.conftest import upload_target

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_pool_converges_enabled_paper_accounts_and_stops(paper_account):
    upload_target("S", [("600000.SH", 1000, "10")])
    BrokerAccount.objects.create(name="off", account_id="X", mode="paper", enabled=False)
    lines = []
    pool = PaperWorkerPool(say=lines.append)
    assert pool.start() == ["p1"]
    try:
        assert wait_for(
            lambda: (
                dict(PaperPosition.objects.filter(account=paper_account).values_list("code", "volume"))
                == {"600000.SH": 500}
            )
        )
    finally:
        pool.stop(timeout=10)
    assert not WorkerLease.objects.exists()  # released on stop


def test_pool_skips_an_account_run_elsewhere(paper_account):
    from django.utils import timezone

    lease_acquire(account=paper_account, holder=LeaseHolder("tradingpc:1:abc"), now=timezone.now())
    lines = []
    pool = PaperWorkerPool(say=lines.append)
    assert pool.start() == []
    pool.stop()
    assert any("tradingpc:1:abc" in line for line in lines)


def _leased(name: str) -> bool:
    return WorkerLease.objects.filter(account__name=name).exists()


def test_pool_picks_up_new_and_re_enabled_accounts_and_drops_disabled_ones(paper_account):
    """While the pool runs, a new paper account gets a worker, a disabled or live one loses it, a re-enabled one gets it back."""
    pool = PaperWorkerPool(say=lambda line: None, poll_interval=0.2)
    assert pool.start() == ["p1"]
    try:
        added = BrokerAccount.objects.create(name="p2", account_id="P2", mode="paper", enabled=True)
        assert wait_for(lambda: _leased("p2"), timeout=5), "a new account got no worker"
        assert pool.running() == ["p1", "p2"]

        BrokerAccount.objects.filter(pk=added.pk).update(enabled=False)
        assert wait_for(lambda: not _leased("p2"), timeout=5), "a disabled account kept its worker"
        assert wait_for(lambda: pool.running() == ["p1"], timeout=5)

        BrokerAccount.objects.filter(pk=added.pk).update(enabled=True)
        assert wait_for(lambda: _leased("p2"), timeout=5), "a re-enabled account got no worker"

        BrokerAccount.objects.filter(pk=paper_account.pk).update(mode="live")
        assert wait_for(lambda: not _leased("p1"), timeout=5), "an account switched to live kept its paper worker"
        assert wait_for(lambda: pool.running() == ["p2"], timeout=5)
    finally:
        pool.stop(timeout=10)
    assert not WorkerLease.objects.exists()


def test_pool_starts_an_account_once_its_other_worker_lets_go(paper_account):
    """An account leased elsewhere is retried and started once that lease is released, and reported only once."""
    from django.utils import timezone

    from execution.services.lease import lease_release

    other = LeaseHolder("tradingpc:1:abc")
    lease_acquire(account=paper_account, holder=other, now=timezone.now())
    lines = []
    pool = PaperWorkerPool(say=lines.append, poll_interval=0.2)
    assert pool.start() == []
    try:
        time.sleep(1)
        assert sum("tradingpc:1:abc" in line for line in lines) == 1, lines
        lease_release(account=paper_account, holder=other)
        assert wait_for(lambda: pool.running() == ["p1"], timeout=5)
    finally:
        pool.stop(timeout=10)
