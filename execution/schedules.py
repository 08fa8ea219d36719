"""django-q2 schedules of the execution app (collected by `qmtjq.schedules`, created by name on start)."""

from django_q.models import Schedule

from qmtjq.schedules import ScheduleSpec

SCHEDULES = [
    # Returns at once outside trading sessions.
    ScheduleSpec(
        name="execution: worker heartbeat watchdog",
        func="execution.tasks.heartbeat_watchdog",
        schedule_type=Schedule.MINUTES,
        minutes=1,
    ),
]
