"""Hand-written SQL for the upload hot path (`services.snapshot_ingest`).

Building ORM queries and model instances was ~40 % of an upload's server CPU
(issue 12's profile). These statements are built once per database vendor
from the models' own table and column names and run through Django's cursor,
so transactions, error wrapping (IntegrityError) and the connection are
Django's. Values are adapted by the backend's own `connection.ops` adapters.
"""

import json
from functools import cache

from django.db import connection

from .models import Strategy, TargetLine, TargetSnapshot, Upload


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _columns(model, *names: str) -> str:
    return ", ".join(connection.ops.quote_name(model._meta.get_field(name).column) for name in names)


SNAPSHOT_FIELDS = (
    "strategy",
    "source",
    "rule_exits",
    "client",
    "remote_addr",
    "created_at",
    "total_value",
    "cash",
    "content_hash",
    "positions_count",
)
LINE_FIELDS = ("snapshot", "code", "jq_code", "name", "volume", "cost")
UPLOAD_FIELDS = (
    "client",
    "snapshot_id",
    "snapshot_key",
    "strategy",
    "target",
    "changed",
    "auth_type",
    "remote_addr",
    "received_at",
)


@cache
def _statements(vendor: str) -> dict[str, str]:
    q = connection.ops.quote_name
    strategy, snapshot = _table(Strategy), _table(TargetSnapshot)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""

    def insert(model, fields) -> str:
        marks = ", ".join(["%s"] * len(fields))
        return f"INSERT INTO {_table(model)} ({_columns(model, *fields)}) VALUES ({marks})"  # noqa: S608

    return {
        # One locked read of the strategy and what its current target means.
        "strategy_lock": (
            f"SELECT s.{q('id')}, s.{q('name')}, c.{q('id')}, c.{q('content_hash')}, "  # noqa: S608
            f"c.{q('positions_count')} FROM {strategy} s "
            f"LEFT JOIN {snapshot} c ON c.{q('id')} = s.{q('current_snapshot_id')} "
            f"WHERE s.{q('name_key')} = %s{lock}"
        ),
        "snapshot_insert": insert(TargetSnapshot, SNAPSHOT_FIELDS),
        "lines_insert": insert(TargetLine, LINE_FIELDS),
        "upload_insert": insert(Upload, UPLOAD_FIELDS),
        "strategy_confirm": (
            f"UPDATE {strategy} SET {q('current_snapshot_id')} = %s, {q('confirmed_at')} = %s "  # noqa: S608
            f"WHERE {q('id')} = %s"
        ),
    }


def _sql(name: str) -> str:
    return _statements(connection.vendor)[name]


def _when(value):
    return connection.ops.adapt_datetimefield_value(value)


def _money(value, field):
    if value is None:
        return None
    return connection.ops.adapt_decimalfield_value(value, field.max_digits, field.decimal_places)


def strategy_lock(*, name_key: str) -> tuple[Strategy, TargetSnapshot | None] | None:
    """The strategy row, locked for this transaction, and its current snapshot; None when it does not exist.

    Both are model instances with the other fields deferred (loaded on access).
    """
    with connection.cursor() as cursor:
        cursor.execute(_sql("strategy_lock"), [name_key])
        row = cursor.fetchone()
    if row is None:
        return None
    strategy_id, name, current_id, content_hash, positions_count = row
    alias = connection.alias
    strategy = Strategy.from_db(
        alias, ["id", "name", "name_key", "current_snapshot_id"], [strategy_id, name, name_key, current_id]
    )
    current = None
    if current_id is not None:
        current = TargetSnapshot.from_db(
            alias,
            ["id", "strategy_id", "content_hash", "positions_count"],
            [current_id, strategy_id, content_hash, positions_count],
        )
        strategy.current_snapshot = current
    return strategy, current


def snapshot_insert(*, snapshot: TargetSnapshot) -> int:
    """Insert a new (unsaved) snapshot instance; sets and returns its id."""
    meta = TargetSnapshot._meta
    params = [
        snapshot.strategy_id,
        snapshot.source,
        json.dumps(snapshot.rule_exits),
        snapshot.client_id,
        connection.ops.adapt_ipaddressfield_value(snapshot.remote_addr),
        _when(snapshot.created_at),
        _money(snapshot.total_value, meta.get_field("total_value")),
        _money(snapshot.cash, meta.get_field("cash")),
        snapshot.content_hash,
        snapshot.positions_count,
    ]
    with connection.cursor() as cursor:
        cursor.execute(_sql("snapshot_insert"), params)
        snapshot.pk = cursor.lastrowid
    snapshot._state.adding, snapshot._state.db = False, connection.alias
    return snapshot.pk


def lines_insert(*, snapshot_id: int, positions) -> None:
    adapt = connection.ops.adapt_decimalfield_value
    with connection.cursor() as cursor:
        cursor.executemany(
            _sql("lines_insert"),
            [(snapshot_id, p.code, p.jq_code, p.name, p.volume, adapt(p.cost, 20, 6)) for p in positions],
        )


def strategy_confirm(*, strategy_id: int, snapshot_id: int, now) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_sql("strategy_confirm"), [snapshot_id, _when(now), strategy_id])


def upload_insert(*, upload: Upload) -> int:
    params = [
        upload.client_id,
        upload.snapshot_id,
        upload.snapshot_key,
        upload.strategy_id,
        upload.target_id,
        upload.changed,
        upload.auth_type,
        connection.ops.adapt_ipaddressfield_value(upload.remote_addr),
        _when(upload.received_at),
    ]
    with connection.cursor() as cursor:
        cursor.execute(_sql("upload_insert"), params)
        upload.pk = cursor.lastrowid
    upload._state.adding, upload._state.db = False, connection.alias
    return upload.pk
