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
}


# Round messages (Round.message + Round.message_params): the same scheme as the skips.
ROUND_TEXTS = {
    "approval_hold": "round trades %(value)s, %(share)s of total assets, above the approval threshold %(threshold)s",
    "approval_exits_sent": "exits sent, the other orders wait for approval: round trades %(value)s, %(share)s of total assets, above the approval threshold %(threshold)s",
    "no_subscription": "the account subscribes to no strategy",
    "no_target_yet": "strategy '%(name)s' has not sent a target yet",
    "target_stale": "target of strategy '%(name)s' is stale (last confirmed %(at)s)",
    "market_moved": "the market moved since approval: the new plan needs approval again",
}
MONEY_PARAMS = MONEY_PARAMS | {"value"}


def _json_safe(value):
    return str(value) if isinstance(value, Decimal) else value


def _english(key: str, value):
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
