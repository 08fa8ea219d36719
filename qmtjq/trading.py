"""The global pause: a database switch next to the TRADING_ENABLED environment variable (DESIGN §5.7).

Either one stops every worker within one cycle: the worker's trading gate asks
`trading_globally_enabled()` before each round.
"""

import logging

from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.db import transaction
from django.utils import timezone

from .models import TradingPause

logger = logging.getLogger(__name__)

PAUSE_PK = 1


def trading_pause_get() -> TradingPause:
    """The pause row (unsaved and not paused when nobody ever paused)."""
    return TradingPause.objects.filter(pk=PAUSE_PK).first() or TradingPause(pk=PAUSE_PK)


def trading_globally_enabled() -> bool:
    """False when TRADING_ENABLED is off or an admin paused all trading."""
    if not settings.TRADING_ENABLED:
        return False
    return not TradingPause.objects.filter(pk=PAUSE_PK, paused=True).exists()


def trading_globally_off_reason() -> str:
    """Why no account may trade ('' when trading is globally allowed); English, for logs and round messages."""
    if not settings.TRADING_ENABLED:
        return "global kill switch TRADING_ENABLED is off"
    if TradingPause.objects.filter(pk=PAUSE_PK, paused=True).exists():
        return "all trading paused in admin"
    return ""


@transaction.atomic
def trading_pause_set(*, paused: bool, user, reason: str = "") -> bool:
    """Pause or resume all trading; audited like the account switches. False when already that way."""
    TradingPause.objects.get_or_create(pk=PAUSE_PK)
    pause = TradingPause.objects.select_for_update().get(pk=PAUSE_PK)
    if pause.paused == paused:
        return False
    pause.paused = paused
    pause.reason = reason.strip()[:300] if paused else ""
    pause.changed_at = timezone.now()
    pause.changed_by = user
    pause.save(update_fields=["paused", "reason", "changed_at", "changed_by"])
    state = "PAUSED" if paused else "RESUMED"
    message = f"All trading {state}." + (f" Reason: {pause.reason}" if pause.reason else "")
    LogEntry.objects.log_actions(
        user_id=user.pk, queryset=[pause], action_flag=CHANGE, change_message=message, single_object=True
    )
    logger.warning("global trading %s by %s %s", state, user, pause.reason)
    return True
