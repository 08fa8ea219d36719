"""django-q2 jobs of the execution app."""

from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.translation import gettext as _

from qmtjq import display
from qmtjq.models import Notification
from qmtjq.notifications import EVENT_HEARTBEAT_MISSING, notify

from .calendar import CalendarUnknown, can_place_orders, market_date, session_state
from .models import BrokerAccount

# The worker renews its lease every few seconds (WorkerConfig.lease_every);
# two minutes of silence means it is down, hung, or cut off from the database.
HEARTBEAT_MAX_AGE = timedelta(minutes=2)


def heartbeat_watchdog(now: datetime | None = None) -> list[str]:
    """During a trading session, notify about every trading account whose worker went silent; returns their names.

    Outside sessions and on closed days it does nothing. When the calendar
    does not know today, it says so once a day (nobody can tell whether the
    market is open, and the workers refuse to trade).
    """
    now = now or timezone.now()
    # The closing auction counts: a worker that died at 14:58 is still worth hearing about.
    in_session, _reason = can_place_orders(now, allow_closing_auction=True)
    if not in_session:
        _calendar_unknown_check(now)
        return []
    cutoff = now - HEARTBEAT_MAX_AGE
    silent = []
    for account in BrokerAccount.objects.filter(enabled=True, trading_enabled=True).select_related("lease"):
        lease = getattr(account, "lease", None)
        if lease is not None and lease.heartbeat_at >= cutoff:
            continue

        def body(account=account, lease=lease) -> str:
            if lease is None:
                return _("No worker holds this account's lease: start qmt_worker --account %(account)s.") % {
                    "account": account.name
                }
            return _("Last heartbeat %(at)s (%(minutes)d min ago) from %(holder)s.") % {
                "at": timezone.localtime(lease.heartbeat_at).strftime("%Y-%m-%d %H:%M:%S"),
                "minutes": int((now - lease.heartbeat_at).total_seconds() // 60),
                "holder": lease.holder,
            }

        notify(
            EVENT_HEARTBEAT_MISSING,
            title=lambda account=account: _("Worker heartbeat missing during trading hours: %(account)s")
            % {"account": account.name},
            body=body,
            key=account.name,
            level="error",
        )
        silent.append(account.name)
    return silent


def _calendar_unknown_check(now: datetime) -> None:
    try:
        session_state(now)
    except CalendarUnknown as exc:
        key = f"calendar-unknown:{market_date(now)}"
        if Notification.objects.filter(event=EVENT_HEARTBEAT_MISSING, key=key).exists():
            return  # once a day is enough
        notify(
            EVENT_HEARTBEAT_MISSING,
            title=lambda: _("The trading calendar does not know today: workers are not trading"),
            body=lambda why=str(exc): display.text(why),
            key=key,
            level="error",
        )
