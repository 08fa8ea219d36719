"""The per-account convergence loop run by `manage.py qmt_worker` (DESIGN §2).

Each cycle: heartbeat, broker events → database, and — only when no own
order is open and trading is allowed — a round computed from fresh state
when targets changed, a held round was approved, or the periodic drift
check is due, or right after a round finished or the broker reconnected.
A period with no broker call ends with one cheap probe (worker_link).
Windows-safe: one thread, no fork, no SIGALRM; a stop event lets Ctrl+C
finish the current step.

Every send is fenced by the lease (services.orders.order_claim): a worker
that finds its lease gone stops at once, mid-round, with LeaseLost. The
lease, heartbeat and broker link are in worker_link, the run loops and exit
codes in worker_loops and worker_config, the market gates in worker_gates;
their public names stay importable from here.
"""

import threading
from collections.abc import Callable
from datetime import datetime

from django.utils import timezone

from . import selectors
from .brokers.base import Broker, BrokerDisconnected
from .models import BrokerAccount, Round
from .services import lease as lease_service
from .services.lease import LeaseLost  # noqa: F401  (re-exported: callers catch it from here)
from .services.orders import events_apply, order_request_cancel, orders_cancel_overdue, orders_reconcile
from .services.rounds import QuoteSource, RoundOutcome, round_finish_if_done, round_run
from .services.state import account_state_record
from .worker_config import (  # noqa: F401  (re-exported: qmt_worker and tests import them from here)
    EXIT_BLOCKED,
    EXIT_BROKER,
    EXIT_CONVERGED,
    EXIT_LEASE,
    EXIT_TIMEOUT,
    CycleResult,
    Timers,
    WorkerConfig,
)
from .worker_gates import hours_allow_cancel, outside_session, trading_gate
from .worker_link import WorkerLinkMixin
from .worker_loops import WorkerLoopsMixin
from .worker_restart import EXIT_RESTART  # noqa: F401  (re-exported: qmt_worker reads it from here)


class Worker(WorkerLinkMixin, WorkerLoopsMixin):
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
        self._timers = Timers()
        self._targets_seen: tuple | None = None
        self._connected = False
        self._status = ""  # reported with each heartbeat: why nothing trades, e.g. broker unreachable
        self._round_due: str | None = None  # a round should run at the next cycle, and why
        self._connect_failures = 0  # consecutive failed connects, counted from start()

    def dry_run(self) -> RoundOutcome:
        return round_run(
            account=self.account,
            broker=self.broker,
            quote_source=self.quote_source,
            now=self.clock(),
            trigger=Round.Trigger.MANUAL,
            dry_run=True,
        )

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
        # Nothing asked the broker for `probe_every`: one cheap bounded call now, or a hang would show only
        # at the next query, 10-15 s later plus its 10 s timeout. The periodic queries below wait for a
        # cycle that probed, so a hang always meets the probe's short timeout first.
        may_ask = self._probe_if_quiet(now)
        if may_ask and self._timers.due("reconcile", now, self.config.reconcile_every):
            orders_reconcile(account=account, broker=self.broker)
            self._broker_answered(now)
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
            if may_ask and self._timers.due("state", now, self.config.state_every):
                account_state_record(
                    account=account,
                    asset=self.broker.query_asset(),
                    positions=self.broker.query_positions(),
                    now=now,
                )
                self._broker_answered(now)
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
        self._broker_answered(now)
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

    # The market gates live in worker_gates; these keep the worker's own names for them.
    def _trading_gate(self, now: datetime) -> str:
        """Why no order may be sent now, or ''. Kill switches first (DESIGN §5.7)."""
        return trading_gate(self.account, now)

    def _outside_session(self, now: datetime) -> bool:
        return outside_session(self.account, now)

    def _hours_allow_cancel(self, now: datetime) -> bool:
        return hours_allow_cancel(self.account, now)

    def _user_cancels(self, now: datetime) -> None:
        requested = selectors.open_orders(account=self.account).filter(
            user_cancel_requested_at__isnull=False, cancel_requested_at__isnull=True
        )
        for order in requested:
            order_request_cancel(order=order, broker=self.broker, now=now)
