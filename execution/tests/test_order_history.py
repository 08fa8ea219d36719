"""Order history at scale: cursor pages, bounded counts, constant query counts, and the history generator."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from execution import pagination
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
)

SAME_TIME = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)


@pytest.fixture
def user_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("viewer", password="pw-for-tests-only"))
    return client


@pytest.fixture
def account(db):
    return BrokerAccount.objects.create(name="p1", account_id="P1", mode=BrokerAccount.Mode.PAPER)


def make_orders(account, count: int, *, at=None, codes=("600000.SH",)) -> list[Order]:
    """`count` orders; with `at`, every one has exactly that created_at (one round's orders often do)."""
    orders = Order.objects.bulk_create(
        [
            Order(account=account, code=codes[i % len(codes)], side="buy", volume=100, limit_price=D("10"))
            for i in range(count)
        ]
    )
    if at is not None:
        Order.objects.filter(pk__in=[o.pk for o in orders]).update(created_at=at)
    return orders


def _tied_history(account) -> set[int]:
    ids = {o.pk for o in make_orders(account, 23, at=SAME_TIME)}
    ids |= {o.pk for o in make_orders(account, 9, at=SAME_TIME + timedelta(seconds=1))}
    ids |= {o.pk for o in make_orders(account, 11, at=SAME_TIME - timedelta(days=1))}
    return ids


def listed_ids(response) -> list[int]:
    return [int(pk) for pk in re.findall(r'data-order="(\d+)"', response.content.decode())]


def count_queries_on_orders(queries) -> list[str]:
    """COUNTs over execution_order that are not bounded by a LIMIT (they read every row)."""
    return [
        q["sql"]
        for q in queries
        if "COUNT(" in q["sql"].upper() and "execution_order" in q["sql"] and "LIMIT" not in q["sql"].upper()
    ]


# --- keyset pages ---


def test_cursor_pages_return_every_order_once_in_order_even_with_equal_timestamps(account):
    """Following next cursors visits every order exactly once, newest first, ties broken by id; previous goes back."""
    ids = _tied_history(account)
    queryset = Order.objects.filter(account=account)
    seen, pages, cursor = [], [], None
    while True:
        page = pagination.order_page_get(queryset=queryset, size=7, cursor=cursor)
        pages.append([o.pk for o in page.rows])
        seen += pages[-1]
        if not page.next_cursor:
            break
        cursor = pagination.cursor_decode(page.next_cursor)
        assert cursor.page == len(pages) + 1
    assert len(seen) == len(set(seen)) == len(ids) and set(seen) == ids
    expected = list(queryset.order_by("-created_at", "-id").values_list("pk", flat=True))
    assert seen == expected
    # Walking back from the last page gives the same pages in reverse.
    back = [pages[-1]]
    while page.previous_cursor:
        page = pagination.order_page_get(
            queryset=queryset, size=7, cursor=pagination.cursor_decode(page.previous_cursor)
        )
        back.append([o.pk for o in page.rows])
    assert back[::-1] == pages and page.number == 1


def test_new_orders_arriving_between_pages_do_not_repeat_rows(account, user_client):
    """A worker placing orders while someone pages never shows an order twice (OFFSET pages would)."""
    make_orders(account, 120)
    url = reverse("execution:order-list")
    monkey_limit = pagination.COUNT_LIMIT
    pagination.COUNT_LIMIT = 60  # a "huge" list: links carry cursors
    try:
        first = user_client.get(url)
        next_link = re.search(r'href="\?([^"]*cursor=[^"]*)" rel="next"', first.content.decode()).group(1)
        make_orders(account, 5)  # newer than everything shown
        second = user_client.get(f"{url}?{next_link.replace('&amp;', '&')}")
    finally:
        pagination.COUNT_LIMIT = monkey_limit
    assert not set(listed_ids(first)) & set(listed_ids(second))
    assert len(listed_ids(second)) == 50


def test_api_next_links_carry_a_cursor_and_visit_every_order_once(client, account, make_api_client):
    """GET /api/v1/orders: next/previous links use the cursor; every order once across pages, ties included."""
    _api_client, key = make_api_client("reader", rsa=False)
    ids = {o.pk for o in make_orders(account, 230, at=SAME_TIME)}
    body = client.get("/api/v1/orders", HTTP_X_API_KEY=key).json()
    assert body["count"] == 230 and body["count_exact"] is True and body["page"] == 1
    seen = [o["id"] for o in body["results"]]
    while body["next"]:
        assert "cursor=" in body["next"] and "page=" not in body["next"]
        body = client.get(body["next"], HTTP_X_API_KEY=key).json()
        seen += [o["id"] for o in body["results"]]
        assert body["previous"]
    assert body["page"] == 3 and len(seen) == len(set(seen)) == 230 and set(seen) == ids


@pytest.mark.parametrize(
    "query", ["cursor=n2.x.5", "cursor=q1.1.1", "cursor=n0.1.1", f"cursor=n1.1.{2**63}", "cursor=n2.1.1&page=2"]
)
def test_api_bad_cursor_is_400(client, account, make_api_client, query):
    _api_client, key = make_api_client("reader", rsa=False)
    response = client.get(f"/api/v1/orders?{query}", HTTP_X_API_KEY=key)
    assert response.status_code == 400 and response.json()["error"].startswith(("cursor", "page"))


def test_counts_stop_at_the_limit(client, account, make_api_client, monkeypatch):
    """Past COUNT_LIMIT rows the count is a lower bound, said so, instead of a COUNT(*) over the table."""
    monkeypatch.setattr(pagination, "COUNT_LIMIT", 150)
    _api_client, key = make_api_client("reader", rsa=False)
    make_orders(account, 160)
    body = client.get("/api/v1/orders", HTTP_X_API_KEY=key).json()
    assert body["count"] == 150 and body["count_exact"] is False and body["next"]


def test_api_deep_page_numbers_on_a_long_list_are_400_pointing_to_the_cursor(
    client, account, make_api_client, monkeypatch
):
    """On a list longer than COUNT_LIMIT, ?page= stops where OFFSET would read every skipped row:
    deeper pages are a 400 saying to follow the next links; pages inside the bound and short lists work."""
    monkeypatch.setattr(pagination, "COUNT_LIMIT", 150)
    _api_client, key = make_api_client("reader", rsa=False)
    make_orders(account, 260)
    assert client.get("/api/v1/orders?page=2", HTTP_X_API_KEY=key).status_code == 200  # rows 101-200
    deep = client.get("/api/v1/orders?page=3", HTTP_X_API_KEY=key)
    assert deep.status_code == 400
    assert deep.json()["error"].startswith("page:") and "next" in deep.json()["error"]
    body = client.get("/api/v1/orders?page=2", HTTP_X_API_KEY=key).json()
    while body["next"]:  # the cursor still reaches every order
        body = client.get(body["next"], HTTP_X_API_KEY=key).json()
    assert body["page"] == 3 and len(body["results"]) == 60


def test_api_page_past_the_end_of_a_short_list_is_empty_not_an_error(client, account, make_api_client):
    _api_client, key = make_api_client("reader", rsa=False)
    make_orders(account, 5)
    body = client.get("/api/v1/orders?page=40", HTTP_X_API_KEY=key).json()
    assert body["results"] == [] and body["count"] == 5


# --- query counts that do not grow with rows ---


def _queries(client, url) -> list[dict]:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return captured.captured_queries


CODES = tuple(f"{600000 + n:06d}.SH" for n in range(60))


def test_orders_page_queries_do_not_grow_with_rows_or_codes(account, user_client):
    """The orders page makes the same queries for 3 or 60 distinct codes on the page, none an unbounded COUNT."""
    url = reverse("execution:order-list")
    make_orders(account, 3, codes=CODES[:3])
    few = _queries(user_client, url)
    make_orders(account, 200, codes=CODES)
    many = _queries(user_client, url)
    assert len(many) == len(few)
    assert count_queries_on_orders(many) == []


def test_orders_page_code_prefix_is_an_index_range_not_like(account, user_client):
    """?code=600 filters by code >= '600' and < '601' (the (account, code) index), finding exactly the
    codes that start with it; LIKE is not indexed on SQLite and MariaDB read every order of the account."""
    make_orders(account, 4, codes=("600000.SH", "600999.SH", "601000.SH", "000600.SZ"))
    with CaptureQueriesContext(connection) as captured:
        page = user_client.get("/orders/", {"account": account.name, "code": "600"})
    assert page.status_code == 200
    shown = {order.code for order in Order.objects.filter(pk__in=listed_ids(page))}
    assert shown == {"600000.SH", "600999.SH"}
    on_orders = [q["sql"] for q in captured.captured_queries if "execution_order" in q["sql"]]
    assert on_orders and not [sql for sql in on_orders if " LIKE " in sql.upper()], on_orders


def test_admin_order_changelist_reads_no_whole_table(account, admin_client):
    """Order changelist: no exact COUNT(*), no SELECT DISTINCT (date_hierarchy, value filters), constant queries."""
    url = reverse("admin:execution_order_changelist")
    make_orders(account, 3, codes=CODES[:3])
    few = _queries(admin_client, url)
    make_orders(account, 150, codes=CODES)
    for query in ("", "?status__exact=0", "?q=6000", "?q=600001.SH"):
        many = _queries(admin_client, url + query)
        assert len(many) == len(few), query
        assert count_queries_on_orders(many) == [], query
        assert not [q for q in many if "DISTINCT" in q["sql"].upper()], query


def test_admin_round_changelist_counts_orders_only_for_the_rounds_shown(account, admin_client):
    """Round changelist: each round's order count is right, read per shown round (no join of every
    order of every round grouped before the LIMIT) and no exact COUNT(*) over the rounds."""
    rounds = [Round.objects.create(account=account, trigger="test", status="done") for _ in range(3)]
    for number, round_ in enumerate(rounds):
        Order.objects.filter(pk__in=[o.pk for o in make_orders(account, number + 1)]).update(round=round_)
    url = reverse("admin:execution_round_changelist")
    queries = _queries(admin_client, url)
    page = admin_client.get(url).content.decode()
    assert [int(n) for n in re.findall(r'<td class="field-orders_count">(\d+)</td>', page)] == [3, 2, 1]
    joined = [q["sql"] for q in queries if re.search(r'JOIN "?execution_order"? ', q["sql"])]
    assert joined == [], joined
    assert not [q for q in queries if "DISTINCT" in q["sql"].upper()]  # no date_hierarchy over every round
    # accounts prefetched, not joined (a join made MariaDB sort every round for the page)
    assert not [q["sql"] for q in queries if "execution_round" in q["sql"] and "JOIN" in q["sql"].upper()]
    unbounded = [
        q["sql"]
        for q in queries
        if "COUNT(" in q["sql"].upper() and "execution_round" in q["sql"] and "LIMIT" not in q["sql"].upper()
        and "execution_order" not in q["sql"]
    ]
    assert unbounded == [], unbounded


def test_admin_order_search_finds_codes_by_prefix_and_orders_by_key(account, admin_client):
    sh, sz = make_orders(account, 2, codes=("600000.SH", "000001.SZ"))
    url = reverse("admin:execution_order_changelist")
    page = admin_client.get(url, {"q": "6000"}).content.decode()
    assert f"/{sh.pk}/change/" in page and f"/{sz.pk}/change/" not in page
    page = admin_client.get(url, {"q": "000001.XSHE"}).content.decode()
    assert f"/{sz.pk}/change/" in page and f"/{sh.pk}/change/" not in page
    page = admin_client.get(url, {"q": sz.key}).content.decode()
    assert f"/{sz.pk}/change/" in page and f"/{sh.pk}/change/" not in page


def _holdings(account, codes) -> None:
    now = datetime.now(UTC)
    Holding.objects.bulk_create(
        [
            Holding(account=account, code=code, volume=100, can_use_volume=100, avg_cost=D("10"),
                    last_price=D("11"), market_value=D("1100"), updated_at=now)
            for code in codes
        ]
    )


def test_account_page_queries_do_not_grow_with_holdings_or_rounds(account, user_client):
    """The account page with 3 or 60 holdings (codes without names) and more rounds: same queries,
    compared cold (the slippage panel's cache cleared) and warm, where the panel costs less."""
    AccountState.objects.create(account=account, cash=D("1000"), total_asset=D("70000"), updated_at=SAME_TIME)
    url = reverse("execution:account-detail", args=[account.name])
    _holdings(account, CODES[:3])
    Round.objects.create(account=account, trigger="manual", status="converged")
    cache.clear()
    few_cold, few_warm = _queries(user_client, url), _queries(user_client, url)
    _holdings(account, CODES[3:])
    for _ in range(12):
        round_ = Round.objects.create(account=account, trigger="manual", status="converged")
        make_orders(account, 2)[0].__class__.objects.filter(round__isnull=True).update(round=round_)
    cache.clear()
    many_cold, many_warm = _queries(user_client, url), _queries(user_client, url)
    assert len(many_cold) == len(few_cold)
    assert len(many_warm) == len(few_warm) < len(few_cold)
    html = user_client.get(url).content.decode()
    assert html.count('class="holding"') == 60


# --- the generator ---


def test_generate_orders_writes_the_asked_rows(db):
    """Small N: exactly N orders, in rounds, with fills and events, spread over years, visible to the filters."""
    call_command(
        "generate_orders", "--account=gen-a", "--account=gen-b", orders=300, holdings=30, years=2, chunk=64
    )
    assert Order.objects.count() == 300
    assert 300 / 8 <= Round.objects.count() <= 300
    assert OrderEvent.objects.count() >= 2 * 300 and Fill.objects.count() > 150
    assert not Order.objects.filter(round__isnull=True).exists()
    assert set(Order.objects.values_list("account__name", flat=True)) == {"gen-a", "gen-b"}
    assert all(key.startswith("qg") and len(key) <= 24 for key in Order.objects.values_list("key", flat=True))
    first, last = Order.objects.order_by("created_at")[0].created_at, Order.objects.latest("created_at").created_at
    assert last - first > timedelta(days=365)
    assert Order.objects.exclude(status__in=[s for s in OrderStatus]).count() == 0
    filled = Order.objects.filter(status=OrderStatus.SUCCEEDED).first()
    assert sum(f.volume for f in filled.fills.all()) == filled.volume and filled.avg_fill_price == filled.limit_price
    chinese, errors = orders_filter(Order.objects.all(), {"strategy": "小市值轮动"})
    assert errors == {} and chinese.exists()  # the raw INSERT stores JSON the way the ORM does
    account = BrokerAccount.objects.get(name="gen-a")
    assert account.mode == "paper" and not account.trading_enabled and account.holdings.count() == 30
    assert AccountState.objects.get(account=account).total_asset > 0
    # A second run adds to the history without key or id clashes.
    call_command("generate_orders", "--account=gen-a", orders=40)
    assert Order.objects.count() == 340


def test_generate_orders_refuses_a_live_account_and_writes_nothing(db):
    BrokerAccount.objects.create(name="real", account_id="R1", mode=BrokerAccount.Mode.LIVE)
    with pytest.raises(CommandError, match="live"):
        call_command("generate_orders", "--account=paper-new", "--account=real", orders=10, holdings=5)
    assert not Order.objects.exists() and not Round.objects.exists() and not Holding.objects.exists()
    assert not BrokerAccount.objects.filter(name="paper-new").exists()


def test_open_orders_list_is_open_orders_newest_first_even_for_unknown_statuses(account):
    """The account page's open orders are exactly open_orders(): every status not final, known or not."""
    from execution import selectors

    statuses = (-5, -3, 0, 50, 51, 52, 53, 54, 55, 56, 57, 86, 255, -1, -2)
    for status, order in zip(statuses, make_orders(account, len(statuses)), strict=True):
        Order.objects.filter(pk=order.pk).update(status=status)
    expected = list(selectors.open_orders(account=account).order_by("-created_at", "-id"))
    listed = selectors.open_orders_list(account=account)
    assert [o.pk for o in listed] == [o.pk for o in expected]
    assert {o.status for o in listed} == {-5, -3, 0, 50, 51, 52, 55, 86, 255}
