"""Issue 7 through the worker: rule exits go out, sudden uploads to cash wait, big orders split, one "managed"."""

from decimal import Decimal as D

from execution import selectors
from execution.models import Order, Round, Subscription
from execution.tests.conftest import set_price, upload_target
from execution.tests.test_worker import EXIT_BLOCKED, EXIT_CONVERGED, paper_volumes, run_once
from positions.models import TargetSnapshot
from positions.services import strategy_get_or_create, target_write
from positions.validation import TargetPosition


def position(code, volume, cost="100"):
    return TargetPosition(code=code, jq_code=code, name="", volume=volume, cost=D(cost))


def write(strategy, lines, source=TargetSnapshot.Source.ROTATION):
    snapshot, _ = target_write(
        strategy=strategy, positions=tuple(position(*line) for line in lines), source=source
    )
    return snapshot


def test_rotation_targets_record_what_its_rules_closed(db):
    """Dropped codes are exits, carried forward until the rotation targets them again."""
    strategy, _ = strategy_get_or_create(name="rotation:r")
    assert write(strategy, [("113050.SH", 100), ("123001.SZ", 100)]).rule_exits == []
    assert write(strategy, [("123001.SZ", 100)]).rule_exits == ["113050.SH"]
    assert write(strategy, [("128001.SZ", 100)]).rule_exits == ["113050.SH", "123001.SZ"]
    assert write(strategy, [("113050.SH", 100), ("128001.SZ", 100)]).rule_exits == ["123001.SZ"]


def test_uploads_and_admin_edits_never_count_as_rule_exits(db):
    strategy, _ = strategy_get_or_create(name="jq")
    write(strategy, [("600000.SH", 1000)], source=TargetSnapshot.Source.API)
    assert write(strategy, [], source=TargetSnapshot.Source.API).rule_exits == []
    write(strategy, [("600000.SH", 1000)], source=TargetSnapshot.Source.ADMIN)
    assert write(strategy, [], source=TargetSnapshot.Source.ADMIN).rule_exits == []


def _follow_rotation(account):
    account.approval_threshold = None  # the first buy is not what these tests look at
    account.save()
    strategy, _ = strategy_get_or_create(name="rotation:cb")
    Subscription.objects.create(account=account, strategy=strategy, scaling="ratio", ratio=D(1))
    return strategy


def test_stop_loss_sell_over_the_threshold_goes_out(paper_account):
    """A stop-loss that sells most of the account is sent at once, not parked for a human."""
    upload_target("S", [])
    strategy = _follow_rotation(paper_account)
    write(strategy, [("113050.SH", 5000)])  # 5000 × 120 = 600,000 of 1,000,000
    assert run_once(paper_account) == EXIT_CONVERGED
    assert paper_volumes(paper_account) == {"113050.SH": 5000}

    paper_account.approval_threshold = D("0.2")
    paper_account.save()
    set_price("113050.SH", "100.000")
    write(strategy, [])  # the stop-loss: the bond left the rotation's target
    exits = {sub.strategy_name: sub.rule_exits for sub in selectors.subscribed_targets(account=paper_account)}
    assert exits == {"S": frozenset(), "rotation:cb": frozenset({"113050.SH"})}
    assert run_once(paper_account) == EXIT_CONVERGED
    assert paper_volumes(paper_account) == {}
    assert not Round.objects.filter(status=Round.Status.HELD).exists()


def test_stop_loss_waits_when_the_account_opts_in(paper_account):
    upload_target("S", [])
    strategy = _follow_rotation(paper_account)
    write(strategy, [("113050.SH", 5000)])
    assert run_once(paper_account) == EXIT_CONVERGED
    paper_account.approval_threshold = D("0.2")
    paper_account.hold_rule_exits = True
    paper_account.save()
    write(strategy, [])
    assert run_once(paper_account) == EXIT_BLOCKED
    assert Round.objects.filter(status=Round.Status.HELD).exists()
    assert paper_volumes(paper_account) == {"113050.SH": 5000}


def test_upload_that_suddenly_empties_a_strategy_is_held(paper_account):
    paper_account.approval_threshold = None
    paper_account.save()
    upload_target("S", [("113050.SH", 5000, "120")])  # ratio 0.5 → 2,500 × 120 = 300,000; T+0
    assert run_once(paper_account) == EXIT_CONVERGED
    paper_account.approval_threshold = D("0.2")
    paper_account.save()
    upload_target("S", [])
    assert run_once(paper_account) == EXIT_BLOCKED
    assert Round.objects.filter(status=Round.Status.HELD).exists()
    assert paper_volumes(paper_account) == {"113050.SH": 2500}


def test_drift_and_round_agree_on_a_dropped_code(paper_account):
    """The account page's drift shows a dropped code as managed with target 0, as the round plans it."""
    upload_target("S", [("600000.SH", 1000, "10")])
    assert run_once(paper_account) == EXIT_CONVERGED
    upload_target("S", [("000001.SZ", 1000, "12")])
    rows = {row["code"]: row for row in selectors.drift(account=paper_account)}
    assert rows["600000.SH"]["managed"] is True
    assert rows["600000.SH"]["target"] == 0 and rows["600000.SH"]["delta"] == -500


def test_order_above_the_exchange_maximum_goes_out_in_pieces(paper_account):
    """A STAR buy above 100,000 shares is sent as several orders and the account converges."""
    paper_account.approval_threshold = None
    paper_account.save()
    set_price("688981.SH", "1.00")
    upload_target("S", [("688981.SH", 500_200, "1")])  # ratio 0.5 → 250,100
    assert run_once(paper_account) == EXIT_CONVERGED
    assert paper_volumes(paper_account) == {"688981.SH": 250_100}
    volumes = sorted(Order.objects.filter(code="688981.SH").values_list("volume", flat=True))
    assert volumes == [50_100, 100_000, 100_000]
