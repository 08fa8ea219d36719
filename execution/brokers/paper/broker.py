"""The paper broker itself: lifecycle, queries, placing and cancelling over the paper tables of one account."""

import logging
from collections import deque
from collections.abc import Callable, Iterable
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

logger = logging.getLogger(__name__)

QuoteSource = Callable[[list[str]], dict[str, Quote]]


class PaperBroker(Broker):
    """A simulated brokerage over the paper tables of one paper account.

    Events are kept in an in-memory deque of this instance, not persisted:
    the worker reconciles from `query_orders`/`query_trades` on start, and
    those read the persisted books, so a crash loses no order or fill.
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

    # --- queries -----------------------------------------------------------------

    def query_asset(self) -> BrokerAsset:
        quotes = self._advance(self._held_codes())
        book = PaperBook.objects.get(account=self.account)
        market_value = sum(
            (self._position_value(position, quotes.get(position.code))[0] for position in self._held()), ZERO
        )
        return BrokerAsset(
            cash=book.cash,
            frozen_cash=book.frozen_cash,
            market_value=market_value,
            total_asset=book.cash + book.frozen_cash + market_value,
        )

    def query_positions(self) -> list[BrokerPosition]:
        quotes = self._advance(self._held_codes())
        today = market_date(self._now())
        result = []
        for position in self._held():
            value, last = self._position_value(position, quotes.get(position.code))
            result.append(
                BrokerPosition(
                    code=position.code,
                    volume=position.volume,
                    can_use_volume=can_use(position, today),
                    avg_price=position.avg_price,
                    market_value=value,
                    last_price=last,
                )
            )
        return result

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

    def place_order(self, request: OrderRequest) -> int:
        self._require_connected()
        request = request_checked(request)
        quotes, quote_error = self._fetch_quotes([request.code, *self._open_codes()])
        events: list[BrokerEvent] = []
        with transaction.atomic():
            book = self._lock_book()
            now = self._now()
            order = self._accept_or_reject(book, request, quotes.get(request.code), quote_error, now, events)
            self._match(book, quotes, now, events)
            self._save_book(book)
        self._events.extend(events)
        return order.broker_order_id

    def cancel_order(self, broker_order_id: int) -> int:
        if not self._connected:
            return CANCEL_NOT_LOGGED_IN
        # An order that the market would have filled by now fills before the cancel arrives.
        self._advance()
        events: list[BrokerEvent] = []
        with transaction.atomic():
            book = self._lock_book()
            order = PaperOrder.objects.filter(account=self.account, broker_order_id=broker_order_id).first()
            if order is None:
                return CANCEL_NOT_FOUND
            if order.status != OPEN:
                return CANCEL_ALREADY_FINAL
            order_finish_unfilled(self.account, book, order, "cancelled", self._now(), events)
            self._save_book(book)
        self._events.extend(events)
        return CANCEL_OK

    # --- time passing: match open orders against fresh quotes ----------------------

    def _advance(self, extra_codes: Iterable[str] = ()) -> dict[str, Quote]:
        """Expire yesterday's open orders and fill today's that cross; return the quotes fetched."""
        self._require_connected()
        open_codes = self._open_codes()
        quotes, _ = self._fetch_quotes([*open_codes, *extra_codes])
        if not open_codes:
            return quotes
        events: list[BrokerEvent] = []
        with transaction.atomic():
            book = self._lock_book()
            self._match(book, quotes, self._now(), events)
            self._save_book(book)
        self._events.extend(events)
        return quotes

    def _match(self, book: PaperBook, quotes: dict[str, Quote], now: datetime, events: list) -> None:
        today = market_date(now)
        day_start, _ = day_bounds(today)
        for order in PaperOrder.objects.filter(account=self.account, status=OPEN).order_by("broker_order_id"):
            if order.created_at < day_start:
                # Exchanges drop unfilled orders at the close; they never fill on a later day.
                order_finish_unfilled(
                    self.account,
                    book,
                    order,
                    f"expired unfilled at the end of {market_date(order.created_at)}",
                    now,
                    events,
                )
                continue
            quote = quotes.get(order.code)
            price = fill_price(order, quote)
            if price is not None:
                order_fill(self.account, book, order, price, quote.source, now, events)

    # --- placing -----------------------------------------------------------------

    def _accept_or_reject(
        self,
        book: PaperBook,
        request: OrderRequest,
        quote: Quote | None,
        quote_error: str,
        now: datetime,
        events: list,
    ) -> PaperOrder:
        order = PaperOrder(
            account=self.account,
            broker_order_id=book.next_order_id,
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
        book.next_order_id += 1
        position = PaperPosition.objects.filter(account=self.account, code=request.code).first()
        refusal, freeze = order_refusal(
            self.account, book, request, quote, quote_error, position, market_date(now)
        )
        if refusal:
            order.status = OrderStatus.JUNK
            order.message = refusal
            order.save()
            events.append(order_event(order))
            events.append(
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
            position.frozen_volume += request.volume
            position.save(update_fields=["frozen_volume"])
        order.save()
        events.append(order_event(order))
        return order

    # --- plumbing ----------------------------------------------------------------

    def _now(self) -> datetime:
        now = self._clock()
        if timezone.is_naive(now):
            raise BrokerError("the paper broker's clock must return an aware datetime")
        return now

    def _require_connected(self) -> None:
        if not self._connected:
            raise BrokerDisconnected("paper broker is not connected: call connect() first")

    def _lock_book(self) -> PaperBook:
        return PaperBook.objects.select_for_update().get(account=self.account)

    @staticmethod
    def _save_book(book: PaperBook) -> None:
        book.save(update_fields=["cash", "frozen_cash", "next_order_id", "next_trade_id"])

    def _open_codes(self) -> list[str]:
        return list(
            PaperOrder.objects.filter(account=self.account, status=OPEN)
            .values_list("code", flat=True)
            .distinct()
        )

    def _held(self) -> list[PaperPosition]:
        return list(PaperPosition.objects.filter(account=self.account, volume__gt=0).order_by("code"))

    def _held_codes(self) -> list[str]:
        return list(
            PaperPosition.objects.filter(account=self.account, volume__gt=0).values_list("code", flat=True)
        )

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
