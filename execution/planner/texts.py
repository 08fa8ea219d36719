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


def _json_safe(value):
    return str(value) if isinstance(value, Decimal) else value


def skip_text(text: str, **params) -> tuple[str, dict]:
    """(the English detail, JSON-safe parameters) for a skip with this text code."""
    safe = {key: _json_safe(value) for key, value in params.items()}
    return SKIP_TEXTS[text] % safe, safe
