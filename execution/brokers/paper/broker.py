"""The paper broker itself: lifecycle, queries, placing and cancelling over the paper tables of one account."""

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.utils import timezone

from ...calendar import market_date
from ...models import BrokerAccount, PaperBook, PaperOrder, PaperPosition, PaperTrade
from ...models.orders import OrderStatus
from ...planner import Quote
from ..base import (
    BUY,
    CANCEL_ALREADY_FINAL,
    CANCEL_NOT_FOUND,
    CANCEL_NOT_LOGGED_IN,
    CANCEL_OK,
    Broker,
    BrokerAsset,
    BrokerDisconnected,
    BrokerError,
    BrokerEvent,
    BrokerOrder,
    BrokerPosition,
    BrokerTrade,
    OrderRequest,
)
from .book import (
    OPEN,
    PRICE_QUANTUM,
    ZERO,
    broker_order,
    broker_trade,
    can_use,
    cents,
    day_bounds,
    order_event,
)
from .checks import order_refusal, request_checked
from .fills import fill_price, order_fill, order_finish_unfilled
from .ledger import PaperLedger

logger = logging.getLogger(__name__)

QuoteSource = Callable[[list[str]], dict[str, Quote]]


@dataclass(frozen=True)
class _Placed:
    """An order taken during `sending()`: its id is reserved, the books take it when the block ends."""

    request: OrderRequest
    broker_order_id: int
    at: datetime


class _Batch:
    def __init__(self, size: int):
        self.size = max(size, 1)
        self.ids: list[int] = []
        self.placed: list[_Placed] = []


class PaperBroker(Broker):
    """A simulated brokerage over the paper tables of one paper account.

    Events are kept in an in-memory deque of this instance, not persisted:
    the worker reconciles from `query_orders`/`query_trades` on start, and
    those read the persisted books, so a crash loses no order or fill.

    Inside `sending()` orders get their (reserved) ids at once and reach the
    books together when the block ends, in the order they were placed: a
    round of N orders costs a constant number of queries. A process killed
    inside the block leaves them unplaced (never sent, and reconciled so).
    """

    def __init__(
        self,
        account: BrokerAccount,
        *,
        quote_source: QuoteSource,
        clock: Callable[[], datetime] = timezone.now,
    ):
        self.account = account
        self._quote_source = quote_source
        self._clock = clock
        self._connected = False
        self._events: deque[BrokerEvent] = deque()
        self._batch: _Batch | None = None

    # --- lifecycle ---------------------------------------------------------------

    def connect(self) -> None:
        if not self.account.is_paper:
            raise BrokerError(
                f"account {self.account.name} is live; the paper broker only simulates paper accounts"
            )
        PaperBook.objects.get_or_create(
            account=self.account, defaults={"cash": self.account.paper_starting_cash}
        )
        self._connected = True

    def close(self) -> None:
        """Nothing to release: the books live in the database."""
        self._flush()

    # --- queries -----------------------------------------------------------------

    def query_asset(self) -> BrokerAsset:
        return self.query_account()[0]

    def query_positions(self) -> list[BrokerPosition]:
        return self.query_account()[1]

    def query_account(self) -> tuple[BrokerAsset, list[BrokerPosition]]:
        book, held, quotes = self._state()
        today = market_date(self._now())
        positions = []
        for position in held:
            value, last = self._position_value(position, quotes.get(position.code))
            positions.append(
                BrokerPosition(
                    code=position.code,
                    volume=position.volume,
                    can_use_volume=can_use(position, today),
                    avg_price=position.avg_price,
                    market_value=value,
                    last_price=last,
                )
            )
        market_value = sum((p.market_value for p in positions), ZERO)
        asset = BrokerAsset(
            cash=book.cash,
            frozen_cash=book.frozen_cash,
            market_value=market_value,
            total_asset=book.cash + book.frozen_cash + market_value,
        )
        return asset, positions

    def query_orders(self) -> list[BrokerOrder]:
        self._advance()
        start, end = day_bounds(market_date(self._now()))
        orders = PaperOrder.objects.filter(account=self.account, created_at__gte=start, created_at__lt=end)
        return [broker_order(order) for order in orders.order_by("broker_order_id")]

    def query_trades(self) -> list[BrokerTrade]:
        self._advance()
        start, end = day_bounds(market_date(self._now()))
        trades = (
            PaperTrade.objects.filter(account=self.account, traded_at__gte=start, traded_at__lt=end)
            .select_related("order")
            .order_by("id")
        )
        return [broker_trade(trade, trade.order.remark) for trade in trades]

    def drain_events(self) -> list[BrokerEvent]:
        self._advance()
        events = list(self._events)
        self._events.clear()
        return events

    # --- orders ------------------------------------------------------------------

    @contextmanager
    def sending(self, *, orders: int) -> Iterator[None]:
        """Take up to `orders` orders at once; they reach the books (even after an error) when the block ends."""
        self._flush()
        self._batch = _Batch(orders)
        try:
            yield
        finally:
            self._flush()

    def place_order(self, request: OrderRequest) -> int:
        self._require_connected()
        request = request_checked(request)
        if self._batch is not None:
            return self._take(self._batch, request)
        return self._place([_Placed(request, 0, self._now())])[-1].broker_order_id

    def cancel_order(self, broker_order_id: int) -> int:
        if not self._connected:
            return CANCEL_NOT_LOGGED_IN
        # An order that the market would have filled by now fills before the cancel arrives.
        self._advance()
        with transaction.atomic():
            ledger = PaperLedger.load(self.account, order_ids=[broker_order_id])
            order = ledger.looked_up.get(broker_order_id)
            if order is None:
                return CANCEL_NOT_FOUND
            if order.status != OPEN:
                return CANCEL_ALREADY_FINAL
            order_finish_unfilled(ledger, order, "cancelled", self._now())
            ledger.save()
        self._events.extend(ledger.events)
        return CANCEL_OK

    # --- placing -----------------------------------------------------------------

    def _take(self, batch: _Batch, request: OrderRequest) -> int:
        if not batch.ids:
            batch.ids = self._reserve_ids(batch.size)
        broker_order_id = batch.ids.pop(0)
        batch.placed.append(_Placed(request, broker_order_id, self._now()))
        return broker_order_id

    def _reserve_ids(self, count: int) -> list[int]:
        """Order ids nobody else can use, reserved in the book with one conditional update."""
        while True:
            first = PaperBook.objects.filter(account=self.account).values_list("next_order_id", flat=True).get()
            if PaperBook.objects.filter(account=self.account, next_order_id=first).update(
                next_order_id=first + count
            ):
                return list(range(first, first + count))

    def _flush(self) -> None:
        batch, self._batch = self._batch, None
        if batch is not None and batch.placed:
            self._place(batch.placed)

    def _place(self, placed: list[_Placed]) -> list[PaperOrder]:
        """Check and book orders in the order they came, matching the open orders after each, as the market does."""
        quotes, quote_error = self._fetch_quotes([*(p.request.code for p in placed), *self._open_codes()])
        with transaction.atomic():
            ledger = PaperLedger.load(self.account)
            orders = []
            for item in placed:
                orders.append(self._accept_or_reject(ledger, item, quotes.get(item.request.code), quote_error))
                self._match(ledger, quotes, item.at)
            ledger.save()
        self._events.extend(ledger.events)
        return orders

    def _accept_or_reject(
        self, ledger: PaperLedger, item: _Placed, quote: Quote | None, quote_error: str
    ) -> PaperOrder:
        book, request, now = ledger.book, item.request, item.at
        broker_order_id = item.broker_order_id
        if not broker_order_id:
            broker_order_id = book.next_order_id
            book.next_order_id += 1
        order = PaperOrder(
            account=self.account,
            broker_order_id=broker_order_id,
            remark=request.key,
            code=request.code,
            side=request.side,
            volume=request.volume,
            price=request.price.quantize(PRICE_QUANTUM, rounding=ROUND_HALF_UP),
            status=OPEN,
            price_source=(quote.source if quote else "")[:16],
            created_at=now,
            updated_at=now,
        )
        position = ledger.position(request.code)
        refusal, freeze = order_refusal(
            self.account, book, request, quote, quote_error, position, market_date(now)
        )
        if refusal:
            order.status = OrderStatus.JUNK
            order.message = refusal
            ledger.order_added(order)
            ledger.events.append(order_event(order))
            ledger.events.append(
                BrokerEvent(
                    "order_error", broker_order_id=order.broker_order_id, remark=order.remark, message=refusal
                )
            )
            return order
        if request.side == BUY:
            book.cash -= freeze
            book.frozen_cash += freeze
            order.frozen_cash = freeze
        else:
            ledger.position_for_change(request.code).frozen_volume += request.volume
        ledger.order_added(order)
        ledger.events.append(order_event(order))
        return order

    # --- time passing: match open orders against fresh quotes ----------------------

    def _advance(self, extra_codes: Iterable[str] = ()) -> tuple[dict[str, Quote], PaperLedger | None]:
        """Expire yesterday's open orders and fill today's that cross; the quotes fetched and the ledger used."""
        self._require_connected()
        self._flush()
        open_codes = self._open_codes()
        quotes, _ = self._fetch_quotes([*open_codes, *extra_codes])
        if not open_codes:
            return quotes, None
        with transaction.atomic():
            ledger = PaperLedger.load(self.account)
            self._match(ledger, quotes, self._now())
            ledger.save()
        self._events.extend(ledger.events)
        return quotes, ledger

    def _state(self) -> tuple[PaperBook, list[PaperPosition], dict[str, Quote]]:
        """The book and held positions after time passed, with quotes for them."""
        held = self._held()
        quotes, ledger = self._advance([p.code for p in held])
        if ledger is not None:
            return ledger.book, ledger.held(), quotes
        return PaperBook.objects.get(account=self.account), held, quotes

    def _match(self, ledger: PaperLedger, quotes: dict[str, Quote], now: datetime) -> None:
        day_start, _ = day_bounds(market_date(now))
        for order in list(ledger.open_orders):
            if order.created_at < day_start:
                # Exchanges drop unfilled orders at the close; they never fill on a later day.
                message = f"expired unfilled at the end of {market_date(order.created_at)}"
                order_finish_unfilled(ledger, order, message, now)
                continue
            quote = quotes.get(order.code)
            price = fill_price(order, quote)
            if price is not None:
                order_fill(ledger, order, price, quote.source, now)

    # --- plumbing ----------------------------------------------------------------

    def _now(self) -> datetime:
        now = self._clock()
        if timezone.is_naive(now):
            raise BrokerError("the paper broker's clock must return an aware datetime")
        return now

    def _require_connected(self) -> None:
        if not self._connected:
            raise BrokerDisconnected("paper broker is not connected: call connect() first")

    def _open_codes(self) -> list[str]:
        return list(
            PaperOrder.objects.filter(account=self.account, status=OPEN)
            .values_list("code", flat=True)
            .distinct()
        )

    def _held(self) -> list[PaperPosition]:
        return list(PaperPosition.objects.filter(account=self.account, volume__gt=0).order_by("code"))

    def _fetch_quotes(self, codes: Iterable[str]) -> tuple[dict[str, Quote], str]:
        """Quotes for the codes, or ({}, why) when the source fails: no price is ever invented."""
        wanted = sorted(set(codes))
        if not wanted:
            return {}, ""
        try:
            return dict(self._quote_source(wanted)), ""
        except Exception as exc:
            logger.warning("paper broker %s: quote source failed: %s", self.account.name, exc)
            return {}, f"quote source failed: {exc}"

    @staticmethod
    def _position_value(position: PaperPosition, quote: Quote | None) -> tuple[Decimal, Decimal | None]:
        """(market value, last price); without a quote the position is valued at its cost."""
        if quote is None or quote.last is None or quote.last <= 0:
            return cents(position.avg_price * position.volume), None
        return cents(quote.last * position.volume), quote.last
