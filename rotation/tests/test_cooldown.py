"""Refill after take-profit/stop-loss picks another bond, and a TP/SL-sold bond is not bought back (by a
refill or a rotation run) within the rotation's `cooldown_days` trading days (DESIGN §5.2)."""

from datetime import date, datetime, timedelta
from decimal import Decimal as D

import pytest

from execution.calendar import SHANGHAI
from execution.models import Holding, TradingDay
from execution.tests.conftest import set_price
from rotation.models import RotationRun, TpSlEvent
from rotation.services import SelectedBond, rotation_create, rotation_run_now, selection_store, tp_sl_check
from rotation.tests import test_selection_dates

account = test_selection_dates.account

A, B, C, E = "113050.SH", "123001.SZ", "128001.SZ", "127045.SZ"
DAY = date(2024, 5, 10)  # a Friday
NEXT_DAY = date(2024, 5, 13)  # the next trading day (Monday)
DAY_AFTER = date(2024, 5, 14)


def at(day: date, hour=10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, 0, tzinfo=SHANGHAI)


@pytest.fixture(autouse=True)
def trading_days(db):
    for offset in range(-20, 20):
        day = DAY + timedelta(days=offset)
        TradingDay.objects.update_or_create(date=day, defaults={"is_open": day.weekday() < 5})


@pytest.fixture
def rotation(account):
    set_price(C, "110.000")
    set_price(E, "105.000")
    rotation = rotation_create(
        name="cb-rot", account=account, top_n=2, take_profit_ratio=D("0.15"), refill_after_tp_sl=True
    )
    return rotation


def select(rotation, day, codes):
    selection_store(rotation=rotation, trade_date=day, bonds=[SelectedBond(c) for c in codes], source="api")


def hold(rotation, code, volume, cost):
    Holding.objects.update_or_create(
        account=rotation.account,
        code=code,
        defaults={"volume": volume, "can_use_volume": volume, "avg_cost": D(cost), "updated_at": at(DAY)},
    )


def target(rotation) -> dict[str, int]:
    rotation.strategy.refresh_from_db()
    return dict(rotation.strategy.current_snapshot.lines.values_list("code", "volume"))


def bought_at_run(rotation, day) -> set[str]:
    run, _decision, message = rotation_run_now(rotation=rotation, now=at(day, 14))
    assert run.status == RotationRun.Status.DONE, message
    return {row["code"] for row in run.decision if row["action"] == "buy"}


def take_profit_on_a(rotation):
    """Hold the run's A and B, then A rises 20% over its cost: the take-profit sells it."""
    select(rotation, DAY, [A, B, C, E])
    assert bought_at_run(rotation, DAY) == {A, B}
    held = target(rotation)
    hold(rotation, A, held[A], "120")
    hold(rotation, B, held[B], "100")
    set_price(A, "144.000")
    return held


def test_refill_picks_another_bond_than_the_one_just_sold(rotation):
    """The refill takes the next-ranked bond not held, never the bond the take-profit sold."""
    take_profit_on_a(rotation)
    triggers = tp_sl_check(now=at(DAY, 14))
    assert [(t["code"], t["refill"]) for t in triggers] == [(A, C)]
    assert set(target(rotation)) == {B, C}


def test_a_second_pass_sells_nothing_more(rotation):
    """The worker has not sold yet: the next pass finds A out of the target and does nothing."""
    take_profit_on_a(rotation)
    tp_sl_check(now=at(DAY, 14))
    after_first = target(rotation)
    assert tp_sl_check(now=at(DAY, 14)) == []
    assert target(rotation) == after_first and TpSlEvent.objects.count() == 1


def test_refill_with_cooldown_off_still_picks_another_bond(rotation):
    """cooldown_days = 0 turns the day's block off, but the refill still never re-buys the bond it sells."""
    rotation.cooldown_days = 0
    rotation.save()
    take_profit_on_a(rotation)
    triggers = tp_sl_check(now=at(DAY, 14))
    assert [(t["code"], t["refill"]) for t in triggers] == [(A, C)]


def test_refill_skips_a_bond_that_hit_tp_sl_earlier_today(rotation):
    """C was stopped out this morning: the refill after A's take-profit passes over it and takes E."""
    take_profit_on_a(rotation)
    event = TpSlEvent.objects.create(
        rotation=rotation, kind="stop_loss", code=C, price=D("100"), cost=D("110"), ratio=D("0.08")
    )
    TpSlEvent.objects.filter(pk=event.pk).update(at=at(DAY, 9))
    triggers = tp_sl_check(now=at(DAY, 14))
    assert [(t["code"], t["refill"]) for t in triggers] == [(A, E)]


@pytest.mark.parametrize(
    ("cooldown_days", "run_day", "a_bought"),
    [
        (1, DAY, False),  # same trading day: not bought back
        (1, NEXT_DAY, True),
        (0, DAY, True),  # off
        (2, DAY, False),
        (2, NEXT_DAY, False),  # the weekend does not count
        (2, DAY_AFTER, True),
        (3, DAY_AFTER, False),
    ],
)
def test_rotation_run_does_not_buy_back_within_the_cooldown(rotation, cooldown_days, run_day, a_bought):
    """A run within `cooldown_days` trading days of A's take-profit skips A and says why in its decision."""
    rotation.cooldown_days = cooldown_days
    rotation.refill_after_tp_sl = False
    rotation.save()
    event = TpSlEvent.objects.create(
        rotation=rotation, kind="take_profit", code=A, price=D("144"), cost=D("120"), ratio=D("0.15")
    )
    TpSlEvent.objects.filter(pk=event.pk).update(at=at(DAY, 10))
    select(rotation, run_day, [A, B, C])
    run, _decision, message = rotation_run_now(rotation=rotation, now=at(run_day, 14))
    assert run.status == RotationRun.Status.DONE, message
    rows = {row["code"]: row for row in run.decision}
    if a_bought:
        assert rows[A]["action"] == "buy"
    else:
        assert rows[A]["action"] == "skip" and "take-profit" in rows[A]["reason"]
        assert "cooldown" in rows[A]["reason"]
        assert {code for code, row in rows.items() if row["action"] == "buy"} == {B, C}


def test_cooldown_beyond_the_known_calendar_refuses_the_run(rotation):
    """A cooldown that cannot be counted (calendar gap) fails the run with the reason; nothing changes."""
    rotation.cooldown_days = 3
    rotation.save()
    TradingDay.objects.filter(date=NEXT_DAY).delete()
    select(rotation, DAY_AFTER, [A, B])
    rotation.strategy.refresh_from_db()
    before = rotation.strategy.current_snapshot_id
    run, _decision, message = rotation_run_now(rotation=rotation, now=at(DAY_AFTER, 14))
    assert run.status == RotationRun.Status.FAILED and "cooldown" in message
    rotation.strategy.refresh_from_db()
    assert rotation.strategy.current_snapshot_id == before
