"""Rotation jobs run by django-q2 every minute (see `rotation/schedules.py`).

django-q2 delivers a task at least once and a redelivered or late task may
arrive minutes after its slot, so the due check is idempotent by a database
row, not by memory: one `RotationRun` per (rotation, slot), created before
anything runs. Whoever creates the row runs the slot; everyone else sees it
exists and does nothing. A run that crashed half-way stays `running` (or
`failed`) and is never retried by the schedule: a human looks first, and
`manage.py run_rotation` runs it again on purpose.
"""

import logging
from datetime import datetime, timedelta

from django.db import IntegrityError
from django.utils import timezone
from django.utils.translation import gettext as _

from execution.calendar import SHANGHAI, can_place_orders, market_date
from qmtjq import display
from qmtjq.notifications import EVENT_ROTATION_FAILED, notify

from .models import RotationRun, RotationStrategy
from .schedule import due_slots
from .texts import run_text

logger = logging.getLogger(__name__)


def _minutes(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 60:.1f}"


def _slot_text(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def _notify_key(run: RotationRun) -> str:
    # The same key for every notice about one slot, so repeats fold into one.
    return f"{run.rotation.name}:{run.slot.astimezone(SHANGHAI).isoformat()}"


def _run_claim(*, rotation: RotationStrategy, slot: datetime) -> RotationRun | None:
    """Create the slot's run row; None when it already exists (this slot was claimed before)."""
    try:
        run, created = RotationRun.objects.get_or_create(
            rotation=rotation, slot=slot, defaults={"trigger": RotationRun.Trigger.SCHEDULE}
        )
    except IntegrityError:
        # Another worker inserted the same (rotation, slot) between our read and
        # write and get_or_create could not read it back yet: the slot is theirs.
        return None
    return run if created else None


def _run_skip_late(*, run: RotationRun, now: datetime) -> None:
    rotation = run.rotation
    late = now - run.slot
    run.status = RotationRun.Status.SKIPPED
    run.message, run.message_params = run_text(
        "late_skip",
        slot=_slot_text(run.slot),
        now=_slot_text(now),
        late=_minutes(late),
        allowed=_minutes(rotation.max_lateness),
    )
    run.finished_at = now
    run.save(update_fields=["status", "message", "message_params", "finished_at"])
    logger.warning("rotation %s: %s", rotation.name, run.message)
    notify(
        EVENT_ROTATION_FAILED,
        title=lambda: _("Rotation %(name)s skipped its %(slot)s run (%(late)s minutes late)")
        % {"name": rotation.name, "slot": _slot_text(run.slot), "late": _minutes(late)},
        body=lambda: display.run_message(run),
        key=_notify_key(run),
    )


def _run_fail(*, run: RotationRun, error: Exception, now: datetime) -> None:
    rotation = run.rotation
    run.refresh_from_db()
    if run.status == RotationRun.Status.RUNNING:
        # The service did not record the outcome itself.
        run.status = RotationRun.Status.FAILED
        run.message, run.message_params = run_text("failed", error=f"{type(error).__name__}: {error}")
        run.finished_at = now
        run.save(update_fields=["status", "message", "message_params", "finished_at"])
    notify(
        EVENT_ROTATION_FAILED,
        title=lambda: _("Rotation %(name)s failed its %(slot)s run")
        % {"name": rotation.name, "slot": _slot_text(run.slot)},
        body=lambda: display.run_message(run),
        key=_notify_key(run),
        level="error",
    )


def _slot_start(*, rotation: RotationStrategy, slot: datetime, now: datetime) -> RotationRun | None:
    """Claim and run (or skip as too late) one slot; None when it was claimed before."""
    from . import services  # the service module imports much more; only needed here

    run = _run_claim(rotation=rotation, slot=slot)
    if run is None:
        return None
    if now - slot > rotation.max_lateness:
        _run_skip_late(run=run, now=now)
        return run
    try:
        services.run_execute(run=run, now=now)
    except Exception as exc:  # one rotation's failure must not stop the others
        logger.exception("rotation %s: run of %s failed", rotation.name, _slot_text(slot))
        _run_fail(run=run, error=exc, now=now)
    run.refresh_from_db()
    return run


def rotation_due_check(now: datetime | None = None) -> list[RotationRun]:
    """Start every enabled rotation whose slot on today's market date has come; returns the runs started now.

    Runs every minute. Safe to call any number of times: a slot already
    claimed is left alone. Slots before a rotation existed are ignored (a
    rotation created at 15:30 does not report missing its 14:50 run).
    """
    now = now or timezone.now()
    today = market_date(now)  # refuses a naive datetime
    from .services import rotations_confirm_targets

    rotations_confirm_targets(now=now)
    started = []
    for rotation in RotationStrategy.objects.filter(enabled=True).order_by("name"):
        try:
            slots = [slot for slot in due_slots(rotation, now) if slot >= rotation.created_at]
        except Exception as exc:  # CalendarUnknown above all: loud, but the others go on
            logger.exception("rotation %s: cannot work out today's slot", rotation.name)
            notify(
                EVENT_ROTATION_FAILED,
                title=lambda rotation=rotation: _("Rotation %(name)s cannot tell whether it is due")
                % {"name": rotation.name},
                body=lambda exc=exc: display.text(str(exc)),
                key=f"{rotation.name}:schedule:{today.isoformat()}",
                level="error",
            )
            continue
        for slot in slots:
            try:
                run = _slot_start(rotation=rotation, slot=slot, now=now)
            except Exception:  # e.g. the database went away while recording; next minute retries
                logger.exception("rotation %s: could not start the %s run", rotation.name, _slot_text(slot))
                continue
            if run is not None:
                started.append(run)
    return started


def tp_sl_check_job(now: datetime | None = None):
    """Take-profit / stop-loss pass, only while orders can be placed (continuous trading sessions).

    Outside them prices do not move (or cannot be acted on), so the job
    returns at once with the reason, which django-q2 keeps as the result.
    """
    now = now or timezone.now()
    open_now, reason = can_place_orders(now)
    if not open_now:
        return f"not in a trading session: {reason}"
    from . import services

    return services.tp_sl_check(now=now)
