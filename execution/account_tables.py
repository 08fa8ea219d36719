"""The account page's long tables (holdings, target vs actual, equity points) as ready rows.

With 300 holdings, 300 drift rows and a year of daily equity points, Django's template engine
spent most of the page's time resolving ~7,000 variables and filters one by one. These functions
write the same cells with the same display functions (qmtjq.display) in one pass; the template
only places the result in each <tbody>.
"""

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from qmtjq import display

from .selectors_pnl import HoldingPnl


def _sign_class(value) -> str:
    """'up' / 'down' / '' as the sign_class filter."""
    number = display._decimal(value)
    if number is None or number == 0:
        return ""
    return "up" if number > 0 else "down"


def _security(code: str, names: Mapping[str, str]) -> str:
    """As the {% security %} tag: the code with its name next to it."""
    if not code:
        return display.DASH
    shown = names.get(code, "")
    if shown:
        return format_html('<span class="code">{}</span> <span class="secname">{}</span>', code, shown)
    return format_html('<span class="code">{}</span>', code)


def holdings_rows(holdings: Iterable[HoldingPnl], *, names: Mapping[str, str]) -> SafeString:
    return format_html_join(
        "",
        '<tr class="holding" data-code="{}"><td>{}</td><td class="num">{}</td><td class="num">{}</td>'
        '<td class="num">{}</td><td class="num">{}</td><td class="num">{}</td>'
        '<td class="num pnl {}">{}</td><td class="num pnl {}">{}</td><td class="num">{}</td></tr>\n',
        (
            (
                holding.code,
                _security(holding.code, names),
                display.volume(holding.volume),
                display.volume(holding.can_use_volume),
                display.price(holding.avg_cost, holding.code),
                display.price(holding.last_price, holding.code),
                display.money(holding.market_value),
                _sign_class(holding.pnl),
                display.signed_money(holding.pnl),
                _sign_class(holding.pnl_ratio),
                display.percent(holding.pnl_ratio, 2, signed=True),
                display.percent(holding.weight, 2),
            )
            for holding in holdings
        ),
    )


def drift_rows(drift: Iterable[Mapping], *, names: Mapping[str, str]) -> SafeString:
    unmanaged = format_html('<span class="badge">{}</span>', _("unmanaged"))
    rows = []
    for row in drift:
        delta = row["delta"]
        classes = ("drift" if delta else "") + ("" if row["managed"] else " unmanaged")
        if delta is None:
            delta_text = display.DASH
        else:
            delta_text = ("+" if delta > 0 else "") + display.volume(delta)
        rows.append(
            (
                classes,
                row["code"],
                _security(row["code"], names),
                display.volume(row["target"]) if row["managed"] else unmanaged,
                display.volume(row["actual"]),
                display.volume(row["reserved"]) if row["reserved"] else "",
                delta_text,
            )
        )
    return format_html_join(
        "",
        '<tr class="{}" data-code="{}"><td>{}</td><td class="num">{}</td><td class="num">{}</td>'
        '<td class="num">{}</td><td class="num delta">{}</td></tr>\n',
        rows,
    )


def equity_rows(curve: Iterable[tuple[datetime, Decimal]]) -> SafeString:
    return format_html_join(
        "",
        '<tr><td class="time">{}</td><td class="num">{}</td></tr>',
        ((display.when(at), display.money(value)) for at, value in curve),
    )
