"""The paper broker: exchange rules on placement, honest fills, fees, T+1, cancels, persistence and events."""

import itertools
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from execution.brokers.base import (
    BUY,
    CANCEL_ALREADY_FINAL,
    CANCEL_NOT_FOUND,
    CANCEL_NOT_LOGGED_IN,
    CANCEL_OK,
    SELL,
    BrokerDisconnected,
    BrokerError,
    OrderRequest,
)
from execution.brokers.paper import PaperBroker
from execution.calendar import SHANGHAI
from execution.models import BrokerAccount, PaperBook, PaperOrder, PaperPosition, PaperTrade
from execution.planner import Quote

pytestmark = pytest.mark.django_db

D = Decimal
MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)
TUESDAY = MONDAY + timedelta(days=1)
MAIN, STAR, CHINEXT, BJ, BOND, ETF = (
    "600000.SH",
    "688001.SH",
    "300750.SZ",
    "430047.BJ",
    "113001.SH",
    "510300.SH",
)
REPORTED, CANCELED, FILLED, JUNK = 50, 54, 56, 57

_keys = itertools.count(1)


class Market:
    """A dict-backed quote source; tests move prices as time passes."""

    def __init__(self):
        self.quotes: dict[str, Quote] = {}
        self.failing = False

    def __call__(self, codes: list[str]) -> dict[str, Quote]:
        if self.failing:
            raise ConnectionError("feed down")
        return {code: self.quotes[code] for code in codes if code in self.quotes}

    def set(self, code, last, **extra):
        self.quotes[code] = Quote(code, None if last is None else D(str(last)), **extra)


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def market():
    return Market()


@pytest.fixture
def clock():
    return Clock(MONDAY)


@pytest.fixture
def make_broker(market, clock):
    """Create a paper account with `cash` and a connected broker over it."""

    def make(cash="100000", name="paper1"):
        account = BrokerAccount.objects.create(
            name=name,
            account_id=f"P-{name}",
            mode="paper",
            paper_starting_cash=D(cash),
            commission_rate=D("0.00025"),
            min_commission=D("5"),
            stamp_duty_rate=D("0.0005"),
        )
        broker = PaperBroker(account, quote_source=market, clock=clock)
        broker.connect()
        return broker

    return make


@pytest.fixture
def broker(make_broker):
    return make_broker()


def place(broker, code, side, volume, price, key=None) -> int:
    key = key or f"qjtest{next(_keys)}"
    return broker.place_order(OrderRequest(key=key, code=code, side=side, volume=volume, price=D(str(price))))


def order_of(broker, broker_order_id):
    return next(order for order in broker.query_orders() if order.broker_order_id == broker_order_id)


def hold(broker, code, volume, avg="10"):
    """A holding bought on an earlier day (fully sellable)."""
    PaperPosition.objects.create(account=broker.account, code=code, volume=volume, avg_price=D(avg))


def position_of(broker, code):
    return next((p for p in broker.query_positions() if p.code == code), None)


# --- lifecycle -------------------------------------------------------------------


def test_connect_opens_the_book_with_starting_cash_once(make_broker, market, clock):
    """The first connect funds the book; reconnecting later never resets the cash."""
    broker = make_broker(cash="50000")
    asset = broker.query_asset()
    assert (asset.cash, asset.frozen_cash, asset.market_value, asset.total_asset) == (
        D(50000),
        0,
        0,
        D(50000),
    )
    market.set(MAIN, "10.00")
    place(broker, MAIN, BUY, 100, "10.00")
    again = PaperBroker(broker.account, quote_source=market, clock=clock)
    again.connect()
    assert again.query_asset().cash == D("48994.99")  # 1,000 + 5 commission + 0.01 transfer fee


def test_live_account_is_refused(db, market):
    """A live account is never simulated: that would hide that no real order is sent."""
    account = BrokerAccount.objects.create(name="real", account_id="R1", mode="live")
    with pytest.raises(BrokerError, match="live"):
        PaperBroker(account, quote_source=market).connect()


def test_use_before_connect_is_an_error(db, market):
    """Orders and queries need connect(); cancel answers xtquant's 'not logged in' code."""
    account = BrokerAccount.objects.create(name="p", account_id="P", mode="paper")
    broker = PaperBroker(account, quote_source=market)
    with pytest.raises(BrokerDisconnected):
        place(broker, MAIN, BUY, 100, "10.00")
    with pytest.raises(BrokerDisconnected):
        broker.query_asset()
    assert broker.cancel_order(1) == CANCEL_NOT_LOGGED_IN


@pytest.mark.parametrize(
    "change, match",
    [
        ({"side": "short"}, "side"),
        ({"volume": 0}, "volume"),
        ({"price_type": 5}, "FIX_PRICE"),
        ({"key": "x" * 25}, "order_remark"),
        ({"price": D("NaN")}, "price"),
    ],
)
def test_usage_errors_raise_and_use_no_order_id(broker, market, change, match):
    """A caller's bug is an exception, not a rejected order, and consumes no broker order id."""
    market.set(MAIN, "10.00")
    fields = {"key": "qjk", "code": MAIN, "side": BUY, "volume": 100, "price": D("10.00"), **change}
    with pytest.raises(BrokerError, match=match):
        broker.place_order(OrderRequest(**fields))
    assert PaperOrder.objects.count() == 0
    assert place(broker, MAIN, BUY, 100, "10.00") == 1


def test_numpy_volume_from_pandas_is_accepted(broker, market):
    """A volume computed with pandas (numpy integer) is a valid order, not a usage error."""
    numpy = pytest.importorskip("numpy")
    market.set(MAIN, "10.00")
    request = OrderRequest(key="qjnp", code=MAIN, side=BUY, volume=numpy.int64(100), price=D("10.00"))
    assert order_of(broker, broker.place_order(request)).status == FILLED


# --- placement rules -------------------------------------------------------------


@pytest.mark.parametrize(
    "code, volume, price, accepted",
    [
        (MAIN, 100, "10.00", True),
        (MAIN, 150, "10.00", False),  # main board: multiples of 100
        (MAIN, 50, "10.00", False),
        (CHINEXT, 200, "10.00", True),
        (CHINEXT, 110, "10.00", False),
        (STAR, 199, "10.00", False),  # STAR: at least 200 ...
        (STAR, 200, "10.00", True),
        (STAR, 201, "10.00", True),  # ... then +1
        (BJ, 99, "10.00", False),  # BJ: at least 100 ...
        (BJ, 101, "10.00", True),  # ... then +1
        (BOND, 10, "100.000", True),  # convertible bonds: 10s
        (BOND, 15, "100.000", False),
        (ETF, 100, "3.000", True),
        (ETF, 150, "3.000", False),
    ],
)
def test_buy_lots_per_instrument_class(broker, market, code, volume, price, accepted):
    """Buys must be whole lots of the instrument's class, else the order is junk (57)."""
    market.set(code, price)
    order = order_of(broker, place(broker, code, BUY, volume, price))
    assert order.status == (FILLED if accepted else JUNK)
    if not accepted:
        assert "lot" in order.message


@pytest.mark.parametrize(
    "code, held, volume, accepted",
    [
        (MAIN, 250, 100, True),
        (MAIN, 250, 150, True),  # whole lots plus the whole odd part, in one order
        (MAIN, 250, 50, True),  # the odd part alone
        (MAIN, 250, 120, False),  # part of the odd part: refused
        (MAIN, 250, 20, False),
        (MAIN, 250, 250, True),  # the whole remainder, odd lot included
        (STAR, 350, 199, False),
        (STAR, 350, 200, True),
        (STAR, 350, 350, True),
        (BJ, 150, 99, False),
        (BJ, 150, 100, True),
        (BJ, 150, 150, True),
        (BOND, 25, 10, True),
        (BOND, 25, 15, True),
        (BOND, 25, 13, False),
        (BOND, 25, 25, True),
    ],
)
def test_sell_lots_and_odd_remainder(broker, market, code, held, volume, accepted):
    """Sells are lots too; an odd remainder goes out whole, alone or with whole lots (DESIGN §4)."""
    price = "100.000" if code == BOND else "10.00"
    market.set(code, price)
    hold(broker, code, held)
    order = order_of(broker, place(broker, code, SELL, volume, price))
    assert order.status == (FILLED if accepted else JUNK)
    remaining = position_of(broker, code)
    assert (remaining.volume if remaining else 0) == (held - volume if accepted else held)


@pytest.mark.parametrize(
    "code, volume, price, accepted",
    [
        (MAIN, 100, "10.01", True),
        (MAIN, 100, "10.005", False),  # stocks: 0.01
        (MAIN, 100, "10.001", False),
        (BOND, 10, "100.001", True),  # bonds: 0.001
        (BOND, 10, "100.0005", False),
        (ETF, 100, "3.001", True),  # ETFs: 0.001
        (ETF, 100, "3.0005", False),
    ],
)
def test_price_must_be_on_the_tick_grid(broker, market, code, volume, price, accepted):
    """A price between two ticks is refused with a message naming the tick."""
    market.set(code, price)
    order = order_of(broker, place(broker, code, BUY, volume, price))
    assert order.status == (FILLED if accepted else JUNK)
    if not accepted:
        assert "tick" in order.message


def test_broker_tick_from_the_quote_wins_over_the_table(broker, market):
    """When the quote carries the broker's own tick, that grid is used."""
    market.set(MAIN, "10.00", tick=D("0.05"))
    assert order_of(broker, place(broker, MAIN, BUY, 100, "10.01")).status == JUNK
    assert order_of(broker, place(broker, MAIN, BUY, 100, "10.05")).status == FILLED


@pytest.mark.parametrize(
    "side, last, price, accepted, reason",
    [
        (BUY, "10.95", "11.01", False, "limit-up"),
        (BUY, "10.95", "11.00", True, ""),
        (SELL, "9.05", "8.99", False, "limit-down"),
        (SELL, "9.05", "9.00", True, ""),
        (BUY, "10.00", "10.21", False, "price cage"),  # max(2%, 10 ticks) above the reference
        (BUY, "10.00", "10.20", True, ""),
        (SELL, "10.00", "9.79", False, "price cage"),
        (SELL, "10.00", "9.80", True, ""),
    ],
)
def test_prices_outside_limits_and_cage_are_refused(broker, market, side, last, price, accepted, reason):
    """Limit orders above limit-up, below limit-down or outside the price cage are junk."""
    market.set(MAIN, last, up_stop=D("11.00"), down_stop=D("9.00"))
    hold(broker, MAIN, 1000)
    order = order_of(broker, place(broker, MAIN, side, 100, price))
    assert order.status == (FILLED if accepted else JUNK)
    assert reason in order.message
    if accepted:
        assert order.traded_price == D(last)


def test_suspended_code_is_refused_and_open_orders_do_not_fill_while_suspended(broker, market):
    """Suspension refuses new orders and freezes matching until trading resumes."""
    market.set(MAIN, "10.00", suspended=True)
    refused = order_of(broker, place(broker, MAIN, BUY, 100, "10.00"))
    assert (refused.status, refused.message) == (JUNK, f"{MAIN} is suspended")

    market.set(MAIN, "10.05")
    waiting = place(broker, MAIN, BUY, 100, "10.00")
    market.set(MAIN, "9.90", suspended=True)
    assert order_of(broker, waiting).status == REPORTED
    market.set(MAIN, "9.90")
    assert order_of(broker, waiting).status == FILLED


@pytest.mark.parametrize("failing", [False, True])
def test_no_quote_is_refused_with_the_reason(broker, market, failing):
    """Without any quote the broker cannot check limits or fill: the order is junk, never guessed."""
    market.failing = failing
    order = order_of(broker, place(broker, MAIN, BUY, 100, "10.00"))
    assert order.status == JUNK
    assert order.message.startswith(f"no quote for {MAIN}")
    assert ("feed down" in order.message) is failing


def test_unknown_code_class_is_refused(broker, market):
    """Codes the sync never trades (reverse repo) are junk, like a broker refusing them."""
    market.set("204001.SH", "1.500")
    order = order_of(broker, place(broker, "204001.SH", BUY, 100, "1.500"))
    assert order.status == JUNK
    assert "cannot be traded" in order.message


# --- cash -----------------------------------------------------------------------


@pytest.mark.parametrize("cash, accepted", [("10005.10", True), ("10005.09", False)])
def test_buy_needs_amount_plus_commission(make_broker, market, cash, accepted):
    """1000 × 10.00 costs 10,000 plus the 5.00 minimum commission and the 0.10 transfer fee."""
    broker = make_broker(cash=cash)
    market.set(MAIN, "10.00")
    order = order_of(broker, place(broker, MAIN, BUY, 1000, "10.00"))
    assert order.status == (FILLED if accepted else JUNK)
    if not accepted:
        assert "insufficient cash" in order.message
        assert broker.query_asset().cash == D(cash)


def test_open_buys_freeze_cash_until_cancelled(make_broker, market):
    """Cash frozen by an open buy cannot pay for a second one; cancelling releases it."""
    broker = make_broker(cash="15000")
    market.set(MAIN, "10.05")
    first = place(broker, MAIN, BUY, 1000, "10.00")
    asset = broker.query_asset()
    assert (asset.cash, asset.frozen_cash, asset.total_asset) == (D("4994.90"), D("10005.10"), D("15000.00"))
    assert order_of(broker, place(broker, MAIN, BUY, 1000, "10.00")).status == JUNK

    assert broker.cancel_order(first) == CANCEL_OK
    asset = broker.query_asset()
    assert (asset.cash, asset.frozen_cash) == (D("15000.00"), 0)
    assert order_of(broker, place(broker, MAIN, BUY, 1000, "10.00")).status == REPORTED


# --- T+1 ------------------------------------------------------------------------


def test_stock_bought_today_is_sellable_the_next_day(broker, market, clock):
    """T+1: today's buy shows can_use 0 and a sell is refused; the next day it sells."""
    market.set(MAIN, "10.00")
    place(broker, MAIN, BUY, 100, "10.00")
    holding = position_of(broker, MAIN)
    assert (holding.volume, holding.can_use_volume) == (100, 0)
    refused = order_of(broker, place(broker, MAIN, SELL, 100, "10.00"))
    assert refused.status == JUNK
    assert "sellable 0" in refused.message

    clock.now = TUESDAY
    assert position_of(broker, MAIN).can_use_volume == 100
    assert order_of(broker, place(broker, MAIN, SELL, 100, "10.00")).status == FILLED
    assert position_of(broker, MAIN) is None  # zero-volume rows are omitted


def test_only_todays_buys_are_locked(broker, market):
    """Shares held from earlier days stay sellable when more are bought today."""
    hold(broker, MAIN, 200)
    market.set(MAIN, "10.00")
    place(broker, MAIN, BUY, 100, "10.00")
    holding = position_of(broker, MAIN)
    assert (holding.volume, holding.can_use_volume) == (300, 200)
    assert order_of(broker, place(broker, MAIN, SELL, 300, "10.00")).status == JUNK


def test_convertible_bonds_are_t_plus_zero(broker, market):
    """Bonds bought today can be sold today."""
    market.set(BOND, "120.000")
    place(broker, BOND, BUY, 10, "120.000")
    assert position_of(broker, BOND).can_use_volume == 10
    assert order_of(broker, place(broker, BOND, SELL, 10, "120.000")).status == FILLED


@pytest.mark.parametrize(
    ("code", "price", "t0"),
    [
        ("511010.SH", "100.000", True),  # bond ETF
        ("511880.SH", "100.000", True),  # money-market ETF
        ("518880.SH", "5.000", True),  # gold ETF
        ("513100.SH", "1.500", True),  # cross-border ETF
        ("159934.SZ", "5.000", True),  # gold ETF on SZ
        ("159920.SZ", "1.200", True),  # cross-border ETF on SZ
        ("510300.SH", "4.000", False),  # A-share index ETFs stay T+1
        ("159915.SZ", "2.000", False),
    ],
)
def test_t_plus_zero_etfs_sell_the_day_they_are_bought(broker, market, code, price, t0):
    """Gold, bond, money-market and cross-border ETFs bought today are sellable today; others are T+1."""
    market.set(code, price)
    assert order_of(broker, place(broker, code, BUY, 200, price)).status == FILLED
    assert position_of(broker, code).can_use_volume == (200 if t0 else 0)
    assert order_of(broker, place(broker, code, SELL, 200, price)).status == (FILLED if t0 else JUNK)


@pytest.mark.parametrize("code", ["508000.SH", "132001.SH", "180101.SZ"])
def test_a_held_code_of_an_untraded_class_does_not_break_queries(broker, market, clock, code):
    """A paper holding the product no longer trades (e.g. a REIT) is still reported, T+1 for safety."""
    PaperPosition.objects.create(
        account=broker.account,
        code=code,
        volume=300,
        avg_price=D("3"),
        bought_today=100,
        bought_on=MONDAY.date(),
    )
    market.set(code, "3.100")
    assert position_of(broker, code).can_use_volume == 200
    assert broker.query_asset().market_value == D("930.00")
    clock.now = TUESDAY
    assert position_of(broker, code).can_use_volume == 300


def test_open_sells_freeze_volume(broker, market):
    """Shares in an open sell cannot be sold twice; cancelling makes them sellable again."""
    hold(broker, MAIN, 300)
    market.set(MAIN, "9.90")
    first = place(broker, MAIN, SELL, 200, "10.00")
    assert position_of(broker, MAIN).can_use_volume == 100
    assert order_of(broker, place(broker, MAIN, SELL, 200, "10.00")).status == JUNK
    assert broker.cancel_order(first) == CANCEL_OK
    assert position_of(broker, MAIN).can_use_volume == 300


# --- matching -------------------------------------------------------------------


@pytest.mark.parametrize("side, limit", [(BUY, "10.20"), (SELL, "9.80")])
def test_crossing_limit_fills_at_the_reference_price(broker, market, side, limit):
    """A marketable limit order fills at the last price, not at its limit."""
    hold(broker, MAIN, 100)
    market.set(MAIN, "10.00", source="http")
    order = order_of(broker, place(broker, MAIN, side, 100, limit))
    assert (order.status, order.traded_volume, order.traded_price) == (FILLED, 100, D("10.00"))
    (trade,) = broker.query_trades()
    assert (trade.price, trade.amount, trade.volume) == (D("10.00"), D("1000.00"), 100)


@pytest.mark.parametrize("side, first, later", [(BUY, "10.10", "9.95"), (SELL, "9.90", "10.05")])
def test_order_waits_until_a_later_quote_crosses(broker, market, side, first, later):
    """An order that does not cross stays reported and fills when the price comes to it."""
    hold(broker, MAIN, 100)
    market.set(MAIN, first)
    broker_order_id = place(broker, MAIN, side, 100, "10.00")
    assert order_of(broker, broker_order_id).status == REPORTED
    assert broker.query_trades() == []
    market.set(MAIN, later)
    broker.drain_events()
    order = order_of(broker, broker_order_id)
    assert (order.status, order.traded_price) == (FILLED, D(later))


@pytest.mark.parametrize(
    "side, last, up_stop, down_stop",
    [(BUY, "11.00", "11.00", "9.00"), (SELL, "9.00", "11.00", "9.00")],
)
def test_no_buy_fill_at_limit_up_and_no_sell_fill_at_limit_down(
    broker, market, side, last, up_stop, down_stop
):
    """At limit-up nobody sells and at limit-down nobody buys: the order stays open."""
    hold(broker, MAIN, 100)
    market.set(MAIN, last, up_stop=D(up_stop), down_stop=D(down_stop))
    broker_order_id = place(broker, MAIN, side, 100, last)
    broker.drain_events()
    assert order_of(broker, broker_order_id).status == REPORTED
    market.set(MAIN, "10.00" if side == SELL else "10.98", up_stop=D(up_stop), down_stop=D(down_stop))
    assert order_of(broker, broker_order_id).status == FILLED


def test_fill_records_the_quote_source(broker, market):
    """A fill priced from the target's uploaded cost is flagged so the UI can say so."""
    market.set(MAIN, "10.00", source="http")
    broker_order_id = place(broker, MAIN, BUY, 100, "9.90")
    market.set(MAIN, "9.80", source="target_cost")
    broker.drain_events()
    assert PaperOrder.objects.get(broker_order_id=broker_order_id).price_source == "target_cost"


def test_open_order_expires_at_the_end_of_the_day(broker, market, clock):
    """Exchanges drop unfilled orders at the close: yesterday's buy never fills today and frees its cash."""
    market.set(MAIN, "10.10")
    broker_order_id = place(broker, MAIN, BUY, 100, "10.00")
    broker.drain_events()
    clock.now = TUESDAY
    market.set(MAIN, "9.00")
    (event,) = broker.drain_events()
    assert (event.kind, event.order.status, event.broker_order_id) == ("order", CANCELED, broker_order_id)
    assert "expired" in event.order.message
    asset = broker.query_asset()
    assert (asset.cash, asset.frozen_cash, asset.market_value) == (D(100000), 0, 0)


# --- fees and cost basis ----------------------------------------------------------


@pytest.mark.parametrize(
    "volume, price, commission",
    [
        (100, "10.00", "5.00"),  # 1,000 × 0.025% = 0.25 → minimum 5
        (2000, "10.00", "5.00"),  # 20,000 × 0.025% = 5.00
        (4000, "10.00", "10.00"),  # 40,000 × 0.025% = 10.00
        (3000, "10.01", "7.51"),  # 30,030 × 0.025% = 7.5075
    ],
)
def test_commission_with_minimum(broker, market, volume, price, commission):
    """Commission is rate × amount, at least the minimum, and comes out of cash (with the transfer fee)."""
    market.set(MAIN, price)
    place(broker, MAIN, BUY, volume, price)
    (trade,) = broker.query_trades()
    transfer_fee = (D(price) * volume * D("0.00001")).quantize(D("0.01"))
    assert PaperTrade.objects.get().commission == D(commission)
    assert trade.fee == D(commission) + transfer_fee
    assert broker.query_asset().cash == D(100000) - D(price) * volume - D(commission) - transfer_fee


@pytest.mark.parametrize(
    "code, price, volume, stamp_duty, transfer_fee",
    [
        (MAIN, "10.00", 2000, "10.00", "0.20"),  # 20,000 × 0.05% stamp duty, × 0.001% transfer fee
        (STAR, "10.00", 2000, "10.00", "0.20"),
        (CHINEXT, "10.00", 2000, "10.00", "0.20"),
        (BJ, "10.00", 2000, "10.00", "0.20"),
        (BOND, "100.000", 200, "0", "0"),  # bonds: no stamp duty, no transfer fee
        (ETF, "10.000", 2000, "0", "0"),  # funds/ETFs: neither
    ],
)
def test_stamp_duty_and_transfer_fee_on_stock_sells(
    broker, market, code, price, volume, stamp_duty, transfer_fee
):
    """Sells pay commission, plus stamp duty and transfer fee on stocks only; the proceeds land in cash."""
    hold(broker, code, volume)
    market.set(code, price)
    place(broker, code, SELL, volume, price)
    trade = PaperTrade.objects.get()
    fees = D("5.00") + D(stamp_duty) + D(transfer_fee)
    assert (trade.commission, trade.stamp_duty, trade.transfer_fee, trade.fee) == (
        D("5.00"),
        D(stamp_duty),
        D(transfer_fee),
        fees,
    )
    assert broker.query_asset().cash == D(100000) + D("20000") - fees


@pytest.mark.parametrize(
    "code, price, volume, transfer_fee",
    [
        (MAIN, "10.00", 2000, "0.20"),
        (STAR, "33.33", 300, "0.10"),  # 9,999 × 0.001% = 0.09999
        (CHINEXT, "10.00", 100, "0.01"),
        (BJ, "10.00", 100, "0.01"),
        (MAIN, "4.00", 100, "0.00"),  # 400 × 0.001% = 0.004 rounds to 0
        (BOND, "100.000", 200, "0"),
        (ETF, "10.000", 2000, "0"),
    ],
)
def test_transfer_fee_on_stock_buys(broker, market, code, price, volume, transfer_fee):
    """Stock buys pay the 0.001% transfer fee (过户费) too; it is part of the cost basis."""
    market.set(code, price)
    place(broker, code, BUY, volume, price)
    trade = PaperTrade.objects.get()
    assert (trade.transfer_fee, trade.fee) == (D(transfer_fee), trade.commission + D(transfer_fee))
    assert broker.query_asset().cash == D(100000) - trade.amount - trade.fee
    cost = (trade.amount + trade.fee) / volume
    assert position_of(broker, code).avg_price == cost.quantize(D("0.0001"))


def test_buys_pay_no_stamp_duty(broker, market):
    """Stamp duty is a sell-side tax."""
    market.set(MAIN, "10.00")
    place(broker, MAIN, BUY, 2000, "10.00")
    assert PaperTrade.objects.get().stamp_duty == 0


def test_average_price_includes_buy_fees(broker, market, clock):
    """The cost basis carries the commission and transfer fee, as the broker's 成本价 does; a sell does not change it."""
    market.set(MAIN, "10.00")
    place(broker, MAIN, BUY, 100, "10.00")  # 1,000 + 5 + 0.01
    assert position_of(broker, MAIN).avg_price == D("10.0501")
    market.set(MAIN, "12.00")
    place(broker, MAIN, BUY, 100, "12.00")  # 1,200 + 5 + 0.01 → 2,210.02 / 200
    assert position_of(broker, MAIN).avg_price == D("11.0501")
    clock.now = TUESDAY
    place(broker, MAIN, SELL, 100, "12.00")
    assert position_of(broker, MAIN).avg_price == D("11.0501")


# --- cancel -----------------------------------------------------------------------


def test_cancel_return_codes(broker, market):
    """0 cancels an open order, -1 for a final one (filled, cancelled, rejected), -2 for an unknown id."""
    market.set(MAIN, "10.10")
    open_id = place(broker, MAIN, BUY, 100, "10.00")
    filled_id = place(broker, MAIN, BUY, 100, "10.10")
    junk_id = place(broker, MAIN, BUY, 150, "10.10")
    assert broker.cancel_order(open_id) == CANCEL_OK
    assert order_of(broker, open_id).status == CANCELED
    assert broker.cancel_order(open_id) == CANCEL_ALREADY_FINAL
    assert broker.cancel_order(filled_id) == CANCEL_ALREADY_FINAL
    assert broker.cancel_order(junk_id) == CANCEL_ALREADY_FINAL
    assert broker.cancel_order(999) == CANCEL_NOT_FOUND


def test_cancel_arrives_after_the_market_filled_the_order(broker, market):
    """If the price crossed before the cancel, the order is filled and the cancel answers -1."""
    market.set(MAIN, "10.10")
    broker_order_id = place(broker, MAIN, BUY, 100, "10.00")
    market.set(MAIN, "9.99")
    assert broker.cancel_order(broker_order_id) == CANCEL_ALREADY_FINAL
    assert order_of(broker, broker_order_id).status == FILLED


# --- queries, persistence, events --------------------------------------------------


def test_queries_show_only_the_trading_day_in_shanghai(broker, market, clock):
    """Orders and trades of today (Asia/Shanghai), whatever the UTC date is."""
    market.set(MAIN, "10.00")
    clock.now = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)  # 23:30 Monday in Shanghai
    monday = place(broker, MAIN, BUY, 100, "10.00")
    clock.now = datetime(2026, 3, 2, 16, 30, tzinfo=UTC)  # 00:30 Tuesday in Shanghai, still Monday in UTC
    assert broker.query_orders() == []
    assert broker.query_trades() == []
    tuesday = place(broker, MAIN, BUY, 100, "10.00")
    assert [o.broker_order_id for o in broker.query_orders()] == [tuesday]
    assert [t.broker_order_id for t in broker.query_trades()] == [tuesday]
    clock.now = datetime(2026, 3, 2, 15, 59, tzinfo=UTC)  # back to 23:59 Monday
    assert [o.broker_order_id for o in broker.query_orders()] == [monday]


def test_a_new_broker_instance_finds_orders_by_remark(broker, market, clock):
    """Crash recovery: a fresh PaperBroker over the same database sees the orders, remarks and fills."""
    market.set(MAIN, "10.00")
    filled = place(broker, MAIN, BUY, 100, "10.00", key="qjfilledaaaaaaaaaaaaaaaa")
    market.set(MAIN, "10.05")
    waiting = place(broker, MAIN, BUY, 100, "10.00", key="qjwaitingbbbbbbbbbbbbbbb")

    restarted = PaperBroker(broker.account, quote_source=market, clock=clock)
    restarted.connect()
    by_remark = {order.remark: order for order in restarted.query_orders()}
    assert by_remark["qjfilledaaaaaaaaaaaaaaaa"].broker_order_id == filled
    assert by_remark["qjwaitingbbbbbbbbbbbbbbb"].status == REPORTED
    assert [trade.remark for trade in restarted.query_trades()] == ["qjfilledaaaaaaaaaaaaaaaa"]
    assert place(restarted, MAIN, BUY, 100, "10.00") == waiting + 1  # ids continue, never reused
    assert restarted.cancel_order(waiting) == CANCEL_OK


def test_trade_ids_are_unique_per_account(make_broker, market, clock):
    """Every fill gets its own trade id, across broker instances."""
    broker = make_broker()
    market.set(MAIN, "10.00")
    for _ in range(3):
        place(broker, MAIN, BUY, 100, "10.00")
    restarted = PaperBroker(broker.account, quote_source=market, clock=clock)
    restarted.connect()
    place(restarted, MAIN, BUY, 100, "10.00")
    trade_ids = [trade.trade_id for trade in restarted.query_trades()]
    assert len(trade_ids) == 4
    assert len(set(trade_ids)) == 4


def test_events_are_drained_once(broker, market):
    """A fill reports the order and the trade; a rejection reports the order and an order_error; each once."""
    market.set(MAIN, "10.00")
    filled = place(broker, MAIN, BUY, 100, "10.00", key="qjfill")
    junk = place(broker, MAIN, BUY, 150, "10.00", key="qjjunk")
    events = broker.drain_events()
    assert [(e.kind, e.broker_order_id or e.trade.broker_order_id) for e in events] == [
        ("order", filled),
        ("trade", filled),
        ("order", filled),
        ("order", junk),
        ("order_error", junk),
    ]
    assert [e.order.status for e in events if e.kind == "order"] == [REPORTED, FILLED, JUNK]
    assert events[1].trade.remark == "qjfill"
    assert events[4].remark == "qjjunk"
    assert "lot" in events[4].message
    assert broker.drain_events() == []


def test_asset_values_positions_at_last_price_or_cost(broker, market):
    """Market value uses the last price; without a quote the holding is valued at its cost."""
    hold(broker, MAIN, 1000, avg="8.00")
    hold(broker, BOND, 10, avg="110.000")
    market.set(MAIN, "10.00")
    asset = broker.query_asset()
    assert asset.market_value == D("10000.00") + D("1100.00")
    assert asset.total_asset == D(100000) + asset.market_value
    positions = {p.code: p for p in broker.query_positions()}
    assert (positions[MAIN].last_price, positions[MAIN].market_value) == (D("10.00"), D("10000.00"))
    assert (positions[BOND].last_price, positions[BOND].market_value) == (None, D("1100.00"))


def test_the_book_is_shared_by_broker_instances(make_broker, market, clock):
    """Two brokers over one account spend one pot of cash."""
    first = make_broker(cash="10005.10")
    second = PaperBroker(first.account, quote_source=market, clock=clock)
    second.connect()
    market.set(MAIN, "10.05")
    assert order_of(first, place(first, MAIN, BUY, 1000, "10.00")).status == REPORTED
    assert order_of(second, place(second, MAIN, BUY, 1000, "10.00")).status == JUNK


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor == "sqlite", reason="row locks need a server database")
def test_concurrent_buys_never_double_spend(market, clock):
    """Two workers racing for the same cash: the book row lock lets exactly one buy through."""
    account = BrokerAccount.objects.create(
        name="race", account_id="R", mode="paper", paper_starting_cash=D("10005.10")
    )
    PaperBroker(account, quote_source=market, clock=clock).connect()
    market.set(MAIN, "10.05")
    barrier = threading.Barrier(2)
    ids = []

    def worker(n):
        try:
            broker = PaperBroker(account, quote_source=market, clock=clock)
            broker.connect()
            barrier.wait()
            ids.append(place(broker, MAIN, BUY, 1000, "10.00", key=f"qjrace{n}"))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(PaperOrder.objects.values_list("status", flat=True))
    assert statuses == [REPORTED, JUNK]
    assert sorted(ids) == [1, 2]
    assert PaperBook.objects.get(account=account).cash == 0
