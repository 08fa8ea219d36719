"""Remote mode on the trading PC: two threads around the unchanged worker loop.

- the feed thread long-polls the server and writes each new feed into the
  local database (`apply.feed_apply`); the worker converges against it;
- the report thread sends the local ledger past its cursors (`outbox`), with
  a heartbeat and the broker's quotes, in order, and moves the cursors only
  after the server stored a batch.

Both back off while the server is away (the worker keeps its last target
until it is stale, then blocks). Threads only, no fork or signals: Windows-safe;
a stop event ends them, and a last flush is bounded.
"""

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

from ..models import BrokerAccount, RemoteSync, WorkerLease
from . import outbox
from .apply import FeedError, feed_apply, held_or_targeted_codes
from .client import FeedUnchanged, ServerClient, ServerRefused, ServerUnreachable
from .wire import dec_out, time_out

logger = logging.getLogger(__name__)

BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)
FEED_MIN_CYCLE = 1.0  # seconds: the shortest feed cycle that ends unchanged
SENT, MORE, FAILED = "sent", "more", "failed"
FLUSH_ATTEMPTS = 3
BROKER_FIELDS = {"mode", "account_id", "userdata_mini_path"}  # what the worker's broker was built from


class RemoteSession:
    def __init__(
        self,
        *,
        client: ServerClient,
        account_name: str,
        say: Callable[[str], None] = print,
        report_every: float = 2.0,
        quote_every: float = 10.0,
        backoff: tuple[float, ...] = BACKOFF,
    ):
        self.client = client
        self.account_name = account_name
        self.say = say
        self.report_every = report_every
        self.quote_every = quote_every
        self.backoff = backoff
        self.stop_event = threading.Event()
        self.wake_reporter = threading.Event()
        self.on_broker_change: Callable[[], None] | None = None
        self.quote_source = None
        self.holder = ""
        self._threads: list[threading.Thread] = []
        self._last_quotes = 0.0
        self.server_status = ""
        self._quote_codes: list[str] = []

    # --- the feed ------------------------------------------------------------------

    def _version(self) -> str:
        return (
            RemoteSync.objects.filter(account__name=self.account_name)
            .values_list("feed_version", flat=True)
            .first()
            or ""
        )

    def pull(self, *, wait: bool = False) -> bool:
        """One feed request (long-polled with `wait`); True when the server answered and it was applied."""
        return self._pull(wait=wait) is not None

    def _pull(self, *, wait: bool) -> float | None:
        """One feed request: None when the server was not reached, else seconds to pause before the next."""
        started = time.monotonic()
        try:
            feed = self.client.feed(version=self._version() if wait else "")
        except ServerUnreachable as exc:
            self._server_down(str(exc))
            return None
        except ServerRefused as exc:
            self._server_down(f"server refused the feed request: {exc}")
            return None
        self.server_status = ""
        if isinstance(feed, FeedUnchanged):
            # A busy server asks us to wait; a 304 faster than any long-poll (a proxy cutting waits
            # short, a server that cannot wait) must not turn into a loop of requests either.
            return max(feed.retry_after, FEED_MIN_CYCLE - (time.monotonic() - started), 0.0)
        now = timezone.now()
        if feed["account"]["name"] != self.account_name:
            raise FeedError(f"the server sent account {feed['account']['name']!r}, not {self.account_name!r}")
        account, changed = feed_apply(feed=feed, server_url=self.client.url, now=now)
        if changed:
            self.say(f"from the server: {', '.join(changed)}")
        if BROKER_FIELDS & set(changed) and self.on_broker_change is not None:
            # feed_apply already fenced the worker off (its lease revoked with the change): wake it now.
            self.on_broker_change()
        self._quote_codes = feed.get("quote_codes", [])
        return 0.0

    def _server_down(self, reason: str) -> None:
        if self.server_status != reason:
            self.say(f"server unreachable ({reason}); trading on the last target pulled until it is stale")
        self.server_status = f"server unreachable: {reason}"[:300]

    def _feed_loop(self) -> None:
        failures = 0
        try:
            while not self.stop_event.is_set():
                try:
                    pause = self._pull(wait=True)
                except (FeedError, DatabaseError) as exc:
                    self.say(f"feed not applied: {exc}")
                    close_old_connections()
                    pause = None
                failures = 0 if pause is not None else failures + 1
                if failures:
                    self.stop_event.wait(self.backoff[min(failures, len(self.backoff)) - 1])
                elif pause:
                    self.stop_event.wait(pause)
        finally:
            connection.close()

    # --- reports -------------------------------------------------------------------

    def _heartbeat(self, now: datetime) -> dict:
        status = (
            WorkerLease.objects.filter(account__name=self.account_name)
            .values_list("status", flat=True)
            .first()
        )
        return {"at": time_out(now), "holder": self.holder[:200], "status": (status or "")[:300]}

    def _quotes(self, account: BrokerAccount, now: datetime) -> list[dict]:
        """The broker's quotes (xtdata) of what the account holds or targets and the server asks for."""
        if self.quote_source is None or time.monotonic() - self._last_quotes < self.quote_every:
            return []
        self._last_quotes = time.monotonic()
        codes = sorted(held_or_targeted_codes(account=account) | set(self._quote_codes))
        if not codes:
            return []
        sources = set(settings.QMTJQ_WORKER_REPORT_QUOTE_SOURCES)
        try:
            quotes = self.quote_source(codes)
        except Exception:  # noqa: BLE001 - quotes are a courtesy to the server; reports go on without them
            logger.warning("quotes for the server failed", exc_info=True)
            return []
        return [
            {
                "code": q.code,
                "last": dec_out(q.last),
                "up_stop": dec_out(q.up_stop),
                "down_stop": dec_out(q.down_stop),
                "tick": dec_out(q.tick),
                "suspended": q.suspended,
                "at": time_out(now),
            }
            for q in quotes.values()
            if q.source in sources and q.last
        ]

    def send_once(self) -> str:
        """Send the next batch: SENT (stored, nothing more now), MORE (stored, more queued) or FAILED."""
        account = BrokerAccount.objects.filter(name=self.account_name).first()
        if account is None:
            return FAILED
        now = timezone.now()
        batch = outbox.report_build(
            account=account, now=now, heartbeat=self._heartbeat(now), quotes=self._quotes(account, now)
        )
        try:
            self.client.report(batch.body)
        except ServerUnreachable as exc:
            self._server_down(str(exc))
            outbox.report_failed(account=account, error=str(exc))
            return FAILED
        except ServerRefused as exc:
            # A report the server cannot take stays queued (never skipped): fix the cause, it goes through.
            self.say(f"server refused a report: {exc}")
            outbox.report_failed(account=account, error=str(exc))
            return FAILED
        outbox.report_done(account=account, batch=batch, now=timezone.now())
        self.server_status = ""
        return MORE if batch.more else SENT

    def flush(self, *, timeout: float) -> bool:
        """Send until nothing is queued or `timeout` passed; True when everything went."""
        deadline, failures = time.monotonic() + timeout, 0
        while time.monotonic() < deadline:
            outcome = self.send_once()
            failures = failures + 1 if outcome == FAILED else 0
            if failures >= FLUSH_ATTEMPTS:
                return False  # the server is away: the queue waits in the local database
            if outcome == SENT:
                account = BrokerAccount.objects.filter(name=self.account_name).first()
                if account is None or not outbox.reports_pending(account=account):
                    return True
            elif outcome == FAILED:
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        return False

    def _report_loop(self) -> None:
        failures = 0
        try:
            while not self.stop_event.is_set():
                try:
                    outcome = self.send_once()
                except DatabaseError as exc:
                    logger.warning("report not built (%s); retrying", exc)
                    close_old_connections()
                    outcome = FAILED
                failures = failures + 1 if outcome == FAILED else 0
                if outcome == MORE:
                    continue
                delay = self.backoff[min(failures, len(self.backoff)) - 1] if failures else self.report_every
                self.wake_reporter.wait(delay)
                self.wake_reporter.clear()
        finally:
            connection.close()

    # --- lifecycle -----------------------------------------------------------------

    def start(self, *, quote_source=None, holder: str = "") -> None:
        self.quote_source, self.holder = quote_source, holder
        for name, target in (("qmtjq-feed", self._feed_loop), ("qmtjq-report", self._report_loop)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, *, flush_timeout: float = 10.0) -> bool:
        """Stop the threads, then one last bounded flush; True when every report went."""
        self.stop_event.set()
        self.wake_reporter.set()
        for thread in self._threads:
            if thread.name == "qmtjq-report":
                thread.join(timeout=REPORT_JOIN_SECONDS)
        # The feed thread may sit in a long-poll: it is a daemon and ends with the process.
        return self.flush(timeout=flush_timeout) if flush_timeout > 0 else False


REPORT_JOIN_SECONDS = 25.0


def remote_session_open(*, server_url: str, account_name: str, say: Callable[[str], None]) -> RemoteSession:
    """Build the client from the settings and pull the feed once (or go on with the local copy).

    Raises FeedError / ValueError with a reason a person can act on.
    """
    from .apply import local_database_check
    from .client import server_client_from_settings

    local_database_check()
    session = RemoteSession(
        client=server_client_from_settings(server_url=server_url, account=account_name),
        account_name=account_name,
        say=say,
    )
    if session.pull():
        say(f"remote mode: feed of {account_name} pulled from {session.client.url}")
    elif not BrokerAccount.objects.filter(name=account_name).exists():
        raise FeedError(
            f"cannot reach {session.client.url} ({session.server_status}) and this PC has no copy of account "
            f"{account_name!r} yet"
        )
    return session
