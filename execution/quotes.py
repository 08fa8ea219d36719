"""Quotes from a chain of providers: xtdata → worker-reported → HTTP (Tencent) → admin prices → (paper only) target cost.

Each provider answers `get(codes) -> {code: Quote}` with only the codes it
could price and never raises: a feed that fails is logged and simply prices
nothing, so the next provider in the chain gets its turn. A quote never has a
last price ≤ 0 — no price is ever invented. When a source gives no limit
prices they are computed from the previous close by `limits` (DESIGN §4),
with the instrument's name (index ETFs) and, from xtdata, its listing date
(new listings, first-day bonds) when the source gives them.

The target's uploaded cost is a stand-in price for paper accounts only; the
chain builder never puts it in front of a live account.
"""

import logging
import re
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import date

import requests
from django.conf import settings
from django.utils import timezone

from positions.models import TargetLine

from . import limits
from .calendar import market_date
from .models import BrokerAccount, ManualQuote
from .planner import Quote
from .quote_fields import feed_name, feed_price, listing_from_open_date, with_limits

logger = logging.getLogger(__name__)

SOURCE_XTDATA = "xtdata"
SOURCE_HTTP = "http"
SOURCE_ADMIN = "admin"
SOURCE_TARGET_COST = "target_cost"

_CODE = re.compile(r"^(\d{6})\.(SH|SZ|BJ)$")


def _canonical(codes: Iterable[str]) -> list[str]:
    """Distinct canonical codes in request order; anything else cannot be priced by any feed."""
    return [code for code in dict.fromkeys(codes) if _CODE.match(code)]


# --- xtdata ------------------------------------------------------------------

_xtdata_lock = threading.Lock()
_xtdata_unavailable = False  # remembered per process: a failed import costs a 10 s network check


def _xtdata_load():
    """`xtquant.xtdata`, imported on first use, or None when it cannot work here (logged once)."""
    global _xtdata_unavailable
    loaded = sys.modules.get("xtquant.xtdata")
    if loaded is not None:
        return loaded
    with _xtdata_lock:
        if _xtdata_unavailable:
            return None
        if sys.platform != "win32":
            # xtquant's native parts are Windows .pyd files; importing it
            # elsewhere only pays for its network version check, then fails.
            logger.warning("xtdata quotes unavailable: xtquant only works on Windows")
            _xtdata_unavailable = True
            return None
        try:
            from xtquant import xtdata
        except Exception as exc:  # ImportError, DLL load errors, anything its import does
            logger.warning("xtdata quotes unavailable: cannot import xtquant.xtdata (%s)", exc)
            _xtdata_unavailable = True
            return None
        return xtdata


class XtdataQuoteProvider:
    """MiniQMT's own market data: `get_full_tick` for prices, `get_instrument_detail` for limits and status."""

    source = SOURCE_XTDATA

    def __init__(self, xtdata_module=None, *, today: Callable[[], date] | None = None):
        self._module = xtdata_module
        self._today = today or (lambda: market_date(timezone.now()))
        # Limits, tick and status change every trading day: cache per (day, code).
        self._details: dict[tuple[date, str], dict] = {}
        self._details_lock = threading.Lock()
        # Today's trading-day number of recent listings, also per (day, code): one calendar query a day.
        self._listings: dict[tuple[date, str], limits.Listing | None] = {}
        self._failing = False

    def _xtdata(self):
        return self._module if self._module is not None else _xtdata_load()

    def _detail(self, xtdata, code: str, day: date) -> dict | None:
        key = (day, code)
        with self._details_lock:
            if key in self._details:
                return self._details[key]
        try:
            detail = xtdata.get_instrument_detail(code)
        except Exception:
            logger.warning("xtdata.get_instrument_detail(%s) failed", code, exc_info=True)
            return None
        if not isinstance(detail, Mapping) or not detail:
            return None  # not cached: a failed or empty lookup is retried on the next round
        with self._details_lock:
            for stale in [k for k in self._details if k[0] != day]:
                del self._details[stale]
            self._details[key] = dict(detail)
        return self._details[key]

    def _listing(self, code: str, open_date: object, day: date) -> limits.Listing | None:
        key = (day, code)
        with self._details_lock:
            if key in self._listings:
                return self._listings[key]
        listing = listing_from_open_date(open_date, day)
        with self._details_lock:
            for stale in [k for k in self._listings if k[0] != day]:
                del self._listings[stale]
            self._listings[key] = listing
        return listing

    def get(self, codes: list[str]) -> dict[str, Quote]:
        codes = _canonical(codes)
        xtdata = self._xtdata()
        if not codes or xtdata is None:
            return {}
        try:
            ticks = xtdata.get_full_tick(codes) or {}
        except Exception:
            if not self._failing:
                logger.warning("xtdata.get_full_tick failed; trying the next quote source", exc_info=True)
            self._failing = True
            return {}
        if self._failing:
            logger.info("xtdata quotes are back")
            self._failing = False
        if not isinstance(ticks, Mapping):
            return {}
        day = self._today()
        quotes = {}
        for code in codes:
            tick = ticks.get(code)
            last = feed_price(tick.get("lastPrice")) if isinstance(tick, Mapping) else None
            if last is None:
                continue  # no trade, no price: never invent one
            detail = self._detail(xtdata, code, day) or {}
            prev_close = feed_price(tick.get("lastClose")) or feed_price(detail.get("PreClose"))
            price_tick = feed_price(detail.get("PriceTick"))
            up_stop, down_stop = with_limits(
                code,
                up_stop=feed_price(detail.get("UpStopPrice")),
                down_stop=feed_price(detail.get("DownStopPrice")),
                prev_close=prev_close,
                name=feed_name(detail.get("InstrumentName")),
                listing=self._listing(code, detail.get("OpenDate"), day),
                tick=price_tick,
            )
            status = detail.get("InstrumentStatus") or 0
            quotes[code] = Quote(
                code=code,
                last=last,
                up_stop=up_stop,
                down_stop=down_stop,
                tick=price_tick,
                # InstrumentStatus > 0: suspended / not trading today (DESIGN §4).
                suspended=isinstance(status, int | float) and status > 0,
                source=self.source,
            )
        return quotes


# --- HTTP (Tencent qt.gtimg.cn) -------------------------------------------------

TENCENT_URL = "http://qt.gtimg.cn"
TENCENT_BATCH = 60  # codes per request, as easyquotation's Tencent client sends them
# Field indices in `v_sh600000="1~浦发银行~600000~<last>~<prev close>~...";`, as parsed by
# shidenggui/easyquotation (easyquotation/tencent.py) and other public parsers:
# 1 name, 2 code digits, 3 last price, 4 previous close, 47 limit-up, 48 limit-down.
# No listing date: new listings get the ordinary fallback limits from this source.
T_NAME, T_DIGITS, T_LAST, T_PREV_CLOSE, T_UP_STOP, T_DOWN_STOP = 1, 2, 3, 4, 47, 48
_TENCENT_LINE = re.compile(r'v_(sh|sz|bj)(\d{6})="([^"]*)"')


def to_tencent(code: str) -> str:
    """600000.SH → sh600000, 000001.SZ → sz000001, 430047.BJ → bj430047."""
    digits, exchange = code.split(".")
    return f"{exchange.lower()}{digits}"


def tencent_quotes_parse(text: str, *, source: str = SOURCE_HTTP) -> dict[str, Quote]:
    """Quotes from a Tencent response body (already decoded); malformed lines are skipped."""
    quotes = {}
    for prefix, digits, body in _TENCENT_LINE.findall(text):
        fields = body.split("~")
        code = f"{digits}.{prefix.upper()}"
        if len(fields) <= T_PREV_CLOSE or fields[T_DIGITS] != digits:
            continue
        last = feed_price(fields[T_LAST])
        if last is None:
            continue
        stops = fields[T_UP_STOP : T_DOWN_STOP + 1] if len(fields) > T_DOWN_STOP else [None, None]
        up_stop, down_stop = with_limits(
            code,
            up_stop=feed_price(stops[0]),
            down_stop=feed_price(stops[1]),
            prev_close=feed_price(fields[T_PREV_CLOSE]),
            name=feed_name(fields[T_NAME]),
        )
        quotes[code] = Quote(code=code, last=last, up_stop=up_stop, down_stop=down_stop, source=source)
    return quotes


class HttpQuoteProvider:
    """Real quotes from Tencent's public quote service; off unless settings.QUOTE_HTTP_ENABLED.

    Off by default so that no test or CI run ever reaches the internet.
    """

    source = SOURCE_HTTP

    def __init__(self, *, base_url: str = TENCENT_URL, timeout: float = 3.0, batch: int = TENCENT_BATCH):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.batch = batch
        self._session = requests.Session()

    @staticmethod
    def enabled() -> bool:
        return bool(getattr(settings, "QUOTE_HTTP_ENABLED", False))

    def get(self, codes: list[str]) -> dict[str, Quote]:
        codes = _canonical(codes)
        if not codes or not self.enabled():
            return {}
        quotes: dict[str, Quote] = {}
        for start in range(0, len(codes), self.batch):
            batch = codes[start : start + self.batch]
            url = f"{self.base_url}/q={','.join(to_tencent(code) for code in batch)}"
            try:
                response = self._session.get(url, timeout=self.timeout)
                response.raise_for_status()
            except requests.RequestException as exc:
                # A service that is down would cost a timeout per batch: stop here.
                logger.warning("HTTP quotes failed (%s); got %d of %d codes", exc, len(quotes), len(codes))
                break
            text = response.content.decode("gbk", errors="replace")
            wanted = set(batch)
            quotes.update(
                {c: q for c, q in tencent_quotes_parse(text, source=self.source).items() if c in wanted}
            )
        return quotes


# --- prices entered in admin -----------------------------------------------------


class ManualQuoteProvider:
    """`ManualQuote` rows typed in by the admin."""

    source = SOURCE_ADMIN

    def get(self, codes: list[str]) -> dict[str, Quote]:
        codes = _canonical(codes)
        if not codes:
            return {}
        quotes = {}
        for row in ManualQuote.objects.filter(code__in=codes):
            last = feed_price(row.last_price)
            if last is None:
                continue
            up_stop, down_stop = with_limits(
                row.code,
                up_stop=feed_price(row.up_stop),
                down_stop=feed_price(row.down_stop),
                prev_close=feed_price(row.prev_close),
            )
            quotes[row.code] = Quote(
                code=row.code,
                last=last,
                up_stop=up_stop,
                down_stop=down_stop,
                suspended=row.suspended,
                source=self.source,
            )
        return quotes


# --- paper only: the target's uploaded cost --------------------------------------


class TargetCostQuoteProvider:
    """PAPER ONLY: the cost in the latest target line for the code among the given strategies.

    A stand-in when no market price exists at all; fills at this price are
    flagged by their source. `quote_chain_for` never gives it to a live account.
    """

    source = SOURCE_TARGET_COST

    def __init__(self, strategy_ids: Iterable[int] = ()):
        self.strategy_ids = tuple(strategy_ids)

    def get(self, codes: list[str]) -> dict[str, Quote]:
        codes = _canonical(codes)
        if not codes or not self.strategy_ids:
            return {}
        lines = (
            TargetLine.objects.filter(snapshot__strategy_id__in=self.strategy_ids, code__in=codes, cost__gt=0)
            .order_by("code", "-snapshot__created_at", "-snapshot_id")
            .values_list("code", "cost")
        )
        quotes: dict[str, Quote] = {}
        for code, cost in lines:
            if code in quotes:
                continue  # an older snapshot of the same code
            last = feed_price(cost)
            if last is not None:
                quotes[code] = Quote(code=code, last=last, source=self.source)
        return quotes


# --- the chain -----------------------------------------------------------------------


class QuoteChain:
    """Asks each provider in turn for the codes still unpriced; the first answer wins."""

    def __init__(self, providers: Iterable):
        self.providers = tuple(providers)

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(provider.source for provider in self.providers)

    def get(self, codes: list[str]) -> dict[str, Quote]:
        missing = _canonical(codes)
        quotes: dict[str, Quote] = {}
        for provider in self.providers:
            if not missing:
                break
            try:
                found = provider.get(list(missing))
            except Exception:
                logger.exception("quote source %s failed; trying the next one", provider.source)
                continue
            for code in missing:
                quote = found.get(code)
                if quote is not None and quote.last is not None and quote.last > 0:
                    quotes[code] = quote
            missing = [code for code in missing if code not in quotes]
        return quotes


_default_xtdata = XtdataQuoteProvider()  # shared so its per-day detail cache outlives one round


def quote_chain_for(
    account: BrokerAccount, *, strategy_ids: Iterable[int] = (), xtdata_module=None
) -> QuoteChain:
    """The quote sources for `account`: live [xtdata, worker, http?, admin]; paper adds the target cost last."""
    xtdata = XtdataQuoteProvider(xtdata_module) if xtdata_module is not None else _default_xtdata
    providers: list = [xtdata]
    # Remote mode (DESIGN §2): a trading PC's recent xtdata quotes, before HTTP and admin prices.
    from .remote.quotes import WorkerQuoteProvider

    providers.append(WorkerQuoteProvider())
    if HttpQuoteProvider.enabled():
        providers.append(HttpQuoteProvider())
    providers.append(ManualQuoteProvider())
    if account.mode == BrokerAccount.Mode.PAPER:
        # Paper only: a live order must never be priced from a strategy's bookkeeping cost.
        providers.append(TargetCostQuoteProvider(strategy_ids))
    return QuoteChain(providers)
