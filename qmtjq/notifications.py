"""Notifications used by every app (issue 4): email via EMAIL_URL and webhooks.

Interface (stable; the implementation grows behind it):

    notify(event, title=..., body=..., key=..., level=...)

`event` is one of the EVENT_* names below. `key` folds duplicates: the same
(event, key) within the folding window is recorded once. A failing channel
never raises into the caller.
"""

import logging

logger = logging.getLogger("qmtjq.notifications")

EVENT_ORDER_REJECTED = "order_rejected"
EVENT_HEARTBEAT_MISSING = "heartbeat_missing"
EVENT_ROUND_BLOCKED = "round_blocked"
EVENT_ROUND_HELD = "round_held"
EVENT_ROTATION_FAILED = "rotation_failed"
EVENT_ROTATION_SKIPPED_BOND = "rotation_skipped_bond"
EVENT_TP_SL_TRIGGERED = "tp_sl_triggered"
EVENT_FACTORCAT_LOGIN_FAILED = "factorcat_login_failed"

EVENTS = (
    EVENT_ORDER_REJECTED,
    EVENT_HEARTBEAT_MISSING,
    EVENT_ROUND_BLOCKED,
    EVENT_ROUND_HELD,
    EVENT_ROTATION_FAILED,
    EVENT_ROTATION_SKIPPED_BOND,
    EVENT_TP_SL_TRIGGERED,
    EVENT_FACTORCAT_LOGIN_FAILED,
)


def notify(event: str, *, title: str, body: str = "", key: str = "", level: str = "warning") -> None:
    """Record and send a notification; never raises."""
    if event not in EVENTS:
        logger.error("unknown notification event %r: %s", event, title)
        return
    logger.warning("[%s] %s %s", event, title, body)
