"""Schedule registry and the in-process django-q2 job runner."""

import queue
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.utils import timezone
from django_q.models import Failure, OrmQ, Schedule, Success
from django_q.signals import post_execute
from django_q.tasks import async_task

from qmtjq import schedules as schedules_module
from qmtjq.jobs import InProcessJobRunner
from qmtjq.schedules import SCHEDULES, ScheduleSpec, schedules_collect, schedules_ensure

PURGE = "positions: purge seen tokens"

# --- jobs the runner tests execute (looked up by dotted path) ----------------


def job_write_marker(path: str, text: str = "ran") -> str:
    Path(path).write_text(text, encoding="utf-8")
    return text


def job_fail() -> None:
    raise RuntimeError("boom from a test job")


def job_exit() -> None:
    raise SystemExit(3)


# --- registry -------------------------------------------------------------------


def test_registry_has_the_positions_purge():
    (spec,) = [s for s in schedules_collect() if s.name == PURGE]
    assert spec.func == "positions.tasks.seen_tokens_purge"
    assert spec.schedule_type == Schedule.MINUTES and spec.minutes == 10


def test_spec_validation():
    with pytest.raises(ValueError):
        ScheduleSpec(name="x", func="a.b", schedule_type=Schedule.MINUTES)
    with pytest.raises(ValueError):
        ScheduleSpec(name="x", func="a.b", schedule_type=Schedule.CRON)


def test_collects_app_schedules_modules(monkeypatch):
    extra = ScheduleSpec(name="rotation: test", func="rotation.tasks.x", minutes=5)
    fake = SimpleNamespace(SCHEDULES=[extra])
    monkeypatch.setattr(
        schedules_module, "module_has_submodule", lambda module, name: module.__name__ == "rotation"
    )
    monkeypatch.setattr(schedules_module, "import_module", lambda name: fake)
    names = [s.name for s in schedules_collect()]
    assert names == [s.name for s in SCHEDULES] + ["rotation: test"]


def test_conflicting_names_are_refused(monkeypatch):
    clash = ScheduleSpec(name=PURGE, func="somewhere.else", minutes=1)
    monkeypatch.setattr(
        schedules_module, "module_has_submodule", lambda module, name: module.__name__ == "rotation"
    )
    monkeypatch.setattr(schedules_module, "import_module", lambda name: SimpleNamespace(SCHEDULES=[clash]))
    with pytest.raises(ValueError, match="defined twice"):
        schedules_collect()


@pytest.mark.django_db
def test_schedules_ensure_is_idempotent():
    assert schedules_ensure()[PURGE] == "created"
    assert schedules_ensure()[PURGE] == "unchanged"
    assert schedules_ensure()[PURGE] == "unchanged"
    row = Schedule.objects.get(name=PURGE)
    assert (row.func, row.schedule_type, row.minutes, row.repeats) == (
        "positions.tasks.seen_tokens_purge",
        Schedule.MINUTES,
        10,
        -1,
    )
    assert row.next_run <= timezone.now()  # interval jobs run first right away
    for spec in schedules_collect():
        assert Schedule.objects.filter(name=spec.name).count() == 1


@pytest.mark.django_db
def test_schedules_ensure_applies_changes_but_keeps_operator_pause():
    spec = ScheduleSpec(name="t: job", func="a.b", minutes=10)
    schedules_ensure([spec])
    row = Schedule.objects.get(name="t: job")
    row.repeats = 0  # operator paused it in admin
    row.next_run = timezone.now() + timedelta(minutes=3)
    row.save()
    kept_next_run = row.next_run

    # Same timing, other function: func changes, next_run and pause stay.
    assert schedules_ensure([ScheduleSpec(name="t: job", func="a.c", minutes=10)]) == {"t: job": "updated"}
    row.refresh_from_db()
    assert (row.func, row.repeats, row.next_run) == ("a.c", 0, kept_next_run)

    # New timing: next_run follows it.
    changed = ScheduleSpec(name="t: job", func="a.c", minutes=5, first_run_now=False)
    before = timezone.now()
    assert schedules_ensure([changed]) == {"t: job": "updated"}
    row.refresh_from_db()
    assert row.minutes == 5
    assert before + timedelta(minutes=5) <= row.next_run <= timezone.now() + timedelta(minutes=5)
    assert Schedule.objects.filter(name="t: job").count() == 1


@pytest.mark.django_db
def test_schedules_ensure_removes_hand_made_duplicates():
    Schedule.objects.create(name="t: dup", func="x.y", schedule_type=Schedule.MINUTES, minutes=1)
    Schedule.objects.create(name="t: dup", func="x.y", schedule_type=Schedule.MINUTES, minutes=1)
    schedules_ensure([ScheduleSpec(name="t: dup", func="x.y", minutes=1)])
    assert Schedule.objects.filter(name="t: dup").count() == 1


# --- in-process runner ---------------------------------------------------------
# transaction=True: the runner thread has its own connection and must see
# committed rows. With the in-memory SQLite test database Django uses a
# shared-cache memory DB, so the thread sees the same data; on MySQL it is
# simply another connection. The main thread only reads the DB once the
# runner has stopped (shared-cache SQLite does not wait on table locks).


@pytest.fixture
def finished():
    """A queue receiving every task dict the runner finishes (after it is saved)."""
    done: queue.Queue = queue.Queue()

    def receiver(sender, task, **kwargs):
        done.put(task)

    post_execute.connect(receiver, dispatch_uid="qmtjq-test-runner")
    yield done
    post_execute.disconnect(dispatch_uid="qmtjq-test-runner")


@pytest.fixture
def runner():
    made = []

    def make():
        r = InProcessJobRunner(poll_interval=0.05, schedule_interval=0.05)
        made.append(r)
        r.start()
        return r

    yield make
    for r in made:
        r.stop(timeout=5)


def _due(name: str, func: str, args: str | None = None) -> Schedule:
    return Schedule.objects.create(
        name=name,
        func=func,
        args=args,
        schedule_type=Schedule.MINUTES,
        minutes=10,
        next_run=timezone.now() - timedelta(seconds=1),
    )


@pytest.mark.django_db(transaction=True)
def test_runner_runs_a_due_schedule(tmp_path, finished, runner):
    marker = tmp_path / "marker.txt"
    _due("t: marker", f"{__name__}.job_write_marker", args=repr(str(marker)))
    r = runner()
    task = finished.get(timeout=10)
    assert task["success"] and task["result"] == "ran"
    assert r.stop(timeout=5)
    assert marker.read_text(encoding="utf-8") == "ran"
    success = Success.objects.get(group="t: marker")
    assert success.func == f"{__name__}.job_write_marker" and success.result == "ran"
    schedule = Schedule.objects.get(name="t: marker")
    assert schedule.task == success.id
    assert schedule.next_run > timezone.now() + timedelta(minutes=9)  # not run again
    assert not OrmQ.objects.exists()  # acknowledged


@pytest.mark.django_db(transaction=True)
def test_runner_records_failures_and_keeps_going(tmp_path, finished, runner):
    r = runner()
    async_task(f"{__name__}.job_fail")
    first = finished.get(timeout=10)
    assert first["success"] is False and "boom from a test job" in first["result"]
    async_task(f"{__name__}.job_exit")  # even SystemExit must not end the thread
    assert finished.get(timeout=10)["success"] is False
    marker = tmp_path / "after.txt"
    async_task(f"{__name__}.job_write_marker", str(marker), text="still alive")
    assert finished.get(timeout=10)["success"] is True
    assert r.is_alive()
    assert r.stop(timeout=5)
    assert marker.read_text(encoding="utf-8") == "still alive"
    assert Failure.objects.filter(func=f"{__name__}.job_fail").count() == 1
    assert Failure.objects.filter(func=f"{__name__}.job_exit").count() == 1
    assert Success.objects.filter(func=f"{__name__}.job_write_marker").count() == 1
    assert (r.tasks_failed, r.tasks_succeeded) == (2, 1)
    assert not OrmQ.objects.exists()  # max_attempts=1: failures are not retried


@pytest.mark.django_db(transaction=True)
def test_runner_unknown_function_is_a_failure(finished, runner):
    runner()
    async_task("qmtjq.tests.test_schedules.no_such_job")
    task = finished.get(timeout=10)
    assert task["success"] is False and "not defined" in task["result"]


@pytest.mark.django_db(transaction=True)
def test_runner_stops_promptly():
    r = InProcessJobRunner(poll_interval=5, schedule_interval=5)
    r.start()
    time.sleep(0.3)
    started = time.monotonic()
    assert r.stop(timeout=5)
    assert time.monotonic() - started < 2
    assert not r.is_alive()
