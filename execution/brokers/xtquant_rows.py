"""xtquant's query rows and callback objects → the broker interface's rows and events (DESIGN §6).

Used by `brokers.xtquant`; no xtquant import here either. Rows that are
neither a buy nor a sell (other order types) are skipped with a warning.
"""

import datetime as dt
import logging
from decimal import Decimal

from .base import BUY, SELL, BrokerEvent, BrokerOrder, BrokerPosition, BrokerTrade

logger = logging.getLogger(__name__)

# xtconstant values, kept here so this module never imports xtquant at load time.
STOCK_BUY, STOCK_SELL = 23, 24
OFFSET_FLAG_OPEN, OFFSET_FLAG_CLOSE = 48, 49  # what tells buy from sell on other order types


def decimal_from(value) -> Decimal:
    # xtquant reports floats; str() keeps their shortest form (10.5, not 10.4999999...).
    return Decimal(0) if value is None else Decimal(str(value))


def timestamp_from(seconds) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(int(seconds), tz=dt.UTC) if seconds else None


def side_from(xt_object) -> str | None:
    order_type = getattr(xt_object, "order_type", None)
    if order_type == STOCK_BUY:
        return BUY
    if order_type == STOCK_SELL:
        return SELL
    offset_flag = getattr(xt_object, "offset_flag", None)
    if offset_flag == OFFSET_FLAG_OPEN:
        return BUY
    if offset_flag == OFFSET_FLAG_CLOSE:
        return SELL
    return None


def position_from(row) -> BrokerPosition:
    avg_price = row.avg_price if getattr(row, "avg_price", 0) else row.open_price
    last_price = getattr(row, "last_price", None)
    return BrokerPosition(
        code=row.stock_code,
        volume=int(row.volume),
        can_use_volume=int(row.can_use_volume),
        avg_price=decimal_from(avg_price),
        market_value=decimal_from(row.market_value),
        last_price=decimal_from(last_price) if last_price else None,
    )


def order_from(row) -> BrokerOrder | None:
    side = side_from(row)
    if side is None:
        logger.warning(
            "skipping xtquant order %s of order type %s: neither buy nor sell", row.order_id, row.order_type
        )
        return None
    return BrokerOrder(
        broker_order_id=int(row.order_id),
        code=row.stock_code,
        side=side,
        volume=int(row.order_volume),
        price=decimal_from(row.price),
        status=int(row.order_status),
        traded_volume=int(row.traded_volume),
        traded_price=decimal_from(row.traded_price),
        remark=row.order_remark or "",
        message=row.status_msg or "",
        order_time=timestamp_from(row.order_time),
    )


def trade_from(row) -> BrokerTrade | None:
    side = side_from(row)
    if side is None:
        logger.warning(
            "skipping xtquant trade %s of order type %s: neither buy nor sell", row.traded_id, row.order_type
        )
        return None
    return BrokerTrade(
        trade_id=str(row.traded_id),
        broker_order_id=int(row.order_id),
        code=row.stock_code,
        side=side,
        volume=int(row.traded_volume),
        price=decimal_from(row.traded_price),
        amount=decimal_from(row.traded_amount),
        # A trade without a time still happened; "now" is the closest we know.
        traded_at=timestamp_from(row.traded_time) or dt.datetime.now(tz=dt.UTC),
        remark=row.order_remark or "",
        fee=decimal_from(getattr(row, "commission", 0)),
    )


def order_event_from(xt_order) -> BrokerEvent | None:
    order = order_from(xt_order)
    if order is None:
        return None
    return BrokerEvent(
        kind="order",
        order=order,
        broker_order_id=order.broker_order_id,
        remark=order.remark,
        message=order.message,
    )


def trade_event_from(xt_trade) -> BrokerEvent | None:
    trade = trade_from(xt_trade)
    if trade is None:
        return None
    return BrokerEvent(kind="trade", trade=trade, broker_order_id=trade.broker_order_id, remark=trade.remark)


def order_error_event_from(error) -> BrokerEvent:
    return BrokerEvent(
        kind="order_error",
        broker_order_id=int(error.order_id),
        remark=error.order_remark or "",
        message=f"{error.error_id}: {error.error_msg}",
    )


def cancel_error_event_from(error) -> BrokerEvent:
    return BrokerEvent(
        kind="cancel_error",
        broker_order_id=int(error.order_id),
        message=f"{error.error_id}: {error.error_msg}",
    )
