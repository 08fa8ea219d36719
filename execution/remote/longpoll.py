"""Long-poll for the feed: one poller thread per process, request threads wait on a condition.

A waiting request holds no database connection and no transaction: the view
closes its connection before waiting, and a single poller thread computes
the versions of every account someone waits for (`feed_version`, five small
queries) every `WORKER_FEED_POLL_INTERVAL` seconds, then wakes the waiters.
That works across processes and web threads alike (the database is the only
shared state); the thread stops, closing its connection, when nobody waits.

A waiting request still holds a web thread, so a process lets at most its
threads less one wait (`feed_waiters_limit`): the last thread always stays
free for uploads and pages. A poll past the cap is answered at once
(`FeedWatcherBusy`; the view sends 304 with a Retry-After).
"""

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable

from django.db import connection

from .feed import feed_version

logger = logging.getLogger(__name__)


class FeedWatcherBusy(Exception):
    """As many requests wait in this process as it lets wait: answer now, the client comes back later."""


class FeedWatcher:
    def __init__(self, *, version_of: Callable[[int], str] | None = None, interval: float = 0.5):
        self._version_of = version_of or (lambda account_id: feed_version(account_id=account_id))
        self.interval = interval
        self._cond = threading.Condition()
        self._waiting: Counter[int] = Counter()
        self._versions: dict[int, tuple[int, str]] = {}  # account id → (poll number, version)
        self._polls = 0
        self._thread: threading.Thread | None = None

    def waiting(self) -> int:
        """How many requests wait now (every account)."""
        with self._cond:
            return self._waiting.total()

    def wait(self, *, account_id: int, version: str, timeout: float, limit: int | None = None) -> bool:
        """Block up to `timeout` s; True as soon as a poll that began after this call sees another version.

        Raises FeedWatcherBusy at once when `limit` requests already wait (None: no limit).
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            if limit is not None and self._waiting.total() >= limit:
                raise FeedWatcherBusy
            since = self._polls
            self._waiting[account_id] += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="qmtjq-feed-poller", daemon=True)
                self._thread.start()
            try:
                while True:
                    poll, current = self._versions.get(account_id, (0, version))
                    if poll > since and current != version:
                        return True
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._cond.wait(remaining)
            finally:
                self._waiting[account_id] -= 1
                if self._waiting[account_id] <= 0:
                    del self._waiting[account_id]
                    self._versions.pop(account_id, None)

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    accounts = list(self._waiting)
                    if not accounts:
                        self._thread = None
                        return
                    self._polls += 1
                    poll = self._polls
                found = {}
                for account_id in accounts:
                    try:
                        found[account_id] = (poll, self._version_of(account_id))
                    except Exception:  # the database went away: waiters time out into a 304 and retry
                        logger.warning("feed poll of account %s failed", account_id, exc_info=True)
                        connection.close()
                with self._cond:
                    for account_id, entry in found.items():
                        if account_id in self._waiting:
                            self._versions[account_id] = entry
                    self._cond.notify_all()
                time.sleep(self.interval)
        finally:
            connection.close()
            with self._cond:
                if self._thread is threading.current_thread():
                    self._thread = None


_watcher: FeedWatcher | None = None
_watcher_lock = threading.Lock()


def feed_watcher() -> FeedWatcher:
    from django.conf import settings

    global _watcher
    with _watcher_lock:
        if _watcher is None:
            _watcher = FeedWatcher(interval=settings.WORKER_FEED_POLL_INTERVAL)
        return _watcher


def feed_waiters_limit() -> int | None:
    """How many feed requests one web process lets wait: WORKER_FEED_MAX_WAITERS, else its threads less one.

    `serve` and `python -m qmtjq.web` tell their processes the thread count; under
    another server with neither set there is no cap (the old behaviour).
    """
    from django.conf import settings

    from qmtjq.web import WEB_THREADS_ENV

    if settings.WORKER_FEED_MAX_WAITERS is not None:
        return settings.WORKER_FEED_MAX_WAITERS
    threads = os.environ.get(WEB_THREADS_ENV, "")
    if threads.isascii() and threads.isdigit() and int(threads) >= 1:
        return int(threads) - 1
    return None
