"""django-q2 schedules of the rotation app (collected by `qmtjq.schedules`, created by name on start)."""

from django_q.models import Schedule

from qmtjq.schedules import ScheduleSpec

SCHEDULES = [
    # Idempotent by its RotationRun row per slot; every minute so a 14:50 slot
    # starts within about a minute (the cluster's scheduler wakes every ~30 s).
    ScheduleSpec(
        name="rotation: due check",
        func="rotation.jobs.rotation_due_check",
        schedule_type=Schedule.MINUTES,
        minutes=1,
    ),
    # Returns at once outside trading sessions.
    ScheduleSpec(
        name="rotation: take-profit/stop-loss",
        func="rotation.jobs.tp_sl_check_job",
        schedule_type=Schedule.MINUTES,
        minutes=1,
    ),
]
