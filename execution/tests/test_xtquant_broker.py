"""The xtquant broker driving the genuine, installed xttrader.py over a stand-in for its native client.

`xt_stub.genuine_xtquant()` loads xtquant's own xttrader.py, xttype.py and
xtconstant.py unmodified; only the Windows-only `xtpythonclient` .pyd is
replaced, by a plain-Python fake MiniQMT (execution/tests/xt_stub). xtquant's
`__init__.py`, which asks pypi.org for updates, never runs (an empty package
module stands in for it), and the `no_network` fixture fails any test that
tries to open a connection anyway.
"""

import datetime as dt
import importlib
import importlib.abc
import inspect
import sys
import time
from decimal import Decimal as D

import pytest

import execution.brokers
from execution.brokers.base import (
    BUY,
    CANCEL_ALREADY_FINAL,
    CANCEL_NOT_FOUND,
    CANCEL_NOT_LOGGED_IN,
    CANCEL_OK,
    SELL,
    BrokerAsset,
    BrokerDisconnected,
    BrokerError,
    BrokerPosition,
    BrokerTimeout,
    OrderRequest,
)
from execution.brokers.xtquant import XtQuantBroker, session_id_new
from execution.tests import xt_stub

USERDATA = r"D:\国金QMT交易端\userdata_mini"
ACCOUNT = "8881234567"


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    xt_stub.refuse_network(monkeypatch)


@pytest.fixture
def miniqmt():
    with xt_stub.genuine_xtquant():
        terminal = xt_stub.FakeMiniQmt(USERDATA)
        terminal.open_account(ACCOUNT, cash=100_000)
        yield terminal


@pytest.fixture
def broker(miniqmt):
    broker = XtQuantBroker(userdata_mini_path=USERDATA, account_id=ACCOUNT)
    broker.connect()
    yield broker
    broker.close()


def buy(key="K1", code="600000.SH", volume=1000, price="10.50"):
    return OrderRequest(key=key, code=code, side=BUY, volume=volume, price=D(price))


def events_until(broker, done, timeout=5.0):
    """Drain events until done(events) holds; xttrader delivers them on its own thread."""
    events = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events += broker.drain_events()
        if done(events):
            return events
        time.sleep(0.002)
    raise AssertionError(f"expected events did not arrive; got {events!r}")


def kinds(events):
    return [event.kind for event in events]


def test_the_genuine_xttrader_runs_over_the_stand_in(broker):
    """The trader is xtquant's own XtQuantTrader from site-packages, talking to the stand-in client."""
    from xtquant import xttrader

    assert "site-packages" in xttrader.__file__
    assert xttrader._XTQC_ is xt_stub.xtpythonclient
    assert type(broker._trader) is xttrader.XtQuantTrader
    assert type(broker._trader.async_client) is xt_stub.xtpythonclient.XtQuantAsyncClient
    assert not hasattr(sys.modules["xtquant"], "check_for_update")  # the network check never ran


def test_connect_starts_connects_and_subscribes_with_a_session_id(miniqmt):
    """connect() creates the trader with a fresh int32 session id, connects and subscribes the account."""
    broker = XtQuantBroker(userdata_mini_path=USERDATA, account_id=ACCOUNT, session_id_factory=lambda: 4242)
    broker.connect()
    try:
        assert broker.connected and broker.session_id == 4242
        assert miniqmt.session_ids == [4242]
        [client] = miniqmt.live_clients()
        assert client.path == USERDATA and client.subscribed == {ACCOUNT}
        assert [call for call, _, _ in miniqmt.calls] == ["init", "start", "connect", "subscribeWithSeq"]
    finally:
        broker.close()
    assert not broker.connected and miniqmt.clients == []


@pytest.mark.parametrize(
    ("setup", "account", "message"),
    [
        (lambda t: setattr(t, "connect_result", -1), ACCOUNT, "returned -1; is MiniQMT running"),
        (lambda t: t.shutdown(), ACCOUNT, "returned -1; is MiniQMT running"),  # nothing at that path
        (lambda t: None, "9990000001", "subscribing account 9990000001 returned -1"),
    ],
    ids=["connect-refused", "no-miniqmt", "account-not-logged-in"],
)
def test_failed_connect_or_subscribe_raises_disconnected(miniqmt, setup, account, message):
    """A non-zero connect() or subscribe() result raises BrokerDisconnected with the code, and leaves nothing running."""
    setup(miniqmt)
    broker = XtQuantBroker(userdata_mini_path=USERDATA, account_id=account)
    with pytest.raises(BrokerDisconnected, match=message):
        broker.connect()
    assert not broker.connected and broker._trader is None
    assert miniqmt.clients == []
    with pytest.raises(BrokerDisconnected):
        broker.query_asset()


def test_place_order_sends_the_key_as_order_remark_and_returns_the_id(broker, miniqmt):
    """A buy goes out as STOCK_BUY/FIX_PRICE with our key as order_remark; the positive id comes back."""
    order_id = broker.place_order(buy(key="QJ7K2M4N8P0R", volume=300, price="10.51"))

    [sent] = miniqmt.orders(ACCOUNT)
    assert order_id == sent.order_id > 0
    assert (sent.order_type, sent.price_type, sent.order_volume, sent.price) == (23, 11, 300, 10.51)
    assert (sent.order_remark, sent.strategy_name, sent.stock_code) == ("QJ7K2M4N8P0R", "qmtjq", "600000.SH")
    events = events_until(broker, lambda e: "order" in kinds(e))
    assert events[0].order.status == 50 and events[0].remark == "QJ7K2M4N8P0R"
    assert events[0].broker_order_id == order_id


def test_rejected_order_gets_an_id_then_status_57_and_an_order_error(broker, miniqmt):
    """A positive id is not acceptance: the rejection arrives as status 57 plus on_order_error."""
    miniqmt.reject_next_order("可用资金不足")

    order_id = broker.place_order(buy(key="REJ1"))

    assert order_id > 0
    events = events_until(broker, lambda e: {"order", "order_error"} <= set(kinds(e)))
    order_event = next(e for e in events if e.kind == "order")
    error_event = next(e for e in events if e.kind == "order_error")
    assert (order_event.order.status, order_event.order.message) == (57, "可用资金不足")
    assert (error_event.broker_order_id, error_event.remark) == (order_id, "REJ1")
    assert "可用资金不足" in error_event.message
    assert [(o.broker_order_id, o.status) for o in broker.query_orders()] == [(order_id, 57)]


def test_order_stock_minus_one_raises_broker_error(broker, miniqmt):
    """order_stock answering -1 raises BrokerError (not a disconnect: the link is fine)."""
    miniqmt.refuse_next_order()

    with pytest.raises(BrokerError, match="returned -1") as raised:
        broker.place_order(buy())

    assert type(raised.value) is BrokerError
    assert miniqmt.orders(ACCOUNT) == [] and broker.connected


@pytest.mark.parametrize("key", ["A" * 25, "订单0001", ""], ids=["25-chars", "non-ascii", "empty"])
def test_order_keys_that_would_not_survive_as_remark_are_refused(broker, miniqmt, key):
    """Keys MiniQMT would truncate or mangle are refused before anything is sent."""
    with pytest.raises(ValueError, match="ASCII"):
        broker.place_order(buy(key=key))

    assert miniqmt.orders(ACCOUNT) == []
    assert "orderStockWithSeq" not in [call for call, _, _ in miniqmt.calls]


def test_a_24_character_key_is_sent_whole(broker, miniqmt):
    """The longest allowed key arrives intact, so reconciliation by remark works."""
    key = "ABCDEFGHIJKLMNOPQRSTUVWX"
    broker.place_order(buy(key=key))

    assert [o.remark for o in broker.query_orders()] == [key]


def test_cancel_returns_xtquant_codes(broker, miniqmt):
    """cancel_order passes on 0 (sent), -1 (already final), -2 (unknown id) and -3 (not logged in)."""
    order_id = broker.place_order(buy(key="C1"))

    assert broker.cancel_order(order_id) == CANCEL_OK
    events = events_until(broker, lambda e: any(ev.kind == "order" and ev.order.status == 54 for ev in e))
    assert events[-1].broker_order_id == order_id
    assert broker.cancel_order(order_id) == CANCEL_ALREADY_FINAL
    assert broker.cancel_order(123) == CANCEL_NOT_FOUND
    open_id = broker.place_order(buy(key="C2"))
    miniqmt.disconnect(notify=False)  # the link is gone but the push has not arrived yet
    assert broker.cancel_order(open_id) == CANCEL_NOT_LOGGED_IN


def test_refused_cancel_arrives_as_a_cancel_error_event(broker, miniqmt):
    """A cancel the counter refuses answers -1 and queues a cancel_error event for the order."""
    order_id = broker.place_order(buy(key="C3"))
    miniqmt.reject_next_cancel("已成交，无法撤单")

    assert broker.cancel_order(order_id) == CANCEL_ALREADY_FINAL
    events = events_until(broker, lambda e: "cancel_error" in kinds(e))
    error = next(e for e in events if e.kind == "cancel_error")
    assert error.broker_order_id == order_id and "无法撤单" in error.message


def test_query_asset_and_positions_map_to_decimals(broker, miniqmt):
    """Asset and holdings come back as Decimals; avg_price falls back to open_price when xtquant has none."""
    miniqmt.set_position(
        ACCOUNT, "600000.SH", volume=1000, can_use_volume=600, avg_price=10.12, last_price=10.3
    )
    miniqmt.set_position(
        ACCOUNT,
        "511880.SH",
        volume=50,
        can_use_volume=50,
        avg_price=0.0,
        last_price=100.01,
        open_price=100.002,
    )

    assert broker.query_asset() == BrokerAsset(
        cash=D("100000.0"), frozen_cash=D("0.0"), market_value=D("15300.5"), total_asset=D("115300.5")
    )
    assert sorted(broker.query_positions(), key=lambda p: p.code) == [
        BrokerPosition(
            "511880.SH", 50, 50, avg_price=D("100.002"), market_value=D("5000.5"), last_price=D("100.01")
        ),
        BrokerPosition(
            "600000.SH", 1000, 600, avg_price=D("10.12"), market_value=D("10300.0"), last_price=D("10.3")
        ),
    ]


def test_query_orders_and_trades_map_sides_statuses_and_fills(broker, miniqmt):
    """Orders carry side, status, fills and our key; trades carry the broker's trade id and an aware time."""
    miniqmt.set_position(
        ACCOUNT, "000001.SZ", volume=500, can_use_volume=500, avg_price=11.0, last_price=12.0
    )
    sell_id = broker.place_order(
        OrderRequest(key="S1", code="000001.SZ", side=SELL, volume=500, price=D("12.01"))
    )
    buy_id = broker.place_order(buy(key="B1", volume=1000, price="10.50"))
    trade = miniqmt.fill(buy_id, volume=400, price=10.49)
    miniqmt.fill(sell_id)

    orders = {o.broker_order_id: o for o in broker.query_orders()}
    assert (orders[buy_id].side, orders[buy_id].status, orders[buy_id].traded_volume) == (BUY, 55, 400)
    assert (orders[buy_id].traded_price, orders[buy_id].remark, orders[buy_id].price) == (
        D("10.49"),
        "B1",
        D("10.5"),
    )
    assert (orders[sell_id].side, orders[sell_id].status, orders[sell_id].remark) == (SELL, 56, "S1")
    assert orders[buy_id].order_time.tzinfo is not None
    trades = {t.broker_order_id: t for t in broker.query_trades()}
    assert trades[buy_id].trade_id == trade.traded_id
    assert (trades[buy_id].side, trades[buy_id].volume, trades[buy_id].price) == (BUY, 400, D("10.49"))
    assert trades[buy_id].amount == D(str(10.49 * 400)) and trades[buy_id].fee == D("5.0")
    assert trades[buy_id].traded_at == dt.datetime.fromtimestamp(trade.traded_time, tz=dt.UTC)
    assert (trades[sell_id].side, trades[sell_id].remark) == (SELL, "S1")


def test_fills_arrive_as_trade_and_order_events(broker, miniqmt):
    """A fill queues a trade event and the order's new status."""
    order_id = broker.place_order(buy(key="F1", volume=200))
    miniqmt.fill(order_id)

    events = events_until(broker, lambda e: any(ev.kind == "order" and ev.order.status == 56 for ev in e))
    trade = next(e for e in events if e.kind == "trade").trade
    assert (trade.broker_order_id, trade.volume, trade.remark) == (order_id, 200, "F1")


def test_an_empty_day_is_not_a_disconnect(broker):
    """xtquant answers an empty order, trade or position list with None; that is an empty list, not a lost link."""
    assert broker.query_orders() == []
    assert broker.query_trades() == []
    assert broker.query_positions() == []
    assert broker.connected


@pytest.mark.parametrize("query", ["query_asset", "query_orders", "query_trades", "query_positions"])
def test_a_query_without_answer_raises_disconnected(broker, miniqmt, query):
    """A query MiniQMT does not answer (None) raises BrokerDisconnected, and so does the next call."""
    miniqmt.disconnect(notify=False)

    with pytest.raises(BrokerDisconnected, match="no answer"):
        getattr(broker, query)()
    with pytest.raises(BrokerDisconnected, match="reconnect first"):
        broker.place_order(buy())


def test_callbacks_never_call_the_trader(broker, miniqmt):
    """Every native call comes from the worker's own bounded-call threads; callbacks (on xtquant's executor) only queue."""
    order_id = broker.place_order(buy(key="T1"))
    miniqmt.fill(order_id, volume=100)
    broker.cancel_order(order_id)
    miniqmt.reject_next_order()
    broker.place_order(buy(key="T2"))
    events_until(broker, lambda e: "order_error" in kinds(e) and kinds(e).count("order") >= 4)

    callers = {thread for _, thread, _ in miniqmt.calls}
    assert callers and all(name.startswith("deadline-xtquant ") for name in callers), callers
    assert miniqmt.handler_errors == []


def test_a_push_that_cannot_be_read_is_dropped_quietly(broker, miniqmt):
    """A malformed push neither escapes the callback nor blocks the pushes after it."""
    miniqmt.push(ACCOUNT, "StockOrder", object())
    miniqmt.push(
        ACCOUNT,
        "StockTrade",
        xt_stub.xtpythonclient.XtTrade(ACCOUNT, "600000.SH", 23, "X", 0, "bad", 1, 1.0, 7, ""),
    )
    order_id = broker.place_order(buy(key="AFTER"))

    events = events_until(broker, lambda e: "order" in kinds(e))
    assert [(e.kind, e.broker_order_id) for e in events] == [("order", order_id)]
    callback = broker._trader.callback
    callback.on_stock_order(None)  # called directly: returns, raises nothing
    callback.on_order_error("garbage")
    callback.on_account_status(object())  # pushes we do not use are ignored
    assert broker.drain_events() == [] and broker.connected


def test_pushes_for_another_account_are_ignored(broker, miniqmt):
    """Orders of another account on the same MiniQMT are not ours."""
    miniqmt.open_account("8889999999", cash=1000)
    miniqmt.live_clients()[0].subscribed.add("8889999999")
    miniqmt.push(
        "8889999999",
        "StockOrder",
        xt_stub.xtpythonclient.XtOrder("8889999999", "600000.SH", 9, "9", 0, 23, 100, 11, 1.0),
    )
    order_id = broker.place_order(buy(key="MINE"))

    events = events_until(broker, lambda e: "order" in kinds(e))
    assert [e.broker_order_id for e in events] == [order_id]


def test_disconnect_then_reconnect_uses_a_new_session_and_subscribes_again(broker, miniqmt):
    """on_disconnected queues an event and blocks calls; reconnect() comes back with a new session, subscribed."""
    first_session = broker.session_id

    miniqmt.disconnect()
    events = events_until(broker, lambda e: "disconnected" in kinds(e))

    assert kinds(events) == ["disconnected"] and not broker.connected
    with pytest.raises(BrokerDisconnected):
        broker.query_asset()
    broker.reconnect(sleep=lambda seconds: None)
    assert broker.connected and broker.session_id != first_session
    assert miniqmt.session_ids == [first_session, broker.session_id]
    [client] = miniqmt.live_clients()
    assert client.session == broker.session_id and client.subscribed == {ACCOUNT}
    assert broker.query_asset().cash == D("100000.0")
    order_id = broker.place_order(buy(key="AGAIN"))
    assert events_until(broker, lambda e: "order" in kinds(e))[0].broker_order_id == order_id


def test_reconnect_backs_off_until_miniqmt_is_back(broker, miniqmt):
    """While MiniQMT refuses, reconnect() sleeps through the backoff, each try with a fresh session id."""
    miniqmt.disconnect()
    miniqmt.connect_result = -1
    pauses = []

    def sleep(seconds):
        pauses.append(seconds)
        if len(pauses) == 2:
            miniqmt.connect_result = 0  # MiniQMT finished restarting

    broker.reconnect(backoff_seconds=[1, 2, 5], sleep=sleep)

    assert pauses == [1, 2] and broker.connected
    assert len(set(miniqmt.session_ids)) == len(miniqmt.session_ids) == 2
    tried = [session for call, _, session in miniqmt.calls if call == "connect"]
    assert len(tried) == len(set(tried)) == 4


def test_reconnect_gives_up_after_the_backoff(broker, miniqmt):
    """When MiniQMT stays away, reconnect() raises the last BrokerDisconnected."""
    miniqmt.disconnect()
    miniqmt.connect_result = -1

    with pytest.raises(BrokerDisconnected, match="returned -1"):
        broker.reconnect(backoff_seconds=[1, 1], sleep=lambda seconds: None)
    assert not broker.connected


def test_a_replaced_traders_goodbye_does_not_disconnect_the_new_one(broker):
    """A late on_disconnected from the previous trader leaves the new connection up."""
    old_callback = broker._trader.callback
    broker.connect()

    old_callback.on_disconnected()

    assert broker.connected and broker.drain_events() == []


def test_two_brokers_on_one_miniqmt_get_distinct_sessions(miniqmt):
    """Concurrent clients need distinct session ids; the default factory gives them."""
    first = XtQuantBroker(userdata_mini_path=USERDATA, account_id=ACCOUNT)
    second = XtQuantBroker(userdata_mini_path=USERDATA, account_id=ACCOUNT)
    first.connect()
    second.connect()
    try:
        assert first.session_id != second.session_id
        assert len(miniqmt.live_clients()) == 2
        assert all(0 < s < 2**31 for s in (first.session_id, second.session_id))
    finally:
        first.close()
        second.close()


def test_reused_session_id_is_refused(miniqmt):
    """The stand-in refuses a second live client with the same session id, as MiniQMT does."""
    first = XtQuantBroker(userdata_mini_path=USERDATA, account_id=ACCOUNT, session_id_factory=lambda: 7)
    second = XtQuantBroker(userdata_mini_path=USERDATA, account_id=ACCOUNT, session_id_factory=lambda: 7)
    first.connect()
    try:
        with pytest.raises(BrokerDisconnected, match="session 7"):
            second.connect()
    finally:
        first.close()


def test_session_ids_are_positive_int32_and_unique_in_a_process():
    """Many session ids in a row are distinct and fit MiniQMT's int32."""
    sessions = [session_id_new() for _ in range(5000)]

    assert len(set(sessions)) == 5000
    assert all(0 < s <= 2**31 - 1 for s in sessions)


def test_stand_in_objects_carry_every_field_xttype_documents(miniqmt):
    """The stand-in's data objects have all the attributes of xtquant's own classes, so mappings meet real names."""
    from xtquant import xttype

    stub = xt_stub.xtpythonclient
    for name in ["XtAsset", "XtOrder", "XtTrade", "XtPosition", "XtOrderError", "XtCancelError"]:
        documented = set(inspect.signature(getattr(xttype, name).__init__).parameters) - {"self"}
        assert documented <= set(inspect.signature(getattr(stub, name)).parameters), name


class _NoXtquant(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "xtquant" or name.startswith("xtquant."):
            raise ImportError(f"No module named {name!r} (hidden by the test)")
        return None


def test_module_imports_without_xtquant(monkeypatch):
    """The adapter module loads where xtquant is missing; only connect() says it is needed."""
    for name in [n for n in sys.modules if n == "xtquant" or n.startswith("xtquant.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_NoXtquant(), *sys.meta_path])
    monkeypatch.setattr(execution.brokers, "xtquant", execution.brokers.xtquant)
    monkeypatch.delitem(sys.modules, "execution.brokers.xtquant")

    module = importlib.import_module("execution.brokers.xtquant")

    assert not any(n == "xtquant" or n.startswith("xtquant.") for n in sys.modules)
    broker = module.XtQuantBroker(userdata_mini_path=USERDATA, account_id=ACCOUNT)
    with pytest.raises(BrokerError, match="xtquant is not usable here"):
        broker.connect()
    assert not broker.connected


def test_probe_asks_one_asset_query_and_a_hang_is_a_timeout_within_the_probe_bound(miniqmt):
    """The probe is one query_stock_asset; a hung MiniQMT makes it a BrokerTimeout after the probe's own
    (shorter) bound, never after the 10 s call bound, and the broker counts as disconnected."""
    broker = XtQuantBroker(
        userdata_mini_path=USERDATA, account_id=ACCOUNT, call_timeout=10, probe_timeout=0.2
    )
    broker.connect()
    try:
        before = len(miniqmt.calls)
        broker.probe()
        assert [request for request, _thread, _session in miniqmt.calls[before:]] == [
            "queryStockAssetWithSeq"
        ]
        miniqmt.stall()
        with pytest.raises(BrokerTimeout, match=r"query_stock_asset \(probe\) within 0.2 s"):
            broker.probe()
        assert not broker.connected
    finally:
        miniqmt.resume(deliver=False)
        broker.close()


def test_probe_without_answer_is_a_disconnect(broker, miniqmt):
    """MiniQMT dropped us (the asset query answers None): the probe says so."""
    miniqmt.disconnect(notify=False)
    with pytest.raises(BrokerDisconnected, match="probe"):
        broker.probe()
