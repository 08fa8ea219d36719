"""Registry of the django-q2 schedules this system runs, created idempotently.

Every app can contribute schedules by exposing a module-level list
``SCHEDULES`` of :class:`ScheduleSpec` in ``<app>/schedules.py``;
:func:`schedules_collect` gathers them over ``INSTALLED_APPS`` (in app order)
and :func:`schedules_ensure` (run by ``manage.py serve`` on every start)
creates or updates one ``django_q.Schedule`` row per spec name.

Code is the source of truth for *what* runs and *when* (func, type, minutes,
cron, args, kwargs, hook, cluster): a change here is applied on the next
start. ``repeats`` and ``next_run`` are only set when the row is created, so
an operator who pauses a job in admin (repeats = 0) keeps it paused across
restarts; ``next_run`` is reset only when the timing itself changed.
"""

import logging
from dataclasses import dataclass
from importlib import import_module
from typing import Literal

from django.apps import apps
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import module_has_submodule
from django_q.models import Schedule

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScheduleSpec:
    """One scheduled job. `name` is its identity (unique across all apps)."""

    name: str
    func: str  # dotted path, e.g. "positions.tasks.seen_tokens_purge"
    schedule_type: str = Schedule.MINUTES
    minutes: int | None = None  # for Schedule.MINUTES
    cron: str | None = None  # for Schedule.CRON (needs the `croniter` package)
    args: str | None = None  # django-q2 syntax, e.g. "1, 'a'"
    kwargs: str | None = None  # django-q2 syntax, e.g. "x=1, y='b'"
    hook: str | None = None
    cluster: str | None = None
    repeats: int = -1  # only applied on creation
    # Interval schedules run first right after creation; cron ones at their next slot.
    first_run_now: bool = True

    def __post_init__(self) -> None:
        if self.schedule_type == Schedule.MINUTES and not self.minutes:
            raise ValueError(f"schedule {self.name!r}: MINUTES needs minutes")
        if self.schedule_type == Schedule.CRON and not self.cron:
            raise ValueError(f"schedule {self.name!r}: CRON needs a cron expression")

    def fields(self) -> dict:
        """Fields kept in sync with the code on every start."""
        return {
            "func": self.func,
            "schedule_type": self.schedule_type,
            "minutes": self.minutes,
            "cron": self.cron,
            "args": self.args,
            "kwargs": self.kwargs,
            "hook": self.hook,
            "cluster": self.cluster,
        }

    def first_run(self):
        now = timezone.now()
        if self.schedule_type == Schedule.CRON or not self.first_run_now:
            return Schedule(**self.fields(), next_run=now).calculate_next_run(now)
        return now


_TIMING_FIELDS = {"schedule_type", "minutes", "cron"}

# The project's own schedules (apps without their own `schedules.py` module
# are listed here too).
SCHEDULES: list[ScheduleSpec] = [
    ScheduleSpec(
        name="positions: purge seen tokens",
        func="positions.tasks.seen_tokens_purge",
        schedule_type=Schedule.MINUTES,
        minutes=10,
    ),
    ScheduleSpec(
        name="positions: purge rate-limit windows",
        func="positions.tasks.rate_windows_purge",
        schedule_type=Schedule.MINUTES,
        minutes=10,
    ),
]


def schedules_collect() -> list[ScheduleSpec]:
    """All specs: this module's `SCHEDULES`, then each installed app's `<app>.schedules.SCHEDULES`.

    A name listed twice with different content is a programming error.
    """
    specs: dict[str, ScheduleSpec] = {}
    sources: list[list[ScheduleSpec]] = [SCHEDULES]
    for app_config in apps.get_app_configs():
        if app_config.name == __package__ or not module_has_submodule(app_config.module, "schedules"):
            continue
        module = import_module(f"{app_config.name}.schedules")
        sources.append(list(getattr(module, "SCHEDULES", [])))
    for source in sources:
        for spec in source:
            if not isinstance(spec, ScheduleSpec):
                raise TypeError(f"SCHEDULES entries must be ScheduleSpec, got {spec!r}")
            if spec.name in specs and specs[spec.name] != spec:
                raise ValueError(f"schedule name {spec.name!r} is defined twice with different content")
            specs[spec.name] = spec
    return list(specs.values())


def schedule_ensure(spec: ScheduleSpec) -> Literal["created", "updated", "unchanged"]:
    """Create or update the one `Schedule` row named `spec.name`."""
    wanted = spec.fields()
    with transaction.atomic():
        rows = list(Schedule.objects.select_for_update().filter(name=spec.name).order_by("pk"))
        if not rows:
            Schedule.objects.create(name=spec.name, repeats=spec.repeats, next_run=spec.first_run(), **wanted)
            return "created"
        row, extras = rows[0], rows[1:]
        if extras:
            # Only a hand-made copy can collide with our name; two rows would run the job twice.
            logger.warning("Deleting %d duplicate schedule(s) named %r", len(extras), spec.name)
            Schedule.objects.filter(pk__in=[r.pk for r in extras]).delete()
        changed = {name for name, value in wanted.items() if getattr(row, name) != value}
        if not changed:
            return "unchanged"
        for name in changed:
            setattr(row, name, wanted[name])
        if changed & _TIMING_FIELDS:
            row.next_run = spec.first_run()
            changed.add("next_run")
        row.save(update_fields=sorted(changed))
        return "updated"


def schedules_ensure(specs: list[ScheduleSpec] | None = None) -> dict[str, str]:
    """Make the database hold exactly one Schedule per registered spec; idempotent.

    Returns `{name: "created" | "updated" | "unchanged"}`. Schedules no longer
    in the registry are left alone (they may be the operator's own).
    """
    specs = schedules_collect() if specs is None else specs
    return {spec.name: schedule_ensure(spec) for spec in specs}
