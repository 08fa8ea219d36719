"""Factor Cat (因子猫) wire shapes: errors, tokens, pages, selections, parsing of its JSON (DESIGN §8)."""

import base64
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

import requests

MESSAGE_MAX_CHARS = 500


class FactorCatError(Exception):
    """A Factor Cat call failed; `message` is what the server said (or a clear fallback)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return self.message


class FactorCatAuthError(FactorCatError):
    """The token (or the login) was refused: log in again."""


def token_tail(token: str | None) -> str:
    """The only part of a token we ever log."""
    return f"…{token[-4:]}" if token else "(none)"


def token_expires_at(token: str | None) -> datetime | None:
    """Expiry from a JWT's `exp` claim, read without verifying the signature (we are the client)."""
    if not token:
        return None
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        exp = claims["exp"]
        if isinstance(exp, bool) or not isinstance(exp, int | float):
            return None
        return datetime.fromtimestamp(exp, tz=UTC)
    except (ValueError, TypeError, KeyError, OverflowError, OSError):
        return None


@dataclass(frozen=True)
class LoginResult:
    access_token: str = field(repr=False)
    username: str
    role_name: str
    expires_at: datetime | None

    def __repr__(self) -> str:
        return (
            f"LoginResult(username={self.username!r}, role_name={self.role_name!r}, "
            f"expires_at={self.expires_at!r}, access_token={token_tail(self.access_token)!r})"
        )


@dataclass(frozen=True)
class Page:
    items: list[dict]
    total_count: int
    total_pages: int
    page: int
    limit: int

    @property
    def has_next(self) -> bool:
        return self.page < self.total_pages


@dataclass(frozen=True)
class SelectedBond:
    code: str  # canonical QMT form, e.g. 113050.SH
    name: str
    price: Decimal | None
    trade_date: date | None
    rank: int  # 1-based, in the server's order


@dataclass(frozen=True)
class TodaySelection:
    """Factor Cat's answer for a record: its top-level `trade_date`, the bonds, and what could not be read.

    A caller must not trade a list with problems: a dropped item would shift every rank below it.
    """

    trade_date: date | None
    bonds: list[SelectedBond]
    problems: list[str] = field(default_factory=list)


def tp_sl_ratios(parameters: dict) -> tuple[Decimal | None, Decimal | None]:
    """(take-profit, stop-loss) ratios of a backtest record; None when absent or junk, 0 means disabled."""
    from ..decisions import ratio_from_parameter

    return ratio_from_parameter(parameters.get("profitTargetRatio")), ratio_from_parameter(
        parameters.get("stopLossRatio")
    )


def _text(value: object) -> str:
    """A server message from any of the shapes seen: strings, FastAPI lists of {loc, msg}, nested dicts."""
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        for key in ("msg", "message", "detail", "error"):
            if text := _text(value.get(key)):
                loc = value.get("loc")
                if isinstance(loc, list | tuple) and loc:
                    return f"{'.'.join(str(part) for part in loc)}: {text}"
                return text
        return ""
    if isinstance(value, list | tuple):
        return "; ".join(text for text in (_text(item) for item in value) if text)
    return ""


def server_message(response: requests.Response) -> str:
    """The message of an error answer (`detail`/`message`/`error`/`msg`), or a clear fallback."""
    try:
        body = response.json()
    except ValueError:
        body = None
    text = ""
    if isinstance(body, dict):
        for key in ("detail", "message", "error", "msg"):
            if text := _text(body.get(key)):
                break
    elif isinstance(body, str | list):
        text = _text(body)
    if not text and body is None:
        raw = (response.text or "").strip()
        # An HTML error page from a proxy says nothing a user can act on.
        if raw and not raw.lstrip().startswith("<"):
            text = raw
    if not text:
        host = urlsplit(response.url or "").hostname or "Factor Cat"
        text = f"HTTP {response.status_code} {response.reason or ''}".rstrip() + f" from {host}"
    if len(text) > MESSAGE_MAX_CHARS:
        text = text[: MESSAGE_MAX_CHARS - 1] + "…"
    return text


def _int(value: object, default: int) -> int:
    if isinstance(value, bool):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _price(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        price = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return price if price.is_finite() and price > 0 else None


_DATE_TEXT = re.compile(r"(\d{4}-\d{2}-\d{2})(?:[T ][0-9:.+Z-]*)?|(\d{8})", re.ASCII)


def trade_date_parse(value: object) -> date | None:
    """`2024-05-10`, `2024-05-10T00:00:00` or `20240510` as a date; None for anything else."""
    if not isinstance(value, str):
        return None
    match = _DATE_TEXT.fullmatch(value.strip())
    if match is None:
        return None
    try:
        if match[1]:
            return date.fromisoformat(match[1])
        return datetime.strptime(match[2], "%Y%m%d").date()
    except ValueError:
        return None


def _date_field(item: dict, where: str, problems: list[str]) -> date | None:
    """An item's `trade_date`: None when absent; an unreadable one is a problem, never a guess."""
    raw = item.get("trade_date")
    if raw is None or raw == "":
        return None
    parsed = trade_date_parse(raw)
    if parsed is None:
        problems.append(f"{where}trade_date {raw!r} is not a date")
    return parsed
