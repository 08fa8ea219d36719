"""Execution admin: the account's lease history, as its change page shows it (latest rows, link to all)."""

from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _

from ..models import BrokerAccount, LeaseEvent

SHOWN = 5  # the latest takeovers are what a person opening the account wants; the rest is one click away


def lease_history_html(account: BrokerAccount):
    events = list(LeaseEvent.objects.filter(account=account).order_by("-at", "-id")[: SHOWN + 1])
    if not events:
        return _("No worker has taken this account yet.")
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                date_format(timezone.localtime(event.at), "DATETIME_FORMAT"),
                event.get_kind_display(),
                event.holder,
                event.previous_holder or "-",
                event.epoch,
                event.get_reason_display(),
            )
            for event in events[:SHOWN]
        ),
    )
    url = reverse("admin:execution_leaseevent_changelist") + f"?account__id__exact={account.pk}"
    return format_html(
        '<table class="lease-history"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>'
        '<th>{}</th></tr></thead><tbody>{}</tbody></table><p><a href="{}">{}</a></p>',
        _("at"),
        _("event"),
        _("holder"),
        _("previous holder"),
        _("lease epoch"),
        _("reason"),
        rows,
        url,
        _("All lease events of this account"),
    )
