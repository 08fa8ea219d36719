"""The worker's two ways to run: forever (qmt_worker) and until converged (qmt_worker --once).

Both map failures to the documented exit codes (execution.worker_config);
--once explains a non-zero exit with exactly one line through `warn`.
"""

import time

from django.db import DatabaseError, close_old_connections

from .brokers.base import BrokerDisconnected, BrokerError
from .planner import PlanStatus
from .services.lease import LeaseLost
from .services.rounds import RoundOutcome
from .worker_config import EXIT_BLOCKED, EXIT_BROKER, EXIT_CONVERGED, EXIT_TIMEOUT


class WorkerLoopsMixin:
    """run_forever and run_once of `execution.worker.Worker` (cycles come from Worker.cycle)."""

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

    def _print_skips(self, outcome: RoundOutcome) -> None:
        for skip in outcome.plan.skips:
            self.say(f"  skipped {skip.code}: {skip.reason} {skip.detail}")
