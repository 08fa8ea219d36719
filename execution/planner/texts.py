"""The planner's skip details: a stable code and its English template (the msgid of its translation).

A skip stores the code and the parameters, and the English text for logs,
the CLI and readers that predate the codes; pages render the code in the
reader's language with the reader's number formats (qmtjq.display.skip_detail).
Changing a template means adding its translation; a code is never reused.
"""

from decimal import Decimal

# Parameter names decide their format: volume-like counts, money, prices.
VOLUME_PARAMS = frozenset({"n", "volume", "wanted", "reserved", "sold"})
MONEY_PARAMS = frozenset({"cash", "cap", "amount"})
PRICE_PARAMS = frozenset({"price"})
PERCENT_PARAMS = frozenset({"share", "threshold"})  # ratios (0.005), shown as 0.5%
STATUS_PARAMS = frozenset({"status"})  # an xtquant order status code, shown as its label: 废单 (57)
ORDER_TEXT_PARAMS = frozenset({"detail"})  # an order's own or the broker's text, shown as stored

SKIP_TEXTS = {
    "ignored": "never traded by sync or on the ignore list",
    "unmanaged": "held but never targeted or traded by qmtjq",
    "no_price": "no usable price",
    "suspended": "suspended or not trading",
    "at_limit_up": "at limit-up %(price)s",
    "at_limit_down": "at limit-down %(price)s",
    "t1_sellable": "only %(n)s sellable now (T+1/frozen)",
    "reserved_sell": "%(wanted)s is not a valid sell volume with %(reserved)s reserved: %(sold)s sold, the rest kept",
    "odd_lot_kept": "odd lot kept until it can go whole",
    "below_lot": "%(volume)s is below one lot",
    "scaled_below_lot": "scaled target %(amount)s is below one lot",
    "cash_covers": "cash %(cash)s covers %(n)s",
    "order_cap": "order capped at %(cap)s",
    "turnover_cap": "daily turnover cap %(cap)s",
    "held": "held: %(rounds)s orders in a row timed out without any fill (last at %(price)s): not re-sent today",
}


# Round messages (Round.message + Round.message_params): the same scheme as the skips.
ROUND_TEXTS = {
    "approval_hold": "round trades %(value)s, %(share)s of total assets, above the approval threshold %(threshold)s",
    "approval_exits_sent": "exits sent, the other orders wait for approval: round trades %(value)s, %(share)s of total assets, above the approval threshold %(threshold)s",
    "no_subscription": "the account subscribes to no strategy",
    "no_target_yet": "strategy '%(name)s' has not sent a target yet",
    "target_stale": "target of strategy '%(name)s' is stale (last confirmed %(at)s)",
    "market_moved": "the market moved since approval: the new plan needs approval again",
    # scale problems (targets.scale_problem): the account is blocked until the subscription is fixed
    "ratio_not_positive": "subscription to strategy '%(name)s' has ratio %(ratio)s: a ratio must be above 0",
    "capital_not_positive": "subscription to strategy '%(name)s' has capital %(capital)s: capital must be above 0",
    "negative_total_value": "strategy '%(name)s' reported a negative total_value %(total_value)s",
    "capital_needs_total_value": (
        "capital scaling of strategy '%(name)s' needs its total_value: the target has no total_value "
        "and no line has a cost"
    ),
    "capital_needs_costs": (
        "capital scaling of strategy '%(name)s' needs its total_value or every line's cost: no cost for %(codes)s"
    ),
    # a code held for the day (services.holds), one part per code of a blocked round
    "code_held": (
        "%(code)s held: %(rounds)s orders in a row timed out without any fill (last at %(price)s): not re-sent today"
    ),
    # a failed round (every order refused), one part per order: its text, or its status when it has none
    "order_refused": "%(code)s: %(detail)s",
    "order_refused_status": "%(code)s: %(status)s",
    # the broker refused these very orders and nothing changed: `previous` is the failed round's message
    "rejected_again": (
        "the same orders were rejected by the broker (%(previous)s); waiting for targets, holdings or cash "
        "to change, or retrying after %(minutes)s min"
    ),
}

# A code held for the day (CodeHold.reason + reason_params).
HOLD_TEXTS = {
    "unfilled_rounds": "%(rounds)s orders in a row timed out without any fill (last at %(price)s): not re-sent today",
}
MONEY_PARAMS = MONEY_PARAMS | {"value", "capital", "total_value"}


def _json_safe(value):
    return str(value) if isinstance(value, Decimal) else value


def _english(key: str, value):
    if isinstance(value, dict):  # a nested coded text carries its English
        return value.get("stored", "")
    if key in PERCENT_PARAMS:
        return f"{Decimal(str(value)):.1%}"
    return value


def skip_text(text: str, **params) -> tuple[str, dict]:
    """(the English detail, JSON-safe parameters) for a skip with this text code."""
    safe = {key: _json_safe(value) for key, value in params.items()}
    return SKIP_TEXTS[text] % safe, safe


def coded(templates: dict, text: str, **params) -> tuple[str, dict]:
    """(the English, {"text": code, "params": JSON-safe parameters}) for a text of `templates`.

    "a+b" joins two texts of the same parameters with "; " (e.g. a reason and a note on it).
    """
    safe = {key: _json_safe(value) for key, value in params.items()}
    english_params = {key: _english(key, value) for key, value in safe.items()}
    english = "; ".join(templates[part] % english_params for part in text.split("+"))
    return english, {"text": text, "params": safe}


def round_text(text: str, **params) -> tuple[str, dict]:
    """(the English message, {"text": code, "params": ...}) for a round message (Round.message_params)."""
    return coded(ROUND_TEXTS, text, **params)


def round_parts(parts: list[tuple[str, dict]]) -> tuple[str, dict]:
    """(the English of several round texts joined with "; ", {"parts": [each coded text]})."""
    english, coded_parts = [], []
    for message, coded_part in parts:
        english.append(message)
        coded_parts.append(coded_part)
    return "; ".join(english), {"parts": coded_parts}
