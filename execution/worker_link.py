"""The worker's hold on its account and its broker: the lease, the heartbeat, connecting and probing.

The lease (services.lease) says which worker may send for the account; its
heartbeat also carries our status, e.g. "broker unreachable", so pages show
why nothing trades. A broker that does not answer (or drops us) is retried
with backoff, slowly outside sessions (DESIGN §6). A period in which nothing
asked the broker anything ends with one cheap probe, and the periodic
queries wait for such a cycle, so a MiniQMT that hangs while the worker is
idle is noticed within `probe_every` plus the probe's own timeout, not at
the next query (its timeout is longer).
"""

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import DatabaseError, close_old_connections

from .brokers.base import BrokerDisconnected, BrokerError
from .models import Round
from .services import lease as lease_service
from .services.lease import LeaseLost
from .services.orders import orders_reconcile
from .worker_config import EXIT_LEASE
from .worker_restart import restart_exit

logger = logging.getLogger("execution.worker")


class WorkerLinkMixin:
    """Lifecycle, lease heartbeat and broker link of `execution.worker.Worker`."""

    def start(self, *, connect: bool = True) -> None:
        """Take the lease (raises LeaseHeld), then try to connect and reconcile before anything is sent.

        A broker that cannot be reached now is not fatal: the loop retries it
        with backoff, heartbeating "broker unreachable" meanwhile. With
        connect=False (--once) the first connect is left to run_once.
        """
        self.fence = lease_service.lease_acquire(account=self.account, holder=self.holder, now=self.clock())
        if self.fence.took_over_from:
            self.say(f"took over the lease from {self.fence.took_over_from}")
        if not connect:
            return
        try:
            self._connect()
        except BrokerDisconnected as exc:
            self._connect_failures = 1
            self._unreachable(exc, attempt=1, delay=self._reconnect_delay(1))

    def stop(self) -> None:
        try:
            lease_service.lease_release(account=self.account, holder=self.holder, now=self.clock())
        except DatabaseError:
            logger.warning("could not release the lease; it expires by itself")
        try:
            self.broker.close()
        except BrokerError:
            pass

    def _connect(self) -> None:
        self.broker.connect()
        report = orders_reconcile(account=self.account, broker=self.broker)
        now = self.clock()
        self._timers.last["reconcile"] = now  # just reconciled: not again in the first cycle
        self._broker_answered(now)
        if report.linked or report.never_sent:
            self.say(f"reconciled: linked {report.linked or '-'}, never sent {report.never_sent or '-'}")
        if report.unknown:
            self.say(f"orders sent elsewhere or timed out, not yet at the broker (waiting): {report.unknown}")
        self._connected = True
        self._status = ""
        self._round_due = Round.Trigger.RECONNECT
        self._heartbeat(now, force=True)

    def _unreachable(self, exc: Exception, *, attempt: int, delay: float | None) -> None:
        self._connected = False
        self._status = f"broker unreachable: {exc}"[:300]
        retry = f"; attempt {attempt}, retrying in {delay:g} s" if delay is not None else ""
        self.say(f"broker unreachable ({exc}){retry}")
        try:
            self._heartbeat(self.clock(), force=True)
        except DatabaseError:
            logger.warning("could not report the broker outage with the heartbeat")

    def _broker_answered(self, now: datetime) -> None:
        """The broker just answered a call: no probe is needed for another `probe_every`."""
        self._timers.last["probe"] = now

    def _probe_if_quiet(self, now: datetime) -> bool:
        """Probe when nothing asked the broker for `probe_every` (a hang raises BrokerTimeout).

        True when the cycle may ask its periodic questions (reconcile, state):
        right after a probe that answered, or always for a broker that cannot
        hang (paper) or with the probe turned off. False until the next probe.
        """
        every = self.config.probe_every
        if not self.broker.can_hang or not every or every <= timedelta(0):
            return True
        if not self._timers.due("probe", now, every):
            return False
        self.broker.probe()
        return True

    def _heartbeat(self, now: datetime, *, force: bool = False) -> None:
        """Renew the lease (with our status) when due; LeaseLost when another worker took it."""
        if self.fence is None:
            return
        if self.lease_check.is_set():  # the feed saw the broker settings change: look now
            self.lease_check.clear()
            force = True
        if not force and not self._timers.due("lease", now, self.config.lease_every):
            return
        self._timers.last["lease"] = now
        if not lease_service.lease_renew(
            account=self.account, fence=self.fence, now=now, status=self._status
        ):
            raise LeaseLost(f"lost the lease of account {self.account.name}: another worker took over")

    def _lease_lost(self, exc: LeaseLost, tell: Callable[[str], None]) -> int:
        """EXIT_RESTART when the broker settings changed (the lease was revoked), else EXIT_LEASE."""
        try:
            reason = lease_service.lease_revocation(account=self.account, fence=self.fence)
        except DatabaseError:
            reason = ""
        if reason:
            return restart_exit(self, reason)
        tell(self._lease_lost_text(exc))
        return EXIT_LEASE

    def _wait(self, seconds: float) -> None:
        """Sleep up to `seconds` (Ctrl+C ends it), heartbeating so a long backoff never loses the lease."""
        deadline = time.monotonic() + seconds
        while not self.stop_event.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.stop_event.wait(min(left, self.config.lease_every.total_seconds() or left))
            try:
                self._heartbeat(self.clock())
            except DatabaseError as exc:
                logger.warning("heartbeat failed (%s); retrying", exc)
                close_old_connections()

    def _backoff(self, failures: int) -> float:
        return self.config.backoff[min(failures, len(self.config.backoff)) - 1]

    def _reconnect_delay(self, failures: int) -> float:
        delay = self._backoff(failures)
        if self._outside_session(self.clock()):
            # MiniQMT is often down outside sessions (it restarts daily): retry slowly (DESIGN §6).
            delay = max(delay, self.config.closed_reconnect_every)
        return delay

    def _lease_lost_text(self, exc: LeaseLost) -> str:
        try:
            return f"{exc}; {lease_service.lease_holder_describe(account=self.account)}"
        except DatabaseError:
            return str(exc)
