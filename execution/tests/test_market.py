"""Lots, ticks, limits and price protection per instrument class (DESIGN §4)."""

from decimal import Decimal as D

import pytest

from execution import market


@pytest.mark.parametrize(
    ("code", "wanted", "buy"),
    [
        ("600000.SH", 99, 0),
        ("600000.SH", 150, 100),
        ("600000.SH", 1000, 1000),
        ("300750.SZ", 250, 200),
        ("688981.SH", 199, 0),  # STAR: at least 200 ...
        ("688981.SH", 201, 201),  # ... then +1
        ("430047.BJ", 99, 0),
        ("430047.BJ", 101, 101),
        ("113050.SH", 15, 10),  # convertible bonds in 10s, never 100s
        ("123001.SZ", 9, 0),
        ("510300.SH", 199, 100),
    ],
)
def test_buy_lots(code, wanted, buy):
    assert market.rules_for(code).round_buy(wanted) == buy


@pytest.mark.parametrize(
    ("code", "wanted", "sellable", "sell"),
    [
        ("600000.SH", 150, 150, 150),  # all of it: the odd 50 goes along
        ("600000.SH", 150, 250, 150),  # a lot plus the whole odd 50, in one order
        ("600000.SH", 120, 250, 100),  # part of the odd 50 may not go
        ("600000.SH", 50, 250, 50),  # the odd part alone
        ("600000.SH", 50, 300, 0),
        ("600000.SH", 300, 200, 200),  # limited by can_use_volume (T+1)
        ("688981.SH", 150, 350, 0),  # STAR: ≥ 200 ...
        ("688981.SH", 150, 150, 150),  # ... or the whole remainder
        ("688981.SH", 201, 350, 201),
        ("430047.BJ", 50, 50, 50),
        ("113050.SH", 25, 100, 20),
        ("113050.SH", 25, 25, 25),
        ("600000.SH", 100, 0, 0),
    ],
)
def test_sell_lots(code, wanted, sellable, sell):
    assert market.rules_for(code).round_sell(wanted, sellable) == sell


@pytest.mark.parametrize(
    ("code", "tick", "t0", "limit"),
    [
        ("600000.SH", "0.01", False, "0.10"),
        ("688981.SH", "0.01", False, "0.20"),
        ("300750.SZ", "0.01", False, "0.20"),
        ("430047.BJ", "0.01", False, "0.30"),
        ("113050.SH", "0.001", True, "0.20"),
        ("510300.SH", "0.001", False, "0.10"),
    ],
)
def test_class_table(code, tick, t0, limit):
    rules = market.rules_for(code)
    assert (rules.tick, rules.t_plus_zero, rules.limit_pct) == (D(tick), t0, D(limit))


@pytest.mark.parametrize("code", ["204001.SH", "131810.SZ", "732001.SH"])
def test_never_traded_codes_have_no_rules(code):
    with pytest.raises(market.NotTradable):
        market.rules_for(code)


@pytest.mark.parametrize(
    ("side", "last", "slip", "up", "down", "tick", "price"),
    [
        ("buy", "10.00", "0.002", "11.00", "9.00", "0.01", "10.02"),  # 10.02 exactly
        ("buy", "10.07", "0.002", "11.00", "9.00", "0.01", "10.09"),  # 10.09014 rounds down
        ("sell", "10.07", "0.002", "11.00", "9.00", "0.01", "10.05"),  # 10.04986 rounds up
        ("buy", "10.99", "0.01", "11.00", "9.00", "0.01", "11.00"),  # capped at limit-up
        ("sell", "9.01", "0.01", "11.00", "9.00", "0.01", "9.00"),  # floored at limit-down
        ("buy", "10.00", "0.05", None, None, "0.01", "10.20"),  # price cage: 2% of reference
        ("sell", "10.00", "0.05", None, None, "0.01", "9.80"),
        ("buy", "2.00", "0.05", None, None, "0.01", "2.10"),  # cage: 10 ticks beats 2% on cheap stocks
        ("buy", "123.456", "0.002", None, None, "0.001", "123.702"),  # bond tick 0.001
    ],
)
def test_protected_limit_price(side, last, slip, up, down, tick, price):
    result = market.protected_limit_price(
        side=side,
        last=D(last),
        slippage=D(slip),
        up_stop=D(up) if up else None,
        down_stop=D(down) if down else None,
        tick=D(tick),
    )
    assert result == D(price)
