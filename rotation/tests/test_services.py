"""Rotation runs end to end with a paper account: selection → rotation → worker → holdings; TP/SL; API."""

import json
from decimal import Decimal as D
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from execution.models import PaperPosition
from execution.services.accounts import SubscriptionSpec, account_create
from execution.tests.conftest import set_price, upload_target
from execution.tests.test_worker import run_once
from rotation.models import RotationRun, RotationStrategy, Selection, TpSlEvent
from rotation.services import (
    RotationError,
    rotation_create,
    rotation_run_now,
    selection_parse_csv,
    selection_validate,
    tp_sl_check,
)

BONDS = {"113050.SH": "120.000", "123001.SZ": "100.000", "128001.SZ": "110.000", "110059.SH": "130.000"}


@pytest.fixture
def setup(db):
    account = account_create(
        name="cb",
        mode="paper",
        account_id="CB1",
        starting_cash=D("100000"),
        subscriptions=[SubscriptionSpec("manual", "ratio", D(1))],
        enforce_trading_hours=False,
    )
    account.approval_threshold = None  # a rotation swaps most of the account at once
    account.save()
    for code, price in BONDS.items():
        set_price(code, price)
    upload_target("manual", [("110059.SH", 10, "130")])  # another strategy's bond in the same account
    rotation = rotation_create(
        name="cb-rot", account=account, top_n=2, sizing=RotationStrategy.Sizing.EQUAL, budget_amount=D("50000")
    )  # the account follows "manual" too: the rotation keeps to its own budget
    return account, rotation


def held(account):
    return dict(PaperPosition.objects.filter(account=account, volume__gt=0).values_list("code", "volume"))


def post_selection(client, key, bonds, trade_date=None):
    body = {"trade_date": (trade_date or timezone.localdate()).isoformat(), "bonds": bonds}
    return client.post(
        "/api/v1/rotation/cb-rot/selection",
        json.dumps(body),
        content_type="application/json",
        HTTP_X_API_KEY=key,
    )


def test_selection_rotation_worker_then_take_profit(client, setup, make_api_client):
    account, rotation = setup
    _, key = make_api_client("selector")
    assert run_once(account) == 0  # buys the other strategy's bond; reports cash
    response = post_selection(
        client,
        key,
        [{"code": "113050", "rank": 1}, {"code": "sz123001", "rank": 2}, {"code": "128001.SZ", "rank": 3}],
    )
    assert response.status_code == 200, response.json()

    out = StringIO()
    call_command("run_rotation", "cb-rot", stdout=out)
    assert "113050.SH" in out.getvalue() and "buy" in out.getvalue()
    run = RotationRun.objects.get()
    assert run.status == RotationRun.Status.DONE
    target = {row["code"]: row["volume"] for row in run.decision if row["action"] == "buy"}
    assert set(target) == {"113050.SH", "123001.SZ"}  # top 2
    assert run_once(account) == 0
    assert held(account) == {**target, "110059.SH": 10}

    # The bond rises 20% above its cost: take-profit at 15% sells it (bonds are T+0).
    rotation.take_profit_ratio = D("0.15")
    rotation.save()
    set_price("113050.SH", "144.000")
    triggers = tp_sl_check(now=timezone.now())
    assert [(t["code"], t["kind"]) for t in triggers] == [("113050.SH", "take_profit")]
    event = TpSlEvent.objects.get()
    assert event.price == D("144") and event.cost > D("120") and event.ratio == D("0.15")
    assert tp_sl_check(now=timezone.now()) == []  # idempotent: the bond already left the target
    assert run_once(account) == 0
    assert held(account) == {"123001.SZ": target["123001.SZ"], "110059.SH": 10}


def test_rotation_never_sells_other_strategies_bonds(client, setup, make_api_client):
    account, rotation = setup
    _, key = make_api_client("selector")
    run_once(account)
    post_selection(client, key, [{"code": "113050.SH"}])
    run, _decision, _ = rotation_run_now(rotation=rotation, now=timezone.now())
    assert all(row["code"] != "110059.SH" for row in run.decision)
    run_once(account)
    assert held(account)["110059.SH"] == 10


def test_missing_selection_fails_and_changes_nothing(setup):
    account, rotation = setup
    run_once(account)
    rotation.strategy.refresh_from_db()
    before = rotation.strategy.current_snapshot_id
    run, _decision, message = rotation_run_now(rotation=rotation, now=timezone.now())
    assert run.status == RotationRun.Status.FAILED and "no selection" in message
    rotation.strategy.refresh_from_db()
    assert rotation.strategy.current_snapshot_id == before


def test_old_selection_is_never_used(setup):
    """Yesterday's list is not today's: the run fails instead of trading on stale data."""
    from datetime import timedelta

    from rotation.services import SelectedBond, selection_store

    account, rotation = setup
    run_once(account)
    selection_store(
        rotation=rotation,
        trade_date=timezone.localdate() - timedelta(days=1),
        bonds=[SelectedBond("113050.SH")],
        source=Selection.Source.CSV,
    )
    run, _d, message = rotation_run_now(rotation=rotation, now=timezone.now())
    assert run.status == RotationRun.Status.FAILED


def test_dry_run_writes_nothing(client, setup, make_api_client):
    account, rotation = setup
    _, key = make_api_client("selector")
    run_once(account)
    post_selection(client, key, [{"code": "113050.SH"}])
    out = StringIO()
    call_command("run_rotation", "cb-rot", "--dry-run", stdout=out)
    assert "113050.SH" in out.getvalue()
    assert not RotationRun.objects.exists()
    rotation.strategy.refresh_from_db()
    assert rotation.strategy.current_snapshot.positions_count == 0  # still the initial empty target


@pytest.mark.django_db
def test_run_rotation_errors():
    with pytest.raises(Exception, match="no rotation strategy"):
        call_command("run_rotation", "nope", stdout=StringIO())


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"bonds": []}, 400, "trade_date"),
        ({"trade_date": "2026-13-01", "bonds": []}, 400, "trade_date"),
        ({"trade_date": "2026-11-20", "bonds": "113050"}, 400, "must be a list"),
        ({"trade_date": "2026-11-20", "bonds": [{"code": "112001"}]}, 400, "bonds[0].code"),
        ({"trade_date": "2026-11-20", "bonds": [{"code": "113050"}, {"code": "113050.SH"}]}, 400, "twice"),
        ({"trade_date": "2026-11-20", "bonds": [{"code": "113050", "rank": 0}]}, 400, "rank"),
        (
            {
                "trade_date": "2026-11-20",
                "bonds": [{"code": "113050", "rank": 1}, {"code": "123001", "rank": 1}],
            },
            400,
            "same rank",
        ),
    ],
)
def test_selection_api_validation(client, setup, make_api_client, body, status, fragment):
    _, key = make_api_client("selector")
    response = client.post(
        "/api/v1/rotation/cb-rot/selection",
        json.dumps(body),
        content_type="application/json",
        HTTP_X_API_KEY=key,
    )
    assert response.status_code == status and fragment in response.json()["error"]
    assert not Selection.objects.exists()


def test_selection_api_auth_and_scope(client, setup, make_api_client):
    assert (
        client.post("/api/v1/rotation/cb-rot/selection", "{}", content_type="application/json").status_code
        == 401
    )
    _, scoped = make_api_client("scoped", strategy_names=["other"])
    assert post_selection(client, scoped, [{"code": "113050"}]).status_code == 403
    _, key = make_api_client("ok")
    response = client.post(
        "/api/v1/rotation/nope/selection", "{}", content_type="application/json", HTTP_X_API_KEY=key
    )
    assert response.status_code == 404


def test_selection_ranks_explicit_first_then_list_order(client, setup, make_api_client):
    _, key = make_api_client("selector")
    response = post_selection(
        client, key, [{"code": "128001"}, {"code": "123001", "rank": 2}, {"code": "113050", "rank": 1}]
    )
    assert [b["code"] for b in response.json()["bonds"]] == ["113050.SH", "123001.SZ", "128001.SZ"]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("code,name,rank\n113050,南银转债,1\n123001.SZ,蓝晓转债,2\n".encode(), ["113050", "123001.SZ"]),
        ("code,name\n113050,南银转债\n".encode("gbk"), ["113050"]),
        ("\ufeffcode\n113050\n\n".encode(), ["113050"]),
    ],
)
def test_csv_parse(data, expected):
    assert [b["code"] for b in selection_parse_csv(data)] == expected


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"name\nx\n", "code"),
        (b"code,rank\n113050,x\n", "rank"),
        (b"\xff\xfe\x00\x01garbage\xff", "neither UTF-8 nor GBK"),
    ],
)
def test_csv_parse_errors(data, fragment):
    with pytest.raises(ValueError, match=fragment):
        selection_parse_csv(data)


def test_validate_rejects_non_list():
    with pytest.raises(ValueError):
        selection_validate({"code": "113050"})


def test_create_rotation_subscribes_the_account(setup):
    account, rotation = setup
    assert account.subscriptions.filter(strategy=rotation.strategy).exists()
    assert rotation.strategy.name == "rotation:cb-rot"


def test_rotation_error_is_an_exception():
    assert issubclass(RotationError, Exception)


def test_due_check_confirms_rotation_targets(setup):
    """Weekly rotations do not go stale between runs while their job is alive."""
    from datetime import timedelta

    from positions.models import Strategy
    from rotation.jobs import rotation_due_check

    _account, rotation = setup
    old = timezone.now() - timedelta(days=10)
    Strategy.objects.filter(pk=rotation.strategy_id).update(confirmed_at=old)
    rotation_due_check(timezone.now())
    rotation.strategy.refresh_from_db()
    assert rotation.strategy.confirmed_at > old + timedelta(days=9)
    rotation.enabled = False
    rotation.save()
    Strategy.objects.filter(pk=rotation.strategy_id).update(confirmed_at=old)
    rotation_due_check(timezone.now())
    rotation.strategy.refresh_from_db()
    assert rotation.strategy.confirmed_at == old
