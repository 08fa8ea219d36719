"""The one broker interface the worker talks to (paper and xtquant implement it).

Shapes follow xtquant (DESIGN §6) so the worker treats both brokers alike:
order statuses are xtquant's codes, `remark` carries our order key, and
events from callbacks are queued and drained by the worker's own loop.
"""

import abc
import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

BUY, SELL = "buy", "sell"
FIX_PRICE = 11  # xtconstant.FIX_PRICE

# cancel_order results, as xtquant's cancel_order_stock returns them.
CANCEL_OK, CANCEL_ALREADY_FINAL, CANCEL_NOT_FOUND, CANCEL_NOT_LOGGED_IN = 0, -1, -2, -3


class BrokerError(Exception):
    """The broker refused or failed a call; the message says why."""


class BrokerDisconnected(BrokerError):
    """The connection to the broker is gone; reconnect (with backoff) before anything else."""


class BrokerNotConnected(BrokerDisconnected):
    """Refused before anything reached the broker (no connection): a send is certainly not made."""


class BrokerTimeout(BrokerDisconnected):
    """The broker did not answer within the deadline: treated as a disconnect, the outcome is unknown."""


@dataclass(frozen=True)
class BrokerAsset:
    cash: Decimal
    frozen_cash: Decimal
    market_value: Decimal
    total_asset: Decimal


@dataclass(frozen=True)
class BrokerPosition:
    code: str
    volume: int
    can_use_volume: int
    avg_price: Decimal
    market_value: Decimal
    last_price: Decimal | None = None


@dataclass(frozen=True)
class BrokerOrder:
    broker_order_id: int
    code: str
    side: str  # BUY | SELL
    volume: int
    price: Decimal
    status: int  # xtquant order status code
    traded_volume: int
    traded_price: Decimal  # average
    remark: str  # our order key (xtquant order_remark)
    message: str = ""
    order_time: dt.datetime | None = None


@dataclass(frozen=True)
class BrokerTrade:
    trade_id: str
    broker_order_id: int
    code: str
    side: str
    volume: int
    price: Decimal
    amount: Decimal
    traded_at: dt.datetime
    remark: str = ""
    fee: Decimal = Decimal(0)


@dataclass(frozen=True)
class OrderRequest:
    key: str  # unique, ≤ 24 ASCII; sent as order_remark
    code: str
    side: str
    volume: int
    price: Decimal
    price_type: int = FIX_PRICE
    strategy_name: str = "qmtjq"


@dataclass(frozen=True)
class BrokerEvent:
    """Something a callback reported: kind is 'order', 'trade', 'order_error', 'cancel_error' or 'disconnected'."""

    kind: str
    order: BrokerOrder | None = None
    trade: BrokerTrade | None = None
    broker_order_id: int | None = None
    remark: str = ""
    message: str = ""


class Broker(abc.ABC):
    """A brokerage account. All methods are called from the worker's thread only."""

    # True for a broker behind a link that can stop answering (MiniQMT): the worker probes it when idle.
    can_hang = False

    @abc.abstractmethod
    def connect(self) -> None:
        """Connect and subscribe the account; raise BrokerDisconnected on failure."""

    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def query_asset(self) -> BrokerAsset: ...

    @abc.abstractmethod
    def query_positions(self) -> list[BrokerPosition]: ...

    def query_account(self) -> tuple[BrokerAsset, list[BrokerPosition]]:
        """Cash and holdings seen together (one look at the books for brokers that can)."""
        return self.query_asset(), self.query_positions()

    def probe(self) -> None:
        """One cheap call proving the broker still answers; BrokerDisconnected (or BrokerTimeout) if not.

        The worker calls it when a period went by without any broker call, so a
        hang is noticed while idle. Brokers without a link to lose (paper) have
        nothing to check.
        """
        return None

    @abc.abstractmethod
    def query_orders(self) -> list[BrokerOrder]:
        """Today's orders of the account, including final ones."""

    @abc.abstractmethod
    def query_trades(self) -> list[BrokerTrade]:
        """Today's trades (fills) of the account."""

    @abc.abstractmethod
    def place_order(self, request: OrderRequest) -> int:
        """Send a limit order; return the broker order id (> 0) or raise BrokerError.

        A positive id does not mean acceptance: a rejected order still gets an
        id, then status 57 through `query_orders`/events.
        """

    @contextmanager
    def sending(self, *, orders: int) -> Iterator[None]:
        """A round places up to `orders` orders inside this block (each still claimed just before its call).

        A broker whose books are the shared database (paper) may write them
        once when the block ends; a real broker sends each order at its call.
        """
        yield

    @abc.abstractmethod
    def cancel_order(self, broker_order_id: int) -> int:
        """Ask to cancel; returns CANCEL_OK, CANCEL_ALREADY_FINAL, CANCEL_NOT_FOUND or CANCEL_NOT_LOGGED_IN."""

    @abc.abstractmethod
    def drain_events(self) -> list[BrokerEvent]:
        """Events queued by callbacks since the last call (never blocks)."""
