"""A report body (already JSON-decoded) → a validated `Report`, or ReportError naming the field."""

from ..models import Order, Round
from .report import (
    CODE_RE,
    HELD_CODE_RE,
    EquityIn,
    EventIn,
    FillIn,
    HeartbeatIn,
    HoldingIn,
    OrderIn,
    QuoteIn,
    Report,
    ReportError,
    RoundIn,
    StateIn,
    _dec,
    _int,
    _items,
    _json,
    _object,
    _status,
    _text,
    _time,
)

SIDES = frozenset(Order.Side.values)
UID_MAX, KEY_MAX, TEXT_MAX = 32, 24, 2000
MAX_EVENTS_PER_ORDER = 200


def _round(path: str, obj: dict) -> RoundIn:
    return RoundIn(
        uid=_text(obj, "uid", path, max_len=UID_MAX),
        status=_text(obj, "status", path, choices=frozenset(Round.Status.values)),
        trigger=_text(obj, "trigger", path, choices=frozenset(Round.Trigger.values)),
        created_at=_time(obj, "created_at", path),
        finished_at=_time(obj, "finished_at", path, required=False),
        message=_text(obj, "message", path, required=False, max_len=TEXT_MAX),
        targets=_json(obj, "targets", path, dict),
        diff=_json(obj, "diff", path, list),
        skips=_json(obj, "skips", path, list),
        planned=_json(obj, "planned", path, list),
        fingerprint=_text(obj, "fingerprint", path, required=False, max_len=64),
        message_params=_json(obj, "message_params", path, dict),  # absent from older trading PCs
    )


def _events(path: str, obj: dict) -> tuple[EventIn, ...]:
    rows = obj.get("events") or []
    if not isinstance(rows, list):
        raise ReportError(f"{path}events: must be a list")
    if len(rows) > MAX_EVENTS_PER_ORDER:
        raise ReportError(f"{path}events: at most {MAX_EVENTS_PER_ORDER} per order")
    events = []
    for i, row in enumerate(rows):
        at = f"{path}events[{i}]."
        row = _object(row, at[:-1])
        events.append(
            EventIn(
                at=_time(row, "at", at),
                status=_status(row, "status", at),
                filled_volume=_int(row, "filled_volume", at, required=False) or 0,
                message=_text(row, "message", at, required=False, max_len=TEXT_MAX),
            )
        )
    return tuple(events)


def _order(path: str, obj: dict) -> OrderIn:
    volume = _int(obj, "volume", path, minimum=1)
    filled = _int(obj, "filled_volume", path, required=False) or 0
    if filled > volume:
        raise ReportError(f"{path}filled_volume: {filled} is more than the order's volume {volume}")
    return OrderIn(
        key=_text(obj, "key", path, max_len=KEY_MAX),
        round_uid=_text(obj, "round_uid", path, required=False, max_len=UID_MAX),
        code=_text(obj, "code", path, pattern=CODE_RE),
        side=_text(obj, "side", path, choices=SIDES),
        volume=volume,
        limit_price=_dec(obj, "limit_price", path, positive=True),
        price_type=_int(obj, "price_type", path, required=False, maximum=255) or 11,
        price_source=_text(obj, "price_source", path, required=False, max_len=16),
        reason=_text(obj, "reason", path, required=False, max_len=200),
        strategies=[str(name) for name in _json(obj, "strategies", path, list)],
        status=_status(obj, "status", path),
        filled_volume=filled,
        avg_fill_price=_dec(obj, "avg_fill_price", path, required=False),
        broker_order_id=_int(obj, "broker_order_id", path, required=False, minimum=-(2**62), maximum=2**62),
        message=_text(obj, "message", path, required=False, max_len=TEXT_MAX),
        created_at=_time(obj, "created_at", path),
        sent_at=_time(obj, "sent_at", path, required=False),
        cancel_requested_at=_time(obj, "cancel_requested_at", path, required=False),
        updated_at=_time(obj, "updated_at", path),
        events=_events(path, obj),
    )


def _fill(path: str, obj: dict) -> FillIn:
    return FillIn(
        trade_id=_text(obj, "trade_id", path, max_len=64),
        order_key=_text(obj, "order_key", path, required=False, max_len=KEY_MAX),
        code=_text(obj, "code", path, pattern=CODE_RE),
        side=_text(obj, "side", path, choices=SIDES),
        volume=_int(obj, "volume", path, minimum=1),
        price=_dec(obj, "price", path, positive=True),
        amount=_dec(obj, "amount", path),
        fee=_dec(obj, "fee", path, required=False) or 0,
        traded_at=_time(obj, "traded_at", path),
    )


def _holding(path: str, obj: dict) -> HoldingIn:
    volume = _int(obj, "volume", path)
    can_use = _int(obj, "can_use_volume", path)
    if can_use > volume:
        raise ReportError(f"{path}can_use_volume: {can_use} is more than the volume {volume}")
    return HoldingIn(
        code=_text(obj, "code", path, max_len=16, pattern=HELD_CODE_RE),
        volume=volume,
        can_use_volume=can_use,
        avg_cost=_dec(obj, "avg_cost", path, required=False) or 0,
        last_price=_dec(obj, "last_price", path, required=False),
        market_value=_dec(obj, "market_value", path, required=False) or 0,
    )


def _state(obj: dict | None) -> StateIn | None:
    if obj is None:
        return None
    obj = _object(obj, "state")
    holdings = [_holding(path, row) for path, row in _items(obj, "holdings")]
    codes = [h.code for h in holdings]
    if len(codes) != len(set(codes)):
        raise ReportError("state.holdings: a code appears twice")
    return StateIn(
        at=_time(obj, "at", "state."),
        cash=_dec(obj, "cash", "state."),
        frozen_cash=_dec(obj, "frozen_cash", "state.", required=False) or 0,
        market_value=_dec(obj, "market_value", "state.", required=False) or 0,
        total_asset=_dec(obj, "total_asset", "state."),
        holdings=tuple(h for h in holdings if h.volume > 0),
    )


def _equity(path: str, obj: dict) -> EquityIn:
    return EquityIn(
        at=_time(obj, "at", path),
        cash=_dec(obj, "cash", path),
        market_value=_dec(obj, "market_value", path),
        total_asset=_dec(obj, "total_asset", path),
    )


def _heartbeat(obj: dict | None) -> HeartbeatIn | None:
    if obj is None:
        return None
    obj = _object(obj, "heartbeat")
    return HeartbeatIn(
        at=_time(obj, "at", "heartbeat."),
        holder=_text(obj, "holder", "heartbeat.", required=False, max_len=200),
        status=_text(obj, "status", "heartbeat.", required=False, max_len=300),
    )


def _quote(path: str, obj: dict) -> QuoteIn:
    suspended = obj.get("suspended", False)
    if not isinstance(suspended, bool):
        raise ReportError(f"{path}suspended: must be true or false")
    status = _int(obj, "status", path, required=False, maximum=10**6)  # xtdata InstrumentStatus
    return QuoteIn(
        code=_text(obj, "code", path, pattern=CODE_RE),
        last=_dec(obj, "last", path, positive=True),
        prev_close=_dec(obj, "prev_close", path, required=False, positive=True),
        up_stop=_dec(obj, "up_stop", path, required=False, positive=True),
        down_stop=_dec(obj, "down_stop", path, required=False, positive=True),
        tick=_dec(obj, "tick", path, required=False, positive=True),
        # InstrumentStatus > 0: suspended / not trading today (DESIGN §4).
        suspended=suspended or bool(status and status > 0),
        at=_time(obj, "at", path),
    )


def _unique(items, attr: str, field: str) -> None:
    seen = set()
    for i, item in enumerate(items):
        value = getattr(item, attr)
        if value in seen:
            raise ReportError(f"{field}[{i}].{attr}: {value!r} appears twice in this report")
        seen.add(value)


def report_parse(body: object) -> Report:
    obj = _object(body, "")
    report = Report(
        account=_text(obj, "account", "", required=False, max_len=64),
        rounds=tuple(_round(p, o) for p, o in _items(obj, "rounds")),
        orders=tuple(_order(p, o) for p, o in _items(obj, "orders")),
        fills=tuple(_fill(p, o) for p, o in _items(obj, "fills")),
        state=_state(obj.get("state")),
        equity=tuple(_equity(p, o) for p, o in _items(obj, "equity")),
        heartbeat=_heartbeat(obj.get("heartbeat")),
        quotes=tuple(_quote(p, o) for p, o in _items(obj, "quotes")),
    )
    _unique(report.rounds, "uid", "rounds")
    _unique(report.orders, "key", "orders")
    _unique(report.fills, "trade_id", "fills")
    return report
