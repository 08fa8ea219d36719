"""Pages: order history with filters, pagination and CSV; order, round and account pages; escaping; language."""

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.db import connection
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone

from execution import views
from execution.filters import orders_filter
from execution.models import (
    AccountState,
    BrokerAccount,
    Fill,
    Holding,
    Order,
    OrderEvent,
    OrderStatus,
    Round,
    WorkerLease,
)
from execution.tests.conftest import upload_target

CN_STRATEGY = "小市值轮动"
XSS = "<script>alert(1)</script>"


@pytest.fixture
def user_client(client, django_user_model):
    """A logged-in user who is not staff: the pages need a login, nothing more."""
    user = django_user_model.objects.create_user("viewer", password="pw-for-tests-only")
    client.force_login(user)
    return client


@pytest.fixture
def accounts(db):
    return (
        BrokerAccount.objects.create(name="p1", account_id="P1", mode=BrokerAccount.Mode.PAPER),
        BrokerAccount.objects.create(name="live1", account_id="L1", mode=BrokerAccount.Mode.LIVE),
    )


def make_order(account, *, code="600000.SH", side="buy", created_at=None, **fields) -> Order:
    fields.setdefault("volume", 100)
    fields.setdefault("limit_price", D("10.00"))
    order = Order.objects.create(account=account, code=code, side=side, **fields)
    if created_at is not None:
        Order.objects.filter(pk=order.pk).update(created_at=created_at)
        order.refresh_from_db()
    return order


def listed_ids(response) -> set[int]:
    return {int(pk) for pk in re.findall(r'data-order="(\d+)"', response.content.decode())}


def csv_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content)
    assert body.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


# --- access ---

PAGES = [
    ("execution:order-list", lambda o, r, a: ()),
    ("execution:order-export", lambda o, r, a: ()),
    ("execution:order-detail", lambda o, r, a: (o.pk,)),
    ("execution:round-list", lambda o, r, a: ()),
    ("execution:round-detail", lambda o, r, a: (r.pk,)),
    ("execution:account-list", lambda o, r, a: ()),
    ("execution:account-detail", lambda o, r, a: (a.name,)),
]


@pytest.fixture
def one_of_each(accounts):
    account = accounts[0]
    round_ = Round.objects.create(account=account, trigger=Round.Trigger.TARGET, status=Round.Status.PLACED)
    order = make_order(account, round=round_)
    return order, round_, account


@pytest.mark.parametrize(("name", "args"), PAGES)
def test_pages_send_anonymous_users_to_login(client, one_of_each, name, args):
    """Every page redirects an anonymous visitor to the login page."""
    url = reverse(name, args=args(*one_of_each))
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login")) and "next=" in response["Location"]


@pytest.mark.parametrize(("name", "args"), PAGES)
def test_pages_open_for_any_logged_in_user(user_client, one_of_each, name, args):
    """Every page answers 200 to a logged-in (non-staff) user."""
    assert user_client.get(reverse(name, args=args(*one_of_each))).status_code == 200


def test_unknown_objects_are_404(user_client, db):
    """A missing order, round or account is a 404, not a 500."""
    for url in ("/orders/999/", "/rounds/999/", "/accounts/nobody/"):
        assert user_client.get(url).status_code == 404


# --- order filters ---


@pytest.fixture
def order_mix(accounts):
    p1, live1 = accounts
    return {
        "p1_buy": make_order(p1, code="600000.SH", side="buy", strategies=["S", CN_STRATEGY]),
        "p1_sell": make_order(
            p1, code="000001.SZ", side="sell", strategies=["S2"], status=OrderStatus.SUCCEEDED
        ),
        "live_buy": make_order(live1, code="600036.SH", side="buy", strategies=[CN_STRATEGY]),
        "live_junk": make_order(
            live1, code="300750.SZ", side="sell", strategies=["S"], status=OrderStatus.JUNK
        ),
        "live_reported": make_order(
            live1, code="113050.SH", side="buy", strategies=['a"b'], status=OrderStatus.REPORTED
        ),
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, {"p1_buy", "p1_sell", "live_buy", "live_junk", "live_reported"}),
        ({"account": "p1"}, {"p1_buy", "p1_sell"}),
        ({"strategy": "S"}, {"p1_buy", "live_junk"}),  # not "S2": whole names only
        ({"strategy": CN_STRATEGY}, {"p1_buy", "live_buy"}),
        ({"strategy": 'a"b'}, {"live_reported"}),
        ({"status": "56"}, {"p1_sell"}),
        ({"status": "open"}, {"p1_buy", "live_buy", "live_reported"}),
        ({"status": "final"}, {"p1_sell", "live_junk"}),
        ({"side": "sell"}, {"p1_sell", "live_junk"}),
        ({"code": "600000.XSHG"}, {"p1_buy"}),
        ({"code": "600"}, {"p1_buy", "live_buy"}),
        ({"code": "sz000001"}, {"p1_sell"}),
        ({"account": "live1", "side": "buy", "strategy": CN_STRATEGY}, {"live_buy"}),
    ],
)
def test_order_filters_select_matching_rows(user_client, order_mix, params, expected):
    """Each filter of the orders page keeps exactly the matching orders, on the page and in the helper."""
    response = user_client.get(reverse("execution:order-list"), params)
    assert response.status_code == 200
    assert listed_ids(response) == {order_mix[name].pk for name in expected}
    query = QueryDict(mutable=True)
    query.update(params)
    orders, errors = orders_filter(Order.objects.all(), query)
    assert errors == {}
    assert set(orders.values_list("pk", flat=True)) == {order_mix[name].pk for name in expected}


def test_chinese_strategy_names_are_stored_as_the_filter_expects(order_mix):
    """The strategy filter matches the text the database really holds for a non-ASCII name."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT strategies FROM execution_order WHERE id = %s", [order_mix["live_buy"].pk])
        stored = cursor.fetchone()[0]
    assert json.loads(stored) == [CN_STRATEGY]
    assert json.dumps(CN_STRATEGY) in stored or json.dumps(CN_STRATEGY, ensure_ascii=False) in stored


def test_date_range_uses_shanghai_dates(user_client, accounts):
    """date_from/date_to are Shanghai calendar dates, whatever the UTC date of the order is."""
    account = accounts[0]
    # 15:30 UTC is 23:30 Monday in Shanghai; 16:30 UTC is already Tuesday there.
    late_monday = make_order(account, created_at=datetime(2026, 3, 2, 15, 30, tzinfo=UTC))
    early_tuesday = make_order(account, created_at=datetime(2026, 3, 2, 16, 30, tzinfo=UTC))
    sunday = make_order(account, created_at=datetime(2026, 3, 1, 1, 0, tzinfo=UTC))
    url = reverse("execution:order-list")
    assert listed_ids(user_client.get(url, {"date_from": "2026-03-02", "date_to": "2026-03-02"})) == {
        late_monday.pk
    }
    assert listed_ids(user_client.get(url, {"date_from": "2026-03-03"})) == {early_tuesday.pk}
    assert listed_ids(user_client.get(url, {"date_to": "2026-03-01"})) == {sunday.pk}
    since = QueryDict("since=2026-03-02T16:00:00%2B00:00")
    orders, errors = orders_filter(Order.objects.all(), since)
    assert errors == {} and set(orders.values_list("pk", flat=True)) == {early_tuesday.pk}
    # An unencoded "+08:00" arrives as " 08:00"; it still means UTC+8.
    orders, errors = orders_filter(Order.objects.all(), QueryDict("since=2026-03-03T00:00:00+08:00"))
    assert errors == {} and set(orders.values_list("pk", flat=True)) == {early_tuesday.pk}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"account": "nobody"}, "account"),
        ({"status": "done"}, "status"),
        ({"status": "999"}, "status"),
        ({"side": "hold"}, "side"),
        ({"code": "ABC"}, "code"),
        ({"code": "00700"}, None),  # first digits are a prefix search, not an error
        ({"date_from": "2026-13-01"}, "date_from"),
        ({"date_to": "02/03/2026"}, "date_to"),
        ({"date_from": "2026-03-05", "date_to": "2026-03-01"}, "date_to"),
        ({"since": "yesterday"}, "since"),
    ],
)
def test_invalid_filters_explain_and_never_fail(user_client, accounts, params, field):
    """A bad filter value gives a message for its field: the helper returns it, the page shows it, CSV is a 400."""
    make_order(accounts[0])
    query = QueryDict(mutable=True)
    query.update(params)
    _orders, errors = orders_filter(Order.objects.all(), query)
    assert list(errors) == ([field] if field else [])
    page = user_client.get(reverse("execution:order-list"), params)
    assert page.status_code == 200
    export = user_client.get(reverse("execution:order-export"), params)
    if field:
        assert 'role="alert"' in page.content.decode() and listed_ids(page) == set()
        assert export.status_code == 400 and field in export.content.decode()
    else:
        assert export.status_code == 200


def test_pagination_keeps_the_filters(user_client, accounts):
    """50 orders per page; page links carry the filters along."""
    account = accounts[0]
    for _ in range(120):
        make_order(account, side="sell")
    make_order(account, side="buy")
    url = reverse("execution:order-list")
    first = user_client.get(url, {"side": "sell"})
    assert len(listed_ids(first)) == 50
    html = first.content.decode()
    assert "?side=sell&amp;page=2" in html and "?side=sell&amp;page=3" in html
    last = user_client.get(url, {"side": "sell", "page": "3"})
    assert len(listed_ids(last)) == 20
    pages = [listed_ids(user_client.get(url, {"side": "sell", "page": str(n)})) for n in (1, 2, 3)]
    assert len(set().union(*pages)) == 120
    assert user_client.get(url, {"page": "oops"}).status_code == 200  # bad page numbers show page 1


def test_order_list_columns_and_target_cost_flag(user_client, accounts):
    """A row shows its status label and volumes, links to its detail page, and flags target-cost prices."""
    order = make_order(
        accounts[0],
        price_source="target_cost",
        status=OrderStatus.PART_SUCC,
        filled_volume=40,
        avg_fill_price=D("9.98"),
        reason="to target",
    )
    html = user_client.get(reverse("execution:order-list"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "priced from target cost" in html
    assert "partly filled (55)" in html and "9.98<" in html and "to target" in html
    assert reverse("execution:order-detail", args=[order.pk]) in html


# --- CSV ---


def test_csv_export_streams_filtered_rows_with_bom_and_header(user_client, order_mix):
    """The CSV link exports exactly the filtered rows, UTF-8 with a BOM, header first, no pagination."""
    list_page = user_client.get(reverse("execution:order-list"), {"strategy": CN_STRATEGY})
    link = re.search(r'id="csv-export" href="([^"]+)"', list_page.content.decode()).group(1)
    response = user_client.get(link.replace("&amp;", "&"), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="orders-')
    header, *rows = csv_rows(response)
    assert header[:4] == ["Created at", "Account", "Code", "Side"]
    assert sorted((row[1], row[2], row[3]) for row in rows) == [
        ("live1", "600036.SH", "buy"),
        ("p1", "600000.SH", "buy"),
    ]
    strategies = header.index("Strategies")
    assert {row[strategies] for row in rows} == {f"S;{CN_STRATEGY}", CN_STRATEGY}


def test_csv_export_has_every_row_across_batches(user_client, accounts, monkeypatch):
    """Rows fetched in keyset batches come out once each, even when many share one timestamp."""
    monkeypatch.setattr(views, "EXPORT_BATCH", 7)
    same_time = timezone.now() - timedelta(hours=1)
    ids = {make_order(accounts[0], created_at=same_time).pk for _ in range(30)}
    ids |= {make_order(accounts[0]).pk for _ in range(5)}
    _header, *rows = csv_rows(user_client.get(reverse("execution:order-export")))
    keys = [row[13] for row in rows]
    assert len(keys) == len(set(keys)) == 35
    assert set(keys) == set(Order.objects.filter(pk__in=ids).values_list("key", flat=True))


def test_csv_cells_cannot_become_formulas(user_client, accounts):
    """A reason or strategy starting with '=' is exported as text, not as an Excel formula."""
    make_order(accounts[0], reason="=HYPERLINK(1)", strategies=["+evil"])
    _header, row = csv_rows(user_client.get(reverse("execution:order-export")))
    assert "'=HYPERLINK(1)" in row and "'+evil" in row


def test_csv_header_follows_the_language(user_client, accounts):
    """The CSV header is Chinese by default."""
    make_order(accounts[0], side="sell")
    header, row = csv_rows(user_client.get(reverse("execution:order-export")))
    assert "卖出" in row
    english = user_client.get(reverse("execution:order-export"), HTTP_ACCEPT_LANGUAGE="en")
    assert header != csv_rows(english)[0]


# --- escaping ---


def test_user_text_is_escaped_everywhere(user_client, accounts):
    """A strategy name, reason, message or skip detail containing <script> is shown as text on every page."""
    account = accounts[0]
    round_ = Round.objects.create(
        account=account,
        trigger=Round.Trigger.TARGET,
        status=Round.Status.PLACED,
        targets={XSS: 1},
        skips=[{"code": "600000.SH", "reason": "cash", "detail": XSS, "volume": 100}],
        planned=[
            {
                "code": "600000.SH",
                "side": "buy",
                "volume": 100,
                "limit_price": "10",
                "price_source": "admin",
                "reason": XSS,
                "value": "1000",
            }
        ],
        message=XSS,
    )
    order = make_order(account, round=round_, strategies=[XSS], reason=XSS, message=XSS)
    OrderEvent.objects.create(order=order, status=OrderStatus.JUNK, message=XSS)
    urls = [
        reverse("execution:order-list"),
        reverse("execution:order-detail", args=[order.pk]),
        reverse("execution:round-list"),
        reverse("execution:round-detail", args=[round_.pk]),
        reverse("execution:account-detail", args=[account.name]),
    ]
    for url in urls:
        html = user_client.get(url).content.decode()
        assert "<script>" not in html, url
        assert "&lt;script&gt;" in html, url
    # The filter value echoed back into the form is escaped too, and still finds the order.
    filtered = user_client.get(reverse("execution:order-list"), {"strategy": XSS})
    assert "<script>" not in filtered.content.decode() and listed_ids(filtered) == {order.pk}


# --- order, round and account pages ---


def test_order_detail_shows_fills_history_and_round(user_client, accounts):
    """The order page lists its fills and status history and links to its round."""
    account = accounts[0]
    round_ = Round.objects.create(account=account, trigger=Round.Trigger.DRIFT, status=Round.Status.PLACED)
    order = make_order(account, round=round_, status=OrderStatus.SUCCEEDED, filled_volume=100)
    OrderEvent.objects.create(order=order, status=OrderStatus.REPORTED, message="accepted by broker")
    OrderEvent.objects.create(order=order, status=OrderStatus.SUCCEEDED, filled_volume=100)
    Fill.objects.create(
        account=account,
        order=order,
        trade_id="T-778899",
        code=order.code,
        side="buy",
        volume=100,
        price=D("9.99"),
        amount=D("999.00"),
        fee=D("5.00"),
        traded_at=timezone.now(),
    )
    html = user_client.get(
        reverse("execution:order-detail", args=[order.pk]), HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert "T-778899" in html and "999.00" in html
    assert "accepted by broker" in html and "reported (50)" in html and "filled (56)" in html
    assert reverse("execution:round-detail", args=[round_.pk]) in html
    assert order.key in html


def test_round_page_shows_diff_skip_reasons_plan_and_orders(user_client, accounts, superuser):
    """The round page shows targets, diff, a translated label per skip reason, the plan, its orders and approval."""
    account = accounts[0]
    round_ = Round.objects.create(
        account=account,
        trigger=Round.Trigger.APPROVED,
        status=Round.Status.PLACED,
        targets={"S": 41},
        diff=[{"code": "600000.SH", "target": 500, "actual": 200, "reserved": 0, "delta": 300}],
        skips=[
            {"code": "000001.SZ", "reason": "t_plus_1", "detail": "bought today", "volume": 100},
            {"code": "113050.SH", "reason": "limit_up", "detail": "", "volume": 10},
            {"code": "688001.SH", "reason": "brand_new_reason", "detail": "", "volume": 0},
        ],
        planned=[
            {
                "code": "600000.SH",
                "side": "buy",
                "volume": 300,
                "limit_price": "10.02",
                "price_source": "target_cost",
                "reason": "to target",
                "value": "3006.00",
            }
        ],
        approved_by=superuser,
        approved_at=timezone.now(),
    )
    order = make_order(account, round=round_, volume=300)
    html = user_client.get(
        reverse("execution:round-detail", args=[round_.pk]), HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert "#41" in html and "+300" in html
    assert "T+1: not sellable today" in html and "limit-up, cannot buy" in html
    assert "brand_new_reason" in html  # an unknown code is shown as is
    assert "3,006.00" in html and "priced from target cost" in html
    assert f'data-order="{order.pk}"' in html
    assert "Approved by root" in html


def test_round_list_filters_and_counts(user_client, accounts):
    """Rounds can be filtered by account and status and show their order and skip counts."""
    p1, live1 = accounts
    held = Round.objects.create(
        account=p1,
        trigger=Round.Trigger.TARGET,
        status=Round.Status.HELD,
        skips=[{"code": "600000.SH", "reason": "cash"}] * 3,
    )
    placed = Round.objects.create(account=live1, trigger=Round.Trigger.DRIFT, status=Round.Status.PLACED)
    make_order(live1, round=placed)
    make_order(live1, round=placed)
    url = reverse("execution:round-list")

    def listed(params):
        return {
            int(pk) for pk in re.findall(r'data-round="(\d+)"', user_client.get(url, params).content.decode())
        }

    assert listed({}) == {held.pk, placed.pk}
    assert listed({"account": "p1"}) == {held.pk}
    assert listed({"status": "placed"}) == {placed.pk}
    html = user_client.get(url, {"account": "live1"}).content.decode()
    assert re.search(r'<td class="num">2</td>\s*<td class="num">0</td>', html)
    html = user_client.get(url, {"account": "p1"}).content.decode()
    assert re.search(r'<td class="num">0</td>\s*<td class="num">3</td>', html)
    bad = user_client.get(url, {"status": "exploded"})
    assert bad.status_code == 200 and 'role="alert"' in bad.content.decode()


def test_account_page_shows_drift_holdings_cash_and_worker(user_client, paper_account):
    """The account page shows cash, holdings, and target vs actual per code, unmanaged codes marked."""
    upload_target("S", [("600000.SH", 1000, "10"), ("000001.SZ", 400, "12")])
    now = timezone.now()
    AccountState.objects.create(
        account=paper_account, cash=D("987654.32"), total_asset=D("990000.00"), updated_at=now
    )
    for code, volume in (("000001.SZ", 200), ("601318.SH", 300)):
        Holding.objects.create(
            account=paper_account,
            code=code,
            volume=volume,
            can_use_volume=volume,
            avg_cost=D("11.5"),
            last_price=D("12"),
            market_value=D(volume * 12),
            updated_at=now,
        )
    url = reverse("execution:account-detail", args=[paper_account.name])
    html = user_client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "987,654.32" in html and "990,000.00" in html
    rows = dict(re.findall(r'<tr class="([^"]*)" data-code="([^"]+)"', html)[i][::-1] for i in range(3))
    assert rows == {"000001.SZ": "", "600000.SH": "drift", "601318.SH": " unmanaged"}
    drift_600000 = re.search(r'data-code="600000.SH">(.*?)</tr>', html, re.S).group(1)
    assert ">500<" in drift_600000 and "+500" in drift_600000  # ratio 0.5 of 1000, nothing held
    assert 'class="mode-badge paper"' in html and "no worker running" in html
    WorkerLease.objects.create(
        account=paper_account,
        holder="trader-pc:4242:abcd",
        acquired_at=now,
        heartbeat_at=now,
        expires_at=now + timedelta(seconds=30),
    )
    html = user_client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "trader-pc:4242:abcd" in html and "no worker running" not in html


def test_account_list_marks_live_accounts(user_client, accounts):
    """The accounts list links every account and marks live ones with the LIVE badge."""
    html = user_client.get(reverse("execution:account-list"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'class="mode-badge live"' in html and 'class="mode-badge paper"' in html
    assert reverse("execution:account-detail", args=["live1"]) in html


def test_account_page_shows_open_orders_only(user_client, accounts):
    """Open orders on the account page exclude final ones."""
    account = accounts[0]
    open_order = make_order(account, status=OrderStatus.REPORTED)
    done = make_order(account, status=OrderStatus.SUCCEEDED)
    html = user_client.get(reverse("execution:account-detail", args=[account.name])).content.decode()
    assert f'data-order="{open_order.pk}"' in html and f'data-order="{done.pk}"' not in html


# --- language ---


def test_chinese_by_default_english_on_request(client, user_client, accounts):
    """Pages are Chinese by default and English with Accept-Language: en or the language cookie."""
    make_order(accounts[0], side="sell")
    url = reverse("execution:order-list")
    chinese = user_client.get(url).content.decode()
    assert '<html lang="zh-hans">' in chinese and ">卖出<" in chinese
    english = user_client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="en">' in english and ">sell<" in english
    user_client.cookies["django_language"] = "en"
    assert ">sell<" in user_client.get(url).content.decode()


def test_list_pages_do_not_query_per_row(user_client, accounts, django_assert_max_num_queries):
    """The orders, rounds and account pages cost the same few queries for 60 rows as for one."""
    for account in accounts:
        for _ in range(30):
            round_ = Round.objects.create(
                account=account, trigger=Round.Trigger.DRIFT, status=Round.Status.PLACED
            )
            make_order(account, round=round_, status=OrderStatus.REPORTED)
    # Account pages carry the status rows, P&L and tracking: a fixed ~12 queries per account, not per row.
    for url, most in (
        (reverse("execution:order-list"), 12),
        (reverse("execution:round-list"), 12),
        (reverse("execution:account-detail", args=["p1"]), 30),
        (reverse("execution:account-list"), 30),
    ):
        with django_assert_max_num_queries(most):
            assert user_client.get(url).status_code == 200
