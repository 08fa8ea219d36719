"""Years of made-up order history for paper accounts: benchmarks and demos of the pages at scale.

Rows are written with one `executemany` per table and chunk (no model objects,
no per-row signals), ids assigned here so that fills and events can point at
their orders without reading anything back. A million orders take minutes.
Live accounts are refused before anything is written: made-up fills next to
real money would be indistinguishable from the truth.
"""

import base64
import json
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db import connection, models, transaction
from django.utils import timezone

from qmtjq.models import SecurityName

from ..calendar import SHANGHAI
from ..models import (
    AccountState,
    BrokerAccount,
    EquityPoint,
    Fill,
    Holding,
    Order,
    OrderEvent,
    OrderStatus,
    Round,
)

GENERATED_KEY_PREFIX = "qg"  # real order keys start with "qj"
GENERATED_REASON = "generated history"
STRATEGY_NAMES = ("small-cap", "cb-rotation", "etf-momentum", "小市值轮动", "双低转债")
# (status, weight) of finished orders, roughly what a year of real rounds leaves behind.
_STATUS_WEIGHTS = (
    (OrderStatus.SUCCEEDED, 70),
    (OrderStatus.CANCELED, 10),
    (OrderStatus.PART_CANCEL, 8),
    (OrderStatus.JUNK, 7),
    (OrderStatus.NOT_SENT, 5),
)
_SESSIONS = ((time(9, 30), 120), (time(13, 0), 117))  # (start, minutes): no new orders from 14:57


class OrderHistoryRefused(Exception):
    """The history would be written next to real money (a live account)."""


@dataclass(frozen=True)
class GeneratedCounts:
    rounds: int
    orders: int
    fills: int
    events: int
    holdings: int


@dataclass(frozen=True)
class _Security:
    code: str
    price: Decimal
    lot: int
    tick: Decimal


def _securities(count: int) -> list[_Security]:
    """Main board, ChiNext, STAR stocks, convertible bonds and ETFs, with their lots and ticks."""
    kinds = (
        (600000, "SH", 100, Decimal("0.01"), 12),
        (1, "SZ", 100, Decimal("0.01"), 9),
        (300001, "SZ", 100, Decimal("0.01"), 25),
        (688001, "SH", 200, Decimal("0.01"), 40),
        (113001, "SH", 10, Decimal("0.001"), 125),
        (123001, "SZ", 10, Decimal("0.001"), 130),
        (510010, "SH", 100, Decimal("0.001"), 3),
    )
    rng = random.Random(count)
    result = []
    for index in range(count):
        start, exchange, lot, tick, base = kinds[index % len(kinds)]
        price = Decimal(str(round(base * rng.uniform(0.5, 1.8), 2)))
        result.append(_Security(f"{start + index // len(kinds):06d}.{exchange}", price, lot, tick))
    return result


def _order_key(order_id: int) -> str:
    # Unique because ids are, 18 ASCII characters like a real key (order_remark holds 24).
    return GENERATED_KEY_PREFIX + base64.b32encode(order_id.to_bytes(10, "big")).decode("ascii").lower()


def _trading_instants(*, rng: random.Random, count: int, start: date, end: date) -> list[datetime]:
    """`count` sorted UTC instants inside A-share sessions on weekdays between start and end."""
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    days = [day for day in days if day.weekday() < 5] or [end]
    instants = []
    for _ in range(count):
        session_start, minutes = rng.choice(_SESSIONS)
        local = datetime.combine(rng.choice(days), session_start, tzinfo=SHANGHAI)
        instants.append((local + timedelta(seconds=rng.uniform(0, minutes * 60))).astimezone(UTC))
    instants.sort()
    return instants


def _next_id(model: type[models.Model]) -> int:
    return (model.objects.aggregate(top=models.Max("pk"))["top"] or 0) + 1


class _Inserter:
    """INSERT of whole rows ({attname: python value}) for one model, adapted once per column type."""

    def __init__(self, model: type[models.Model]) -> None:
        self.fields = list(model._meta.concrete_fields)
        quote = connection.ops.quote_name
        columns = ", ".join(quote(field.column) for field in self.fields)
        marks = ", ".join(["%s"] * len(self.fields))
        # Table and column names come from the model, never from input.
        self.sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({marks})"  # noqa: S608
        self.adapters = [self._adapter(field) for field in self.fields]
        self.names = [field.attname for field in self.fields]
        self.rows: list[tuple] = []

    @staticmethod
    def _adapter(field: models.Field) -> Callable:
        if isinstance(field, models.DateTimeField):
            return lambda value: None if value is None else connection.ops.adapt_datetimefield_value(value)
        if isinstance(field, models.DecimalField):
            return lambda value: None if value is None else str(value)
        if isinstance(field, models.JSONField):
            return json.dumps  # what JSONField stores: ASCII-escaped JSON text
        return lambda value: value

    def add(self, row: dict) -> None:
        # A column the row leaves out takes the field's default (a field added later, such as
        # Round.message_params); one without a default must be given, so a KeyError says which.
        self.rows.append(
            tuple(
                adapt(row[name] if name in row or not field.has_default() else field.get_default())
                for adapt, name, field in zip(self.adapters, self.names, self.fields, strict=True)
            )
        )

    def flush(self) -> None:
        if self.rows:
            with connection.cursor() as cursor:
                cursor.executemany(self.sql, self.rows)
            self.rows = []


def _status_pick(rng: random.Random) -> int:
    statuses, weights = zip(*_STATUS_WEIGHTS, strict=True)
    return rng.choices(statuses, weights)[0]


def _volume(rng: random.Random, security: _Security) -> int:
    if security.lot == 200:  # STAR market: at least 200, then +1
        return 200 + rng.randrange(0, 2000)
    return security.lot * rng.randint(1, 50)


def order_history_check(*, accounts: Iterable[BrokerAccount]) -> None:
    live = sorted(account.name for account in accounts if account.mode == BrokerAccount.Mode.LIVE)
    if live:
        raise OrderHistoryRefused(
            f"refusing to write made-up orders into live account(s) {', '.join(live)}: use a paper account"
        )


def order_history_generate(
    *,
    accounts: list[BrokerAccount],
    orders: int,
    years: float = 3,
    seed: int = 1,
    chunk: int = 5000,
    end: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> GeneratedCounts:
    """Write `orders` finished orders in rounds of 1-8, with their fills and status events, spread over
    `years` of trading sessions across the accounts. Commits every `chunk` orders."""
    order_history_check(accounts=accounts)
    rng = random.Random(seed)
    securities = _securities(600)
    end_day = timezone.localtime(end or timezone.now(), SHANGHAI).date()
    sizes, planned = [], 0
    while planned < orders:
        sizes.append(min(rng.randint(1, 8), orders - planned))
        planned += sizes[-1]
    instants = _trading_instants(
        rng=rng, count=len(sizes), start=end_day - timedelta(days=int(365 * years)), end=end_day
    )
    ids = {model: _next_id(model) for model in (Round, Order, Fill, OrderEvent)}
    tables = {model: _Inserter(model) for model in (Round, Order, Fill, OrderEvent)}
    written = {"rounds": 0, "orders": 0, "fills": 0, "events": 0}

    def flush() -> None:
        with transaction.atomic():
            for model in (Round, Order, Fill, OrderEvent):  # parents before children
                tables[model].flush()
        if progress:
            progress(written["orders"])

    pending = 0
    for size, at in zip(sizes, instants, strict=True):
        account = rng.choice(accounts)
        round_id = ids[Round]
        ids[Round] += 1
        strategies = rng.sample(STRATEGY_NAMES, rng.randint(1, 2))
        tables[Round].add(
            {
                "id": round_id,
                "account_id": account.pk,
                "uid": f"{round_id:032x}",
                "trigger": "target_changed",
                "status": Round.Status.CONVERGED,
                "targets": {name: None for name in strategies},
                "diff": [],
                "skips": [],
                "planned": [],
                "message": "",
                "fingerprint": "",
                "created_at": at,
                "finished_at": at + timedelta(minutes=2),
                "approved_by_id": None,
                "approved_at": None,
            }
        )
        written["rounds"] += 1
        for security in rng.sample(securities, size):
            _order_rows(
                rng,
                tables,
                ids,
                written,
                account=account,
                round_id=round_id,
                at=at,
                security=security,
                strategies=strategies,
            )
        pending += size
        if pending >= chunk:
            flush()
            pending = 0
    flush()
    return GeneratedCounts(holdings=0, **written)


def _order_rows(rng, tables, ids, written, *, account, round_id, at, security, strategies) -> None:
    order_id = ids[Order]
    ids[Order] += 1
    side = rng.choice(("buy", "sell"))
    volume = _volume(rng, security)
    status = _status_pick(rng)
    limit = (security.price * Decimal(str(rng.uniform(0.97, 1.03)))).quantize(security.tick)
    filled = {OrderStatus.SUCCEEDED: volume, OrderStatus.PART_CANCEL: volume // 2}.get(status, 0)
    sent = status != OrderStatus.NOT_SENT
    finished = at + timedelta(seconds=rng.randint(1, 600))
    tables[Order].add(
        {
            "id": order_id,
            "key": _order_key(order_id),
            "account_id": account.pk,
            "round_id": round_id,
            "code": security.code,
            "side": side,
            "volume": volume,
            "price_type": 11,
            "limit_price": limit,
            "price_source": "xtdata",
            "reason": GENERATED_REASON,
            "strategies": strategies,
            "status": status,
            "filled_volume": filled,
            "avg_fill_price": limit if filled else None,
            "broker_order_id": 10_000_000 + order_id if sent else None,
            "message": "",
            "created_at": at,
            "sent_at": at + timedelta(milliseconds=80) if sent else None,
            "updated_at": finished,
            "cancel_requested_at": finished
            if status in (OrderStatus.CANCELED, OrderStatus.PART_CANCEL)
            else None,
            "user_cancel_requested_at": None,
            "claimed_by": "generator" if sent else "",
            "claim_epoch": 1 if sent else None,
            "claimed_at": at if sent else None,
            "reported_at": None,
        }
    )
    written["orders"] += 1
    events = [(at, OrderStatus.CREATED, 0)]
    if sent:
        events.append((at + timedelta(milliseconds=300), OrderStatus.REPORTED, 0))
    events.append((finished, status, filled))
    for event_at, event_status, event_filled in events:
        tables[OrderEvent].add(
            {
                "id": ids[OrderEvent],
                "order_id": order_id,
                "at": event_at,
                "status": event_status,
                "filled_volume": event_filled,
                "message": "",
            }
        )
        ids[OrderEvent] += 1
        written["events"] += 1
    # A filled order comes in one or two trades; a partly cancelled one in one.
    parts = (
        [filled]
        if status != OrderStatus.SUCCEEDED or rng.random() < 0.8
        else [filled // 2, filled - filled // 2]
    )
    for part in parts if filled else ():
        fill_id = ids[Fill]
        ids[Fill] += 1
        amount = (limit * part).quantize(Decimal("0.01"))
        tables[Fill].add(
            {
                "id": fill_id,
                "account_id": account.pk,
                "order_id": order_id,
                "trade_id": f"g{fill_id}",
                "code": security.code,
                "side": side,
                "volume": part,
                "price": limit,
                "amount": amount,
                "fee": max(Decimal(5), (amount * Decimal("0.00025")).quantize(Decimal("0.01"))),
                "traded_at": finished,
            }
        )
        written["fills"] += 1


def holdings_generate(*, account: BrokerAccount, count: int, seed: int = 1) -> int:
    """Replace a paper account's holdings by `count` lines (names for most codes), its state and a daily
    equity curve of a year, as the worker would have reported them."""
    order_history_check(accounts=[account])
    rng = random.Random(seed)
    now = timezone.now()
    securities = _securities(max(count, 600))[:count]
    lines = []
    for security in securities:
        volume = security.lot * rng.randint(1, 100)
        last = (security.price * Decimal(str(rng.uniform(0.8, 1.25)))).quantize(security.tick)
        lines.append(
            Holding(
                account=account,
                code=security.code,
                volume=volume,
                can_use_volume=volume,
                avg_cost=security.price,
                last_price=last,
                market_value=(last * volume).quantize(Decimal("0.01")),
                updated_at=now,
            )
        )
    market_value = sum((line.market_value for line in lines), Decimal(0))
    cash = Decimal("250000.00")
    with transaction.atomic():
        Holding.objects.filter(account=account).delete()
        Holding.objects.bulk_create(lines)
        AccountState.objects.update_or_create(
            account=account,
            defaults={
                "cash": cash,
                "market_value": market_value,
                "total_asset": cash + market_value,
                "updated_at": now,
            },
        )
        # Nine codes in ten have a name, as after uploads; the rest show the code alone.
        SecurityName.objects.bulk_create(
            [
                SecurityName(code=s.code, name=f"证券{s.code[:6]}", source="upload")
                for index, s in enumerate(securities)
                if index % 10
            ],
            ignore_conflicts=True,
        )
        EquityPoint.objects.filter(account=account).delete()
        EquityPoint.objects.bulk_create(
            [
                EquityPoint(
                    account=account,
                    at=now - timedelta(days=day),
                    cash=cash,
                    market_value=market_value,
                    total_asset=cash + market_value * Decimal(1 - day / 1000),
                )
                for day in range(365, -1, -1)
            ]
        )
    return len(lines)
