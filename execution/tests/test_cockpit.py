"""The trader's cockpit: status rows, the held-round banner and its approval, the global pause, P&L."""

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from execution import selectors_pnl, selectors_status
from execution.models import AccountState, EquityPoint, Fill, Holding, Order, Round, WorkerLease
from execution.tests.conftest import upload_target
from qmtjq.models import SecurityName
from qmtjq.trading import trading_globally_enabled, trading_globally_off_reason, trading_pause_set

pytestmark = pytest.mark.django_db


@pytest.fixture
def user_client(client, django_user_model):
    """A logged-in user who is not staff."""
    client.force_login(django_user_model.objects.create_user("viewer", password="pw-for-tests-only"))
    return client


def _state(account, total, now):
    AccountState.objects.update_or_create(
        account=account, defaults={"cash": total, "total_asset": total, "updated_at": now}
    )


def _held(account, **fields):
    return Round.objects.create(
        account=account,
        trigger=Round.Trigger.TARGET,
        status=Round.Status.HELD,
        planned=[{"code": "600000.SH", "side": "buy", "volume": 1000, "limit_price": "10.02", "value": "10020.00",
                  "reason": "increase to target", "price_source": "manual"}],
        message="round trades 10020.00, 40.0% of total assets, above the approval threshold 30.0%",
        **fields,
    )


def test_status_row_says_lines_off_worker_down_and_day_pnl(paper_account):
    """A drifting account with no worker shows N lines off, the biggest line, 'down', and today's P&L."""
    now = timezone.now()
    upload_target("S", [("600000.SH", 1000, "10"), ("000001.SZ", 200, "12")])
    Holding.objects.create(account=paper_account, code="600000.SH", volume=100, can_use_volume=100,
                           last_price=D("10"), market_value=D("1000"), updated_at=now)
    EquityPoint.objects.create(account=paper_account, at=now - timedelta(days=1), cash=D(0),
                               market_value=D(0), total_asset=D("1000000"))
    _state(paper_account, D("1012345.67"), now)
    (status,) = selectors_status.account_statuses(now=now)
    assert status.drift.lines_off == 2
    assert status.drift.biggest_code == "600000.SH" and status.drift.biggest_delta == 400
    assert status.worker == "down" and status.level == "bad"
    assert status.day_pnl == D("12345.67")


def test_status_row_alive_worker_and_matching_target_is_ok(paper_account):
    """An account with a live lease, nothing to do and trading on is green with a word, not colour only."""
    now = timezone.now()
    paper_account.trading_enabled = True
    paper_account.save(update_fields=["trading_enabled"])
    paper_account.subscriptions.all().delete()
    WorkerLease.objects.create(account=paper_account, holder="pc:1:x", acquired_at=now, heartbeat_at=now,
                               expires_at=now + timedelta(seconds=30))
    (status,) = selectors_status.account_statuses(now=now)
    assert (status.level, status.worker) == ("ok", "alive")


def test_front_page_shows_status_row_and_held_banner_with_approve_for_staff(client, superuser, paper_account):
    """`/` shows one status row per account and a banner for a held round, with an approve button for staff."""
    round_ = _held(paper_account)
    client.force_login(superuser)
    html = client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'class="status-row level-' in html and 'data-account="p1"' in html
    assert f'class="banner held-banner" role="alert" data-round="{round_.pk}"' in html
    assert reverse("execution:round-approve", args=[round_.pk]) in html
    assert "10,020.00, 40.0% of total assets" in html
    zh = client.get("/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "等待批准" in zh and "本轮交易 10,020.00，占总资产 40.0%" in zh


def test_banner_on_account_and_rotation_pages(user_client, paper_account):
    """The held banner also shows on the account page; viewers without the permission get no button."""
    round_ = _held(paper_account)
    html = user_client.get(reverse("execution:account-detail", args=["p1"])).content.decode()
    assert f'data-round="{round_.pk}"' in html
    assert reverse("execution:round-approve", args=[round_.pk]) not in html


def test_approve_needs_confirmation_post_and_staff(client, user_client, superuser, paper_account):
    """GET shows a confirmation page; only a POST with confirm=yes by staff approves; others get 403."""
    round_ = _held(paper_account)
    url = reverse("execution:round-approve", args=[round_.pk])
    assert user_client.get(url).status_code == 403
    client.force_login(superuser)
    page = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200 and b"Yes, approve" in page.content and b"10,020.00" in page.content
    round_.refresh_from_db()
    assert round_.approved_at is None
    response = client.post(url, {"confirm": "yes", "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    round_.refresh_from_db()
    assert round_.approved_by == superuser and round_.approved_at is not None
    assert client.post(url, {"confirm": "yes", "next": "https://evil.example/"})["Location"] == reverse(
        "execution:round-detail", args=[round_.pk]
    )


def test_approve_is_csrf_protected(superuser, paper_account):
    """A POST without the CSRF token is refused and approves nothing."""
    from django.test import Client

    round_ = _held(paper_account)
    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)
    assert client.post(reverse("execution:round-approve", args=[round_.pk]), {"confirm": "yes"}).status_code == 403
    round_.refresh_from_db()
    assert round_.approved_at is None


def test_global_pause_stops_trading_and_is_audited(superuser, settings):
    """The database pause turns trading off everywhere like TRADING_ENABLED, with an admin log entry."""
    assert trading_globally_enabled()
    assert trading_pause_set(paused=True, user=superuser, reason="market chaos")
    assert not trading_globally_enabled()
    assert trading_globally_off_reason() == "all trading paused in admin"
    assert LogEntry.objects.filter(change_message__contains="PAUSED").exists()
    assert not trading_pause_set(paused=True, user=superuser)
    trading_pause_set(paused=False, user=superuser)
    assert trading_globally_enabled()
    settings.TRADING_ENABLED = False
    assert not trading_globally_enabled()


def test_worker_gate_reads_the_global_pause(paper_account, superuser):
    """A worker refuses to send orders while all trading is paused."""
    from execution.worker import Worker as RealWorker

    paper_account.trading_enabled = True
    trading_pause_set(paused=True, user=superuser)
    gate = RealWorker._trading_gate(type("W", (), {"account": paper_account})(), timezone.now())
    assert gate == "all trading paused in admin"


def test_admin_pause_page_confirms_before_pausing(client, superuser):
    """The admin switch shows a confirmation page first; only the confirmed POST pauses."""
    client.force_login(superuser)
    url = reverse("admin:qmtjq_tradingpause_changelist")
    assert client.get(url).status_code == 200
    page = client.post(url, {"paused": "on", "reason": "test"})
    assert page.status_code == 200 and b"confirm" in page.content
    assert trading_globally_enabled()
    client.post(url, {"paused": "on", "reason": "test", "confirm": "yes"})
    assert not trading_globally_enabled()


def test_admin_index_is_the_control_room(client, superuser, paper_account):
    """The admin index lists pending approvals and workers down on top, internal tables grouped at the end."""
    _held(paper_account)
    client.force_login(superuser)
    html = client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'id="control-room"' in html and "round #" in html and "Workers down" in html
    assert html.index("control-room") < html.index("Internal tables")
    assert "<title>Control room | qmtjq</title>" in html


def test_equity_curve_drawdown_holdings_and_tracking(paper_account):
    """Drawdown from the recorded points, holding P&L and weight, and the account against the strategy."""
    now = timezone.now()
    for hours, value in [(5, "1000000"), (4, "1100000"), (3, "990000"), (1, "1045000")]:
        EquityPoint.objects.create(account=paper_account, at=now - timedelta(hours=hours), cash=D(0),
                                   market_value=D(0), total_asset=D(value))
    curve = selectors_pnl.equity_curve(account=paper_account)
    dd = selectors_pnl.drawdown(curve)
    assert dd.max_drawdown == D("0.1") and dd.peak == D("1100000")
    Holding.objects.create(account=paper_account, code="113050.SH", volume=100, can_use_volume=100,
                           avg_cost=D("100"), last_price=D("110"), market_value=D("11000"), updated_at=now)
    (row,) = selectors_pnl.holdings_pnl(account=paper_account, total_asset=D("110000"))
    assert (row.pnl, row.pnl_ratio, row.weight) == (D("1000"), D("0.1"), D("0.1"))
    upload_target("S", [("600000.SH", 100, "10")], total_value=200000)
    (tracking,) = selectors_pnl.tracking(account=paper_account, curve=curve)
    assert tracking.strategy == "S" and tracking.strategy_return == 0
    assert tracking.account_return is not None


def test_slippage_against_strategy_cost(paper_account):
    """A buy filled 1% above the strategy's cost shows +100 bp against the cost."""
    now = timezone.now()
    upload_target("S", [("600000.SH", 1000, "10")])
    snapshot_id = paper_account.subscriptions.get().strategy.current_snapshot_id
    round_ = Round.objects.create(account=paper_account, trigger="target_changed", status="placed",
                                  targets={"S": snapshot_id})
    order = Order.objects.create(account=paper_account, round=round_, code="600000.SH", side="buy", volume=100,
                                 limit_price=D("10.20"), strategies=["S"])
    Fill.objects.create(account=paper_account, order=order, trade_id="t1", code="600000.SH", side="buy",
                        volume=100, price=D("10.10"), amount=D("1010"), traded_at=now)
    (row,) = selectors_pnl.slippage(account=paper_account, now=now)
    assert row.strategy == "S" and row.vs_cost_bps == D("100")
    assert row.vs_limit_bps < 0


def test_account_page_has_chart_data_and_formatted_numbers(user_client, paper_account):
    """The account page embeds the equity data as json_script for the chart and a table fallback."""
    now = timezone.now()
    EquityPoint.objects.create(account=paper_account, at=now, cash=D(0), market_value=D(0),
                               total_asset=D("1234567.891"))
    _state(paper_account, D("1234567.89"), now)
    html = user_client.get(reverse("execution:account-detail", args=["p1"])).content.decode()
    assert 'id="equity-data" type="application/json"' in html and 'data-chart="equity-data"' in html
    assert "1,234,567.89" in html and "echarts.min.js" in html and "<script>" not in html


def test_names_come_from_uploads_and_show_next_to_codes(user_client, paper_account):
    """An upload's names fill the code→name table; the account page shows them next to codes."""
    from positions import services as positions_services
    from positions.validation import parse_upload

    client, _ = positions_services.api_client_create(name="named")
    positions_services.snapshot_ingest(
        upload=parse_upload({"strategy_name": "S", "positions": [{"code": "600000.SH", "volume": 1000, "cost": 10,
                                                                   "name": "浦发银行"}]}),
        client=client, auth_type="api_key", remote_addr=None,
    )
    assert SecurityName.objects.get(code="600000.SH").name == "浦发银行"
    html = user_client.get(reverse("execution:account-detail", args=["p1"])).content.decode()
    assert '<span class="code">600000.SH</span> <span class="secname">浦发银行</span>' in html


def test_error_pages_in_site_style(client, settings):
    """A missing page renders the site's 404 page (with the site stylesheet), not Django's plain one."""
    settings.DEBUG = False
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and b"qmtjq.css" in response.content and b"404" in response.content


def test_account_page_loads_chart_scripts_in_head_not_in_the_title(user_client, paper_account):
    """The chart scripts are real <script> elements: inside <title> a browser would read them as text."""
    import re

    html = user_client.get(f"/accounts/{paper_account.name}/").content.decode()
    title = re.search(r"<title>(.*?)</title>", html, re.S).group(1)
    assert "<script" not in title and paper_account.name in title
    head = html.split("</head>")[0]
    assert "echarts.min.js" in head and "js/charts.js" in head


def test_account_page_shows_the_rules_readably(user_client, paper_account):
    """Durations read as '3 天' and ratios as '30%', not '3 00:00:00' and '0.3000'."""
    from datetime import timedelta
    from decimal import Decimal

    paper_account.stale_after = timedelta(days=3)
    paper_account.order_timeout = timedelta(seconds=90)
    paper_account.approval_threshold = Decimal("0.5")
    paper_account.slippage = Decimal("0.002")
    paper_account.save()
    zh = user_client.get(f"/accounts/{paper_account.name}/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    zh = zh.split('class="card rules"')[1].split("</section>")[0]
    assert "3 天" in zh and "1 分钟 30 秒" in zh and "50%" in zh and "0.2%" in zh
    assert "0.5000" not in zh and "3 00:00:00" not in zh
    en = user_client.get(f"/accounts/{paper_account.name}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "3 days" in en


def test_account_list_formats_money(user_client, paper_account):
    """The accounts list shows money like every other page: thousands separators, 2 decimals."""
    from decimal import Decimal

    AccountState.objects.update_or_create(
        account=paper_account,
        defaults={"cash": Decimal("1000000"), "total_asset": Decimal("1023456.78"), "updated_at": timezone.now()},
    )
    html = user_client.get("/accounts/").content.decode()
    assert "1,023,456.78" in html and "1,000,000.00" in html
