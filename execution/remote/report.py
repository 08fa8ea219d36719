"""Strict parsing of a trading PC's report (PC → server) into plain dataclasses.

Every error names the field by its path (`orders[3].volume: ...`); nothing is
stored unless the whole report parses. Numbers that are money or prices may
be JSON numbers or decimal strings; booleans, NaN and infinities never are.
"""

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation

from ..models import FINAL_STATUSES, OrderStatus
from .wire import time_in

CODE_RE = re.compile(r"^\d{6}\.(SH|SZ|BJ)$")  # canonical codes of what qmtjq trades and prices
HELD_CODE_RE = re.compile(r"^[0-9A-Za-z]{1,10}\.[A-Z]{2}$")  # anything the broker may report as held
MAX_ITEMS = 10_000
MAX_VOLUME = 10**12
MAX_MONEY = Decimal("1e15")
STATUS_VALUES = frozenset(OrderStatus.values)
FINAL_VALUES = frozenset(int(s) for s in FINAL_STATUSES)


class ReportError(ValueError):
    """Bad report; the message (with the field's path) is shown to the caller as `{"error": ...}`."""


def _get(obj: dict, key: str, path: str, *, required: bool):
    value = obj.get(key)
    if value is None and required:
        raise ReportError(f"{path}{key}: required")
    return value


def _object(value, path: str) -> dict:
    if not isinstance(value, dict):
        raise ReportError(f"{path or 'body'}: must be a JSON object")
    return value


def _text(obj, key, path, *, required=True, max_len=200, choices=None, pattern=None) -> str:
    value = _get(obj, key, path, required=required)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ReportError(f"{path}{key}: must be a string")
    if len(value) > max_len:
        raise ReportError(f"{path}{key}: at most {max_len} characters")
    if choices is not None and value not in choices:
        raise ReportError(f"{path}{key}: must be one of {', '.join(sorted(choices))}")
    if pattern is not None and not pattern.match(value):
        raise ReportError(f"{path}{key}: {value!r} is not a canonical code such as 600000.SH")
    return value


def _int(obj, key, path, *, required=True, minimum=0, maximum=MAX_VOLUME) -> int | None:
    value = _get(obj, key, path, required=required)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ReportError(f"{path}{key}: must be a whole number")
    if not minimum <= value <= maximum:
        raise ReportError(f"{path}{key}: must be between {minimum} and {maximum}")
    return value


def _dec(obj, key, path, *, required=True, positive=False) -> Decimal | None:
    value = _get(obj, key, path, required=required)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ReportError(f"{path}{key}: must be a number or a decimal string")
    if isinstance(value, float) and not math.isfinite(value):
        raise ReportError(f"{path}{key}: must be finite")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ReportError(f"{path}{key}: {value!r} is not a number")
    if not number.is_finite() or abs(number) >= MAX_MONEY:
        raise ReportError(f"{path}{key}: out of range")
    if number < 0 or (positive and number == 0):
        raise ReportError(f"{path}{key}: must be {'above' if positive else 'at least'} 0")
    return number


def _time(obj, key, path, *, required=True) -> datetime | None:
    value = _get(obj, key, path, required=required)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ReportError(f"{path}{key}: must be an ISO 8601 time string")
    try:
        return time_in(value)
    except ValueError as exc:
        raise ReportError(f"{path}{key}: {exc}")


def _items(obj, key) -> list[tuple[str, dict]]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ReportError(f"{key}: must be a list")
    if len(value) > MAX_ITEMS:
        raise ReportError(f"{key}: at most {MAX_ITEMS} items per report")
    return [(f"{key}[{i}].", _object(item, f"{key}[{i}]")) for i, item in enumerate(value)]


def _json(obj, key, path, kind):
    value = obj.get(key)
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise ReportError(f"{path}{key}: must be a JSON {'object' if kind is dict else 'list'}")
    return value


def _status(obj, key, path) -> int:
    value = _int(obj, key, path, minimum=min(STATUS_VALUES), maximum=max(STATUS_VALUES))  # SENDING is -3
    if value not in STATUS_VALUES:
        raise ReportError(f"{path}{key}: {value} is not an order status")
    return value


@dataclass(frozen=True)
class RoundIn:
    uid: str
    status: str
    trigger: str
    created_at: datetime
    finished_at: datetime | None
    message: str
    targets: dict
    diff: list
    skips: list
    planned: list
    fingerprint: str
    message_params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class EventIn:
    at: datetime
    status: int
    filled_volume: int
    message: str


@dataclass(frozen=True)
class OrderIn:
    key: str
    round_uid: str
    code: str
    side: str
    volume: int
    limit_price: Decimal
    price_type: int
    price_source: str
    reason: str
    strategies: list
    status: int
    filled_volume: int
    avg_fill_price: Decimal | None
    broker_order_id: int | None
    message: str
    created_at: datetime
    sent_at: datetime | None
    cancel_requested_at: datetime | None
    updated_at: datetime
    events: tuple[EventIn, ...]

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_VALUES


@dataclass(frozen=True)
class FillIn:
    trade_id: str
    order_key: str
    code: str
    side: str
    volume: int
    price: Decimal
    amount: Decimal
    fee: Decimal
    traded_at: datetime


@dataclass(frozen=True)
class HoldingIn:
    code: str
    volume: int
    can_use_volume: int
    avg_cost: Decimal
    last_price: Decimal | None
    market_value: Decimal


@dataclass(frozen=True)
class StateIn:
    at: datetime
    cash: Decimal
    frozen_cash: Decimal
    market_value: Decimal
    total_asset: Decimal
    holdings: tuple[HoldingIn, ...]


@dataclass(frozen=True)
class EquityIn:
    at: datetime
    cash: Decimal
    market_value: Decimal
    total_asset: Decimal


@dataclass(frozen=True)
class HeartbeatIn:
    at: datetime
    holder: str
    status: str


@dataclass(frozen=True)
class QuoteIn:
    code: str
    last: Decimal
    prev_close: Decimal | None
    up_stop: Decimal | None
    down_stop: Decimal | None
    tick: Decimal | None
    suspended: bool
    at: datetime


@dataclass(frozen=True)
class Report:
    account: str
    rounds: tuple[RoundIn, ...] = ()
    orders: tuple[OrderIn, ...] = ()
    fills: tuple[FillIn, ...] = ()
    state: StateIn | None = None
    equity: tuple[EquityIn, ...] = ()
    heartbeat: HeartbeatIn | None = None
    quotes: tuple[QuoteIn, ...] = ()
