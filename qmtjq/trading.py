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


# Why trading is off: a stable code and its English template (the msgid of its translation), the
# scheme of execution.planner.texts; pages render them with qmtjq.display.pause_reason.
TRADING_TEXTS = {
    "env_off": "global kill switch TRADING_ENABLED is off",
    "paused": "all trading paused in admin",
    "account_off": "trading switch of account %(name)s is off",
    "paused_on_server": "paused on the server",
    # the trading PC's copy of the server's pause; `reason` is the server's (coded) reason
    "server_pause": "server: %(reason)s",
}


def trading_text(text: str, **params) -> tuple[str, dict]:
    """(the English, {"text": code, "params": ...}) of a reason of TRADING_TEXTS."""
    from execution.planner.texts import coded

    return coded(TRADING_TEXTS, text, **params)


def trading_globally_off() -> tuple[str, dict]:
    """(why no account may trade, its text code and parameters); ('', {}) when trading is globally allowed."""
    if not settings.TRADING_ENABLED:
        return trading_text("env_off")
    if TradingPause.objects.filter(pk=PAUSE_PK, paused=True).exists():
        return trading_text("paused")
    return "", {}


def trading_globally_off_reason() -> str:
    """Why no account may trade ('' when trading is globally allowed); English, for logs and round messages."""
    return trading_globally_off()[0]


@transaction.atomic
def trading_pause_set(*, paused: bool, user, reason: str = "") -> bool:
    """Pause or resume all trading; audited like the account switches. False when already that way."""
    TradingPause.objects.get_or_create(pk=PAUSE_PK)
    pause = TradingPause.objects.select_for_update().get(pk=PAUSE_PK)
    if pause.paused == paused:
        return False
    pause.paused = paused
    pause.reason = reason.strip()[:300] if paused else ""
    pause.reason_params = {}  # a person's words, shown as typed
    pause.changed_at = timezone.now()
    pause.changed_by = user
    pause.save(update_fields=["paused", "reason", "reason_params", "changed_at", "changed_by"])
    state = "PAUSED" if paused else "RESUMED"
    message = f"All trading {state}." + (f" Reason: {pause.reason}" if pause.reason else "")
    LogEntry.objects.log_actions(
        user_id=user.pk, queryset=[pause], action_flag=CHANGE, change_message=message, single_object=True
    )
    logger.warning("global trading %s by %s %s", state, user, pause.reason)
    return True
