"""The rotation jobs: one run per slot under redelivery and races, lateness, failures, TP/SL hours, check_tp_sl."""

import json
import pydoc
import threading
import time as clock
from datetime import date, datetime, time, timedelta
from decimal import Decimal as D
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import translation

from execution import calendar
from execution.calendar import SHANGHAI
from execution.models import TradingDay
from execution.services.accounts import account_create
from positions.services import strategy_get_or_create
from qmtjq.notifications import EVENT_ROTATION_FAILED
from qmtjq.schedules import schedules_collect, schedules_ensure
from rotation import jobs, services
from rotation.management.commands import check_tp_sl as check_tp_sl_command
from rotation.models import RotationRun, RotationStrategy

pytestmark = pytest.mark.django_db

DAY = date(2025, 10, 9)  # Thursday, first trading day after National Day 2025


def at(day: date, clock_text: str = "14:50") -> datetime:
    return datetime.combine(day, time.fromisoformat(clock_text), tzinfo=SHANGHAI)


@pytest.fixture(autouse=True)
def xshg_calendar():
    """XSHG 2024..2026 as the migration seeds it (re-seeded if a transactional test emptied the table)."""
    start, end = date(2024, 1, 1), date(2026, 12, 31)
    TradingDay.objects.filter(date__gt=end).delete()
    if TradingDay.objects.filter(date__range=(start, end)).count() != (end - start).days + 1:
        calendar.calendar_seed_from_exchange_calendars(start=start, end=end)


@pytest.fixture
def english(settings):
    """English pages and notifications (notifications are written in LANGUAGE_CODE)."""
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture
def make_rotation():
    """Rotations on one paper account, created long before the slots the tests use."""
    account = account_create(name="cb", mode="paper", account_id="CB1", enforce_trading_hours=False)

    def make(name="cb-rot", **fields):
        strategy, _ = strategy_get_or_create(name=f"rotation:{name}")
        rotation = RotationStrategy.objects.create(name=name, account=account, strategy=strategy, **fields)
        RotationStrategy.objects.filter(pk=rotation.pk).update(created_at=at(date(2015, 1, 5), "09:00"))
        rotation.refresh_from_db()
        return rotation

    return make


class RunExecuteStandIn:
    """Stands in for rotation.services.run_execute: records calls, marks the run done (or raises)."""

    def __init__(self, *, fail_for=(), delay=0.0):
        self.calls = []
        self.fail_for = set(fail_for)
        self.delay = delay
        self._lock = threading.Lock()

    def __call__(self, *, run, now):
        with self._lock:
            self.calls.append((run.rotation.name, run.slot, now))
        clock.sleep(self.delay)
        if run.rotation.name in self.fail_for:
            raise RuntimeError("selection service down")
        run.status, run.finished_at = RotationRun.Status.DONE, now
        run.save(update_fields=["status", "finished_at"])
        return run


@pytest.fixture
def run_execute(monkeypatch):
    stand_in = RunExecuteStandIn()
    monkeypatch.setattr(services, "run_execute", stand_in)
    return stand_in


@pytest.fixture
def notices(monkeypatch):
    sent = []
    from qmtjq.notifications import notification_render

    def record(event, **kwargs):  # titles and bodies as notify renders them (callables in LANGUAGE_CODE)
        sent.append((event, {name: notification_render(value) for name, value in kwargs.items()}))

    monkeypatch.setattr(jobs, "notify", record)
    return sent


# --- due check ----------------------------------------------------------------


def test_redelivered_due_check_runs_the_slot_once(make_rotation, run_execute, notices):
    """Three deliveries (one repeated, two a minute later) make one run row and one execution."""
    rotation = make_rotation()
    assert jobs.rotation_due_check(now=at(DAY, "14:49")) == []
    (run,) = jobs.rotation_due_check(now=at(DAY, "14:50:05"))
    assert jobs.rotation_due_check(now=at(DAY, "14:50:05")) == []
    assert jobs.rotation_due_check(now=at(DAY, "14:51:30")) == []

    assert len(run_execute.calls) == 1
    assert run_execute.calls[0] == (rotation.name, at(DAY), at(DAY, "14:50:05"))
    run = RotationRun.objects.get()
    assert (run.rotation, run.slot, run.trigger, run.status) == (
        rotation,
        at(DAY),
        RotationRun.Trigger.SCHEDULE,
        RotationRun.Status.DONE,
    )
    assert notices == []


def test_each_slot_gets_its_own_run(make_rotation, run_execute):
    """Weekly Friday: last week's Friday (a holiday) runs on Thursday 10-09, this week's on Friday 10-10."""
    make_rotation(schedule=RotationStrategy.Schedule.WEEKLY, weekday=4)
    jobs.rotation_due_check(now=at(DAY, "14:50"))
    jobs.rotation_due_check(now=at(DAY + timedelta(days=1), "14:50"))
    jobs.rotation_due_check(now=at(DAY + timedelta(days=1), "14:51"))
    assert sorted(RotationRun.objects.values_list("slot", flat=True)) == [
        at(DAY),
        at(DAY + timedelta(days=1)),
    ]
    assert len(run_execute.calls) == 2


def test_late_call_is_skipped_with_a_record_and_never_executes(make_rotation, run_execute, notices, english):
    """Six minutes after the slot with five allowed: a skipped run that says why, one notice, no trading."""
    rotation = make_rotation()
    (run,) = jobs.rotation_due_check(now=at(DAY, "14:56"))
    assert jobs.rotation_due_check(now=at(DAY, "14:57")) == []

    assert run_execute.calls == []
    run.refresh_from_db()
    assert run.status == RotationRun.Status.SKIPPED
    assert run.finished_at == at(DAY, "14:56")
    assert "2025-10-09 14:50" in run.message and "14:56" in run.message
    assert "6.0 minutes late" in run.message and "allowed 5.0 minutes" in run.message
    assert len(notices) == 1
    event, notice = notices[0]
    assert event == EVENT_ROTATION_FAILED
    assert notice["key"] == f"{rotation.name}:2025-10-09T14:50:00+08:00"
    assert "skipped" in notice["title"] and rotation.name in notice["title"]


@pytest.mark.parametrize(
    ("max_lateness", "now", "status"),
    [
        (timedelta(minutes=5), "14:55:00", RotationRun.Status.DONE),  # exactly the allowance
        (timedelta(minutes=5), "14:55:01", RotationRun.Status.SKIPPED),
        (timedelta(minutes=30), "15:10:00", RotationRun.Status.DONE),
        (timedelta(0), "14:50:01", RotationRun.Status.SKIPPED),
    ],
)
def test_lateness_allowance(make_rotation, run_execute, notices, max_lateness, now, status):
    """Each rotation's own allowed lateness decides between running and skipping."""
    make_rotation(max_lateness=max_lateness)
    (run,) = jobs.rotation_due_check(now=at(DAY, now))
    assert run.status == status
    assert len(run_execute.calls) == (status == RotationRun.Status.DONE)


def test_disabled_rotation_is_ignored(make_rotation, run_execute):
    make_rotation(enabled=False)
    assert jobs.rotation_due_check(now=at(DAY, "14:50")) == []
    assert not RotationRun.objects.exists()
    assert run_execute.calls == []


def test_slots_before_the_rotation_existed_are_not_runs(make_rotation, run_execute, notices):
    """A rotation created at 15:00 neither runs nor reports missing that day's 14:50 slot."""
    rotation = make_rotation()
    RotationStrategy.objects.filter(pk=rotation.pk).update(created_at=at(DAY, "15:00"))
    assert jobs.rotation_due_check(now=at(DAY, "15:01")) == []
    assert not RotationRun.objects.exists() and notices == []


def test_one_failing_rotation_does_not_stop_the_others(make_rotation, monkeypatch, notices, english):
    """The failing rotation's run is recorded as failed and notified; the next one still runs."""
    stand_in = RunExecuteStandIn(fail_for={"a-rot"})
    monkeypatch.setattr(services, "run_execute", stand_in)
    make_rotation("a-rot")
    make_rotation("b-rot")

    runs = jobs.rotation_due_check(now=at(DAY, "14:50"))

    assert [run.rotation.name for run in runs] == ["a-rot", "b-rot"]
    assert [call[0] for call in stand_in.calls] == ["a-rot", "b-rot"]
    failed = RotationRun.objects.get(rotation__name="a-rot")
    assert failed.status == RotationRun.Status.FAILED
    assert failed.message == "Failed: RuntimeError: selection service down"
    assert failed.finished_at == at(DAY, "14:50")
    assert RotationRun.objects.get(rotation__name="b-rot").status == RotationRun.Status.DONE
    assert [(event, n["key"], n["level"]) for event, n in notices] == [
        (EVENT_ROTATION_FAILED, "a-rot:2025-10-09T14:50:00+08:00", "error")
    ]
    # The failed slot is not retried by the next delivery: a human looks first.
    assert jobs.rotation_due_check(now=at(DAY, "14:51")) == []
    assert len(stand_in.calls) == 2


def test_a_failure_the_service_recorded_itself_is_kept(make_rotation, monkeypatch, notices):
    """When run_execute marks its run failed with its own reason and then raises, that reason stays."""

    def execute(*, run, now):
        run.status, run.message = RotationRun.Status.FAILED, "no selection for 2025-10-09"
        run.save(update_fields=["status", "message"])
        raise RuntimeError("late bug")

    monkeypatch.setattr(services, "run_execute", execute)
    make_rotation()
    (run,) = jobs.rotation_due_check(now=at(DAY, "14:50"))
    assert (run.status, run.message) == (RotationRun.Status.FAILED, "no selection for 2025-10-09")
    assert len(notices) == 1


def test_day_beyond_the_calendar_notifies_and_runs_nothing(make_rotation, run_execute, notices):
    """On 2027-01-05 nobody knows whether the exchange is open: every rotation says so, none runs or skips."""
    make_rotation("a-rot")
    make_rotation("b-rot")
    assert jobs.rotation_due_check(now=at(date(2027, 1, 5), "14:50")) == []
    assert not RotationRun.objects.exists() and run_execute.calls == []
    assert [(event, n["key"]) for event, n in notices] == [
        (EVENT_ROTATION_FAILED, "a-rot:schedule:2027-01-05"),
        (EVENT_ROTATION_FAILED, "b-rot:schedule:2027-01-05"),
    ]
    assert "2026-12-31" in notices[0][1]["body"]


def test_closed_day_runs_nothing(make_rotation, run_execute, notices):
    make_rotation()
    assert jobs.rotation_due_check(now=at(date(2025, 10, 6), "14:50")) == []
    assert not RotationRun.objects.exists() and notices == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_execute_once(make_rotation, monkeypatch):
    """Two cluster workers checking at the same instant: the unique (rotation, slot) row lets one run."""
    stand_in = RunExecuteStandIn(delay=0.2)
    monkeypatch.setattr(services, "run_execute", stand_in)
    make_rotation()
    start = threading.Barrier(2)
    results, errors = [], []

    def deliver():
        try:
            start.wait(timeout=10)
            results.append(jobs.rotation_due_check(now=at(DAY, "14:50:10")))
        except Exception as exc:  # surfaced by the assertions below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sorted(len(result) for result in results) == [0, 1]
    assert len(stand_in.calls) == 1
    assert RotationRun.objects.get().status == RotationRun.Status.DONE


# --- take-profit / stop-loss ----------------------------------------------------


@pytest.mark.parametrize(
    ("now", "runs"),
    [
        (at(DAY, "09:00"), False),  # before the open
        (at(DAY, "09:30"), True),
        (at(DAY, "11:29"), True),
        (at(DAY, "12:00"), False),  # lunch break
        (at(DAY, "14:00"), True),
        (at(DAY, "14:58"), False),  # closing call auction: orders cannot be cancelled
        (at(DAY, "15:30"), False),
        (at(date(2025, 10, 11), "10:00"), False),  # Saturday
        (at(date(2025, 10, 6), "10:00"), False),  # National Day
        (at(date(2027, 1, 5), "10:00"), False),  # beyond the calendar
    ],
)
def test_tp_sl_job_only_in_trading_sessions(monkeypatch, now, runs):
    """The per-minute TP/SL pass runs only while orders can be placed, and then passes `now` through."""
    calls = []

    def check(*, now, dry_run=False):
        calls.append((now, dry_run))
        return [{"code": "113050.SH"}]

    monkeypatch.setattr(services, "tp_sl_check", check)
    result = jobs.tp_sl_check_job(now=now)
    assert calls == ([(now, False)] if runs else [])
    if runs:
        assert result == [{"code": "113050.SH"}]
    else:
        assert result.startswith("not in a trading session")


# --- check_tp_sl command ----------------------------------------------------------

TRIGGERS = [
    {
        "rotation": "cb-rot",
        "code": "113050.SH",
        "kind": "take_profit",
        "price": D("138.000"),
        "cost": D("120.0000"),
        "ratio": D("0.1500"),
        "refill": "123001.SZ",
    },
    {
        "rotation": "cb-rot",
        "code": "128001.SZ",
        "kind": "stop_loss",
        "price": D("100.500"),
        "cost": D("110.0000"),
        "ratio": D("0.0800"),
        "refill": "",
    },
]


@pytest.mark.parametrize(
    ("args", "dry_run", "verb"), [((), False, "triggered"), (("--dry-run",), True, "would trigger")]
)
def test_check_tp_sl_prints_each_trigger(monkeypatch, args, dry_run, verb):
    """One pass now; each trigger on its own line with code, kind, price, cost and ratio."""
    calls = []
    monkeypatch.setattr(
        services, "tp_sl_check", lambda *, now, dry_run=False: calls.append(dry_run) or TRIGGERS
    )
    monkeypatch.setattr(check_tp_sl_command, "can_place_orders", lambda now: (True, ""))
    out = StringIO()
    call_command("check_tp_sl", *args, stdout=out)
    assert calls == [dry_run]
    assert out.getvalue().splitlines() == [
        f"{verb}: cb-rot 113050.SH take_profit price 138.000 cost 120.0000 ratio 0.1500 refill 123001.SZ",
        f"{verb}: cb-rot 128001.SZ stop_loss price 100.500 cost 110.0000 ratio 0.0800",
    ]


def test_check_tp_sl_nothing_triggered_outside_a_session(monkeypatch):
    """Run by hand after the close it still checks, and says the prices may be stale."""
    monkeypatch.setattr(services, "tp_sl_check", lambda *, now, dry_run=False: [])
    monkeypatch.setattr(
        check_tp_sl_command, "can_place_orders", lambda now: (False, "After the 15:00 close.")
    )
    out = StringIO()
    call_command("check_tp_sl", stdout=out)
    assert out.getvalue().splitlines() == [
        "note: not in a trading session (After the 15:00 close.); prices may be stale",
        "nothing triggered",
    ]


def test_check_tp_sl_json(monkeypatch):
    monkeypatch.setattr(services, "tp_sl_check", lambda *, now, dry_run=False: TRIGGERS)
    out = StringIO()
    call_command("check_tp_sl", "--json", "--dry-run", stdout=out)
    rows = json.loads(out.getvalue())
    assert [(r["code"], r["kind"], r["price"], r["ratio"]) for r in rows] == [
        ("113050.SH", "take_profit", "138.000", "0.1500"),
        ("128001.SZ", "stop_loss", "100.500", "0.0800"),
    ]


def test_check_tp_sl_against_the_real_service(make_rotation):
    """Wired to the real service: with no holdings nothing triggers."""
    make_rotation(take_profit_ratio=D("0.15"))
    out = StringIO()
    call_command("check_tp_sl", "--dry-run", stdout=out)
    assert "nothing triggered" in out.getvalue()


# --- schedules --------------------------------------------------------------------


def test_rotation_schedules_are_registered_every_minute():
    """Both jobs are collected from rotation/schedules.py, run every minute and point at real functions."""
    specs = {spec.name: spec for spec in schedules_collect()}
    for name, func in [
        ("rotation: due check", jobs.rotation_due_check),
        ("rotation: take-profit/stop-loss", jobs.tp_sl_check_job),
    ]:
        assert specs[name].minutes == 1
        assert pydoc.locate(specs[name].func) is func
    assert schedules_ensure()["rotation: due check"] == "created"
    assert schedules_ensure()["rotation: due check"] == "unchanged"
