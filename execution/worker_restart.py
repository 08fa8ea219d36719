"""What a worker does when the account's broker settings changed under it (paper ↔ live, broker account
id, MiniQMT path — in remote mode they arrive with the feed): the change revoked its lease, so every
claim is refused and nothing more is sent through the broker it started with. It then records its open
orders through that broker (fills, cancels of overdue orders: no new order) for at most one order
timeout, and exits with EXIT_RESTART; the restarted worker builds the broker the new settings ask for.

Exiting is chosen over rebuilding the broker in place: the new broker, quote source and calendar checks
are then exactly those of a fresh start, which the reconcile-before-send rule already covers.
"""

import logging
import time
from datetime import timedelta

from django.db import DatabaseError

from . import selectors
from .brokers.base import BrokerError
from .services.orders import events_apply, orders_cancel_overdue, orders_reconcile

logger = logging.getLogger(__name__)

# qmt_worker exit code (README): the account's mode or broker settings changed; start the worker again.
EXIT_RESTART = 6
DRAIN_MARGIN = timedelta(seconds=15)


def open_orders_record(worker, *, reason: str) -> list[str]:
    """Follow the open orders through the old broker until final or one order timeout passed (Ctrl+C ends
    it); returns the keys still open."""
    account = worker.account
    deadline = time.monotonic() + (account.order_timeout + DRAIN_MARGIN).total_seconds()
    if worker._connected:
        worker.say(f"{reason}; recording the orders still open at the old broker")
    try:
        while worker._connected:
            now = worker.clock()
            events_apply(account=account, events=worker.broker.drain_events())
            orders_reconcile(account=account, broker=worker.broker)
            if not selectors.open_orders(account=account).exists():
                break
            if worker.stop_event.is_set() or time.monotonic() >= deadline:
                break
            if worker._hours_allow_cancel(now):
                orders_cancel_overdue(account=account, broker=worker.broker, now=now)
            worker.stop_event.wait(max(worker.config.interval, 0.2))
    except (BrokerError, DatabaseError) as exc:
        logger.warning("open orders not recorded to the end after the settings change: %s", exc)
    return list(selectors.open_orders(account=account).values_list("key", flat=True))


def restart_exit(worker, reason: str) -> int:
    """Record the open orders, then explain the exit in one line; returns EXIT_RESTART."""
    still_open = open_orders_record(worker, reason=reason)
    text = reason.removeprefix("stopped: ")
    if still_open:
        text += (
            f" ({len(still_open)} order(s) still open at the old broker: {', '.join(still_open[:5])}; "
            "check them in the broker's client)"
        )
    worker.warn(f"account {worker.account.name}: stopped trading: {text}")
    return EXIT_RESTART
