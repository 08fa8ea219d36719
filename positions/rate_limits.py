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

from django.db import connection
from django.db.models.constants import OnConflict

from qmtjq.db import VendorStatements, serialized_writes

from .models import ApiClient, ApiRateWindow

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after: int | None = None  # seconds, when refused


def _build_statements(db) -> dict[str, str]:
    q = db.ops.quote_name
    table = q(ApiRateWindow._meta.db_table)
    client, window, count = (
        q(ApiRateWindow._meta.get_field(name).column) for name in ("client", "window", "count")
    )
    # INSERT OR IGNORE (SQLite), INSERT IGNORE (MySQL), or a plain INSERT with ON CONFLICT DO NOTHING (PostgreSQL).
    insert = db.ops.insert_statement(on_conflict=OnConflict.IGNORE)
    suffix = db.ops.on_conflict_suffix_sql([], OnConflict.IGNORE, None, None)
    return {
        "counts": f"SELECT {window}, {count} FROM {table} WHERE {client} = %s AND {window} IN (%s, %s)",  # noqa: S608
        "take": f"UPDATE {table} SET {count} = {count} + 1 "  # noqa: S608
        f"WHERE {client} = %s AND {window} = %s AND {count} < %s",
        "open": f"{insert} {table} ({client}, {window}, {count}) VALUES (%s, %s, 0) {suffix}".rstrip(),
    }


_statements = VendorStatements(_build_statements)


def rate_take(*, client: ApiClient, limit: int, now: datetime) -> RateDecision:
    """Count one request of `client` if its budget allows it; refused requests are not counted.

    Every API call of a limited client runs this, so it is plain SQL on one
    cursor (issue 12: built as ORM queries it was ~28 % of an upload's
    server CPU).
    """
    stamp = now.timestamp()
    window = math.floor(stamp / WINDOW_SECONDS)
    inside = (stamp - window * WINDOW_SECONDS) / WINDOW_SECONDS  # share of this window already gone
    with connection.cursor() as cursor:
        sql = _statements(cursor.db)
        cursor.execute(sql["counts"], [client.pk, window - 1, window])
        counts = dict(cursor.fetchall())
        previous = counts.get(window - 1, 0)
        # The previous window still weighs by the part of it inside the last minute.
        room = limit - math.floor(previous * (1 - inside))
        if room <= 0:
            return RateDecision(False, _retry_after(previous=previous, current=0, limit=limit, inside=inside))
        # Single statements, no transaction around them: the conditional UPDATE is
        # the check and the count at once. Creating a missing window's row first
        # (and ignoring a parallel creation) keeps InnoDB from deadlocking parallel
        # requests on the gap lock an UPDATE of a missing row takes.
        with serialized_writes():
            if window not in counts:
                cursor.execute(sql["open"], [client.pk, window])
            cursor.execute(sql["take"], [client.pk, window, room])
            if cursor.rowcount:
                return RateDecision(True)
        cursor.execute(sql["counts"], [client.pk, window, window])
        current = dict(cursor.fetchall()).get(window, 0)
    return RateDecision(False, _retry_after(previous=previous, current=current, limit=limit, inside=inside))


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
