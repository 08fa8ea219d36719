"""TP/SL on a server without xtdata: it fires from the trading PC's reported quotes, and a held bond without
a fresh price during trading hours is recorded and notified (folded), never skipped silently."""

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.utils import timezone

from execution.models import BrokerAccount, ManualQuote, WorkerQuote
from qmtjq.models import Notification
from rotation.services import tp_sl_check
from rotation.tests.test_cooldown import DAY, A, B, at, rotation, take_profit_on_a, trading_days  # noqa: F401
from rotation.tests.test_selection_dates import account  # noqa: F401

pytestmark = pytest.mark.django_db


def _live_server_prices(rot, *, a_age: timedelta, b_age: timedelta | None):
    """A live account on a server: no admin prices, only what the trading PC reported (aged as given)."""
    take_profit_on_a(rot)
    BrokerAccount.objects.filter(pk=rot.account_id).update(mode=BrokerAccount.Mode.LIVE)
    rot.account.refresh_from_db()
    ManualQuote.objects.all().delete()
    now = timezone.now()
    WorkerQuote.objects.create(code=A, last_price=D("144.000"), quoted_at=now - a_age, received_at=now)
    if b_age is not None:
        WorkerQuote.objects.create(code=B, last_price=D("100.000"), quoted_at=now - b_age, received_at=now)


def test_take_profit_fires_from_worker_quotes(rotation):  # noqa: F811
    """A's take-profit fires from the PC's fresh quote alone (no xtdata, no HTTP, no admin price)."""
    _live_server_prices(rotation, a_age=timedelta(seconds=5), b_age=timedelta(seconds=5))
    triggers = tp_sl_check(now=at(DAY, 14))
    assert [(t["code"], t["kind"], t["price"]) for t in triggers] == [(A, "take_profit", D("144.000"))]
    assert not Notification.objects.filter(event="rotation_skipped_bond").exists()


def test_missing_price_is_notified_once_per_window(rotation):  # noqa: F811
    """B's quote is 10 min old: not checked, and said so once (folded, counted) instead of skipped silently."""
    _live_server_prices(rotation, a_age=timedelta(seconds=5), b_age=timedelta(minutes=10))
    tp_sl_check(now=at(DAY, 14))
    tp_sl_check(now=at(DAY, 14))
    notice = Notification.objects.get(event="rotation_skipped_bond")
    assert B in notice.title and A not in notice.title and notice.count == 2
    assert notice.body.startswith(f"{B}: ") and "10" in notice.body.splitlines()[0]


def test_no_notice_outside_sessions_or_in_dry_runs(rotation):  # noqa: F811
    """Outside trading hours prices do not move, and a dry run records nothing."""
    _live_server_prices(rotation, a_age=timedelta(minutes=10), b_age=None)
    tp_sl_check(now=at(DAY, 20))
    tp_sl_check(now=at(DAY, 14), dry_run=True)
    assert not Notification.objects.filter(event="rotation_skipped_bond").exists()
