"""Strict parsing of an upload body into a validated `UploadRequest`.

DRF's fields are forgiving (`"12"` and `12.0` both become 12); money code
must not be. Every error names the field and the rule it broke.
"""

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from django.conf import settings

from qmtjq.validation import InputError, json_parse, text_check

from . import codes

STRATEGY_NAME_MAX = 100
SECURITY_NAME_MAX = 64
SNAPSHOT_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
MAX_VOLUME = 10**12
MAX_MONEY = Decimal("1e15")
_MAX_MONEY_FLOAT = 1e15  # exact in binary; a float below it has a Decimal below MAX_MONEY
_MICRO = Decimal("1e-6")


# Bad input; the message is shown to the caller as `{"error": ...}` (one class for every app).
UploadError = InputError


class TargetPosition(NamedTuple):
    # A NamedTuple, not a frozen dataclass: an upload builds one per line and a
    # frozen dataclass's __init__ costs several times as much (issue 12).
    code: str  # canonical
    jq_code: str
    name: str
    volume: int
    cost: Decimal


@dataclass(frozen=True)
class UploadRequest:
    strategy_name: str
    positions: tuple[TargetPosition, ...]
    total_value: Decimal | None
    cash: Decimal | None
    snapshot_id: str | None


def parse_json_body(body: bytes) -> object:
    return json_parse(body)


def validate_strategy_name(value: object, field: str = "strategy_name") -> str:
    if value is None or value == "":
        raise UploadError(f"{field}: required")
    if not isinstance(value, str):
        raise UploadError(f"{field}: must be a string")
    text_check(value, field, max_length=STRATEGY_NAME_MAX, name=True)
    if value != value.strip():
        raise UploadError(f"{field}: must not start or end with whitespace")
    if "/" in value:
        raise UploadError(f"{field}: must not contain '/'")
    return value


def _whole_number(value: object, field: str) -> int:
    if isinstance(value, bool):
        raise UploadError(f"{field}: must be a whole number, not true/false")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise UploadError(f"{field}: must be a whole number of shares, got {value!r}")
        number = int(value)
    else:
        raise UploadError(f"{field}: must be a whole number, got {type(value).__name__}")
    if number < 0:
        raise UploadError(f"{field}: must not be negative")
    if number >= MAX_VOLUME:
        raise UploadError(f"{field}: too large")
    return number


def _money(value: object, field: str, *, required: bool) -> Decimal | None:
    if value is None:
        if required:
            raise UploadError(f"{field}: required")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UploadError(f"{field}: must be a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise UploadError(f"{field}: must be a finite number")
    if value < 0:
        raise UploadError(f"{field}: must not be negative")
    amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if amount >= MAX_MONEY:
        raise UploadError(f"{field}: too large")
    return amount


def _security_name(value: object, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UploadError(f"{field}: must be a string")
    return text_check(value.strip(), field, max_length=SECURITY_NAME_MAX, name=True)


def parse_positions(raw_positions: object) -> tuple[TargetPosition, ...]:
    if raw_positions is None:
        raise UploadError("positions: required (send [] when the strategy holds nothing)")
    if not isinstance(raw_positions, list):
        raise UploadError("positions: must be a list")
    limit = settings.API_MAX_POSITIONS
    if len(raw_positions) > limit:
        raise UploadError(f"positions: at most {limit} lines, got {len(raw_positions)}")
    seen: dict[str, int] = {}
    parsed = []
    for index, line in enumerate(raw_positions):
        if not isinstance(line, dict):
            raise UploadError(f"positions[{index}]: must be an object with code, volume and cost")
        try:
            code, jq_code = codes.normalize_pair(line.get("code"))
        except codes.CodeError as exc:
            raise UploadError(f"positions[{index}].code: {exc}")
        if code in seen:
            raise UploadError(f"positions[{index}].code: {code} appears twice (also positions[{seen[code]}])")
        seen[code] = index
        volume = line.get("volume")
        # The common line (an int volume, a float cost, a printable name) is
        # checked inline; anything else goes through the helpers, which name
        # the field and the rule it broke. The rules are the same either way.
        if type(volume) is not int or not 0 <= volume < MAX_VOLUME:
            volume = _whole_number(volume, f"positions[{index}].volume")
        cost = line.get("cost")
        if type(cost) is float and 0 <= cost < _MAX_MONEY_FLOAT:
            cost = Decimal(repr(cost))
        else:
            cost = _money(cost, f"positions[{index}].cost", required=True)
        name = line.get("name")
        if name is None:
            name = ""
        elif type(name) is str and name.isprintable() and len(name) <= SECURITY_NAME_MAX:
            name = name.strip()
        else:
            name = _security_name(name, f"positions[{index}].name")
        if volume == 0:
            continue  # a zero line means "not held": same as leaving it out
        parsed.append(TargetPosition(code, jq_code, name, volume, cost.quantize(_MICRO)))
    return tuple(sorted(parsed, key=lambda p: p.code))


def parse_upload(payload: object) -> UploadRequest:
    if not isinstance(payload, dict):
        raise UploadError("body must be a JSON object")
    snapshot_id = payload.get("snapshot_id")
    if snapshot_id is not None and (
        not isinstance(snapshot_id, str) or not SNAPSHOT_ID_RE.fullmatch(snapshot_id)
    ):
        raise UploadError("snapshot_id: 1-64 characters of letters, digits, '.', '_', ':' or '-'")
    return UploadRequest(
        strategy_name=validate_strategy_name(payload.get("strategy_name")),
        positions=parse_positions(payload.get("positions")),
        total_value=_money(payload.get("total_value"), "total_value", required=False),
        cash=_money(payload.get("cash"), "cash", required=False),
        snapshot_id=snapshot_id,
    )
