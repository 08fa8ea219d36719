"""Quotes the trading PCs report, as a source of the server's quote chain, and missing-price notices.

Only the PC has xtdata (DESIGN §2: prices live on the trading PC). Its
reported quotes are used while younger than WORKER_QUOTE_MAX_AGE_SECONDS;
an older quote prices nothing, so the chain moves on, and a job that needed
it says so instead of skipping silently.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from qmtjq.notifications import EVENT_ROTATION_SKIPPED_BOND, notify

from ..models import WorkerQuote
from ..planner import Quote

SOURCE_WORKER = "worker"


def _max_age() -> timedelta:
    return timedelta(seconds=settings.WORKER_QUOTE_MAX_AGE_SECONDS)


class WorkerQuoteProvider:
    """Fresh `WorkerQuote` rows (the trading PC's xtdata, moments ago)."""

    source = SOURCE_WORKER

    def __init__(self, *, now: datetime | None = None):
        self._now = now

    def get(self, codes: list[str]) -> dict[str, Quote]:
        if not codes:
            return {}
        now = self._now or timezone.now()
        rows = WorkerQuote.objects.filter(code__in=list(codes), quoted_at__gte=now - _max_age())
        return {
            row.code: Quote(
                code=row.code,
                last=row.last_price,
                up_stop=row.up_stop,
                down_stop=row.down_stop,
                tick=row.tick,
                suspended=row.suspended,
                source=self.source,
            )
            for row in rows
            if row.last_price and row.last_price > 0
        }


def price_missing_notify(*, scope: str, codes: list[str], now: datetime, what: str) -> None:
    """A job needed prices it could not get during trading hours: record and notify (folded per window).

    `scope` names who needed them (a rotation), `what` the check that could not run.
    """
    if not codes:
        return
    ages = dict(WorkerQuote.objects.filter(code__in=codes).values_list("code", "quoted_at"))

    def body() -> str:
        detail = [
            f"{code}: "
            + (
                _("last worker quote %(minutes)d min old") % {"minutes": (now - ages[code]).total_seconds() // 60}
                if code in ages
                else _("no quote from any source")
            )
            for code in sorted(codes)
        ]
        advice = _(
            "Prices on the server come from the trading PC's reports (fresh for %(seconds)s s), "
            "xtdata, HTTP quotes if enabled, then admin prices. Is the trading PC's worker running?"
        ) % {"seconds": settings.WORKER_QUOTE_MAX_AGE_SECONDS}
        return "\n".join([*detail, advice])

    notify(
        EVENT_ROTATION_SKIPPED_BOND,
        title=lambda: _("%(scope)s: no fresh price for %(codes)s, %(what)s not checked")
        % {"scope": scope, "codes": ", ".join(sorted(codes)), "what": str(what)},  # `what` may be lazy
        body=body,
        key=f"price-missing:{scope}:{what}:{','.join(sorted(codes))}",
    )
