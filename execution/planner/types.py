"""The planner's inputs and outputs: plain frozen dataclasses, no database."""

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

ZERO = Decimal(0)


class SkipReason(enum.StrEnum):
    IGNORED = "ignored"  # never-traded code or on the account's ignore list
    UNMANAGED = "unmanaged"  # held, never targeted or traded by qmtjq
    NO_QUOTE = "no_quote"
    SUSPENDED = "suspended"
    LIMIT_UP = "limit_up"
    LIMIT_DOWN = "limit_down"
    LOT_TOO_SMALL = "lot_too_small"
    T_PLUS_1 = "t_plus_1"  # shares bought today (or frozen) cannot be sold yet
    CASH = "cash"
    RISK_ORDER_CAP = "risk_order_cap"
    RISK_TURNOVER_CAP = "risk_turnover_cap"
    NOT_TRADABLE = "not_tradable"
    ERROR = "error"  # an unexpected problem on this line: nothing traded for it


class PlanStatus(enum.StrEnum):
    PLACE = "place"  # orders to send
    CONVERGED = "converged"  # nothing to do (up to lots and recorded skips)
    BLOCKED = "blocked"  # targets missing or stale: do nothing, tell the user
    HOLD = "hold"  # large change: wait for approval


@dataclass(frozen=True)
class TargetLine:
    code: str
    volume: int
    cost: Decimal


@dataclass(frozen=True)
class SubscribedTarget:
    """One subscription of the account with its strategy's current target."""

    strategy_id: int
    strategy_name: str
    mode: str  # "ratio" | "capital"
    ratio: Decimal = Decimal(1)
    capital: Decimal = ZERO
    snapshot_id: int | None = None  # None: the strategy never sent a target
    confirmed_at: datetime | None = None
    total_value: Decimal | None = None
    lines: tuple[TargetLine, ...] = ()
    # Codes the strategy's own rules closed (take-profit/stop-loss, left a rotation's
    # list): selling them is an exit the user ordered, not a change to approve.
    rule_exits: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Holding:
    code: str
    volume: int
    can_use_volume: int
    avg_cost: Decimal = ZERO
    last_price: Decimal | None = None


@dataclass(frozen=True)
class Quote:
    code: str
    last: Decimal | None
    up_stop: Decimal | None = None
    down_stop: Decimal | None = None
    tick: Decimal | None = None  # broker's PriceTick; table fallback when None
    suspended: bool = False
    source: str = ""
    max_order_volume: int | None = None  # broker's per-order maximum; table fallback when None


@dataclass(frozen=True)
class AccountPolicy:
    slippage: Decimal = Decimal("0.002")
    max_order_value: Decimal | None = None
    max_daily_turnover: Decimal | None = None
    approval_threshold: Decimal | None = None  # share of total assets; None = never hold
    hold_rule_exits: bool = False  # rule exits (TP/SL, rotation sells) wait for approval too
    stale_after: timedelta = timedelta(days=3)
    sell_unmanaged: bool = False
    ignore_codes: frozenset[str] = frozenset()
    commission_rate: Decimal = Decimal("0.00025")
    min_commission: Decimal = Decimal("5")
    fee_buffer_rate: Decimal = Decimal("0.001")


@dataclass(frozen=True)
class AccountView:
    """Fresh broker state, as reported by the worker moments ago."""

    cash: Decimal
    total_asset: Decimal
    holdings: dict[str, Holding]
    reserved: dict[str, int] = field(default_factory=dict)
    managed_codes: frozenset[str] = frozenset()  # ever targeted or traded for this account
    pending_buy_value: Decimal = ZERO
    turnover_today: Decimal = ZERO


@dataclass(frozen=True)
class PlannedOrder:
    code: str
    side: str  # "buy" | "sell"
    volume: int
    limit_price: Decimal
    price_source: str
    reason: str

    @property
    def value(self) -> Decimal:
        return self.limit_price * self.volume


@dataclass(frozen=True)
class Skip:
    code: str
    reason: SkipReason
    detail: str = ""  # English, for logs and the CLI; pages render `text` + `params`
    volume: int = 0  # how much of the wanted change was not traded
    text: str = ""  # a code of planner.texts.SKIP_TEXTS ("" = free text, e.g. an error)
    params: dict = field(default_factory=dict)

    @classmethod
    def of(cls, code: str, reason: "SkipReason", text: str, volume: int = 0, **params) -> "Skip":
        """A skip whose detail is one of the planner's texts, with its parameters kept apart."""
        from .texts import skip_text

        detail, safe = skip_text(text, **params)
        return cls(code, reason, detail, volume, text=text, params=safe)


@dataclass(frozen=True)
class DiffLine:
    code: str
    target: int | None  # None: not managed by qmtjq (left alone)
    actual: int  # held minus reserved
    reserved: int
    delta: int | None
    managed: bool = True


@dataclass
class Plan:
    status: PlanStatus
    orders: list[PlannedOrder] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)
    diff: list[DiffLine] = field(default_factory=list)
    target: dict[str, int] = field(default_factory=dict)
    message: str = ""
    # {"text": code, "params": {...}} of the message (texts.ROUND_TEXTS); {} for free texts.
    message_params: dict = field(default_factory=dict)

    @property
    def traded_value(self) -> Decimal:
        return sum((order.value for order in self.orders), ZERO)
