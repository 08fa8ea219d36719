"""Template filters for numbers, times, names and stored texts: `{% load qmtjq_display %}` (see qmtjq.display)."""

from django import template
from django.utils.html import format_html

from qmtjq import display
from qmtjq.names import security_names_get

register = template.Library()

register.filter("money", display.money)
register.filter("signed_money", display.signed_money)
register.filter("volume", display.volume)
register.filter("when", display.when)
register.filter("duration", display.duration)
register.filter("plan_text", display.text)
register.filter("skip_detail", display.skip_detail)
register.filter("round_message", display.round_message)
register.filter("run_message", display.run_message)
register.filter("pause_reason", display.pause_reason)
register.filter("status_word", display.status_word)
register.filter("order_status", display.order_status)


@register.filter
def price(value, code=None):
    """`{{ holding.last_price|price:holding.code }}`: the tick's decimals for that code."""
    return display.price(value, code)


@register.filter
def pct(value, places=2):
    return display.percent(value, int(places))


@register.filter
def signed_pct(value, places=2):
    return display.percent(value, int(places), signed=True)


@register.filter
def sign_class(value) -> str:
    """'up' / 'down' / '' for a P&L number (CSS adds the colour; the sign is always printed too)."""
    number = display._decimal(value)
    if number is None or number == 0:
        return ""
    return "up" if number > 0 else "down"


def _name(context, code: str) -> str:
    names = context.get("security_names")
    if names is not None and code in names:
        return names[code]
    cache = context.render_context.setdefault("security_names_cache", {})
    if code not in cache:
        cache.update(security_names_get([code]) or {code: ""})
    return cache.get(code, "")


@register.simple_tag(takes_context=True)
def security_name(context, code):
    """Only the name (after a code rendered elsewhere, e.g. inside a link)."""
    shown = _name(context, code) if code else ""
    return format_html(' <span class="secname">{}</span>', shown) if shown else ""


@register.simple_tag(takes_context=True)
def security(context, code, name=""):
    """The code with its name next to it; names come from the view's `security_names` or the code→name table."""
    if not code:
        return display.DASH
    shown = name or _name(context, code)
    if shown:
        return format_html('<span class="code">{}</span> <span class="secname">{}</span>', code, shown)
    return format_html('<span class="code">{}</span>', code)
