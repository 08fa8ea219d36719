"""Writes for positions: target ingest and internal target writes.

Strategies (`services_strategies`) and API clients (`services_clients`) live in
their own modules; their names are re-exported here, so
`from positions.services import api_client_create` keeps working.
"""

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from qmtjq.api import ApiError
from qmtjq.db import serialized_writes
from qmtjq.names import SOURCE_UPLOAD, NamesChange, security_names_pending, security_names_store

from . import ingest_sql
from .models import ApiClient, Strategy, TargetSnapshot, Upload, exact_key
from .services_clients import (  # noqa: F401  (re-exported: callers import them from here)
    CLIENT_FILE,
    api_client_auth_failed,
    api_client_create,
    api_client_key_issue,
    api_client_revoke_keys,
    api_client_rotate_key,
    api_client_set_enabled,
    client_file_render,
)
from .services_strategies import strategy_get, strategy_get_or_create  # noqa: F401  (re-exported)
from .validation import TargetPosition, UploadRequest

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestResult:
    strategy: Strategy
    snapshot: TargetSnapshot
    snapshot_id: str
    changed: bool
    duplicate: bool  # the same snapshot_id was seen before; nothing stored now
    received_at: datetime


def positions_hash(positions: tuple[TargetPosition, ...]) -> str:
    """Digest of what a target means for trading: code, volume and cost.

    Names are labels and `total_value`/`cash` are the account's size at the
    rebalance; neither alone makes a new target.
    """
    digest = hashlib.sha256()
    for position in sorted(positions, key=lambda p: p.code):
        digest.update(f"{position.code}|{position.volume}|{position.cost:.6f}\n".encode())
    return digest.hexdigest()


def _replayed_upload(
    client: ApiClient, snapshot_id: str, strategy_name: str, *, lock: bool
) -> IngestResult | None:
    queryset = Upload.objects.select_related("strategy", "target").filter(
        client=client, snapshot_key=exact_key(snapshot_id)
    )
    if lock:
        queryset = queryset.select_for_update()
    upload = queryset.first()
    if upload is None:
        return None
    if upload.strategy.name_key != exact_key(strategy_name):
        raise ApiError(
            f"snapshot_id {snapshot_id!r} was already used for strategy {upload.strategy.name!r}", 409
        )
    return IngestResult(upload.strategy, upload.target, snapshot_id, upload.changed, True, upload.received_at)


class _StrategyMissing(Exception):
    """The strategy row does not exist yet: create it outside the ingest transaction, then retry."""


_DEADLOCK_CODES = {1213, 1205}  # MySQL: deadlock found; lock wait timeout
INGEST_ATTEMPTS = 3


def _is_deadlock(exc: OperationalError) -> bool:
    return bool(exc.args) and exc.args[0] in _DEADLOCK_CODES


def snapshot_ingest(
    *, upload: UploadRequest, client: ApiClient, auth_type: str, remote_addr: str | None
) -> IngestResult:
    """Store an upload as a new target snapshot, or confirm the current one.

    Idempotent per (client, snapshot_id). Uploads to one strategy are
    serialized by a lock on its row, so "changed" is decided against the
    snapshot that really is current.
    """
    name = upload.strategy_name
    if upload.snapshot_id and (replayed := _replayed_upload(client, upload.snapshot_id, name, lock=False)):
        return replayed
    if not client.all_strategies and not client.allows_strategy(name):
        raise ApiError(f"client {client.client_id!r} may not use strategy {name!r}", 403)

    snapshot_id = upload.snapshot_id or uuid.uuid4().hex
    for attempt in range(1, INGEST_ATTEMPTS + 1):
        try:
            return _ingest_locked(
                upload=upload,
                client=client,
                auth_type=auth_type,
                remote_addr=remote_addr,
                snapshot_id=snapshot_id,
            )
        except _StrategyMissing:
            # Created in its own short transaction: a "create if missing" inside the
            # locked transaction gap-locks the unique index and deadlocks parallel
            # first uploads on InnoDB.
            if not client.can_create_strategies:
                raise ApiError(
                    f"strategy {name!r} does not exist and this client may not create strategies", 403
                )
            strategy_get_or_create(name=name, created_by=client)
        except OperationalError as exc:
            if not _is_deadlock(exc) or attempt == INGEST_ATTEMPTS:
                raise
            logger.warning("upload to %s hit a database deadlock; retrying (attempt %d)", name, attempt)
        except IntegrityError:
            # A parallel request with the same snapshot_id won the race.
            if upload.snapshot_id and (replayed := _replayed_upload(client, snapshot_id, name, lock=False)):
                return replayed
            raise
    raise OperationalError(f"upload to {name!r} could not be stored after {INGEST_ATTEMPTS} attempts")


def _ingest_locked(
    *, upload: UploadRequest, client: ApiClient, auth_type: str, remote_addr: str | None, snapshot_id: str
) -> IngestResult:
    name = upload.strategy_name
    content_hash = positions_hash(upload.positions)
    # Read before the write lock: which names this upload would add or change
    # (almost always none). The lock is held only for the writes.
    names = security_names_pending(names={p.code: p.name for p in upload.positions})
    with serialized_writes(), transaction.atomic(), connection.cursor() as cursor:
        locked = ingest_sql.strategy_lock(cursor, name_key=exact_key(name))
        if locked is None:
            raise _StrategyMissing
        strategy, current = locked
        if upload.snapshot_id and (replayed := _replayed_upload(client, snapshot_id, name, lock=True)):
            return replayed
        now = timezone.now()
        current, changed = _target_apply(
            strategy=strategy,
            current=current,
            upload=upload,
            content_hash=content_hash,
            client=client,
            remote_addr=remote_addr,
            now=now,
            cursor=cursor,
            names=names,
        )
        ingest_sql.upload_insert(
            cursor,
            client_id=client.pk,
            snapshot_id=snapshot_id,
            snapshot_key=exact_key(snapshot_id),
            strategy_id=strategy.pk,
            target_id=current.pk,
            changed=changed,
            auth_type=auth_type,
            remote_addr=remote_addr,
            received_at=now,
        )
    logger.info(
        "target upload strategy=%s client=%s changed=%s lines=%d snapshot=%s",
        strategy.name,
        client.client_id,
        changed,
        current.positions_count,
        current.pk,
    )
    return IngestResult(strategy, current, snapshot_id, changed, False, now)


def _target_apply(
    *,
    strategy: Strategy,
    current: TargetSnapshot | None,
    upload: UploadRequest,
    content_hash: str,
    client: ApiClient | None,
    remote_addr: str | None,
    now: datetime,
    source: str = TargetSnapshot.Source.API,
    cursor,
    names: NamesChange | None = None,
) -> tuple[TargetSnapshot, bool]:
    """On a locked strategy row: a new snapshot only when the content changed; always confirm the target.

    `cursor`: the caller's, inside its transaction. `names`: the security
    names change read before the lock (the upload path); else read here.
    """
    changed = current is None or current.content_hash != content_hash
    if changed:
        current = _snapshot_create(
            cursor,
            strategy=strategy,
            upload=upload,
            content_hash=content_hash,
            client=client,
            remote_addr=remote_addr,
            source=source,
            now=now,
            rule_exits=_rule_exits(previous=current, upload=upload)
            if source == TargetSnapshot.Source.ROTATION
            else (),
            names=names,
        )
    ingest_sql.strategy_confirm(cursor, strategy_id=strategy.pk, snapshot_id=current.pk, now=now)
    strategy.current_snapshot, strategy.confirmed_at = current, now
    return current, changed


def _rule_exits(*, previous: TargetSnapshot | None, upload: UploadRequest) -> set[str]:
    """Codes a rotation's rules closed: dropped now, or dropped before and still not targeted again.

    A rotation only ever writes targets by its own rules (selection, top-N,
    take-profit/stop-loss), so whatever leaves its target is an exit the user
    ordered. Carried forward so an exit not yet sold stays an exit.
    """
    if previous is None:
        return set()
    kept = {p.code for p in upload.positions if p.volume}
    before = set(previous.rule_exits or ()) | set(
        previous.lines.filter(volume__gt=0).values_list("code", flat=True)
    )
    return before - kept


def _snapshot_create(
    cursor,
    *,
    strategy: Strategy,
    upload: UploadRequest,
    content_hash: str,
    client: ApiClient | None,
    remote_addr: str | None,
    now: datetime,
    source: str = TargetSnapshot.Source.API,
    rule_exits=(),
    names: NamesChange | None = None,
) -> TargetSnapshot:
    # Plain INSERTs (positions.ingest_sql): ORM query building and one model
    # instance per line were most of the server's CPU per 50-line upload.
    snapshot = TargetSnapshot(
        strategy=strategy,
        source=source,
        rule_exits=sorted(rule_exits),
        client=client,
        remote_addr=remote_addr,
        created_at=now,
        total_value=upload.total_value,
        cash=upload.cash,
        content_hash=content_hash,
        positions_count=len(upload.positions),
    )
    ingest_sql.snapshot_insert(cursor, snapshot=snapshot)
    if upload.positions:
        ingest_sql.lines_insert(cursor, snapshot_id=snapshot.pk, positions=upload.positions)
        if names is None:
            names = security_names_pending(names={p.code: p.name for p in upload.positions})
        security_names_store(names, source=SOURCE_UPLOAD)
    return snapshot


def target_write(
    *,
    strategy: Strategy,
    positions: tuple[TargetPosition, ...],
    source: str,
    total_value=None,
    cash=None,
) -> tuple[TargetSnapshot, bool]:
    """Write a strategy's target from inside the system (rotation, take-profit, admin edit).

    Same rules as an upload: a new immutable snapshot only when code/volume/cost
    change; otherwise the current target is confirmed. Returns (snapshot, changed).
    """
    content_hash = positions_hash(positions)
    request = UploadRequest(strategy.name, tuple(positions), total_value, cash, None)
    with serialized_writes(), transaction.atomic(), connection.cursor() as cursor:
        locked = Strategy.objects.select_for_update().select_related("current_snapshot").get(pk=strategy.pk)
        current, changed = _target_apply(
            cursor=cursor,
            strategy=locked,
            current=locked.current_snapshot,
            upload=request,
            now=timezone.now(),
            content_hash=content_hash,
            client=None,
            remote_addr=None,
            source=source,
        )
    logger.info(
        "target written strategy=%s source=%s changed=%s lines=%d",
        strategy.name,
        source,
        changed,
        len(positions),
    )
    return current, changed
