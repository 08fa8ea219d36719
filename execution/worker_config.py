"""What the worker loop is tuned by and reports: exit codes, timers, one cycle's result."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings

from .services.rounds import RoundOutcome

# qmt_worker exit codes (README): 2 = another worker holds or took over the account,
# 5 = the broker (MiniQMT) is unreachable or dropped us during --once.
EXIT_CONVERGED, EXIT_LEASE, EXIT_BLOCKED, EXIT_TIMEOUT, EXIT_BROKER = 0, 2, 3, 4, 5


def _probe_every_default() -> timedelta:
    return timedelta(seconds=settings.QMT_PROBE_EVERY_SECONDS)


@dataclass
class WorkerConfig:
    interval: float = 1.0
    drift_every: timedelta = timedelta(seconds=30)
    state_every: timedelta = timedelta(seconds=10)
    reconcile_every: timedelta = timedelta(seconds=15)
    lease_every: timedelta = timedelta(seconds=5)
    # A period without any broker call ends with one cheap probe, so an idle hang is noticed (0 = off).
    probe_every: timedelta = field(default_factory=_probe_every_default)
    backoff: tuple[float, ...] = (1, 2, 5, 10, 30)
    closed_reconnect_every: float = 300.0  # reconnect attempts outside trading sessions


@dataclass
class CycleResult:
    """What one cycle did, for --once and for tests."""

    outcome: RoundOutcome | None = None
    gate: str = ""  # why no round could run (kill switch, hours)
    open_orders: int = 0


@dataclass
class Timers:
    last: dict[str, datetime] = field(default_factory=dict)

    def due(self, name: str, now: datetime, every: timedelta) -> bool:
        previous = self.last.get(name)
        if previous is None or now - previous >= every:
            self.last[name] = now
            return True
        return False
