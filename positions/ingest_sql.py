"""Hand-written SQL for the upload hot path (`services.snapshot_ingest`).

Building ORM queries and model instances was ~40 % of an upload's server CPU
(issue 12's profile). These statements are built once per database vendor
from the models' own table and column names and run through Django's cursor,
so transactions, error wrapping (IntegrityError) and the connection are
Django's. Values are adapted by the backend's own `connection.ops` adapters.
Every function takes the caller's cursor: one upload runs all its statements
on one cursor (opening a Django cursor is not free either).
"""

import json

from qmtjq.db import VendorStatements

from .models import Strategy, TargetLine, TargetSnapshot, Upload


def _table(db, model) -> str:
    return db.ops.quote_name(model._meta.db_table)


def _columns(db, model, *names: str) -> str:
    return ", ".join(db.ops.quote_name(model._meta.get_field(name).column) for name in names)


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


def _build_statements(db) -> dict[str, str]:
    q = db.ops.quote_name
    strategy, snapshot = _table(db, Strategy), _table(db, TargetSnapshot)
    lock = " FOR UPDATE" if db.features.has_select_for_update else ""

    def insert(model, fields) -> str:
        marks = ", ".join(["%s"] * len(fields))
        return f"INSERT INTO {_table(db, model)} ({_columns(db, model, *fields)}) VALUES ({marks})"  # noqa: S608

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


_statements = VendorStatements(_build_statements)


# `cursor.db` is the connection itself: `django.db.connection` is a proxy that
# looks the connection up (thread/async-local) on every attribute access.
def _sql(cursor, name: str) -> str:
    return _statements(cursor.db)[name]


def _when(db, value):
    return db.ops.adapt_datetimefield_value(value)


def _money(db, value, field):
    if value is None:
        return None
    return db.ops.adapt_decimalfield_value(value, field.max_digits, field.decimal_places)


def strategy_lock(cursor, *, name_key: str) -> tuple[Strategy, TargetSnapshot | None] | None:
    """The strategy row, locked for this transaction, and its current snapshot; None when it does not exist.

    Both are model instances with the other fields deferred (loaded on access).
    """
    cursor.execute(_sql(cursor, "strategy_lock"), [name_key])
    row = cursor.fetchone()
    if row is None:
        return None
    strategy_id, name, current_id, content_hash, positions_count = row
    alias = cursor.db.alias
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


def snapshot_insert(cursor, *, snapshot: TargetSnapshot) -> int:
    """Insert a new (unsaved) snapshot instance; sets and returns its id."""
    db, meta = cursor.db, TargetSnapshot._meta
    params = [
        snapshot.strategy_id,
        snapshot.source,
        json.dumps(snapshot.rule_exits),
        snapshot.client_id,
        db.ops.adapt_ipaddressfield_value(snapshot.remote_addr),
        _when(db, snapshot.created_at),
        _money(db, snapshot.total_value, meta.get_field("total_value")),
        _money(db, snapshot.cash, meta.get_field("cash")),
        snapshot.content_hash,
        snapshot.positions_count,
    ]
    cursor.execute(_sql(cursor, "snapshot_insert"), params)
    snapshot.pk = cursor.lastrowid
    snapshot._state.adding, snapshot._state.db = False, db.alias
    return snapshot.pk


def lines_insert(cursor, *, snapshot_id: int, positions) -> None:
    adapt = cursor.db.ops.adapt_decimalfield_value
    cursor.executemany(
        _sql(cursor, "lines_insert"),
        [(snapshot_id, p.code, p.jq_code, p.name, p.volume, adapt(p.cost, 20, 6)) for p in positions],
    )


def strategy_confirm(cursor, *, strategy_id: int, snapshot_id: int, now) -> None:
    cursor.execute(_sql(cursor, "strategy_confirm"), [snapshot_id, _when(cursor.db, now), strategy_id])


def upload_insert(
    cursor,
    *,
    client_id: int,
    snapshot_id: str,
    snapshot_key: str,
    strategy_id: int,
    target_id: int,
    changed: bool,
    auth_type: str,
    remote_addr: str | None,
    received_at,
) -> int:
    """Insert the Upload row (the history of every call); returns its id. No model instance is built."""
    db = cursor.db
    params = [
        client_id,
        snapshot_id,
        snapshot_key,
        strategy_id,
        target_id,
        changed,
        auth_type,
        db.ops.adapt_ipaddressfield_value(remote_addr),
        _when(db, received_at),
    ]
    cursor.execute(_sql(cursor, "upload_insert"), params)
    return cursor.lastrowid
