"""Paper order checks: a caller's malformed request raises; an order the market refuses gets its reason."""

import numbers
from dataclasses import replace
from datetime import date
from decimal import Decimal, InvalidOperation

from ...market import price_cage, rules_for
from ...models import BrokerAccount, PaperBook, PaperPosition
from ...planner import Quote
from ..base import BUY, FIX_PRICE, SELL, BrokerError, OrderRequest
from .book import ZERO, can_use, cents
from .fees import buy_fees

MAX_PRICE = Decimal(10) ** 9  # beyond any A-share price; keeps the price columns from overflowing
MAX_CODE = 12  # "600000.SH"; the code columns hold 12
MAX_REMARK = 24  # xtquant's order_remark limit (DESIGN §6)


def request_checked(request: OrderRequest) -> OrderRequest:
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


def order_refusal(
    account: BrokerAccount,
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

    sellable = can_use(position, today)
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
        return f"buy price {price} is outside the price cage ({quote.last} + {cents(cage)})", ZERO
    if request.side == SELL and price < quote.last - cage:
        return f"sell price {price} is outside the price cage ({quote.last} − {cents(cage)})", ZERO

    if request.side == SELL:
        if volume > sellable:
            held = position.volume if position else 0
            return f"sell {volume} exceeds sellable {sellable} (held {held}; T+1 and open sells)", ZERO
        return "", ZERO
    amount = cents(price * volume)
    freeze = amount + buy_fees(account, code, amount)
    if freeze > book.cash:
        return f"insufficient cash: need {freeze} incl. fees, available {book.cash}", ZERO
    return "", freeze
