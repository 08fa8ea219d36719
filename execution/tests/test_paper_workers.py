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
