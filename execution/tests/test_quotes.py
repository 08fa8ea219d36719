"""The quote provider chain: xtdata, Tencent over HTTP, admin prices, the paper-only target cost."""

import logging
import sys
import threading
import time
from datetime import date, timedelta
from decimal import Decimal as D
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from execution import quotes
from execution.models import BrokerAccount, ManualQuote
from execution.planner import Quote
from positions.models import Strategy, TargetLine, TargetSnapshot

# Recorded Tencent answers (GBK on the wire). Field 3 last, 4 previous close,
# 47/48 limit-up/limit-down; sh600000 is a full 87-field line as served.
SH600000 = (
    'v_sh600000="1~浦发银行~600000~10.50~10.42~10.43~352184~170000~182184~10.49~1200~10.48~800~10.47~500~'
    "10.46~300~10.45~900~10.50~100~10.51~600~10.52~700~10.53~200~10.54~400~~20250620150003~0.08~0.77~10.55~"
    "10.40~10.50/352184/369634567~352184~36963~0.12~6.20~~10.55~10.40~1.44~3082.11~3082.11~0.55~11.46~9.38~"
    "1.06~-2371~10.50~6.30~6.55~~~0.67~36963.4567~0.0000~0~ ~GP-A~5.21~1.94~3.14~8.20~6.74~11.20~7.10~1.58~"
    '2.39~-3.06~29353045000~29353045000~-58.17~12.10~0.60~1.77~10.47~10.53~10.46~11.77~~~~~";'
)
SZ000001 = (
    'v_sz000001="51~平安银行~000001~11.20~11.00~11.05~801234~400000~401234~11.19~2000~11.18~900~11.17~300~'
    "11.16~100~11.15~500~11.20~700~11.21~100~11.22~300~11.23~100~11.24~800~~20250620150003~0.20~1.82~11.30~"
    "10.98~11.20/801234/897382080~801234~89738~0.41~4.95~~11.30~10.98~2.91~2173.44~2173.45~0.52~12.10~9.90~"
    '1.31~5321~11.20~4.80~4.61~~~1.10~89738.2080~0.0000~0~ ~GP-A~8.12~2.03~5.20~~~~~~~";'
)
# A Beijing line cut short before the limit fields: limits come from the previous close.
BJ430047 = 'v_bj430047="62~诺思兰德~430047~12.60~12.00~12.10~5321~2600~2721~12.59~10~12.58~5~12.57~3~12.56~2~12.55~1~12.60~4~12.61~2~12.62~1~12.63~3~12.64~1~~20250620150003~0.60~5.00~12.70~12.05";'


def tencent_line(code: str, last: str, prev_close: str) -> str:
    """A well-formed Tencent line for `code` (a canonical code) without limit fields."""
    digits, exchange = code.split(".")
    fields = ["1", "名称", digits, last, prev_close] + [""] * 30
    return f'v_{exchange.lower()}{digits}="{"~".join(fields)}";'


class FakeXtdata:
    """Stands in for xtquant.xtdata: ticks and instrument details from dicts, calls counted."""

    def __init__(self, ticks=None, details=None):
        self.ticks = ticks or {}
        self.details = details or {}
        self.detail_calls: list[str] = []
        self.fail_ticks = False

    def get_full_tick(self, codes):
        if self.fail_ticks:
            raise RuntimeError("not connected to MiniQMT")
        return {code: self.ticks[code] for code in codes if code in self.ticks}

    def get_instrument_detail(self, code):
        self.detail_calls.append(code)
        return self.details.get(code)


class QuoteServer:
    """A local stand-in for qt.gtimg.cn: it fakes the network, serving recorded GBK answers on 127.0.0.1."""

    def __init__(self):
        self.paths: list[str] = []
        self.body = ""
        self.status = 200
        self.delay = 0.0
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.paths.append(self.path)
                if server.delay:
                    server.release.wait(server.delay)
                payload = server.respond(self.path).encode("gbk")
                try:
                    self.send_response(server.status)
                    self.send_header("Content-Type", "text/html; charset=GBK")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (timeout test)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def respond(self, path: str) -> str:
        if self.body:
            return self.body
        # Default: answer every requested code with a plain line.
        requested = path.split("q=", 1)[1].split(",")
        lines = []
        for name in requested:
            code = f"{name[2:]}.{name[:2].upper()}"
            lines.append(tencent_line(code, "10.00", "10.00"))
        return "\n".join(lines)

    def requested_codes(self) -> list[list[str]]:
        return [path.split("q=", 1)[1].split(",") for path in self.paths]


@pytest.fixture(autouse=True)
def no_real_xtquant(monkeypatch):
    """Never import the real xtquant in tests: its import makes a network version check."""
    monkeypatch.setitem(sys.modules, "xtquant", None)
    monkeypatch.delitem(sys.modules, "xtquant.xtdata", raising=False)
    monkeypatch.setattr(quotes, "_xtdata_unavailable", False)


@pytest.fixture
def quote_server(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    server = QuoteServer()
    server.thread.start()
    yield server
    server.release.set()
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def http_on(settings):
    settings.QUOTE_HTTP_ENABLED = True
    return settings


# --- xtdata -------------------------------------------------------------------


def test_xtdata_prices_with_broker_limits_tick_and_status():
    """Prices come from the tick; limits, tick and suspension from the instrument detail."""
    xt = FakeXtdata(
        ticks={
            "600000.SH": {"lastPrice": 10.5, "lastClose": 10.42},
            "600001.SH": {"lastPrice": 5.0, "lastClose": 5.0},
            "113050.SH": {"lastPrice": 120.123, "lastClose": 119.5},
        },
        details={
            "600000.SH": {
                "UpStopPrice": 11.46,
                "DownStopPrice": 9.38,
                "PriceTick": 0.01,
                "InstrumentStatus": 0,
            },
            "600001.SH": {"UpStopPrice": 5.5, "DownStopPrice": 4.5, "PriceTick": 0.01, "InstrumentStatus": 1},
            "113050.SH": {
                "UpStopPrice": 143.4,
                "DownStopPrice": 95.6,
                "PriceTick": 0.001,
                "InstrumentStatus": 0,
            },
        },
    )
    got = quotes.XtdataQuoteProvider(xt).get(["600000.SH", "600001.SH", "113050.SH"])

    assert got["600000.SH"] == Quote(
        code="600000.SH",
        last=D("10.50"),
        up_stop=D("11.46"),
        down_stop=D("9.38"),
        tick=D("0.01"),
        source="xtdata",
    )
    assert got["600001.SH"].suspended is True
    assert got["600000.SH"].suspended is False
    assert (got["113050.SH"].last, got["113050.SH"].tick) == (D("120.123"), D("0.001"))


def test_xtdata_without_a_trade_gives_no_quote():
    """lastPrice 0 or missing, or no tick at all: the code is left to the next source, never priced at 0."""
    xt = FakeXtdata(
        ticks={"600000.SH": {"lastPrice": 0, "lastClose": 10.0}, "000001.SZ": {"lastClose": 11.0}},
        details={"600000.SH": {"UpStopPrice": 11.0, "DownStopPrice": 9.0}},
    )
    assert quotes.XtdataQuoteProvider(xt).get(["600000.SH", "000001.SZ", "300750.SZ"]) == {}


def test_xtdata_computes_limits_from_prev_close_when_detail_has_none():
    """Without UpStopPrice/DownStopPrice the §4 table applies to lastClose (ChiNext ±20%)."""
    xt = FakeXtdata(ticks={"300750.SZ": {"lastPrice": 210.0, "lastClose": 200.0}}, details={})
    quote = quotes.XtdataQuoteProvider(xt).get(["300750.SZ"])["300750.SZ"]
    assert (quote.up_stop, quote.down_stop, quote.tick) == (D("240.00"), D("160.00"), None)


MONDAY = date(2026, 3, 2)  # a week of five trading days from here


@pytest.fixture
def trading_weeks(db):
    """Three weeks of calendar from MONDAY: weekdays open, weekends closed."""
    from execution.models import TradingDay

    for offset in range(-7, 21):
        day = MONDAY + timedelta(days=offset)
        TradingDay.objects.update_or_create(date=day, defaults={"is_open": day.weekday() < 5})


def xtdata_new_listing(code: str, *, listed_on, today, last=12.0, prev_close=10.0, **detail):
    """The xtdata quote of `code` on `today` when its detail gives no limits, only the listing date."""
    detail = {"OpenDate": listed_on, **detail}
    xt = FakeXtdata(ticks={code: {"lastPrice": last, "lastClose": prev_close}}, details={code: detail})
    return quotes.XtdataQuoteProvider(xt, today=lambda: today).get([code])[code]


@pytest.mark.parametrize(
    ("code", "listed_on", "today", "prev_close", "up", "down"),
    [
        # STAR, ChiNext and main board: no limit on the first five trading days ...
        ("688799.SH", "20260302", MONDAY, 10.0, None, None),
        ("301999.SZ", 20260302, MONDAY + timedelta(days=4), 10.0, None, None),  # Friday: session 5
        ("603999.SH", "20260302", MONDAY + timedelta(days=7), 10.0, "11.00", "9.00"),  # session 6
        ("688799.SH", "20260302", MONDAY + timedelta(days=8), 10.0, "12.00", "8.00"),
        # ... the weekend does not count as trading days.
        ("001999.SZ", "20260302", MONDAY + timedelta(days=6), 10.0, None, None),  # Sunday after session 5
        # Convertible bonds: +57.3% / −43.3% on their first day, ±20% after.
        ("113999.SH", "20260302", MONDAY, 100.0, "157.300", "56.700"),
        ("123999.SZ", "20260302", MONDAY + timedelta(days=1), 130.0, "156.000", "104.000"),
        # Listed years ago: the table.
        ("600000.SH", "19991110", MONDAY, 10.0, "11.00", "9.00"),
        # No usable listing date: the table, as before.
        ("688799.SH", "", MONDAY, 10.0, "12.00", "8.00"),
        ("688799.SH", 0, MONDAY, 10.0, "12.00", "8.00"),
        ("688799.SH", "junk", MONDAY, 10.0, "12.00", "8.00"),
        ("688799.SH", "20260310", MONDAY, 10.0, "12.00", "8.00"),  # "listed" in the future
    ],
)
def test_xtdata_fallback_limits_follow_the_listing_date(
    trading_weeks, code, listed_on, today, prev_close, up, down
):
    """The instrument detail's OpenDate decides new-listing and first-day-bond fallback limits."""
    quote = xtdata_new_listing(code, listed_on=listed_on, today=today, prev_close=prev_close)
    assert (quote.up_stop, quote.down_stop) == (D(up) if up else None, D(down) if down else None)


def test_xtdata_listing_session_unknown_when_the_calendar_has_a_gap(trading_weeks):
    """Without calendar rows for the days since listing the session is unknown: the table applies."""
    from execution.models import TradingDay

    TradingDay.objects.filter(date=MONDAY + timedelta(days=1)).delete()
    quote = xtdata_new_listing("688799.SH", listed_on="20260302", today=MONDAY + timedelta(days=2))
    assert (quote.up_stop, quote.down_stop) == (D("12.00"), D("8.00"))


def test_xtdata_broker_limits_win_over_the_listing_rules(trading_weeks):
    """A new listing whose detail carries limit prices keeps them."""
    quote = xtdata_new_listing(
        "688799.SH", listed_on="20260302", today=MONDAY, UpStopPrice=13.0, DownStopPrice=7.0
    )
    assert (quote.up_stop, quote.down_stop) == (D("13.00"), D("7.00"))


@pytest.mark.parametrize(
    ("code", "name", "up", "down"),
    [
        ("159999.SZ", "创业板200ETF", "1.200", "0.800"),
        ("510999.SH", "科创100ETF", "1.200", "0.800"),
        ("159997.SZ", "科创债ETF", "1.100", "0.900"),
        ("510300.SH", "沪深300ETF", "1.100", "0.900"),
    ],
)
def test_xtdata_instrument_name_tells_index_etfs(code, name, up, down):
    """An ETF named after ChiNext/STAR indices gets ±20% from the previous close (bond ETFs ±10%)."""
    xt = FakeXtdata(
        ticks={code: {"lastPrice": 1.05, "lastClose": 1.0}}, details={code: {"InstrumentName": name}}
    )
    quote = quotes.XtdataQuoteProvider(xt).get([code])[code]
    assert (quote.up_stop, quote.down_stop) == (D(up), D(down))


def test_xtdata_instrument_detail_cached_per_trading_day():
    """The detail is fetched once per code per day and again on the next day (limits change daily)."""
    day = [date(2025, 6, 20)]
    xt = FakeXtdata(
        ticks={"600000.SH": {"lastPrice": 10.5, "lastClose": 10.42}},
        details={"600000.SH": {"UpStopPrice": 11.46, "DownStopPrice": 9.38}},
    )
    provider = quotes.XtdataQuoteProvider(xt, today=lambda: day[0])

    provider.get(["600000.SH"])
    provider.get(["600000.SH"])
    assert xt.detail_calls == ["600000.SH"]

    day[0] += timedelta(days=3)
    xt.details["600000.SH"] = {"UpStopPrice": 11.55, "DownStopPrice": 9.45}
    assert provider.get(["600000.SH"])["600000.SH"].up_stop == D("11.55")
    assert xt.detail_calls == ["600000.SH", "600000.SH"]


def test_xtdata_failure_prices_nothing():
    """A disconnected xtdata answers nothing instead of raising."""
    xt = FakeXtdata(ticks={"600000.SH": {"lastPrice": 10.5}})
    xt.fail_ticks = True
    assert quotes.XtdataQuoteProvider(xt).get(["600000.SH"]) == {}


def test_xtdata_unavailable_logs_once(caplog):
    """Without a working xtquant the provider prices nothing and says so once per process."""
    provider = quotes.XtdataQuoteProvider()
    with caplog.at_level(logging.WARNING, logger="execution.quotes"):
        assert provider.get(["600000.SH"]) == {}
        assert provider.get(["600000.SH"]) == {}
    assert len([r for r in caplog.records if "xtdata quotes unavailable" in r.getMessage()]) == 1


# --- HTTP (Tencent) -------------------------------------------------------------


def test_http_parses_recorded_tencent_answer(quote_server, http_on):
    """Last, previous close and limits are read from fields 3, 4, 47, 48; codes map to sh/sz/bj."""
    quote_server.body = "\n".join([SH600000, SZ000001, BJ430047])
    provider = quotes.HttpQuoteProvider(base_url=quote_server.url, timeout=2)

    got = provider.get(["600000.SH", "000001.SZ", "430047.BJ"])

    assert quote_server.paths == ["/q=sh600000,sz000001,bj430047"]
    assert got["600000.SH"] == Quote(
        code="600000.SH", last=D("10.50"), up_stop=D("11.46"), down_stop=D("9.38"), source="http"
    )
    assert (got["000001.SZ"].last, got["000001.SZ"].up_stop, got["000001.SZ"].down_stop) == (
        D("11.20"),
        D("12.10"),
        D("9.90"),
    )
    # No limit fields in the answer: Beijing's ±30% from the previous close.
    assert (got["430047.BJ"].up_stop, got["430047.BJ"].down_stop) == (D("15.60"), D("8.40"))


def test_tencent_name_tells_index_etfs():
    """Tencent's name field (1) is used like xtdata's InstrumentName: 创业板 ETFs get ±20%."""
    line = tencent_line("159999.SZ", "1.050", "1.000").replace("名称", "创业板200ETF")
    quote = quotes.tencent_quotes_parse(line)["159999.SZ"]
    assert (quote.up_stop, quote.down_stop) == (D("1.200"), D("0.800"))


def test_http_batches_sixty_codes_per_request(quote_server, http_on):
    """61 codes take two requests (60 + 1) and all come back priced."""
    codes = [f"{600000 + i}.SH" for i in range(61)]
    got = quotes.HttpQuoteProvider(base_url=quote_server.url, timeout=2).get(codes)

    assert [len(batch) for batch in quote_server.requested_codes()] == [60, 1]
    assert sorted(got) == sorted(codes)


def test_http_timeout_returns_within_the_timeout(quote_server, http_on):
    """A service that does not answer costs about one timeout and yields nothing, not an exception."""
    quote_server.delay = 3.0
    provider = quotes.HttpQuoteProvider(base_url=quote_server.url, timeout=0.3)

    started = time.monotonic()
    got = provider.get([f"{600000 + i}.SH" for i in range(61)])

    assert got == {}
    assert time.monotonic() - started < 1.5
    assert len(quote_server.paths) == 1  # gave up instead of waiting again for the second batch


def test_http_server_error_yields_nothing(quote_server, http_on):
    quote_server.status = 502
    assert quotes.HttpQuoteProvider(base_url=quote_server.url, timeout=2).get(["600000.SH"]) == {}


def test_http_skips_malformed_lines(quote_server, http_on):
    """Unknown codes, truncated lines, mismatched codes, zero prices and junk are skipped; good lines kept."""
    quote_server.body = "\n".join(
        [
            'v_pv_none_match="1";',
            'v_sz000002="51~万科A~000002',  # cut off mid-line
            'v_sh600004="1~白云机场~600005~9.00~8.90~";',  # the body names another code
            'v_sh600006="1~东风汽车~600006~0.00~5.00~";',  # no trade yet: no price
            'v_sh600007="1~中国国贸~600007~abc~18.00~";',
            "<html>502 Bad Gateway</html>",
            SH600000,
        ]
    )
    got = quotes.HttpQuoteProvider(base_url=quote_server.url, timeout=2).get(
        ["600000.SH", "000002.SZ", "600004.SH", "600006.SH", "600007.SH"]
    )
    assert list(got) == ["600000.SH"]


def test_http_disabled_by_default_makes_no_request(quote_server, settings):
    """Without QUOTE_HTTP_ENABLED nothing leaves the machine."""
    if hasattr(settings, "QUOTE_HTTP_ENABLED"):
        del settings.QUOTE_HTTP_ENABLED
    assert quotes.HttpQuoteProvider(base_url=quote_server.url, timeout=2).get(["600000.SH"]) == {}
    assert quote_server.paths == []


# --- admin prices ---------------------------------------------------------------


@pytest.mark.django_db
def test_manual_quotes_with_entered_or_computed_limits():
    """Entered limits win; otherwise they are computed from the previous close; suspension is kept."""
    ManualQuote.objects.create(
        code="600000.SH", last_price=D("10.5"), up_stop=D("11.46"), down_stop=D("9.38"), suspended=True
    )
    ManualQuote.objects.create(code="688981.SH", last_price=D("50"), prev_close=D("48.00"))
    ManualQuote.objects.create(code="000001.SZ", last_price=D("11.2"))

    got = quotes.ManualQuoteProvider().get(["600000.SH", "688981.SH", "000001.SZ", "300750.SZ"])

    assert got["600000.SH"] == Quote(
        code="600000.SH",
        last=D("10.5"),
        up_stop=D("11.46"),
        down_stop=D("9.38"),
        suspended=True,
        source="admin",
    )
    assert (got["688981.SH"].up_stop, got["688981.SH"].down_stop) == (D("57.60"), D("38.40"))  # STAR ±20%
    assert (got["000001.SZ"].up_stop, got["000001.SZ"].down_stop) == (None, None)
    assert "300750.SZ" not in got


# --- target cost (paper only) -------------------------------------------------------


def _snapshot(strategy, lines, *, age_days):
    snapshot = TargetSnapshot.objects.create(strategy=strategy, content_hash=f"{strategy.pk}-{age_days}")
    TargetSnapshot.objects.filter(pk=snapshot.pk).update(created_at=timezone.now() - timedelta(days=age_days))
    for code, cost in lines:
        TargetLine.objects.create(snapshot=snapshot, code=code, jq_code=code, volume=100, cost=D(cost))
    return snapshot


@pytest.mark.django_db
def test_target_cost_uses_the_latest_snapshot_among_the_strategies():
    """The newest line for a code wins across the given strategies; other strategies and zero costs are ignored."""
    alpha, beta, other = (Strategy.objects.create(name=n) for n in ("alpha", "beta", "other"))
    _snapshot(alpha, [("600000.SH", "9.80"), ("000001.SZ", "11.00")], age_days=5)
    _snapshot(beta, [("600000.SH", "10.10")], age_days=1)
    _snapshot(alpha, [("600000.SH", "10.00"), ("300750.SZ", "0")], age_days=2)
    _snapshot(other, [("600000.SH", "99.00"), ("688981.SH", "50.00")], age_days=0)

    got = quotes.TargetCostQuoteProvider([alpha.pk, beta.pk]).get(
        ["600000.SH", "000001.SZ", "300750.SZ", "688981.SH"]
    )

    assert got == {
        "600000.SH": Quote(code="600000.SH", last=D("10.10"), source="target_cost"),
        "000001.SZ": Quote(code="000001.SZ", last=D("11.00"), source="target_cost"),
    }


# --- the chain ------------------------------------------------------------------------


class StaticProvider:
    def __init__(self, source, prices, *, fail=False):
        self.source = source
        self.prices = prices
        self.fail = fail
        self.asked: list[list[str]] = []

    def get(self, codes):
        self.asked.append(list(codes))
        if self.fail:
            raise RuntimeError("feed broke")
        return {c: Quote(code=c, last=D(p), source=self.source) for c, p in self.prices.items() if c in codes}


def test_chain_asks_each_source_only_for_what_is_still_missing():
    """The first source to price a code wins; later ones are asked only for the rest; a broken one is skipped."""
    first = StaticProvider("xtdata", {"600000.SH": "10.5"})
    broken = StaticProvider("http", {}, fail=True)
    second = StaticProvider("admin", {"600000.SH": "99", "000001.SZ": "11.2", "300750.SZ": "0"})
    third = StaticProvider("target_cost", {"300750.SZ": "200", "688981.SH": "50"})

    got = quotes.QuoteChain([first, broken, second, third]).get(
        ["600000.SH", "000001.SZ", "300750.SZ", "688981.SH", "430047.BJ"]
    )

    assert {code: (q.last, q.source) for code, q in got.items()} == {
        "600000.SH": (D("10.5"), "xtdata"),
        "000001.SZ": (D("11.2"), "admin"),
        "300750.SZ": (D("200"), "target_cost"),  # admin's 0 is no price
        "688981.SH": (D("50"), "target_cost"),
    }
    assert second.asked == [["000001.SZ", "300750.SZ", "688981.SH", "430047.BJ"]]
    assert third.asked == [["300750.SZ", "688981.SH", "430047.BJ"]]


@pytest.mark.django_db
def test_live_chain_never_prices_from_target_cost(settings):
    """Live accounts get xtdata, HTTP when enabled, admin — never the strategy's cost, even when asked to."""
    live = BrokerAccount.objects.create(name="l1", account_id="2", mode="live")
    settings.QUOTE_HTTP_ENABLED = False
    assert quotes.quote_chain_for(live, strategy_ids=[1, 2]).sources == ("xtdata", "worker", "admin")
    settings.QUOTE_HTTP_ENABLED = True
    assert quotes.quote_chain_for(live, strategy_ids=[1, 2]).sources == ("xtdata", "worker", "http", "admin")


@pytest.mark.django_db
def test_paper_chain_falls_back_to_admin_then_target_cost(settings):
    """A paper account prices from xtdata first, then admin prices, then the target's cost as a last resort."""
    settings.QUOTE_HTTP_ENABLED = False
    paper = BrokerAccount.objects.create(name="p1", account_id="1", mode="paper")
    strategy = Strategy.objects.create(name="alpha")
    _snapshot(strategy, [("600000.SH", "9.00"), ("000001.SZ", "10.00"), ("300750.SZ", "180.00")], age_days=1)
    ManualQuote.objects.create(code="000001.SZ", last_price=D("11.20"), prev_close=D("11.00"))
    xt = FakeXtdata(ticks={"600000.SH": {"lastPrice": 10.5, "lastClose": 10.42}})

    chain = quotes.quote_chain_for(paper, strategy_ids=[strategy.pk], xtdata_module=xt)
    got = chain.get(["600000.SH", "000001.SZ", "300750.SZ"])

    assert chain.sources == ("xtdata", "worker", "admin", "target_cost")
    assert {code: (q.last, q.source) for code, q in got.items()} == {
        "600000.SH": (D("10.50"), "xtdata"),
        "000001.SZ": (D("11.20"), "admin"),
        "300750.SZ": (D("180.00"), "target_cost"),
    }


@pytest.mark.django_db
def test_paper_chain_without_xtquant_still_prices(settings):
    """On a machine without xtquant the paper chain quietly skips xtdata."""
    settings.QUOTE_HTTP_ENABLED = False
    paper = BrokerAccount.objects.create(name="p1", account_id="1", mode="paper")
    ManualQuote.objects.create(code="600000.SH", last_price=D("10.5"))
    got = quotes.quote_chain_for(paper).get(["600000.SH"])
    assert got["600000.SH"].source == "admin"
