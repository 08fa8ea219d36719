"""Paper books: money rounding, the trading day's bounds, T+1 locks, and the broker records built from rows."""

from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from ...calendar import SHANGHAI
from ...market import NotTradable, rules_for
from ...models import PaperOrder, PaperPosition, PaperTrade
from ...models.orders import OrderStatus
from ..base import BrokerEvent, BrokerOrder, BrokerTrade

ZERO = Decimal(0)
CENT = Decimal("0.01")
PRICE_QUANTUM = Decimal("0.0001")  # the precision of every price column
OPEN = OrderStatus.REPORTED


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    # Datetime ranges, not __date lookups: MariaDB here has no time zone tables.
    start = datetime.combine(day, time.min, tzinfo=SHANGHAI)
    return start, start + timedelta(days=1)


def is_t_plus_zero(code: str) -> bool:
    """Sellable the day it is bought: convertible bonds and the T+0 ETFs of `funds` (DESIGN §4).

    A code of a class the product does not trade (a REIT held from before)
    counts as T+1: the safe side for a sellable volume.
    """
    try:
        return rules_for(code).t_plus_zero
    except NotTradable:
        return False


def locked_today(position: PaperPosition, today: date) -> int:
    """Shares bought today that T+1 keeps from being sold (none for T+0 codes)."""
    if position.bought_on != today or is_t_plus_zero(position.code):
        return 0
    return position.bought_today


def can_use(position: PaperPosition | None, today: date) -> int:
    if position is None:
        return 0
    return max(position.volume - locked_today(position, today) - position.frozen_volume, 0)


def broker_order(order: PaperOrder) -> BrokerOrder:
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


def order_event(order: PaperOrder) -> BrokerEvent:
    return BrokerEvent(
        "order", order=broker_order(order), broker_order_id=order.broker_order_id, remark=order.remark
    )


def broker_trade(trade: PaperTrade, remark: str) -> BrokerTrade:
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
