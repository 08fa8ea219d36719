"""The per-account convergence loop run by `manage.py qmt_worker` (DESIGN §2).

Each cycle: heartbeat, broker events → database, and — only when no own
order is open and trading is allowed — a round computed from fresh state
when targets changed, a held round was approved, or the periodic drift
check is due, or right after a round finished or the broker reconnected.
Windows-safe: one thread, no fork, no SIGALRM; a stop event lets Ctrl+C
finish the current step.

Every send is fenced by the lease (services.orders.order_claim): a worker
that finds its lease gone stops at once, mid-round, with LeaseLost. A broker
that does not answer (or drops us) is retried with backoff while the worker
keeps heartbeating "broker unreachable", so pages show why nothing trades.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from . import selectors, worker_gates
from .brokers.base import Broker, BrokerDisconnected, BrokerError
from .models import BrokerAccount, Round
from .planner import PlanStatus
from .services import lease as lease_service
from .services.lease import LeaseLost  # noqa: F401  (re-exported: callers catch it from here)
from .services.orders import events_apply, order_request_cancel, orders_cancel_overdue, orders_reconcile
from .services.rounds import QuoteSource, RoundOutcome, round_finish_if_done, round_run
from .services.state import account_state_record
from .worker_restart import EXIT_RESTART, restart_exit  # noqa: F401  (EXIT_RESTART re-exported)

logger = logging.getLogger(__name__)

# qmt_worker exit codes (README): 2 = another worker holds or took over the account,
# 5 = the broker (MiniQMT) is unreachable or dropped us during --once, 6 = broker settings changed.
EXIT_CONVERGED, EXIT_LEASE, EXIT_BLOCKED, EXIT_TIMEOUT, EXIT_BROKER = 0, 2, 3, 4, 5


@dataclass
class WorkerConfig:
    interval: float = 1.0
    drift_every: timedelta = timedelta(seconds=30)
    state_every: timedelta = timedelta(seconds=10)
    reconcile_every: timedelta = timedelta(seconds=15)
    lease_every: timedelta = timedelta(seconds=5)
    backoff: tuple[float, ...] = (1, 2, 5, 10, 30)
    closed_reconnect_every: float = 300.0  # reconnect attempts outside trading sessions


@dataclass
class CycleResult:
    """What one cycle did, for --once and for tests."""

    outcome: RoundOutcome | None = None
    gate: str = ""  # why no round could run (kill switch, hours)
    open_orders: int = 0


@dataclass
class _Timers:
    last: dict[str, datetime] = field(default_factory=dict)

    def due(self, name: str, now: datetime, every: timedelta) -> bool:
        previous = self.last.get(name)
        if previous is None or now - previous >= every:
            self.last[name] = now
            return True
        return False


class Worker:
    def __init__(
        self,
        *,
        account: BrokerAccount,
        broker: Broker,
        quote_source: QuoteSource,
        config: WorkerConfig | None = None,
        clock: Callable[[], datetime] = timezone.now,
        say: Callable[[str], None] = print,
        warn: Callable[[str], None] | None = None,
        stop_event: threading.Event | None = None,
    ):
        self.account = account
        self.broker = broker
        self.quote_source = quote_source
        self.config = config or WorkerConfig()
        self.clock = clock
        self.say = say
        self.warn = warn or say  # the one line explaining a non-zero exit (stderr in qmt_worker)
        self.stop_event = stop_event or threading.Event()
        self.lease_check = threading.Event()  # set by the feed when the broker settings changed: look now
        self.holder = lease_service.LeaseHolder.for_this_process()
        self.fence: lease_service.Fence | None = None
        self._timers = _Timers()
        self._targets_seen: tuple | None = None
        self._connected = False
        self._status = ""  # reported with each heartbeat: why nothing trades, e.g. broker unreachable
        self._round_due: str | None = None  # a round should run at the next cycle, and why
        self._connect_failures = 0  # consecutive failed connects, counted from start()

    # --- lifecycle -----------------------------------------------------------------

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
            lease_service.lease_release(account=self.account, holder=self.holder)
        except DatabaseError:
            logger.warning("could not release the lease; it expires by itself")
        try:
            self.broker.close()
        except BrokerError:
            pass

    def _connect(self) -> None:
        self.broker.connect()
        report = orders_reconcile(account=self.account, broker=self.broker)
        self._timers.last["reconcile"] = self.clock()  # just reconciled: not again in the first cycle
        if report.linked or report.never_sent:
            self.say(f"reconciled: linked {report.linked or '-'}, never sent {report.never_sent or '-'}")
        if report.unknown:
            self.say(f"orders sent elsewhere or timed out, not yet at the broker (waiting): {report.unknown}")
        self._connected = True
        self._status = ""
        self._round_due = Round.Trigger.RECONNECT
        self._heartbeat(self.clock(), force=True)

    def _unreachable(self, exc: Exception, *, attempt: int, delay: float | None) -> None:
        self._connected = False
        self._status = f"broker unreachable: {exc}"[:300]
        retry = f"; attempt {attempt}, retrying in {delay:g} s" if delay is not None else ""
        self.say(f"broker unreachable ({exc}){retry}")
        try:
            self._heartbeat(self.clock(), force=True)
        except DatabaseError:
            logger.warning("could not report the broker outage with the heartbeat")

    def _heartbeat(self, now: datetime, *, force: bool = False) -> None:
        """Renew the lease (with our status) when due; LeaseLost when another worker took it."""
        if self.fence is None:
            return
        if self.lease_check.is_set():
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

    def run_forever(self) -> int:
        db_failures = 0
        # After a failed connect in start(), the first retry comes after its pause.
        delay = self._reconnect_delay(self._connect_failures) if self._connect_failures else None
        while not self.stop_event.is_set():
            if delay is not None:
                try:
                    self._wait(delay)
                except LeaseLost as exc:
                    return self._lease_lost(exc, self.say)
                if self.stop_event.is_set():
                    break
            delay = self.config.interval
            try:
                if not self._connected:
                    self._connect()
                    self._connect_failures = 0
                self.cycle()
                db_failures = 0
            except BrokerDisconnected as exc:
                self._connect_failures += 1
                delay = self._reconnect_delay(self._connect_failures)
                self._unreachable(exc, attempt=self._connect_failures, delay=delay)
            except DatabaseError as exc:
                db_failures += 1
                delay = self._backoff(db_failures)
                self.say(f"database error ({exc}); retrying in {delay:g} s")
                close_old_connections()
            except LeaseLost as exc:
                return self._lease_lost(exc, self.say)
        return EXIT_CONVERGED

    def run_once(self, *, timeout: float = 120.0) -> int:
        """Converge and exit: 0 matching the target, 2 lease lost, 3 blocked or held, 4 timeout, 5 broker down.

        A non-zero exit is explained by exactly one line through `warn`.
        """
        try:
            if not self._connected:
                self._connect()
            return self._converge_once(timeout)
        except LeaseLost as exc:
            return self._lease_lost(exc, self.warn)
        except BrokerError as exc:  # a disconnect, a call past its deadline, or a refusal of the link
            self._connected = False
            self.warn(
                f"MiniQMT unreachable: {exc}"
                if isinstance(exc, BrokerDisconnected)
                else f"broker error: {exc}"
            )
            return EXIT_BROKER

    def _converge_once(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while not self.stop_event.is_set() and time.monotonic() < deadline:
            result = self.cycle(force_round=True)
            if result.gate:
                self.warn(f"not trading: {result.gate}")
                return EXIT_BLOCKED
            outcome = result.outcome
            if outcome is not None:
                status = outcome.plan.status
                if status is PlanStatus.CONVERGED:
                    self._print_skips(outcome)
                    self.say("converged: the account matches its target")
                    return EXIT_CONVERGED
                if status in (PlanStatus.BLOCKED, PlanStatus.HOLD):
                    self.warn(f"{status}: {outcome.plan.message}")
                    return EXIT_BLOCKED
                self.say(f"placed {len(outcome.orders)} order(s); waiting for fills")
            self._wait(self.config.interval)
        if self.stop_event.is_set():
            self.warn("stopped (Ctrl+C) before converging")
        else:
            self.warn(f"timed out after {timeout:g} s with orders still open")
        return EXIT_TIMEOUT

    def dry_run(self) -> RoundOutcome:
        outcome = round_run(
            account=self.account,
            broker=self.broker,
            quote_source=self.quote_source,
            now=self.clock(),
            trigger=Round.Trigger.MANUAL,
            dry_run=True,
        )
        return outcome

    def _print_skips(self, outcome: RoundOutcome) -> None:
        for skip in outcome.plan.skips:
            self.say(f"  skipped {skip.code}: {skip.reason} {skip.detail}")

    # --- one cycle -------------------------------------------------------------------

    def cycle(self, *, force_round: bool = False) -> CycleResult:
        now = self.clock()
        account = self.account
        self._heartbeat(now)
        account.refresh_from_db()
        events = self.broker.drain_events()
        events_apply(account=account, events=events)
        if any(event.kind == "disconnected" for event in events):
            # MiniQMT said goodbye (it restarts daily): reconnect now, not when the next query times out.
            raise BrokerDisconnected("MiniQMT reported the connection lost")
        if self._timers.due("reconcile", now, self.config.reconcile_every):
            orders_reconcile(account=account, broker=self.broker)
        self._user_cancels(now)
        if round_finish_if_done(account=account, now=now):
            # Filled, partly filled, cancelled or rejected: re-plan from the truth now, not at the drift timer.
            self._round_due = Round.Trigger.FOLLOW_UP

        open_count = selectors.open_orders(account=account).count()
        if open_count:
            if self._hours_allow_cancel(now):
                orders_cancel_overdue(account=account, broker=self.broker, now=now)
            return CycleResult(open_orders=open_count)

        trigger = self._round_trigger(now, force=force_round)
        if trigger is None:
            if self._timers.due("state", now, self.config.state_every):
                account_state_record(
                    account=account,
                    asset=self.broker.query_asset(),
                    positions=self.broker.query_positions(),
                    now=now,
                )
            return CycleResult()
        gate = self._trading_gate(now)
        if gate:
            return CycleResult(gate=gate)
        self._heartbeat(now, force=True)  # a revoked lease (broker settings changed) stops before planning
        approved = self._approved_round()
        outcome = round_run(
            account=account,
            broker=self.broker,
            quote_source=self.quote_source,
            now=now,
            trigger=Round.Trigger.APPROVED if approved else trigger,
            approved=approved,
            fence=self.fence,
        )
        self._timers.last["state"] = now  # round_run stored fresh state
        return CycleResult(outcome=outcome)

    def _round_trigger(self, now: datetime, *, force: bool) -> str | None:
        signature = selectors.targets_signature(account=self.account)
        changed = signature != self._targets_seen
        self._targets_seen = signature
        if changed:
            self._timers.last["drift"] = now
            return Round.Trigger.TARGET
        if self._approved_round() is not None:
            return Round.Trigger.APPROVED
        if self._round_due is not None:
            due, self._round_due = self._round_due, None
            self._timers.last["drift"] = now
            return due
        if force or self._timers.due("drift", now, self.config.drift_every):
            return Round.Trigger.DRIFT
        return None

    def _approved_round(self) -> Round | None:
        latest = selectors.latest_round(account=self.account)
        if latest and latest.status == Round.Status.HELD and latest.approved_at and not latest.finished_at:
            return latest
        return None

    # Calendar gates (execution.worker_gates); methods, so tests can ask a worker-shaped object.
    def _trading_gate(self, now: datetime) -> str:
        return worker_gates.trading_gate(self.account, now)

    def _outside_session(self, now: datetime) -> bool:
        return worker_gates.outside_session(self.account, now)

    def _hours_allow_cancel(self, now: datetime) -> bool:
        return worker_gates.hours_allow_cancel(self.account, now)

    def _user_cancels(self, now: datetime) -> None:
        requested = selectors.open_orders(account=self.account).filter(
            user_cancel_requested_at__isnull=False, cancel_requested_at__isnull=True
        )
        for order in requested:
            order_request_cancel(order=order, broker=self.broker, now=now)
