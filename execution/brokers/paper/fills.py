"""Paper fills: when a resting limit order fills, and what a fill or a cancel does to the books (in a ledger)."""

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from ...calendar import market_date
from ...models import PaperOrder, PaperTrade
from ...models.orders import OrderStatus
from ...planner import Quote
from ..base import BUY, BrokerEvent
from .book import PRICE_QUANTUM, ZERO, broker_trade, cents, is_t_plus_zero, locked_today, order_event
from .fees import commission, stamp_duty, transfer_fee
from .ledger import PaperLedger


def fill_price(order: PaperOrder, quote: Quote | None) -> Decimal | None:
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


def order_fill(ledger: PaperLedger, order: PaperOrder, price: Decimal, source: str, now: datetime) -> None:
    account, book = ledger.account, ledger.book
    today = market_date(now)
    volume = order.volume - order.traded_volume
    amount = cents(price * volume)
    fee_commission = commission(account, amount)
    fee_transfer = transfer_fee(order.code, amount)
    fee_stamp_duty = ZERO
    position = ledger.position_for_change(order.code)
    if order.side == BUY:
        book.frozen_cash -= order.frozen_cash
        book.cash += order.frozen_cash - amount - fee_commission - fee_transfer
        order.frozen_cash = ZERO
        # Cost basis includes the buy fees, as brokers' 成本价 does.
        cost = position.avg_price * position.volume + amount + fee_commission + fee_transfer
        position.volume += volume
        position.avg_price = (cost / position.volume).quantize(PRICE_QUANTUM, rounding=ROUND_HALF_UP)
        if not is_t_plus_zero(order.code):
            position.bought_today = locked_today(position, today) + volume
            position.bought_on = today
    else:
        fee_stamp_duty = stamp_duty(account, order.code, amount)
        book.cash += amount - fee_commission - fee_stamp_duty - fee_transfer
        position.volume -= volume
        position.frozen_volume -= volume
        if position.volume == 0:
            position.avg_price, position.bought_today, position.bought_on = ZERO, 0, None

    trade = PaperTrade(
        account=account,
        trade_id=f"P{book.next_trade_id}",
        order=order,
        code=order.code,
        side=order.side,
        volume=volume,
        price=price,
        amount=amount,
        commission=fee_commission,
        stamp_duty=fee_stamp_duty,
        transfer_fee=fee_transfer,
        fee=fee_commission + fee_stamp_duty + fee_transfer,
        traded_at=now,
    )
    ledger.trade_added(trade)
    book.next_trade_id += 1
    traded_value = order.traded_price * order.traded_volume + price * volume
    order.traded_volume += volume
    order.traded_price = (traded_value / order.traded_volume).quantize(PRICE_QUANTUM, rounding=ROUND_HALF_UP)
    order.status = OrderStatus.SUCCEEDED
    order.price_source = source[:16]
    order.updated_at = now
    ledger.order_changed(order)
    ledger.events.append(BrokerEvent("trade", trade=broker_trade(trade, order.remark)))
    ledger.events.append(order_event(order))


def order_finish_unfilled(ledger: PaperLedger, order: PaperOrder, message: str, now: datetime) -> None:
    """Cancel or expire an open order, releasing what it froze."""
    book = ledger.book
    if order.side == BUY:
        book.frozen_cash -= order.frozen_cash
        book.cash += order.frozen_cash
        order.frozen_cash = ZERO
    elif ledger.position(order.code) is not None:
        ledger.position_for_change(order.code).frozen_volume -= order.volume - order.traded_volume
    order.status = OrderStatus.PART_CANCEL if order.traded_volume else OrderStatus.CANCELED
    order.message = message
    order.updated_at = now
    ledger.order_changed(order)
    ledger.events.append(order_event(order))
