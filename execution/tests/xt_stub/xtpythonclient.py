"""Stand-in for xtquant's native `xtpythonclient` module (a Windows-only .pyd), in plain Python.

What the genuine xttrader.py (xtquant 250807) uses of it, and so all this provides:
- `XtQuantAsyncClient(path_bytes, "xtquant", session_id)`, on which the
  XtQuantTrader constructor calls `bindOn<Topic>Callback(fn)` for ~45 topics,
  then `setTimeout`, `init`, `start`, `stop`, `connect` (0 = ok), `nextSeq`
  and `<request>WithSeq(seq, req)`;
- request structs it fills attribute by attribute (`SubscribeReq`,
  `OrderStockReq`, `CancelOrderStockReq`, `QueryStock*Req`, ...).

Answers and pushes come back on the client's own IO thread, as the native
client does; xttrader hands every one of them to its single-thread executor,
which is where user callbacks and the futures of synchronous calls run.
The MiniQMT the client talks to is a `FakeMiniQmt` registered at the same
userdata path (see miniqmt.py).
"""

import itertools
import queue
import threading

from .miniqmt import (  # noqa: F401  (the native module exports these data types too)
    CancelOrderStockResp,
    OrderStockResp,
    XtAsset,
    XtCancelError,
    XtOrder,
    XtOrderError,
    XtPosition,
    XtTrade,
    terminal_at,
)


class _Request:
    """A request struct: xttrader sets the m_* fields it needs, the rest keep these defaults."""

    m_nAccountType = 0
    m_strAccountID = ""


class SubscribeReq(_Request):
    pass


class UnsubscribeReq(_Request):
    pass


class OrderStockReq(_Request):
    m_strStockCode = ""
    m_nOrderType = 0
    m_nOrderVolume = 0
    m_nPriceType = 0
    m_dPrice = 0.0
    m_strStrategyName = ""
    m_strOrderRemark = ""


class CancelOrderStockReq(_Request):
    m_nOrderID = -1
    m_strOrderSysID = ""
    m_nMarket = -1


class QueryStockAssetReq(_Request):
    pass


class QueryStockOrdersReq(_Request):
    m_nOrderID = 0  # 0: all of today's orders
    m_bCanCancel = False


class QueryStockTradesReq(_Request):
    pass


class QueryStockPositionsReq(_Request):
    m_strStockCode = ""


class XtQuantAsyncClient:
    """One client session with MiniQMT."""

    def __init__(self, path, name, session):
        self.path = path.decode("gb18030")
        self.name = name
        self.session = session
        self.callbacks = {}  # topic -> the function xttrader bound
        self.connected = False
        self.subscribed = set()  # account ids
        self.timeout_ms = None
        self._seq = itertools.count(1)
        self._inbox = queue.SimpleQueue()
        self._io_thread = None
        self._stopped = False
        self.terminal = terminal_at(self.path)

    def __getattr__(self, name):
        # bindOn<Topic>Callback(fn): xttrader binds one function per response or push topic.
        if name.startswith("bindOn") and name.endswith("Callback"):
            topic = name[len("bindOn") : -len("Callback")]
            return lambda fn: self.callbacks.__setitem__(topic, fn)
        raise AttributeError(f"the xtpythonclient stand-in has no {name!r}; xttrader.py needs it now")

    # -- lifecycle -----------------------------------------------------------
    def setTimeout(self, timeout):
        self.timeout_ms = timeout

    def init(self):
        self._record("init")

    def start(self):
        self._record("start")
        self._io_thread = threading.Thread(
            target=self._io_loop, name=f"xtpythonclient-io-{self.session}", daemon=True
        )
        self._io_thread.start()

    def stop(self):
        self._record("stop")
        self._stopped = True
        self.connected = False
        if self._io_thread is not None:
            self._inbox.put(None)
            self._io_thread.join(timeout=5)
            self._io_thread = None
        if self.terminal is not None:
            self.terminal.detach(self)

    def connect(self):
        self._record("connect")
        if not self._gate("connect"):
            return -1
        if self.terminal is None:
            return -1  # no MiniQMT running at this userdata path
        return self.terminal.attach(self)

    def nextSeq(self):
        return next(self._seq)

    # -- requests: every answer goes through the IO thread, keyed by seq ----
    def subscribeWithSeq(self, seq, req):
        self._record("subscribeWithSeq")
        if not self._gate("subscribeWithSeq"):
            return  # lost while MiniQMT hung: never answered
        result = self.terminal.subscribe(self, req.m_strAccountID) if self.terminal else -1
        self.deliver("SubscribeResp", seq, result)

    def unsubscribeWithSeq(self, seq, req):
        self._record("unsubscribeWithSeq")
        if not self._gate("unsubscribeWithSeq"):
            return  # lost while MiniQMT hung: never answered
        self.subscribed.discard(req.m_strAccountID)
        self.deliver("UnsubscribeResp", seq, 0)

    def orderStockWithSeq(self, seq, req):
        self._record("orderStockWithSeq")
        if not self._gate("orderStockWithSeq"):
            return  # lost while MiniQMT hung: never answered
        if self.terminal is None or not self.connected:
            resp = OrderStockResp(
                req.m_strAccountID, -1, req.m_strStrategyName, req.m_strOrderRemark, "未连接"
            )
            self.deliver("OrderStockResp", seq, resp)
            return
        self.terminal.order_stock(self, seq, req)

    def cancelOrderStockWithSeq(self, seq, req):
        self._record("cancelOrderStockWithSeq")
        if not self._gate("cancelOrderStockWithSeq"):
            return  # lost while MiniQMT hung: never answered
        if self.terminal is None or not self.connected:
            self.deliver(
                "CancelOrderStockResp", seq, CancelOrderStockResp(req.m_strAccountID, -3, req.m_nOrderID)
            )
            return
        self.terminal.cancel_order_stock(self, seq, req)

    def queryStockAssetWithSeq(self, seq, req):
        self._record("queryStockAssetWithSeq")
        if not self._gate("queryStockAssetWithSeq"):
            return  # lost while MiniQMT hung: never answered
        self.deliver("QueryStockAsset", seq, self._query("asset", req))

    def queryStockOrdersWithSeq(self, seq, req):
        self._record("queryStockOrdersWithSeq")
        if not self._gate("queryStockOrdersWithSeq"):
            return  # lost while MiniQMT hung: never answered
        self.deliver("QueryStockOrders", seq, self._query("orders", req))

    def queryStockTradesWithSeq(self, seq, req):
        self._record("queryStockTradesWithSeq")
        if not self._gate("queryStockTradesWithSeq"):
            return  # lost while MiniQMT hung: never answered
        self.deliver("QueryStockTrades", seq, self._query("trades", req))

    def queryStockPositionsWithSeq(self, seq, req):
        self._record("queryStockPositionsWithSeq")
        if not self._gate("queryStockPositionsWithSeq"):
            return  # lost while MiniQMT hung: never answered
        self.deliver("QueryStockPositions", seq, self._query("positions", req))

    # -- plumbing ------------------------------------------------------------
    def _query(self, what, req):
        if self.terminal is None or not self.connected:
            return None  # what xttrader's callers see when MiniQMT is not answering
        return self.terminal.query(self, what, req)

    def deliver(self, topic, *args):
        """Queue an answer or a push for the IO thread (dropped once the client is stopped)."""
        if not self._stopped:
            self._inbox.put((topic, args))

    def _io_loop(self):
        while True:
            item = self._inbox.get()
            if item is None:
                return
            topic, args = item
            handler = self.callbacks.get(topic)
            if handler is None:
                continue
            try:
                handler(*args)
            except Exception as exc:  # the native layer ignores what a handler raises
                if self.terminal is not None:
                    self.terminal.handler_errors.append((topic, exc))

    def _gate(self, request):
        """A hung MiniQMT blocks the calling thread here, as the native client does (see FakeMiniQmt.stall)."""
        return self.terminal.gate(request) if self.terminal is not None else True

    def _record(self, request):
        if self.terminal is not None:
            self.terminal.calls.append((request, threading.current_thread().name, self.session))
