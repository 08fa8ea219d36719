"""The account page's long tables, written in one pass, say what the template filters said."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from django.db import connection
from django.template import Context, Template
from django.utils import timezone

from execution import account_tables, selectors_pnl
from execution.models import Fill, Order, Round
from execution.selectors_pnl import HoldingPnl

# The rows as the template wrote them before (filters and tags per cell): the reference.
HOLDING_ROW = """{% load qmtjq_display %}{% for holding in holdings %}
<tr class="holding" data-code="{{ holding.code }}"><td>{% security holding.code %}</td><td class="num">{{ holding.volume|volume }}</td><td class="num">{{ holding.can_use_volume|volume }}</td><td class="num">{{ holding.avg_cost|price:holding.code }}</td><td class="num">{{ holding.last_price|price:holding.code }}</td><td class="num">{{ holding.market_value|money }}</td>
<td class="num pnl {{ holding.pnl|sign_class }}">{{ holding.pnl|signed_money }}</td><td class="num pnl {{ holding.pnl_ratio|sign_class }}">{{ holding.pnl_ratio|signed_pct }}</td><td class="num">{{ holding.weight|pct }}</td></tr>
{% endfor %}"""
DRIFT_ROW = """{% load i18n qmtjq_display %}{% for row in drift %}
<tr class="{% if row.delta %}drift{% endif %}{% if not row.managed %} unmanaged{% endif %}" data-code="{{ row.code }}">
<td>{% security row.code %}</td>
<td class="num">{% if row.managed %}{{ row.target|volume }}{% else %}<span class="badge">{% translate "unmanaged" %}</span>{% endif %}</td>
<td class="num">{{ row.actual|volume }}</td>
<td class="num">{% if row.reserved %}{{ row.reserved|volume }}{% endif %}</td>
<td class="num delta">{% if row.delta is None %}—{% else %}{% if row.delta > 0 %}+{% endif %}{{ row.delta|volume }}{% endif %}</td>
</tr>{% endfor %}"""
EQUITY_ROW = """{% load qmtjq_display %}{% for at, value in curve %}<tr><td class="time">{{ at|when }}</td><td class="num">{{ value|money }}</td></tr>{% endfor %}"""
NAMES = {"600000.SH": "浦发<b>银行</b>", "113050.SH": "", "510300.SH": "沪深300ETF"}


def _same(html: str) -> str:
    return re.sub(r">\s+<", "><", str(html)).strip()


def _reference(source: str, **context) -> str:
    return _same(Template(source).render(Context({"security_names": NAMES, **context})))


def test_holdings_rows_match_the_filters(db):
    """Names escaped, 3 decimals for bonds and ETFs, signs and classes, dashes for unknown cost."""
    holdings = [
        HoldingPnl(code="600000.SH", volume=1200, can_use_volume=1000, avg_cost=D("10.5"), last_price=D("9.87"),
                   market_value=D("11844"), pnl=D("-756"), pnl_ratio=D("-0.06"), weight=D("0.1184")),
        HoldingPnl(code="113050.SH", volume=10, can_use_volume=0, avg_cost=D("100.123"), last_price=D("110.5"),
                   market_value=D("1105"), pnl=D("103.77"), pnl_ratio=D("0.10364"), weight=D("0.011")),
        HoldingPnl(code="510300.SH", volume=0, can_use_volume=0, avg_cost=None, last_price=None,
                   market_value=D("0"), pnl=None, pnl_ratio=None, weight=None),
    ]
    html = account_tables.holdings_rows(holdings, names=NAMES)
    assert _same(html) == _reference(HOLDING_ROW, holdings=holdings)
    assert "&lt;b&gt;" in html and "<b>" not in html


def test_drift_rows_match_the_filters(db):
    drift = [
        {"code": "600000.SH", "target": 1000, "actual": 700, "reserved": 0, "delta": 300, "managed": True},
        {"code": "113050.SH", "target": 0, "actual": 20, "reserved": 10, "delta": -10, "managed": True},
        {"code": "510300.SH", "target": None, "actual": 100, "reserved": 0, "delta": None, "managed": False},
        {"code": "000001.SZ", "target": 100, "actual": 100, "reserved": 0, "delta": 0, "managed": True},
    ]
    names = {**NAMES, "000001.SZ": ""}
    html = account_tables.drift_rows(drift, names=names)
    expected = _same(Template(DRIFT_ROW).render(Context({"security_names": names, "drift": drift})))
    assert _same(html) == expected


def test_equity_rows_match_the_filters(db):
    curve = [(datetime(2026, 1, 5, 7, 0, tzinfo=UTC), D("1234567.891")), (timezone.now(), D("0"))]
    assert _same(account_tables.equity_rows(curve)) == _reference(EQUITY_ROW, curve=curve)


def test_slippage_reads_the_rounds_without_one_parameter_per_round(paper_account):
    """Thousands of fills' rounds are read by a subquery, not `IN (%s, %s, …)` with one parameter each."""
    now = timezone.now()
    for index in range(25):
        round_ = Round.objects.create(account=paper_account, trigger="manual", status="converged", targets={})
        order = Order.objects.create(account=paper_account, round=round_, code="600000.SH", side="buy", volume=100,
                                     limit_price=D("10.20"), strategies=["S"])
        Fill.objects.create(account=paper_account, order=order, trade_id=f"t{index}", code="600000.SH", side="buy",
                            volume=100, price=D("10.10"), amount=D("1010"), traded_at=now)
    parameters = []

    def count(execute, sql, params, many, context):
        parameters.append(len(params or ()))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        (row,) = selectors_pnl.slippage(account=paper_account, now=now)
    assert row.fills == 25 and row.amount == D("25250")
    assert round(row.vs_limit_bps, 6) == D("-98.039216")  # (10.10 - 10.20) / 10.20, in bp
    assert max(parameters) < 10


def test_slippage_sums_in_sql_say_what_the_fills_say(paper_account):
    """Whole-yuan prices (SQLite keeps 10.00 as the integer 10: no integer division), two strategies
    on one order, an order without strategies and one with no limit price (0)."""
    now = timezone.now()
    fills = [  # (side, price, amount, limit, strategies)
        ("buy", D("10"), D("1000"), D("11"), ["S", "T"]),
        ("sell", D("9.5"), D("950"), D("9.7"), ["S"]),
        ("buy", D("3"), D("300"), D("0"), ["T"]),
        ("sell", D("20"), D("2000"), D("19"), []),
    ]
    for index, (side, price, amount, limit, strategies) in enumerate(fills):
        order = Order.objects.create(account=paper_account, code="600000.SH", side=side, volume=100,
                                     limit_price=limit, strategies=strategies)
        Fill.objects.create(account=paper_account, order=order, trade_id=f"s{index}", code="600000.SH", side=side,
                            volume=100, price=price, amount=amount, traded_at=now)
    rows = {row.strategy: row for row in selectors_pnl.slippage(account=paper_account, now=now)}

    def bps(*picked):
        weighted = sum((1 if s == "buy" else -1) * (p - lim) / lim * a for s, p, a, lim, _ in picked)
        return round(weighted / sum(a for _, _, a, _, _ in picked) * 10000, 6)

    assert set(rows) == {"S", "T", "—"}
    assert (rows["S"].fills, rows["S"].amount) == (2, D("1950"))
    assert round(rows["S"].vs_limit_bps, 6) == bps(fills[0], fills[1])
    assert (rows["T"].fills, rows["T"].amount) == (2, D("1300"))
    assert round(rows["T"].vs_limit_bps, 6) == bps(fills[0]) == D("-909.090909")
    assert round(rows["—"].vs_limit_bps, 6) == bps(fills[3]) == D("-526.315789")
    assert rows["—"].vs_cost_bps is None


def test_slippage_is_computed_once_per_set_of_fills_and_a_new_fill_shows_at_once(
    paper_account, django_assert_num_queries
):
    """A reload with the same fills costs one index-only query (the cached rows are reused); a new fill
    in the window changes the figures on the next view, and a fill from before the window does not."""
    now = timezone.now()
    order = Order.objects.create(account=paper_account, code="600000.SH", side="buy", volume=200,
                                 limit_price=D("10.20"), strategies=["S"])
    Fill.objects.create(account=paper_account, order=order, trade_id="c1", code="600000.SH", side="buy",
                        volume=100, price=D("10.10"), amount=D("1010"), traded_at=now)
    (first,) = selectors_pnl.slippage(account=paper_account, now=now)
    with django_assert_num_queries(1):
        assert selectors_pnl.slippage(account=paper_account, now=now + timedelta(seconds=5)) == [first]
    Fill.objects.create(account=paper_account, order=order, trade_id="c2", code="600000.SH", side="buy",
                        volume=100, price=D("10.20"), amount=D("1020"), traded_at=now)
    (second,) = selectors_pnl.slippage(account=paper_account, now=now)
    assert (first.fills, second.fills) == (1, 2) and second.amount == D("2030")
    old = now - timedelta(days=selectors_pnl.SLIPPAGE_DAYS + 2)
    Fill.objects.create(account=paper_account, order=order, trade_id="c0", code="600000.SH", side="buy",
                        volume=100, price=D("9"), amount=D("900"), traded_at=old)
    assert selectors_pnl.slippage(account=paper_account, now=now) == [second]
