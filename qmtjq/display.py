"""One place that turns stored codes, numbers and English detail strings into the reader's language.

The planner, the worker and the rotation decisions store short English texts
(for logs) next to reason codes. Pages never show those raw: each known text
shape is matched here and rendered from its parameters through gettext; an
unknown text is shown as stored (never hidden).
"""

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext

from positions.codes import CodeError, InstrumentClass, instrument_class

DASH = "—"
DATE_FORMAT = "%Y-%m-%d"
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
FINE_TICK_CLASSES = frozenset({InstrumentClass.CONVERTIBLE_BOND, InstrumentClass.FUND})


def _decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None


def money(value, places: int = 2) -> str:
    """1234567.891 → '1,234,567.89'; None → '—'."""
    number = _decimal(value)
    if number is None:
        return DASH
    return f"{number:,.{places}f}"


def signed_money(value) -> str:
    number = _decimal(value)
    if number is None:
        return DASH
    return ("+" if number > 0 else "") + money(number)


def price_places(code: str | None) -> int:
    """Decimals of the price tick: 3 for convertible bonds and funds/ETFs (0.001), else 2 (DESIGN §4)."""
    return 3 if instrument_kind(code or "") in FINE_TICK_CLASSES else 2


def price(value, code: str | None = None) -> str:
    return money(value, price_places(code))


def volume(value) -> str:
    if value is None or value == "":
        return DASH
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)


def percent(value, places: int = 2, *, signed: bool = False) -> str:
    """A ratio as a percentage: 0.5 → '50%', 0.12345 → '12.35%' (trailing zeros dropped)."""
    number = _decimal(value)
    if number is None:
        return DASH
    text = f"{number * 100:,.{places}f}".rstrip("0").rstrip(".") if places else f"{number * 100:,.0f}"
    if text in ("-0", ""):
        text = "0"
    return ("+" if signed and number > 0 else "") + text + "%"


def when(value) -> str:
    """Datetimes in TIME_ZONE as 'YYYY-MM-DD HH:MM:SS'; dates as 'YYYY-MM-DD'."""
    if value is None or value == "":
        return DASH
    if isinstance(value, datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        return value.strftime(DATETIME_FORMAT)
    if isinstance(value, date):
        return value.strftime(DATE_FORMAT)
    return str(value)


def duration(value) -> str:
    """A timedelta as the reader says it: '3 天', '60 秒', '1 小时 30 分钟'."""
    if value is None:
        return DASH
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = []
    if days:
        parts.append(ngettext("%(n)d day", "%(n)d days", days) % {"n": days})
    if hours:
        parts.append(ngettext("%(n)d hour", "%(n)d hours", hours) % {"n": hours})
    if minutes:
        parts.append(ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes})
    if secs or not parts:
        parts.append(ngettext("%(n)d second", "%(n)d seconds", secs) % {"n": secs})
    return " ".join(parts)


# --- stored English texts -> the reader's language ---------------------------------------------

_NUM = r"(?P<{}>-?[0-9][0-9,]*(?:\.[0-9]+)?)"


def _n(name: str) -> str:
    return _NUM.format(name)


# (pattern, template, {param: formatter}); the first full match wins.
TEXT_PATTERNS = [
    (r"increase to target", gettext_lazy("increase to target"), {}),
    (r"reduce to target", gettext_lazy("reduce to target"), {}),
    (r"rank " + _n("rank"), gettext_lazy("rank %(rank)s"), {}),
    (r"(?:ranked )?beyond the top " + _n("n"), gettext_lazy("beyond the top %(n)s"), {}),
    (r"top " + _n("n") + r" already held", gettext_lazy("top %(n)s already held"), {}),
    (r"still selected", gettext_lazy("still selected"), {}),
    (r"left the selection", gettext_lazy("left the selection"), {}),
    (r"excluded", gettext_lazy("excluded"), {}),
    (r"not a convertible bond", gettext_lazy("not a convertible bond"), {}),
    (r"no price", gettext_lazy("no price"), {}),
    (r"at limit-up", gettext_lazy("at limit-up"), {}),
    (r"not enough cash for the fixed amount", gettext_lazy("not enough cash for the fixed amount"), {}),
    (r"not enough cash for 10 bonds", gettext_lazy("not enough cash for 10 bonds"), {}),
    (r"not enough budget for the fixed amount", gettext_lazy("not enough budget for the fixed amount"), {}),
    (r"not enough budget for 10 bonds", gettext_lazy("not enough budget for 10 bonds"), {}),
    (
        r"account (?P<account>.+) follows other strategies too \((?P<others>.+)\): rotation (?P<name>\S+) needs a capital budget \(an amount or a share of total assets\) before it runs",
        gettext_lazy("account %(account)s follows other strategies too (%(others)s): rotation %(name)s needs a capital budget (an amount or a share of total assets) before it runs"),
        {},
    ),
    (r"suspended", gettext_lazy("suspended"), {}),
    (r"no usable price", gettext_lazy("no usable price"), {}),
    (r"suspended or not trading", gettext_lazy("suspended or not trading"), {}),
    (r"at limit-up " + _n("price"), gettext_lazy("at limit-up %(price)s"), {}),
    (r"at limit-down " + _n("price"), gettext_lazy("at limit-down %(price)s"), {}),
    (r"scaled target " + _n("amount") + r" is below one lot", gettext_lazy("scaled target %(amount)s is below one lot"), {}),
    (_n("volume") + r" is below one lot", gettext_lazy("%(volume)s is below one lot"), {"volume": volume}),
    (r"odd lot kept until it can go whole", gettext_lazy("odd lot kept until it can go whole"), {}),
    (r"never traded by sync or on the ignore list", gettext_lazy("never traded by sync or on the ignore list"), {}),
    (r"held but never targeted or traded by qmtjq", gettext_lazy("held but never targeted or traded by qmtjq"), {}),
    (r"order capped at " + _n("cap"), gettext_lazy("order capped at %(cap)s"), {"cap": money}),
    (r"daily turnover cap " + _n("cap"), gettext_lazy("daily turnover cap %(cap)s"), {"cap": money}),
    (r"only " + _n("n") + r" sellable now \(T\+1/frozen\)", gettext_lazy("only %(n)s sellable now (T+1/frozen)"), {"n": volume}),
    (r"cash " + _n("cash") + r" covers " + _n("n"), gettext_lazy("cash %(cash)s covers %(n)s"), {"cash": money, "n": volume}),
    (
        r"round trades " + _n("value") + r", (?P<share>[0-9.]+)% of total assets, above the approval threshold (?P<threshold>[0-9.]+)%",
        gettext_lazy("round trades %(value)s, %(share)s%% of total assets, above the approval threshold %(threshold)s%%"),
        {"value": money},
    ),
    (
        r"exits sent, the other orders wait for approval: round trades " + _n("value") + r", (?P<share>[0-9.]+)% of total assets, above the approval threshold (?P<threshold>[0-9.]+)%",
        gettext_lazy("exits sent, the other orders wait for approval: round trades %(value)s, %(share)s%% of total assets, above the approval threshold %(threshold)s%%"),
        {"value": money},
    ),
    (r"subscription to strategy '(?P<name>.*)' has ratio (?P<value>\S+): a ratio must be above 0", gettext_lazy("subscription to strategy “%(name)s” has ratio %(value)s: a ratio must be above 0"), {}),
    (r"subscription to strategy '(?P<name>.*)' has capital (?P<value>\S+): capital must be above 0", gettext_lazy("subscription to strategy “%(name)s” has capital %(value)s: capital must be above 0"), {}),
    (r"strategy '(?P<name>.*)' reported a negative total_value (?P<value>\S+)", gettext_lazy("strategy “%(name)s” reported a negative total_value %(value)s"), {}),
    (
        r"capital scaling of strategy '(?P<name>.*)' needs its total_value: the target has no total_value and no line has a cost",
        gettext_lazy("capital scaling of strategy “%(name)s” needs its total_value: the target has no total_value and no line has a cost"),
        {},
    ),
    (
        r"capital scaling of strategy '(?P<name>.*)' needs its total_value or every line's cost: no cost for (?P<codes>.+)",
        gettext_lazy("capital scaling of strategy “%(name)s” needs its total_value or every line's cost: no cost for %(codes)s"),
        {},
    ),
    (
        _n("wanted") + r" is not a valid sell volume with " + _n("reserved") + r" reserved: " + _n("sold") + r" sold, the rest kept",
        gettext_lazy("%(wanted)s is not a valid sell volume with %(reserved)s reserved: %(sold)s sold, the rest kept"),
        {"wanted": volume, "reserved": volume, "sold": volume},
    ),
    (r"could not plan this line: (?P<error>.+)", gettext_lazy("could not plan this line: %(error)s"), {}),
    (r"could not size this line: (?P<error>.+)", gettext_lazy("could not size this line: %(error)s"), {}),
    (r"(?P<code>[0-9]{6}\.(?:SH|SZ|BJ)) is not traded by qmtjq \((?P<klass>\w+)\)", gettext_lazy("%(code)s is not traded by qmtjq (%(klass)s)"), {}),
    (r"the account subscribes to no strategy", gettext_lazy("the account subscribes to no strategy"), {}),
    (r"strategy '(?P<name>.*)' has not sent a target yet", gettext_lazy("strategy “%(name)s” has not sent a target yet"), {}),
    (
        r"target of strategy '(?P<name>.*)' is stale \(last confirmed (?P<at>.*)\)",
        gettext_lazy("target of strategy “%(name)s” is stale (last confirmed %(at)s)"),
        {},
    ),
    (r"the market moved since approval: the new plan needs approval again", gettext_lazy("the market moved since approval: the new plan needs approval again"), {}),
    (r"global kill switch TRADING_ENABLED is off", gettext_lazy("global kill switch TRADING_ENABLED is off"), {}),
    (r"all trading paused in admin", gettext_lazy("all trading paused in admin"), {}),
    (r"trading switch of account (?P<name>\S+) is off", gettext_lazy("trading switch of account %(name)s is off"), {}),
    (r"not among today's broker orders: expired at the close", gettext_lazy("not among today's broker orders: expired at the close"), {}),
    (r"expired unfilled at the end of (?P<day>[0-9-]+)", gettext_lazy("expired unfilled at the end of %(day)s"), {}),
    (r"sent, broker order id (?P<id>-?[0-9]+)", gettext_lazy("sent, broker order id %(id)s"), {}),
    (r"cancel requested after timeout \(result (?P<result>-?[0-9]+)\)", gettext_lazy("cancel requested after timeout (result %(result)s)"), {}),
    (r"cancel requested by a user \(result (?P<result>-?[0-9]+)\)", gettext_lazy("cancel requested by a user (result %(result)s)"), {}),
    (r"cancel asked in admin by (?P<user>.+)", gettext_lazy("cancel asked in admin by %(user)s"), {}),
    (r"MiniQMT disconnected", gettext_lazy("MiniQMT disconnected"), {}),
    (r"send failed: (?P<error>.+)", gettext_lazy("send failed: %(error)s"), {}),
    # xtquant's status texts and price types come in Chinese or as bare codes.
    (r"已成 \((?P<code>[0-9]+)\)|filled \((?P<code2>[0-9]+)\)", gettext_lazy("filled (%(code)s)"), {}),
    (r"报价类型 (?P<code>[0-9]+)", gettext_lazy("price type %(code)s"), {}),
]
_COMPILED = [(re.compile(pattern), template, formats) for pattern, template, formats in TEXT_PATTERNS]


def text(stored: object) -> str:
    """A stored English (or broker) text in the reader's language; unknown texts are returned as stored."""
    if stored is None:
        return ""
    raw = str(stored).strip()
    if not raw:
        return ""
    # Round messages join several parts with "; " (one per order or reason).
    if "; " in raw:
        return join(text(part) for part in raw.split("; "))
    for pattern, template, formats in _COMPILED:
        match = pattern.fullmatch(raw)
        if match is None:
            continue
        params = {key: value for key, value in match.groupdict().items() if value is not None}
        if "code2" in params:
            params["code"] = params.pop("code2")
        for key, formatter in formats.items():
            if key in params:
                params[key] = formatter(params[key].replace(",", ""))
        return str(template) % params
    if ": " in raw:  # "113050.SH: rejected" style prefixes keep the code, translate the rest
        head, tail = raw.split(": ", 1)
        rendered = text(tail)
        if rendered != tail:
            return f"{head}: {rendered}"
    return raw


def join(parts) -> str:
    """Parts of one message joined the reader's way: '; ' in English, '；' in Chinese."""
    return pgettext("list separator", "; ").join(str(part) for part in parts)


def _param_shown(key: str, value, *, templates: dict, code: str | None):
    """One parameter in the reader's formats; a nested coded text (a dict) is rendered with `templates`."""
    from execution.planner.texts import (
        MONEY_PARAMS,
        ORDER_TEXT_PARAMS,
        PERCENT_PARAMS,
        PRICE_PARAMS,
        STATUS_PARAMS,
        VOLUME_PARAMS,
    )

    if isinstance(value, dict):
        return coded_message(templates=templates, coded=value, stored=value.get("stored", ""))
    if key in VOLUME_PARAMS:
        return volume(value)
    if key in MONEY_PARAMS:
        return money(value)
    if key in PRICE_PARAMS:
        return price(value, code)
    if key in PERCENT_PARAMS:
        return percent(value, 1)
    if key in STATUS_PARAMS:
        return order_status_label(value)
    if key in ORDER_TEXT_PARAMS:
        return text(value)  # a broker's or an order's own text: known shapes translated, others as stored
    if key == "at":
        return _moment(value)
    return value


def coded_text(*, templates: dict, text_code: object, params: object, stored: object, code: str | None = None) -> str:
    """A text stored as a code + parameters (execution.planner.texts), in the reader's language with the
    reader's number formats; the stored English (through `text`) when the code or parameters are unusable."""
    parts = [templates.get(part) for part in text_code.split("+")] if isinstance(text_code, str) else [None]
    if None in parts or not isinstance(params, dict):
        return text(stored)
    try:
        code = code or (params.get("code") if isinstance(params.get("code"), str) else None)
        shown = {key: _param_shown(key, value, templates=templates, code=code) for key, value in params.items()}
        return join(_(template) % shown for template in parts)
    except (KeyError, TypeError, ValueError):
        return text(stored)


def coded_message(*, templates: dict, coded: object, stored: object) -> str:
    """A message stored as {"text": code, "params": {...}} or {"parts": [such texts, ...]} (joined the
    reader's way), next to its English `stored`; old rows without codes render from `stored`."""
    if not isinstance(coded, dict) or not coded:
        return text(stored)
    if "parts" in coded:
        parts = coded["parts"]
        if not isinstance(parts, list) or not parts or not all(isinstance(part, dict) for part in parts):
            return text(stored)
        return join(coded_message(templates=templates, coded=part, stored=part.get("stored", "")) for part in parts)
    if "text" not in coded:
        return text(coded.get("stored", stored))
    return coded_text(templates=templates, text_code=coded.get("text"), params=coded.get("params"), stored=stored)


def _moment(value) -> str:
    try:
        return when(datetime.fromisoformat(str(value)))
    except ValueError:
        return str(value)


def skip_detail(skip: dict) -> str:
    """A round's skipped line in the reader's language: from its text code and parameters when it
    has them (rows written since skips carry codes), else from the stored English text."""
    from execution.planner.texts import SKIP_TEXTS

    if not isinstance(skip, dict):
        return ""
    return coded_text(
        templates=SKIP_TEXTS, text_code=skip.get("text"), params=skip.get("params"),
        stored=skip.get("detail", ""), code=skip.get("code"),
    )


def round_message(round_) -> str:
    """A round's message in the reader's language: from Round.message_params when the row has them
    (rows written since round messages carry codes), else from the stored English text."""
    from execution.planner.texts import ROUND_TEXTS

    return coded_message(
        templates=ROUND_TEXTS, coded=getattr(round_, "message_params", None), stored=getattr(round_, "message", "")
    )


def decision_reason(row: dict) -> str:
    """A rotation decision row's reason in the reader's language: from its text code and parameters
    (rows stored since reasons carry codes), else from the stored English reason."""
    from rotation.texts import ROTATION_TEXTS

    if not isinstance(row, dict):
        return ""
    return coded_text(
        templates=ROTATION_TEXTS, text_code=row.get("text"), params=row.get("params"),
        stored=row.get("reason", ""), code=row.get("code"),
    )


def run_message(run) -> str:
    """A rotation run's message in the reader's language: from RotationRun.message_params when the row
    has them (runs stored since run messages carry codes), else from the stored text."""
    from rotation.texts import ROTATION_RUN_TEXTS

    return coded_message(
        templates=ROTATION_RUN_TEXTS, coded=getattr(run, "message_params", None), stored=getattr(run, "message", "")
    )


def pause_reason(pause) -> str:
    """The global pause's reason in the reader's language: a reason the system wrote (the trading PC's
    copy of the server's pause) from its code; one a person typed, or an old row, as stored."""
    from qmtjq.trading import TRADING_TEXTS

    return coded_message(
        templates=TRADING_TEXTS, coded=getattr(pause, "reason_params", None), stored=getattr(pause, "reason", "")
    )


ROUND_STATUS_KEYS = {
    "held_for_approval": gettext_lazy("held for approval"),
    "placed": gettext_lazy("placed"),
    "converged": gettext_lazy("converged"),
    "blocked": gettext_lazy("blocked"),
    "failed": gettext_lazy("failed"),
    "cancelled": gettext_lazy("cancelled"),
}


def status_word(value: object) -> str:
    """Raw status keys ('held_for_approval') as words in the reader's language."""
    return str(ROUND_STATUS_KEYS.get(str(value), value))


def order_status_label(value) -> str:
    """An order status code (57) as its label in the reader's language with the code: '废单 (57)'."""
    from execution.models import OrderStatus

    try:
        label = OrderStatus(int(value)).label
    except (TypeError, ValueError):
        return str(value)
    return _("%(label)s (%(code)s)") % {"label": label, "code": int(value)}


def order_status(order) -> str:
    """'已成 (56)': the label in the reader's language with xtquant's code, which traders search for."""
    return _("%(label)s (%(code)s)") % {"label": order.get_status_display(), "code": order.status}


def instrument_kind(code: str) -> InstrumentClass | None:
    try:
        return instrument_class(code)
    except (CodeError, ValueError):
        return None
