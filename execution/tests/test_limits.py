"""Fallback daily limits (DESIGN §4): what the exchange allows when the broker gives no limit prices."""

from datetime import date
from decimal import Decimal as D

import pytest

from execution import funds, limits, market

LISTED = date(2026, 3, 2)


def listing(session: int, listed_on: date = LISTED) -> limits.Listing:
    return limits.Listing(listed_on=listed_on, session=session)


@pytest.mark.parametrize(
    ("code", "name", "listing_", "prev_close", "up", "down"),
    [
        # Main board ±10%, ST included since 2025-07-07 (was ±5%).
        ("600000.SH", "浦发银行", None, "10.00", "11.00", "9.00"),
        ("600000.SH", "", None, "9.87", "10.86", "8.88"),
        ("600001.SH", "ST某某", None, "10.00", "11.00", "9.00"),
        ("000004.SZ", "*ST国华", None, "4.00", "4.40", "3.60"),
        # ChiNext and STAR ±20%, ST too; BJ ±30%.
        ("300750.SZ", "宁德时代", None, "200.00", "240.00", "160.00"),
        ("300001.SZ", "*ST某某", None, "5.00", "6.00", "4.00"),
        ("688981.SH", "中芯国际", None, "50.00", "60.00", "40.00"),
        ("430047.BJ", "诺思兰德", None, "12.00", "15.60", "8.40"),
        # Ordinary ETFs ±10% (tick 0.001).
        ("510300.SH", "沪深300ETF", None, "4.000", "4.400", "3.600"),
        ("159919.SZ", "", None, "4.000", "4.400", "3.600"),
        # ChiNext-index / STAR-index ETFs ±20%: known codes without a name ...
        ("159915.SZ", "", None, "2.000", "2.400", "1.600"),
        ("588000.SH", "", None, "1.000", "1.200", "0.800"),
        # ... and any fund whose name says it tracks such an index.
        ("159999.SZ", "创业板50ETF", None, "1.000", "1.200", "0.800"),
        ("510999.SH", "科创芯片ETF", None, "1.000", "1.200", "0.800"),
        ("159998.SZ", "双创50ETF", None, "1.000", "1.200", "0.800"),
        # A 科创 bond ETF holds bonds, not STAR stocks: ±10%.
        ("159997.SZ", "科创债ETF", None, "100.000", "110.000", "90.000"),
        # Convertible bonds ±20%; on the first trading day +57.3% / −43.3%.
        ("113050.SH", "南银转债", None, "120.000", "144.000", "96.000"),
        ("113050.SH", "南银转债", listing(2), "120.000", "144.000", "96.000"),
        ("113050.SH", "南银转债", listing(1), "100.000", "157.300", "56.700"),
        ("123001.SZ", "", listing(1), "100.000", "157.300", "56.700"),
        # A listing date long past changes nothing.
        ("600000.SH", "", listing(200, date(1999, 11, 10)), "10.00", "11.00", "9.00"),
        # Day six after listing: the ordinary limits.
        ("688001.SH", "", listing(6), "50.00", "60.00", "40.00"),
        ("301999.SZ", "", listing(6), "50.00", "60.00", "40.00"),
        ("603999.SH", "", listing(6), "50.00", "55.00", "45.00"),
        # BJ: only the listing day has no limit.
        ("920001.BJ", "", listing(2), "10.00", "13.00", "7.00"),
        # ETFs have limits from their first day.
        ("510999.SH", "", listing(1), "1.000", "1.100", "0.900"),
    ],
)
def test_fallback_limit_prices(code, name, listing_, prev_close, up, down):
    """The table of §4 per class, with ST, index-ETF and first-day bond exceptions."""
    assert limits.fallback_limit_prices(code, D(prev_close), name=name, listing=listing_) == (D(up), D(down))


@pytest.mark.parametrize(
    ("code", "listing_"),
    [
        ("688001.SH", listing(1)),  # STAR: first five trading days
        ("688001.SH", listing(5)),
        ("301999.SZ", listing(3)),  # ChiNext
        ("603999.SH", listing(1)),  # main board, since 2023-04-10
        ("001999.SZ", listing(5, date(2023, 4, 10))),
        ("920001.BJ", listing(1)),  # BJ: the listing day
    ],
)
def test_new_listings_have_no_fallback_limit(code, listing_):
    """A stock in its first trading days has no daily limit, so no limit price is invented for it."""
    assert limits.fallback_limit_prices(code, D("10.00"), listing=listing_) == (None, None)
    assert limits.limit_band(code, listing=listing_) is None


def test_main_board_listings_before_registration_kept_their_first_day_limits():
    """Before 2023-04-10 a main-board listing was limited from day one, so the table applies."""
    old = listing(2, date(2023, 4, 7))
    assert limits.fallback_limit_prices("603999.SH", D("10.00"), listing=old) == (D("11.00"), D("9.00"))


def test_unknown_listing_date_uses_the_table():
    """Without a listing date (Tencent, admin prices) the ordinary limits apply, as before."""
    assert limits.fallback_limit_prices("688001.SH", D("50.00")) == (D("60.00"), D("40.00"))
    assert limits.fallback_limit_prices("113050.SH", D("100.000")) == (D("120.000"), D("80.000"))


def test_tick_from_the_broker_is_used_for_rounding():
    """Limit prices are rounded to the broker's tick when it gives one."""
    assert limits.fallback_limit_prices("510300.SH", D("4.123"), tick=D("0.01")) == (D("4.54"), D("3.71"))


@pytest.mark.parametrize("code", ["204001.SH", "131810.SZ", "732001.SH", "132001.SH", "508000.SH"])
def test_untradable_codes_raise(code):
    """Codes the product never trades have no fallback limits (callers keep whatever the source gave)."""
    with pytest.raises(market.NotTradable):
        limits.fallback_limit_prices(code, D("10.00"))


@pytest.mark.parametrize(
    ("code", "t0"),
    [
        ("511010.SH", True),  # bond ETF
        ("511880.SH", True),  # money-market ETF
        ("511990.SH", True),
        ("513100.SH", True),  # cross-border ETF
        ("513050.SH", True),
        ("518880.SH", True),  # gold ETF
        ("159934.SZ", True),
        ("159920.SZ", True),  # cross-border on SZ
        ("159941.SZ", True),
        ("159001.SZ", True),  # money-market on SZ
        ("510300.SH", False),  # A-share index ETFs are T+1
        ("159915.SZ", False),
        ("588000.SH", False),
        ("600000.SH", False),
        ("113050.SH", True),  # convertible bonds are T+0 by class
    ],
)
def test_t_plus_zero(code, t0):
    """Gold, bond, money-market and cross-border ETFs are sellable the day they are bought."""
    assert market.rules_for(code).t_plus_zero is t0


@pytest.mark.parametrize("code", ["600000.SH", "113050.SH", "159915.SZ", "510300.SH"])
def test_only_listed_funds_are_t_plus_zero_funds(code):
    """The T+0 fund list never claims a stock, a bond or an A-share index ETF."""
    assert funds.is_t_plus_zero_fund(code) is False
