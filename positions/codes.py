"""Securities codes (DESIGN §3): normalize to QMT form, render JoinQuant form, classify.

Canonical inside the system is QMT's `600000.SH` / `000001.SZ` / `430047.BJ`.
A bare six-digit code is only accepted when its prefix names one exchange;
anything else is ambiguous and rejected, never guessed.
"""

import enum
import functools
import re

SH, SZ, BJ = "SH", "SZ", "BJ"

_SUFFIXES = {
    "SH": SH,
    "XSHG": SH,
    "SS": SH,
    "SZ": SZ,
    "XSHE": SZ,
    "BJ": BJ,
}

# Bare codes: prefix -> exchange. Longest prefix wins (e.g. 1318 before 13x).
_BARE_PREFIXES = {
    SH: ("60", "68", "900", "5", "110", "111", "113", "118", "204"),
    SZ: ("00", "30", "200", "15", "16", "123", "127", "128", "1318"),
    BJ: ("43", "83", "87", "92"),
}
_PREFIX_TABLE = sorted(
    ((prefix, exchange) for exchange, prefixes in _BARE_PREFIXES.items() for prefix in prefixes),
    key=lambda item: -len(item[0]),
)

# ASCII digits only: Python's \d also matches full-width and other scripts' digits,
# which would be stored as codes no broker knows and then silently never traded.
_DOTTED = re.compile(r"^([0-9]{6})\.([A-Za-z]{2,4})$")
_PREFIXED = re.compile(r"^(sh|sz|bj)([0-9]{6})$", re.IGNORECASE)
_BARE = re.compile(r"^[0-9]{6}$")
_CANONICAL = re.compile(r"^[0-9]{6}\.(SH|SZ|BJ)$")


class CodeError(ValueError):
    """A code that cannot be normalized; the message says why."""


def _infer_exchange(digits: str) -> str:
    for prefix, exchange in _PREFIX_TABLE:
        if digits.startswith(prefix):
            return exchange
    raise CodeError(f"cannot tell the exchange of bare code {digits!r}; add a suffix such as .XSHG/.XSHE/.BJ")


def normalize(raw: object) -> str:
    """Return the canonical QMT code for `raw` or raise `CodeError`."""
    if not isinstance(raw, str):
        raise CodeError("code must be a string")
    code = raw.strip()
    if not code:
        raise CodeError("code is empty")
    if not code.isascii() and any(ch.isdigit() and not ("0" <= ch <= "9") for ch in code):
        raise CodeError(f"{raw!r} must be written with ASCII digits 0-9 (no full-width or other digits)")
    if match := _DOTTED.match(code):
        digits, suffix = match.group(1), match.group(2).upper()
        exchange = _SUFFIXES.get(suffix)
        if exchange is None:
            raise CodeError(f"unknown exchange suffix {match.group(2)!r} in {raw!r}")
        return f"{digits}.{exchange}"
    if match := _PREFIXED.match(code):
        return f"{match.group(2)}.{match.group(1).upper()}"
    if _BARE.match(code):
        return f"{code}.{_infer_exchange(code)}"
    if re.fullmatch(r"[0-9]{5}(\.HK)?", code, re.IGNORECASE):
        raise CodeError(f"{raw!r} looks like a Hong Kong code; only SH/SZ/BJ securities are supported")
    raise CodeError(f"{raw!r} is not a securities code (expected e.g. 600000.XSHG or 000001.SZ)")


@functools.lru_cache(maxsize=8192)
def _normalize_pair_cached(raw: str) -> tuple[str, str]:
    code = normalize(raw)
    return code, to_jq(code)


def normalize_pair(raw: object) -> tuple[str, str]:
    """(canonical code, JoinQuant code) for `raw`, or `CodeError`; remembered per distinct string.

    An upload repeats the same few hundred codes every time, and normalizing
    was a tenth of its server CPU (issue 12). Errors are not remembered.
    """
    if type(raw) is str:
        return _normalize_pair_cached(raw)
    code = normalize(raw)  # raises CodeError: not a string
    return code, to_jq(code)


def to_jq(code: str) -> str:
    """JoinQuant form of a canonical code: .XSHG / .XSHE, BJ stays .BJ."""
    digits, exchange = code.split(".")
    return f"{digits}.{ {SH: 'XSHG', SZ: 'XSHE', BJ: 'BJ'}[exchange] }"


class InstrumentClass(enum.StrEnum):
    MAIN_BOARD = "main_board"
    STAR = "star"
    CHINEXT = "chinext"
    BJ = "bj"
    CONVERTIBLE_BOND = "convertible_bond"
    FUND = "fund"
    NEVER_TRADED = "never_traded"
    OTHER = "other"


def instrument_class(code: str) -> InstrumentClass:
    """Classify a canonical code by its prefix (DESIGN §3)."""
    digits, exchange = code.split(".")
    if exchange == BJ:
        return InstrumentClass.BJ
    if exchange == SH:
        if digits.startswith("204") or digits.startswith("7"):
            # Reverse repo and IPO/subscription codes: never traded by sync.
            return InstrumentClass.NEVER_TRADED
        if digits.startswith(("688", "689")):
            return InstrumentClass.STAR
        if digits.startswith("60"):
            return InstrumentClass.MAIN_BOARD
        if digits.startswith(("110", "111", "113", "118")):
            return InstrumentClass.CONVERTIBLE_BOND
        if digits.startswith("508"):
            return InstrumentClass.OTHER  # public REITs: not traded by qmtjq
        if digits.startswith("5"):
            return InstrumentClass.FUND
        return InstrumentClass.OTHER
    if digits.startswith("1318"):
        return InstrumentClass.NEVER_TRADED
    if digits.startswith("30"):
        return InstrumentClass.CHINEXT
    if digits.startswith("00"):
        return InstrumentClass.MAIN_BOARD
    if digits.startswith(("123", "127", "128")):
        return InstrumentClass.CONVERTIBLE_BOND
    if digits.startswith(("15", "16")):
        return InstrumentClass.FUND
    return InstrumentClass.OTHER


def is_never_traded(code: str) -> bool:
    """Reverse repo, IPO subscription and HK-connect codes are ignored on both sides."""
    if not _CANONICAL.match(code):
        return True  # e.g. 5-digit HK-connect holdings reported by the broker
    return instrument_class(code) is InstrumentClass.NEVER_TRADED
