"""The live broker: a MiniQMT account through xtquant's XtQuantTrader (DESIGN §6).

xtquant is imported only inside `connect()`: its native parts are Windows .pyd
files and `import xtquant` makes a network version check, so this module has to
import anywhere (Linux CI, the paper-only server) without it.

xtquant runs every callback on one single-thread executor, which also delivers
the answers to synchronous calls: a query or order made from a callback waits
for itself forever, and an exception raised in a callback vanishes. So the
callbacks here only convert and queue; the worker drains the queue from its own
loop and makes every trader call itself.
"""

import itertools
import logging
import os
import queue
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from .base import (
    BUY,
    SELL,
    Broker,
    BrokerAsset,
    BrokerDisconnected,
    BrokerError,
    BrokerEvent,
    BrokerNotConnected,
    BrokerOrder,
    BrokerPosition,
    BrokerTimeout,
    BrokerTrade,
    OrderRequest,
)
from .deadline import DeadlineExceeded, call_with_deadline
from .xtquant_rows import (
    STOCK_BUY,
    STOCK_SELL,
    cancel_error_event_from,
    decimal_from,
    order_error_event_from,
    order_event_from,
    order_from,
    position_from,
    trade_event_from,
    trade_from,
)

logger = logging.getLogger(__name__)

ORDER_REMARK_MAX = 24  # MiniQMT cuts longer remarks silently; reconciliation by key would then fail
DEFAULT_BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
DEFAULT_CONNECT_TIMEOUT, DEFAULT_CALL_TIMEOUT = 20.0, 10.0  # seconds; settings QMT_*_TIMEOUT_SECONDS
DEFAULT_PROBE_TIMEOUT = 3.0  # seconds; setting QMT_PROBE_TIMEOUT_SECONDS

_session_counter = itertools.count(int(time.time()))


def session_id_new() -> int:
    """A positive int32 session id that no other client on this machine is using.

    MiniQMT needs a distinct session id per concurrent client: the process id
    sits in the high 15 bits, a per-process counter (seeded from the clock, so
    a restarted process with a recycled pid starts elsewhere) in the low 16.
    """
    low = next(_session_counter) & 0xFFFF
    return ((os.getpid() % 0x7FFF) + 1) << 16 | low


def _xtquant_modules():
    try:
        from xtquant import xttrader, xttype
    except ImportError as exc:
        raise BrokerError(
            f"xtquant is not usable here ({exc}); the live broker needs Windows with MiniQMT and `pip install xtquant`"
        ) from exc
    return xttrader, xttype


class XtQuantBroker(Broker):
    """One MiniQMT stock account. All methods run on the worker's thread; callbacks only queue events."""

    can_hang = True  # xttrader's calls wait for MiniQMT forever (DESIGN §6)

    def __init__(
        self,
        *,
        userdata_mini_path: str | Path,
        account_id: str,
        session_id_factory: Callable[[], int] | None = None,
        trader_factory: Callable[[str, int], object] | None = None,
        connect_timeout: float | None = None,
        call_timeout: float | None = None,
        probe_timeout: float | None = None,
    ):
        self.userdata_mini_path = str(userdata_mini_path)
        self.account_id = str(account_id)
        self.session_id: int | None = None
        self._session_id_factory = session_id_factory or session_id_new
        self._trader_factory = (
            trader_factory  # (path, session_id) -> XtQuantTrader-like; default the real one
        )
        self._events: queue.SimpleQueue[BrokerEvent] = queue.SimpleQueue()
        self._trader = None
        self._account = None
        self._connected = False
        self._generation = 0  # which trader the callbacks belong to; stale ones may not mark us disconnected
        self.connect_timeout = connect_timeout or _setting(
            "QMT_CONNECT_TIMEOUT_SECONDS", DEFAULT_CONNECT_TIMEOUT
        )
        self.call_timeout = call_timeout or _setting("QMT_CALL_TIMEOUT_SECONDS", DEFAULT_CALL_TIMEOUT)
        # The probe asks the cheapest question; an answer slower than this counts as a hang.
        self.probe_timeout = probe_timeout or _setting("QMT_PROBE_TIMEOUT_SECONDS", DEFAULT_PROBE_TIMEOUT)

    @property
    def connected(self) -> bool:
        return self._connected

    # -- lifecycle ---------------------------------------------------------------
    def connect(self) -> None:
        """Start a fresh XtQuantTrader with a new session id, connect and subscribe the account."""
        self.close()
        xttrader, xttype = _xtquant_modules()
        self._generation += 1
        self.session_id = self._session_id_factory()
        factory = self._trader_factory or xttrader.XtQuantTrader
        trader = self._trader = factory(self.userdata_mini_path, self.session_id)
        try:
            trader.register_callback(_TraderCallback(self, self._generation))

            def start_and_connect():
                trader.start()
                return trader.connect()

            result = self._bounded("connect", start_and_connect, timeout=self.connect_timeout)
            if result != 0:
                raise BrokerDisconnected(
                    f"connecting to MiniQMT at {self.userdata_mini_path} (session {self.session_id}) returned "
                    f"{result}; is MiniQMT running and logged in?"
                )
            account = xttype.StockAccount(self.account_id, "STOCK")
            result = self._bounded("subscribe", trader.subscribe, account, timeout=self.connect_timeout)
            if result != 0:
                raise BrokerDisconnected(
                    f"subscribing account {self.account_id} returned {result}; is it logged in to this MiniQMT?"
                )
        except BaseException:
            self.close()
            raise
        self._account = account
        self._connected = True

    def reconnect(
        self,
        *,
        backoff_seconds: Sequence[float] = DEFAULT_BACKOFF_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """connect() until it works, pausing backoff_seconds[i] before retry i; re-raise the last failure after."""
        pauses = [0.0, *backoff_seconds]
        for attempt, pause in enumerate(pauses, start=1):
            if pause:
                sleep(pause)
            try:
                self.connect()
                return
            except BrokerDisconnected as exc:
                logger.warning("MiniQMT reconnect attempt %d/%d failed: %s", attempt, len(pauses), exc)
                if attempt == len(pauses):
                    raise

    def close(self) -> None:
        trader, self._trader = self._trader, None
        self._connected = False
        self._account = None
        if trader is None:
            return
        try:
            # xttrader.stop() waits for its executor, which a hung MiniQMT answer can block too.
            call_with_deadline(trader.stop, timeout=self.call_timeout, name="xtquant stop")
        except DeadlineExceeded:
            logger.warning(
                "XtQuantTrader (session %s) did not stop within %g s; abandoned",
                self.session_id,
                self.call_timeout,
            )
        except Exception:
            logger.warning("stopping XtQuantTrader (session %s) failed", self.session_id, exc_info=True)

    # -- queries -------------------------------------------------------------------
    def query_asset(self) -> BrokerAsset:
        asset = self._bounded("query_stock_asset", self._live().query_stock_asset, self._account)
        if asset is None:
            self._lost("query_stock_asset")
        return BrokerAsset(
            cash=decimal_from(asset.cash),
            frozen_cash=decimal_from(asset.frozen_cash),
            market_value=decimal_from(asset.market_value),
            total_asset=decimal_from(asset.total_asset),
        )

    def probe(self) -> None:
        """query_stock_asset bounded by probe_timeout: a hung MiniQMT becomes a BrokerTimeout (a disconnect)."""
        trader = self._live()
        what = "query_stock_asset (probe)"
        timeout = min(self.probe_timeout, self.call_timeout)  # never longer than any other call
        if self._bounded(what, trader.query_stock_asset, self._account, timeout=timeout) is None:
            self._lost(what)

    def query_positions(self) -> list[BrokerPosition]:
        trader = self._live()
        rows = self._rows(
            trader,
            "query_stock_positions",
            self._bounded("query_stock_positions", trader.query_stock_positions, self._account),
        )
        return [position_from(row) for row in rows]

    def query_orders(self) -> list[BrokerOrder]:
        trader = self._live()
        rows = self._rows(
            trader,
            "query_stock_orders",
            self._bounded("query_stock_orders", trader.query_stock_orders, self._account, False),
        )
        return [order for order in map(order_from, rows) if order is not None]

    def query_trades(self) -> list[BrokerTrade]:
        trader = self._live()
        rows = self._rows(
            trader,
            "query_stock_trades",
            self._bounded("query_stock_trades", trader.query_stock_trades, self._account),
        )
        return [trade for trade in map(trade_from, rows) if trade is not None]

    # -- orders ----------------------------------------------------------------------
    def place_order(self, request: OrderRequest) -> int:
        key = request.key
        if not key or len(key) > ORDER_REMARK_MAX or not key.isascii():
            raise ValueError(
                f"order key {key!r} must be 1..{ORDER_REMARK_MAX} ASCII characters (xtquant order_remark)"
            )
        order_type = {BUY: STOCK_BUY, SELL: STOCK_SELL}.get(request.side)
        if order_type is None:
            raise ValueError(f"order side must be {BUY!r} or {SELL!r}, not {request.side!r}")
        trader = self._live()
        order_id = self._bounded(
            f"order_stock {key}",
            trader.order_stock,
            self._account,
            request.code,
            order_type,
            int(request.volume),
            request.price_type,
            float(request.price),
            request.strategy_name,
            key,
        )
        if order_id is None or order_id <= 0:
            raise BrokerError(
                f"order_stock returned {order_id} for {key} ({request.side} {request.volume} {request.code} "
                f"@ {request.price}): MiniQMT did not take the order"
            )
        return int(order_id)

    def cancel_order(self, broker_order_id: int) -> int:
        trader = self._live()
        return int(
            self._bounded(
                f"cancel_order_stock {broker_order_id}",
                trader.cancel_order_stock,
                self._account,
                int(broker_order_id),
            )
        )

    def drain_events(self) -> list[BrokerEvent]:
        events = []
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                return events

    # -- internals ---------------------------------------------------------------------
    def _bounded(self, what: str, fn, *args, timeout: float | None = None):
        """fn(*args) with a deadline; a call past it is a disconnect (BrokerTimeout), its outcome unknown."""
        timeout = self.call_timeout if timeout is None else timeout
        try:
            return call_with_deadline(fn, *args, timeout=timeout, name=f"xtquant {what}")
        except DeadlineExceeded:
            self._connected = False
            raise BrokerTimeout(
                f"MiniQMT did not answer {what} within {timeout:g} s (account {self.account_id}): "
                "treated as a disconnect"
            ) from None

    def _live(self):
        if not self._connected or self._trader is None:
            raise BrokerNotConnected(
                f"not connected to MiniQMT for account {self.account_id}; reconnect first"
            )
        return self._trader

    def _lost(self, call: str) -> NoReturn:
        self._connected = False
        raise BrokerDisconnected(f"{call} got no answer from MiniQMT for account {self.account_id}")

    def _rows(self, trader, call: str, rows) -> list:
        if rows is not None:
            return list(rows)
        # xtquant documents None for list queries as "failed, or nothing today"; the asset
        # query returns None only on failure, so it tells an empty day from a dead link.
        if self._bounded("query_stock_asset", trader.query_stock_asset, self._account) is None:
            self._lost(call)
        return []

    def _callback_event(self, generation: int, event: BrokerEvent) -> None:
        if event.kind == "disconnected":
            if generation != self._generation:
                return  # a trader we already replaced says goodbye
            self._connected = False
        self._events.put(event)


def _setting(name: str, default: float) -> float:
    try:
        from django.conf import settings

        return float(getattr(settings, name, default))
    except Exception:  # outside a configured Django project (scripts, tests of this module alone)
        return default


class _TraderCallback:
    """Registered with XtQuantTrader: converts pushes and queues them, nothing else (runs on xtquant's thread)."""

    def __init__(self, broker: XtQuantBroker, generation: int):
        self._broker = broker
        self._generation = generation

    def on_stock_order(self, order):
        self._queue("order", order, order_event_from)

    def on_stock_trade(self, trade):
        self._queue("trade", trade, trade_event_from)

    def on_order_error(self, order_error):
        self._queue("order_error", order_error, order_error_event_from)

    def on_cancel_error(self, cancel_error):
        self._queue("cancel_error", cancel_error, cancel_error_event_from)

    def on_disconnected(self):
        try:
            self._broker._callback_event(
                self._generation, BrokerEvent(kind="disconnected", message="MiniQMT disconnected")
            )
        except Exception:
            logger.exception("xtquant on_disconnected could not be queued")

    def __getattr__(self, name):
        # Pushes the worker polls for anyway (asset, positions, account status, async answers).
        if name.startswith("on_"):
            return _ignore
        raise AttributeError(name)

    def _queue(self, kind, xt_object, convert):
        try:
            account_id = getattr(xt_object, "account_id", "")
            if account_id and account_id != self._broker.account_id:
                return  # another account on the same MiniQMT
            event = convert(xt_object)
            if event is not None:
                self._broker._callback_event(self._generation, event)
        except Exception:
            logger.exception("xtquant %s push could not be read: %r", kind, xt_object)


def _ignore(*args, **kwargs):
    return None


# -- xtquant objects -> broker dataclasses ------------------------------------------------
