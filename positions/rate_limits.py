"""The per-client API rate limit: one atomic count per client and minute, in the database.

Every web process and thread shares it, and the check-and-count is a single
conditional UPDATE, so parallel requests can never exceed the budget (a
read-modify-write of a cached list, as DRF's SimpleRateThrottle keeps it, lets
every request that read the same list through). The limit slides: the
previous minute's count weighs by how much of it is still inside the last 60
seconds, so a window boundary is never a double budget.
"""

import math
from dataclasses import dataclass
from datetime import datetime

from django.db.models import F

from qmtjq.db import serialized_writes

from .models import ApiClient, ApiRateWindow

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after: int | None = None  # seconds, when refused


def rate_take(*, client: ApiClient, limit: int, now: datetime) -> RateDecision:
    """Count one request of `client` if its budget allows it; refused requests are not counted."""
    stamp = now.timestamp()
    window = math.floor(stamp / WINDOW_SECONDS)
    inside = (stamp - window * WINDOW_SECONDS) / WINDOW_SECONDS  # share of this window already gone
    previous = (
        ApiRateWindow.objects.filter(client=client, window=window - 1).values_list("count", flat=True).first() or 0
    )
    # The previous window still weighs by the part of it inside the last minute.
    room = limit - math.floor(previous * (1 - inside))
    if room <= 0:
        return RateDecision(False, _retry_after(previous=previous, current=0, limit=limit, inside=inside))
    rows = ApiRateWindow.objects.filter(client=client, window=window, count__lt=room)
    # Single statements, no transaction around them: the conditional UPDATE is
    # the check and the count at once. Creating the window's row first (and
    # ignoring a parallel creation) keeps InnoDB from deadlocking parallel
    # requests on the gap lock an UPDATE of a missing row takes.
    with serialized_writes():
        if rows.update(count=F("count") + 1):
            return RateDecision(True)
        ApiRateWindow.objects.bulk_create(
            [ApiRateWindow(client=client, window=window, count=0)], ignore_conflicts=True
        )
        if rows.update(count=F("count") + 1):
            return RateDecision(True)
    current = ApiRateWindow.objects.filter(client=client, window=window).values_list("count", flat=True).first()
    return RateDecision(False, _retry_after(previous=previous, current=current or 0, limit=limit, inside=inside))


def _retry_after(*, previous: int, current: int, limit: int, inside: float) -> int:
    """Whole seconds until one more request fits: when the previous window's weight has shrunk enough,
    or when this window ends (its count then becomes the weighing one)."""
    to_window_end = (1 - inside) * WINDOW_SECONDS
    if previous and current < limit:
        needed = 1 - (limit - current - 1) / previous  # weight share at which one more fits
        wait = max(0.0, (needed - inside)) * WINDOW_SECONDS
        return max(1, min(math.ceil(wait), math.ceil(to_window_end)))
    return max(1, math.ceil(to_window_end) + 1)


def rate_windows_purge(*, now: datetime) -> int:
    """Forget windows that no longer weigh on any decision (older than the previous one)."""
    window = math.floor(now.timestamp() / WINDOW_SECONDS)
    with serialized_writes():
        deleted, _ = ApiRateWindow.objects.filter(window__lt=window - 1).delete()
    return deleted
