"""A small fake MiniQMT terminal for the xtpythonclient stand-in.

It keeps each account's cash, positions, today's orders and trades in memory,
assigns order ids, and pushes order status changes, trades, order and cancel
errors and disconnection to the subscribed client sessions, the way MiniQMT
does (DESIGN §6). Tests steer it: reject or refuse the next order, fill an
order, drop the connection, refuse new connections.
"""

import dataclasses
import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass, field

ORDER_REPORTED, ORDER_PART_CANCEL, ORDER_CANCELED = 50, 53, 54
ORDER_PART_SUCC, ORDER_SUCCEEDED, ORDER_JUNK = 55, 56, 57
FINAL_STATUSES = {ORDER_PART_CANCEL, ORDER_CANCELED, ORDER_SUCCEEDED, ORDER_JUNK}
STOCK_BUY, STOCK_SELL = 23, 24
OFFSET_FLAG_OPEN, OFFSET_FLAG_CLOSE = 48, 49
SECURITY_ACCOUNT = 2
REMARK_LIMIT = 24  # MiniQMT cuts longer order remarks silently

_terminals = {}  # userdata path -> FakeMiniQmt


def terminal_at(path):
    return _terminals.get(str(path))


def terminals_reset():
    """Shut every fake terminal (end of a test)."""
    for terminal in list(_terminals.values()):
        terminal.shutdown()
    _terminals.clear()


# The data objects MiniQMT hands to xttrader; fields as xtquant.xttype documents them.
@dataclass
class XtAsset:
    account_id: str
    cash: float
    frozen_cash: float
    market_value: float
    total_asset: float
    fetch_balance: float = 0.0
    account_type: int = SECURITY_ACCOUNT


@dataclass
class XtPosition:
    account_id: str
    stock_code: str
    volume: int
    can_use_volume: int
    open_price: float
    market_value: float
    frozen_volume: int = 0
    on_road_volume: int = 0
    yesterday_volume: int = 0
    avg_price: float = 0.0
    direction: int = 48
    last_price: float = 0.0
    profit_rate: float = 0.0
    secu_account: str = ""
    instrument_name: str = ""
    account_type: int = SECURITY_ACCOUNT


@dataclass
class XtOrder:
    account_id: str
    stock_code: str
    order_id: int
    order_sysid: str
    order_time: int
    order_type: int
    order_volume: int
    price_type: int
    price: float
    traded_volume: int = 0
    traded_price: float = 0.0
    order_status: int = ORDER_REPORTED
    status_msg: str = ""
    strategy_name: str = ""
    order_remark: str = ""
    direction: int = 48
    offset_flag: int = OFFSET_FLAG_OPEN
    secu_account: str = ""
    instrument_name: str = ""
    account_type: int = SECURITY_ACCOUNT


@dataclass
class XtTrade:
    account_id: str
    stock_code: str
    order_type: int
    traded_id: str
    traded_time: int
    traded_price: float
    traded_volume: int
    traded_amount: float
    order_id: int
    order_sysid: str
    strategy_name: str = ""
    order_remark: str = ""
    direction: int = 48
    offset_flag: int = OFFSET_FLAG_OPEN
    commission: float = 0.0
    secu_account: str = ""
    instrument_name: str = ""
    account_type: int = SECURITY_ACCOUNT


@dataclass
class XtOrderError:
    account_id: str
    order_id: int
    error_id: int = -1
    error_msg: str = ""
    strategy_name: str = ""
    order_remark: str = ""
    seq: int = 0  # the request seq; xttrader uses it to order this after the order response
    account_type: int = SECURITY_ACCOUNT


@dataclass
class XtCancelError:
    account_id: str
    order_id: int
    market: int = 0
    order_sysid: str = ""
    error_id: int = -1
    error_msg: str = ""
    account_type: int = SECURITY_ACCOUNT


# Answers to order and cancel requests: native structs, read by xttrader through their m_* fields.
class OrderStockResp:
    def __init__(self, account_id, order_id, strategy_name, order_remark, error_msg=""):
        self.m_strAccountID = account_id
        self.m_nOrderID = order_id
        self.m_strStrategyName = strategy_name
        self.m_strOrderRemark = order_remark
        self.m_strErrorMsg = error_msg


class CancelOrderStockResp:
    def __init__(self, account_id, cancel_result, order_id, error_msg=""):
        self.m_strAccountID = account_id
        self.m_nCancelResult = cancel_result
        self.m_nOrderID = order_id
        # Empty for a cancel by order id: xttrader then matches cancel errors by order id.
        self.m_strOrderSysID = ""
        self.m_strErrorMsg = error_msg


@dataclass
class Book:
    """One account in the terminal."""

    account_id: str
    cash: float
    frozen_cash: float = 0.0
    positions: dict = field(default_factory=dict)  # code -> XtPosition
    orders: dict = field(default_factory=dict)  # order id -> XtOrder
    trades: list = field(default_factory=list)

    def asset(self):
        market_value = sum(p.volume * (p.last_price or p.open_price) for p in self.positions.values())
        total = self.cash + self.frozen_cash + market_value
        return XtAsset(self.account_id, self.cash, self.frozen_cash, market_value, total, self.cash)


class FakeMiniQmt:
    """A MiniQMT terminal answering at `userdata_path`."""

    def __init__(self, userdata_path):
        self.userdata_path = str(userdata_path)
        self.books = {}
        self.clients = []  # sessions attached (connected at some point and not stopped)
        self.connect_result = 0  # what connect() answers; non-zero = MiniQMT refuses
        self.connects_to_refuse = 0  # refuse this many connects (-1 each), then accept (see refuse_connects)
        self.connect_attempts = 0
        self.session_ids = []  # every session that connected, in order
        self.calls = []  # (request, calling thread name, session) for every native call
        self.handler_errors = []  # what xttrader's bound handlers raised on the IO thread
        self._order_ids = itertools.count(1_082_130_433)  # real ids are large positive ints
        self._trade_ids = itertools.count(1)
        self._order_faults = deque()  # ("reject" | "refuse", message) for the next orders
        self._cancel_faults = deque()  # messages for the next cancels
        self._lock = threading.RLock()
        self._answering = threading.Event()  # cleared while MiniQMT hangs (see stall)
        self._answering.set()
        self._deliver_stalled = True
        self.stalled_calls = []  # requests that arrived while hung
        _terminals[self.userdata_path] = self

    # -- set-up and steering (tests) ------------------------------------------
    def open_account(self, account_id, *, cash):
        self.books[account_id] = Book(account_id, float(cash))
        return self.books[account_id]

    def set_position(
        self, account_id, code, *, volume, can_use_volume, avg_price, last_price, open_price=None
    ):
        self.books[account_id].positions[code] = XtPosition(
            account_id=account_id,
            stock_code=code,
            volume=volume,
            can_use_volume=can_use_volume,
            open_price=avg_price if open_price is None else open_price,
            market_value=volume * last_price,
            avg_price=avg_price,
            last_price=last_price,
        )

    def reject_next_order(self, message="可用资金不足"):
        """The next order gets an id, then status 57 and an order error (the broker's counter rejected it)."""
        self._order_faults.append(("reject", message))

    def refuse_next_order(self, message="下单失败"):
        """The next order_stock answers -1 (never reached the counter)."""
        self._order_faults.append(("refuse", message))

    def reject_next_cancel(self, message="撤单失败"):
        """The next cancel answers -1 and pushes a cancel error."""
        self._cancel_faults.append(message)

    def refuse_connects(self, count):
        """MiniQMT is still starting: the next `count` connects answer -1, later ones succeed."""
        self.connects_to_refuse = count

    def disconnect(self, *, notify=True):
        """MiniQMT drops every session (it restarts daily); with notify, each gets on_disconnected."""
        with self._lock:
            for client in self.clients:
                client.connected = False
                if notify:
                    client.deliver("Disconnected")

    def stall(self):
        """MiniQMT stops answering: every native call (connect, requests) blocks until resume()."""
        self._answering.clear()

    def resume(self, *, deliver=True):
        """MiniQMT answers again; with deliver=False the requests made while hung are lost unanswered."""
        self._deliver_stalled = deliver
        self._answering.set()

    def gate(self, request):
        """Called by the client before each native call; False means drop the request (it never arrives)."""
        if self._answering.is_set():
            return True
        self.stalled_calls.append(request)
        self._answering.wait()
        return self._deliver_stalled

    def push(self, account_id, topic, payload):
        """Push any object (even a broken one) to the sessions subscribed to the account."""
        self._push(account_id, topic, payload)

    def fill(self, order_id, *, volume=None, price=None):
        """Trade (part of) an open order and push the trade and the order's new status."""
        with self._lock:
            order = self._order(order_id)
            book = self.books[order.account_id]
            remaining = order.order_volume - order.traded_volume
            volume = remaining if volume is None else volume
            price = order.price if price is None else price
            assert 0 < volume <= remaining and order.order_status not in FINAL_STATUSES
            trade = XtTrade(
                account_id=order.account_id,
                stock_code=order.stock_code,
                order_type=order.order_type,
                traded_id=f"T{next(self._trade_ids):08d}",
                traded_time=int(time.time()),
                traded_price=price,
                traded_volume=volume,
                traded_amount=price * volume,
                order_id=order.order_id,
                order_sysid=order.order_sysid,
                strategy_name=order.strategy_name,
                order_remark=order.order_remark,
                offset_flag=order.offset_flag,
                commission=round(max(5.0, price * volume * 0.00025), 2),
            )
            book.trades.append(trade)
            filled_before = order.traded_volume
            order.traded_volume += volume
            order.traded_price = (order.traded_price * filled_before + price * volume) / order.traded_volume
            order.order_status = (
                ORDER_SUCCEEDED if order.traded_volume == order.order_volume else ORDER_PART_SUCC
            )
            position = book.positions.get(order.stock_code)
            if order.order_type == STOCK_BUY:
                book.frozen_cash -= order.price * volume
                book.cash += (order.price - price) * volume - trade.commission
                if position is None:
                    position = XtPosition(
                        order.account_id, order.stock_code, 0, 0, price, 0.0, avg_price=price
                    )
                    book.positions[order.stock_code] = position
                cost = position.avg_price * position.volume + price * volume
                position.volume += volume  # T+1: can_use_volume grows tomorrow
                position.avg_price = cost / position.volume
            else:
                position.frozen_volume -= volume
                position.volume -= volume
                book.cash += price * volume - trade.commission
            position.last_price = price
            position.market_value = position.volume * price
            self._push(order.account_id, "StockTrade", dataclasses.replace(trade))
            self._push(order.account_id, "StockOrder", dataclasses.replace(order))
        return trade

    def orders(self, account_id):
        return list(self.books[account_id].orders.values())

    def live_clients(self):
        return [c for c in self.clients if c.connected]

    def shutdown(self):
        self.resume(deliver=False)
        for client in list(self.clients):
            client.stop()
        _terminals.pop(self.userdata_path, None)

    # -- the native client's side ---------------------------------------------
    def attach(self, client):
        with self._lock:
            self.connect_attempts += 1
            if self.connect_result != 0:
                return self.connect_result
            if self.connects_to_refuse > 0:
                self.connects_to_refuse -= 1
                return -1
            if any(c.session == client.session for c in self.live_clients()):
                return -1  # session ids must be unique among concurrent clients
            client.connected = True
            if client not in self.clients:
                self.clients.append(client)
            self.session_ids.append(client.session)
            return 0

    def detach(self, client):
        with self._lock:
            if client in self.clients:
                self.clients.remove(client)

    def subscribe(self, client, account_id):
        with self._lock:
            if not client.connected or account_id not in self.books:
                return -1  # account not logged in to this terminal
            client.subscribed.add(account_id)
            return 0

    def order_stock(self, client, seq, req):
        with self._lock:
            account_id = req.m_strAccountID
            remark = req.m_strOrderRemark[:REMARK_LIMIT]
            fault, message = self._order_faults.popleft() if self._order_faults else (None, "")
            book = self.books.get(account_id)
            if fault == "refuse" or book is None or account_id not in client.subscribed:
                resp = OrderStockResp(account_id, -1, req.m_strStrategyName, remark, message or "账号未登录")
                client.deliver("OrderStockResp", seq, resp)
                return
            order = XtOrder(
                account_id=account_id,
                stock_code=req.m_strStockCode,
                order_id=next(self._order_ids),
                order_sysid="",
                order_time=int(time.time()),
                order_type=req.m_nOrderType,
                order_volume=req.m_nOrderVolume,
                price_type=req.m_nPriceType,
                price=req.m_dPrice,
                strategy_name=req.m_strStrategyName,
                order_remark=remark,
                offset_flag=OFFSET_FLAG_OPEN if req.m_nOrderType == STOCK_BUY else OFFSET_FLAG_CLOSE,
            )
            order.order_sysid = str(order.order_id % 1_000_000)
            book.orders[order.order_id] = order
            if fault is None:
                message = self._counter_check(book, order)
            if message:
                order.order_status, order.status_msg = ORDER_JUNK, message
            else:
                self._freeze(book, order)
            resp = OrderStockResp(account_id, order.order_id, order.strategy_name, remark)
            client.deliver("OrderStockResp", seq, resp)
            self._push(account_id, "StockOrder", dataclasses.replace(order))
            if message:
                error = XtOrderError(
                    account_id, order.order_id, -61, message, order.strategy_name, remark, seq
                )
                self._push(account_id, "OrderError", error)

    def cancel_order_stock(self, client, seq, req):
        with self._lock:
            account_id, order_id = req.m_strAccountID, req.m_nOrderID
            order = self.books[account_id].orders.get(order_id) if account_id in self.books else None
            if order is None:
                result = -2
            elif order.order_status in FINAL_STATUSES:
                result = -1
            elif self._cancel_faults:
                result = -1
                error = XtCancelError(account_id, order_id, error_msg=self._cancel_faults.popleft())
                client.deliver(
                    "CancelOrderStockResp", seq, CancelOrderStockResp(account_id, result, order_id)
                )
                self._push(account_id, "CancelError", error)
                return
            else:
                result = 0
                self._unfreeze(self.books[account_id], order)
                order.order_status = ORDER_PART_CANCEL if order.traded_volume else ORDER_CANCELED
            client.deliver("CancelOrderStockResp", seq, CancelOrderStockResp(account_id, result, order_id))
            if result == 0:
                self._push(account_id, "StockOrder", dataclasses.replace(order))

    def query(self, client, what, req):
        with self._lock:
            book = self.books.get(req.m_strAccountID)
            if book is None:
                return None
            if what == "asset":
                return [book.asset()]
            rows = {
                "orders": lambda: [
                    o
                    for o in book.orders.values()
                    if not req.m_bCanCancel or o.order_status not in FINAL_STATUSES
                ],
                "trades": lambda: book.trades,
                "positions": lambda: book.positions.values(),
            }[what]()
            # xttrader documents None for "failed or empty"; MiniQMT answers an empty day with None.
            return [dataclasses.replace(row) for row in rows] or None

    # -- internals --------------------------------------------------------------
    def _order(self, order_id):
        for book in self.books.values():
            if order_id in book.orders:
                return book.orders[order_id]
        raise KeyError(order_id)

    def _counter_check(self, book, order):
        if order.order_type == STOCK_BUY and order.price * order.order_volume > book.cash:
            return "可用资金不足"
        if order.order_type == STOCK_SELL:
            position = book.positions.get(order.stock_code)
            if position is None or position.can_use_volume < order.order_volume:
                return "可用股份不足"
        return ""

    def _freeze(self, book, order):
        if order.order_type == STOCK_BUY:
            book.cash -= order.price * order.order_volume
            book.frozen_cash += order.price * order.order_volume
        else:
            position = book.positions[order.stock_code]
            position.can_use_volume -= order.order_volume
            position.frozen_volume += order.order_volume

    def _unfreeze(self, book, order):
        remaining = order.order_volume - order.traded_volume
        if order.order_type == STOCK_BUY:
            book.cash += order.price * remaining
            book.frozen_cash -= order.price * remaining
        else:
            position = book.positions[order.stock_code]
            position.can_use_volume += remaining
            position.frozen_volume -= remaining

    def _push(self, account_id, topic, payload):
        for client in self.live_clients():
            if account_id in client.subscribed:
                client.deliver(topic, payload)
