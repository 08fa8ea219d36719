"""Display helpers shared by the rotation admin modules."""

from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _


def _local(value) -> str:
    return date_format(timezone.localtime(value), "DATETIME_FORMAT") if value else "—"


def _figure(value) -> str:
    """A backtest figure as Factor Cat sent it, rounded for reading (units are the server's)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return str(value)
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    if not number.is_finite():
        return str(value)
    return f"{number.quantize(Decimal('0.0001')).normalize():f}"


def _page_number(request) -> int:
    try:
        return min(max(int(request.GET.get("page", 1)), 1), 10_000)
    except (TypeError, ValueError):
        return 1


def _positive_int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _form_errors(form, error: ValidationError) -> None:
    """A service's ValidationError onto the form: on the field when the form has it, else on top."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, errors in error.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


def _decision_table(rows: list[dict]):
    if not rows:
        return _("No decision rows.")
    body = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        ((row["code"], row["name"], row["action_label"], row["volume"], row["reason"]) for row in rows),
    )
    return format_html(
        "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>"
        "<tbody>{}</tbody></table>",
        _("code"),
        _("name"),
        _("action"),
        _("volume"),
        _("reason"),
        body,
    )


def _snapshot_link(snapshot_id):
    if not snapshot_id:
        return "—"
    return format_html(
        '<a href="{}">#{}</a>',
        reverse("admin:positions_targetsnapshot_change", args=[snapshot_id]),
        snapshot_id,
    )
