"""The paper broker: a simulated brokerage for an account's first weeks (issue 3, DESIGN §4, §6).

It is a product feature, not a mock: it keeps persisted cash and positions
in the paper tables and refuses or fills orders the way the exchange and
xtquant would.

- Orders are checked like a broker checks them: lots per instrument class,
  the tick grid, limit-up/down, the price cage, suspension, cash (amount plus
  commission, net of cash frozen by open buys) and sellable volume (T+1 and
  frozen shares). A refused order still gets an id and ends as status 57 with
  the reason, like xtquant.
- A limit order fills, whole, at the reference price (the quote's last price)
  once its limit crosses it. Buys never fill while the price sits at limit-up
  (no sellers there) and sells never at limit-down; the worker cancels them
  after its timeout. Orders left open at the end of the trading day expire.
- Time passes only when the broker is asked something: every query,
  `drain_events`, `place_order` and `cancel_order` first matches the open
  orders against fresh quotes.
"""

import logging
import numbers
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from positions.codes import InstrumentClass, instrument_class

from ..calendar import SHANGHAI, market_date
from ..market import Rules, price_cage, rules_for
from ..models import BrokerAccount, PaperBook, PaperOrder, PaperPosition, PaperTrade
from ..models.orders import OrderStatus
from ..planner import Quote
from .base import (
    BUY,
    CANCEL_ALREADY_FINAL,
    CANCEL_NOT_FOUND,
    CANCEL_NOT_LOGGED_IN,
    CANCEL_OK,
    FIX_PRICE,
    SELL,
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

logger = logging.getLogger(__name__)

QuoteSource = Callable[[list[str]], dict[str, Quote]]

ZERO = Decimal(0)
CENT = Decimal("0.01")
PRICE_QUANTUM = Decimal("0.0001")  # the precision of every price column
MAX_PRICE = Decimal(10) ** 9  # beyond any A-share price; keeps the price columns from overflowing
MAX_CODE = 12  # "600000.SH"; the code columns hold 12
MAX_REMARK = 24  # xtquant's order_remark limit (DESIGN §6)
# Stamp duty is charged on stock sells only; bonds and funds/ETFs are exempt.
STAMP_DUTY_CLASSES = frozenset(
    {InstrumentClass.MAIN_BOARD, InstrumentClass.CHINEXT, InstrumentClass.STAR, InstrumentClass.BJ}
)
OPEN = OrderStatus.REPORTED


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    # Datetime ranges, not __date lookups: MariaDB here has no time zone tables.
    start = datetime.combine(day, time.min, tzinfo=SHANGHAI)
    return start, start + timedelta(days=1)


def _locked_today(position: PaperPosition, rules: Rules, today: date) -> int:
    """Shares bought today that T+1 keeps from being sold (none for T+0 convertible bonds)."""
    if rules.t_plus_zero or position.bought_on != today:
        return 0
    return position.bought_today


def _can_use(position: PaperPosition | None, rules: Rules, today: date) -> int:
    if position is None:
        return 0
    return max(position.volume - _locked_today(position, rules, today) - position.frozen_volume, 0)


def _broker_order(order: PaperOrder) -> BrokerOrder:
    return BrokerOrder(
        broker_order_id=order.broker_order_id,
        code=order.code,
        side=order.side,
        volume=order.volume,
        price=order.price,
        status=order.status,
        traded_volume=order.traded_volume,
        traded_price=order.traded_price,
        remark=order.remark,
        message=order.message,
        order_time=order.created_at,
    )


def _order_event(order: PaperOrder) -> BrokerEvent:
    return BrokerEvent(
        "order", order=_broker_order(order), broker_order_id=order.broker_order_id, remark=order.remark
    )


def _broker_trade(trade: PaperTrade, remark: str) -> BrokerTrade:
    return BrokerTrade(
        trade_id=trade.trade_id,
        broker_order_id=trade.order.broker_order_id,
        code=trade.code,
        side=trade.side,
        volume=trade.volume,
        price=trade.price,
        amount=trade.amount,
        traded_at=trade.traded_at,
        remark=remark,
        fee=trade.fee,
    )


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
                    can_use_volume=_can_use(position, rules_for(position.code), today),
                    avg_price=position.avg_price,
                    market_value=value,
                    last_price=last,
                )
            )
        return result

    def query_orders(self) -> list[BrokerOrder]:
        self._advance()
        start, end = _day_bounds(market_date(self._now()))
        orders = PaperOrder.objects.filter(account=self.account, created_at__gte=start, created_at__lt=end)
        return [_broker_order(order) for order in orders.order_by("broker_order_id")]

    def query_trades(self) -> list[BrokerTrade]:
        self._advance()
        start, end = _day_bounds(market_date(self._now()))
        trades = (
            PaperTrade.objects.filter(account=self.account, traded_at__gte=start, traded_at__lt=end)
            .select_related("order")
            .order_by("id")
        )
        return [_broker_trade(trade, trade.order.remark) for trade in trades]

    def drain_events(self) -> list[BrokerEvent]:
        self._advance()
        events = list(self._events)
        self._events.clear()
        return events

    # --- orders ------------------------------------------------------------------

    def place_order(self, request: OrderRequest) -> int:
        self._require_connected()
        request = self._checked(request)
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
            self._finish_unfilled(book, order, "cancelled", self._now(), events)
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
        day_start, _ = _day_bounds(today)
        for order in PaperOrder.objects.filter(account=self.account, status=OPEN).order_by("broker_order_id"):
            if order.created_at < day_start:
                # Exchanges drop unfilled orders at the close; they never fill on a later day.
                self._finish_unfilled(
                    book,
                    order,
                    f"expired unfilled at the end of {market_date(order.created_at)}",
                    now,
                    events,
                )
                continue
            quote = quotes.get(order.code)
            price = self._fill_price(order, quote)
            if price is not None:
                self._fill(book, order, price, quote.source, now, events)

    @staticmethod
    def _fill_price(order: PaperOrder, quote: Quote | None) -> Decimal | None:
        if quote is None or quote.suspended or quote.last is None or quote.last <= 0:
            return None
        last = quote.last
        if order.side == BUY:
            # At limit-up sellers are absent: real buys there rarely fill.
            if quote.up_stop is not None and last >= quote.up_stop:
                return None
            return last if order.price >= last else None
        # At limit-down buyers are absent.
        if quote.down_stop is not None and last <= quote.down_stop:
            return None
        return last if order.price <= last else None

    def _fill(
        self, book: PaperBook, order: PaperOrder, price: Decimal, source: str, now: datetime, events: list
    ) -> None:
        rules = rules_for(order.code)
        today = market_date(now)
        volume = order.volume - order.traded_volume
        amount = _cents(price * volume)
        commission = self._commission(amount)
        stamp_duty = ZERO
        position, _ = PaperPosition.objects.get_or_create(account=self.account, code=order.code)
        if order.side == BUY:
            book.frozen_cash -= order.frozen_cash
            book.cash += order.frozen_cash - amount - commission
            order.frozen_cash = ZERO
            # Cost basis includes the buy fees, as brokers' 成本价 does.
            cost = position.avg_price * position.volume + amount + commission
            position.volume += volume
            position.avg_price = (cost / position.volume).quantize(PRICE_QUANTUM, rounding=ROUND_HALF_UP)
            if not rules.t_plus_zero:
                position.bought_today = _locked_today(position, rules, today) + volume
                position.bought_on = today
        else:
            if instrument_class(order.code) in STAMP_DUTY_CLASSES:
                stamp_duty = _cents(amount * self.account.stamp_duty_rate)
            book.cash += amount - commission - stamp_duty
            position.volume -= volume
            position.frozen_volume -= volume
            if position.volume == 0:
                position.avg_price, position.bought_today, position.bought_on = ZERO, 0, None
        position.save(update_fields=["volume", "avg_price", "bought_today", "bought_on", "frozen_volume"])

        trade = PaperTrade.objects.create(
            account=self.account,
            trade_id=f"P{book.next_trade_id}",
            order=order,
            code=order.code,
            side=order.side,
            volume=volume,
            price=price,
            amount=amount,
            commission=commission,
            stamp_duty=stamp_duty,
            fee=commission + stamp_duty,
            traded_at=now,
        )
        book.next_trade_id += 1
        traded_value = order.traded_price * order.traded_volume + price * volume
        order.traded_volume += volume
        order.traded_price = (traded_value / order.traded_volume).quantize(
            PRICE_QUANTUM, rounding=ROUND_HALF_UP
        )
        order.status = OrderStatus.SUCCEEDED
        order.price_source = source[:16]
        order.updated_at = now
        order.save(
            update_fields=[
                "traded_volume",
                "traded_price",
                "status",
                "frozen_cash",
                "price_source",
                "updated_at",
            ]
        )
        events.append(BrokerEvent("trade", trade=_broker_trade(trade, order.remark)))
        events.append(_order_event(order))

    def _finish_unfilled(
        self, book: PaperBook, order: PaperOrder, message: str, now: datetime, events: list
    ) -> None:
        """Cancel or expire an open order, releasing what it froze."""
        if order.side == BUY:
            book.frozen_cash -= order.frozen_cash
            book.cash += order.frozen_cash
            order.frozen_cash = ZERO
        else:
            remaining = order.volume - order.traded_volume
            PaperPosition.objects.filter(account=self.account, code=order.code).update(
                frozen_volume=F("frozen_volume") - remaining
            )
        order.status = OrderStatus.PART_CANCEL if order.traded_volume else OrderStatus.CANCELED
        order.message = message
        order.updated_at = now
        order.save(update_fields=["status", "frozen_cash", "message", "updated_at"])
        events.append(_order_event(order))

    # --- placing -----------------------------------------------------------------

    @staticmethod
    def _checked(request: OrderRequest) -> OrderRequest:
        """The request with a plain int volume and Decimal price; a caller's bug (not a market refusal) raises."""
        if request.side not in (BUY, SELL):
            raise BrokerError(f"unknown side {request.side!r}")
        if not isinstance(request.code, str) or len(request.code) > MAX_CODE:
            raise BrokerError(f"{request.code!r} is not a securities code")
        if request.price_type != FIX_PRICE:
            raise BrokerError("the paper broker takes limit orders (FIX_PRICE) only")
        # numbers.Integral also admits numpy integers coming out of pandas.
        if (
            not isinstance(request.volume, numbers.Integral)
            or isinstance(request.volume, bool)
            or request.volume <= 0
        ):
            raise BrokerError(f"volume must be a positive whole number, not {request.volume!r}")
        try:
            price = Decimal(str(request.price))
        except InvalidOperation:
            raise BrokerError(f"price {request.price!r} is not a number")
        if not price.is_finite() or abs(price) >= MAX_PRICE:
            raise BrokerError(f"price {request.price!r} is not a usable limit price")
        if not request.key or len(request.key) > MAX_REMARK or not request.key.isascii():
            raise BrokerError(
                f"order key {request.key!r} does not fit xtquant's order_remark (≤ {MAX_REMARK} ASCII)"
            )
        return replace(request, volume=int(request.volume), price=price)

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
        refusal, freeze = self._refusal(book, request, quote, quote_error, position, market_date(now))
        if refusal:
            order.status = OrderStatus.JUNK
            order.message = refusal
            order.save()
            events.append(_order_event(order))
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
        events.append(_order_event(order))
        return order

    def _refusal(
        self,
        book: PaperBook,
        request: OrderRequest,
        quote: Quote | None,
        quote_error: str,
        position: PaperPosition | None,
        today: date,
    ) -> tuple[str, Decimal]:
        """Why the market would refuse this order ('' when it would not), and the cash a buy freezes."""
        code, volume, price = request.code, request.volume, request.price
        try:
            rules = rules_for(code)
        except ValueError as exc:
            return f"{code} cannot be traded: {exc}", ZERO
        if quote is None or quote.last is None or quote.last <= 0:
            return f"no quote for {code}" + (f" ({quote_error})" if quote_error else ""), ZERO
        if quote.suspended:
            return f"{code} is suspended", ZERO

        sellable = _can_use(position, rules, today)
        if request.side == BUY and rules.round_buy(volume) != volume:
            return (
                f"buy volume {volume} is not a valid lot for {rules.klass}: at least {rules.buy_min}, "
                f"in steps of {rules.buy_step}",
                ZERO,
            )
        if request.side == SELL and volume <= sellable and rules.round_sell(volume, sellable) != volume:
            return (
                f"sell volume {volume} is not a valid lot for {rules.klass}: at least {rules.sell_min}, "
                f"in steps of {rules.sell_lot}, or the whole sellable {sellable}",
                ZERO,
            )

        tick = quote.tick or rules.tick
        if price <= 0 or price % tick != 0:
            return f"price {price} is not on the {tick} tick grid", ZERO
        if quote.up_stop is not None and price > quote.up_stop:
            return f"price {price} is above limit-up {quote.up_stop}", ZERO
        if quote.down_stop is not None and price < quote.down_stop:
            return f"price {price} is below limit-down {quote.down_stop}", ZERO
        # Price cage: limit orders too far from the reference price are invalid.
        cage = price_cage(quote.last, tick)
        if request.side == BUY and price > quote.last + cage:
            return f"buy price {price} is outside the price cage ({quote.last} + {_cents(cage)})", ZERO
        if request.side == SELL and price < quote.last - cage:
            return f"sell price {price} is outside the price cage ({quote.last} − {_cents(cage)})", ZERO

        if request.side == SELL:
            if volume > sellable:
                held = position.volume if position else 0
                return f"sell {volume} exceeds sellable {sellable} (held {held}; T+1 and open sells)", ZERO
            return "", ZERO
        amount = _cents(price * volume)
        freeze = amount + self._commission(amount)
        if freeze > book.cash:
            return f"insufficient cash: need {freeze} incl. commission, available {book.cash}", ZERO
        return "", freeze

    # --- plumbing ----------------------------------------------------------------

    def _commission(self, amount: Decimal) -> Decimal:
        return _cents(max(amount * self.account.commission_rate, self.account.min_commission))

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
            return _cents(position.avg_price * position.volume), None
        return _cents(quote.last * position.volume), quote.last
