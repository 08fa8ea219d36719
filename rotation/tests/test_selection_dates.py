"""A rotation trades only a selection made for its run's trade date (Factor Cat and uploaded lists).

Factor Cat answers come from `FakeFactorCat` (rotation/tests/test_factorcat.py), a local HTTP server.
"""

import json
from datetime import date, datetime
from decimal import Decimal as D

import pytest

from execution.calendar import SHANGHAI
from execution.models import AccountState
from execution.services.accounts import account_create
from execution.tests.conftest import set_price
from qmtjq.models import Notification
from qmtjq.notifications import EVENT_ROTATION_FAILED
from rotation.credentials import factorcat_password_set
from rotation.models import FactorCatAccount, RotationRun, RotationStrategy, Selection
from rotation.services import SelectedBond, rotation_create, rotation_run_now, selection_store
from rotation.tests import test_admin
from rotation.tests.test_factorcat import PASSWORD

factorcat = test_admin.factorcat  # the fake Factor Cat server fixture

DAY = date(2024, 5, 10)  # the fake's public answer is dated this day
NOW = datetime(2024, 5, 10, 14, 50, tzinfo=SHANGHAI)
HISTORY = 777


@pytest.fixture
def account(db):
    account = account_create(
        name="cb", mode="paper", account_id="CB1", starting_cash=D("100000"), enforce_trading_hours=False
    )
    AccountState.objects.update_or_create(
        account=account, defaults={"cash": D("100000"), "total_asset": D("100000"), "updated_at": NOW}
    )
    set_price("113050.SH", "120.000")
    set_price("123001.SZ", "100.000")
    return account


@pytest.fixture
def fc_rotation(account, factorcat):
    fc_account = FactorCatAccount.objects.create(name="main", base_url=factorcat.base_url, username="alice")
    factorcat_password_set(account=fc_account, password=PASSWORD)
    return rotation_create(
        name="fc-rot",
        account=account,
        top_n=2,
        source=RotationStrategy.Source.FACTORCAT,
        factorcat_account=fc_account,
        factorcat_history_id=HISTORY,
    )


def serve_selection(fake, top: dict, bond_dates: list) -> None:
    bonds = []
    for code, trade_date in zip(["113050", "123001"], bond_dates, strict=True):
        bond = {"kzz_code": code, "name": f"bond {code}", "price": "100"}
        if trade_date is not None:
            bond["trade_date"] = trade_date
        bonds.append(bond)
    fake.selections[HISTORY] = bonds
    fake.selection_tops[HISTORY] = top


def assert_refused(rotation, run, message, fragment, snapshot_before):
    assert run.status == RotationRun.Status.FAILED
    assert fragment in message and "nothing changed" in message
    assert not Selection.objects.exists()
    rotation.strategy.refresh_from_db()
    assert rotation.strategy.current_snapshot_id == snapshot_before
    assert Notification.objects.filter(event=EVENT_ROTATION_FAILED, body__contains=fragment).exists()


@pytest.mark.parametrize(
    ("top", "bond_dates", "refused"),
    [
        ({"trade_date": "2024-05-10"}, ["2024-05-10", "2024-05-10"], None),
        ({"trade_date": "2024-05-10"}, [None, None], None),  # the top-level date covers the bonds
        ({}, ["2024-05-10", "2024-05-10"], None),
        ({"trade_date": "20240510"}, ["2024-05-10T00:00:00", None], None),
        ({"trade_date": "2024-05-10"}, ["2024-05-10", "2024-05-09"], "2024-05-09"),  # mixed
        ({"trade_date": "2024-05-09"}, ["2024-05-10", "2024-05-10"], "2024-05-09"),  # top-level stale
        ({"trade_date": "2024-05-09"}, [None, None], "2024-05-09"),  # stale
        ({"trade_date": "2024-05-09"}, ["2024-05-09", "2024-05-09"], "2024-05-09"),  # all stale
        ({"trade_date": "2024-05-13"}, ["2024-05-13", "2024-05-13"], "2024-05-13"),  # a later day's
        ({}, [None, None], "no trade date"),  # undated
        ({"trade_date": None}, [None, None], "no trade date"),
        ({}, ["2024-05-10", None], "no trade date"),  # partly undated
        ({"trade_date": "soon"}, ["2024-05-10", "2024-05-10"], "soon"),  # unreadable
        ({"trade_date": "2024-05-10"}, ["2024-05-10", "yesterday"], "yesterday"),
        ({"trade_date": 20240510}, ["2024-05-10", "2024-05-10"], "20240510"),  # not text
    ],
)
def test_factorcat_list_must_be_made_for_the_runs_trade_date(
    fc_rotation,
    factorcat,
    top,
    bond_dates,
    refused,
):
    """Mixed, stale, later, undated or unreadably dated Factor Cat lists are refused, notified, and change nothing."""
    serve_selection(factorcat, top, bond_dates)
    fc_rotation.strategy.refresh_from_db()
    snapshot_before = fc_rotation.strategy.current_snapshot_id
    run, _decision, message = rotation_run_now(rotation=fc_rotation, now=NOW)
    if refused is None:
        assert run.status == RotationRun.Status.DONE, message
        assert list(Selection.objects.values_list("trade_date", flat=True)) == [DAY]
        assert {row["code"] for row in run.decision if row["action"] == "buy"} == {"113050.SH", "123001.SZ"}
    else:
        assert_refused(fc_rotation, run, message, refused, snapshot_before)


@pytest.mark.parametrize(
    "bad_code",
    ["１１３０５０", "١١٣٠٥٠", "11305０.SH", "112345", "", None],
)
def test_factorcat_list_with_an_unreadable_code_is_refused(fc_rotation, factorcat, bad_code):
    """A bond code Factor Cat sent that is not a code (full-width or Arabic-Indic digits, ambiguous, empty)
    refuses the whole list: dropping it would shift every rank below it."""
    factorcat.selections[HISTORY] = [
        {"kzz_code": bad_code, "name": "bad", "trade_date": "2024-05-10"},
        {"kzz_code": "123001", "name": "ok", "trade_date": "2024-05-10"},
    ]
    fc_rotation.strategy.refresh_from_db()
    snapshot_before = fc_rotation.strategy.current_snapshot_id
    run, _decision, message = rotation_run_now(rotation=fc_rotation, now=NOW)
    assert_refused(fc_rotation, run, message, "item 1", snapshot_before)


def test_factorcat_dry_run_refuses_a_stale_list_too(fc_rotation, factorcat):
    """The dry run applies the same date rule and stores nothing."""
    serve_selection(factorcat, {"trade_date": "2024-05-09"}, [None, None])
    run, decision, message = rotation_run_now(rotation=fc_rotation, now=NOW, dry_run=True)
    assert run is None and decision is None and "2024-05-09" in message
    assert not Selection.objects.exists()


# --- uploaded lists ----------------------------------------------------------------------------


@pytest.fixture
def upload_rotation(account):
    return rotation_create(name="cb-rot", account=account, top_n=2)


@pytest.mark.parametrize(
    ("stored_for", "status"),
    [
        (DAY, RotationRun.Status.DONE),
        (date(2024, 5, 9), RotationRun.Status.FAILED),
        (date(2024, 5, 13), RotationRun.Status.FAILED),
    ],
)
def test_run_uses_only_an_upload_for_its_trade_date(upload_rotation, stored_for, status):
    """An uploaded list is used only by the run of its own trade date, never an earlier or later one."""
    selection_store(
        rotation=upload_rotation, trade_date=stored_for, bonds=[SelectedBond("113050.SH")], source="api"
    )
    run, _decision, message = rotation_run_now(rotation=upload_rotation, now=NOW)
    assert run.status == status, message
    assert run.selection_id is None or run.selection.trade_date == DAY


@pytest.mark.parametrize(
    ("bond", "fragment"),
    [
        ({"code": "113050", "trade_date": "2024-05-09"}, "bonds[0].trade_date"),
        ({"code": "113050", "trade_date": "20240510x"}, "bonds[0].trade_date"),
        ({"code": "113050", "trade_date": 20240510}, "bonds[0].trade_date"),
    ],
)
def test_api_list_with_a_bond_of_another_date_is_refused(
    client, upload_rotation, make_api_client, bond, fragment
):
    """A posted bond carrying its own trade_date must carry the list's: 400 naming the field, nothing stored."""
    _, key = make_api_client("selector")
    body = {"trade_date": "2024-05-10", "bonds": [bond, {"code": "123001"}]}
    response = client.post(
        "/api/v1/rotation/cb-rot/selection",
        json.dumps(body),
        content_type="application/json",
        HTTP_X_API_KEY=key,
    )
    assert response.status_code == 400 and fragment in response.json()["error"]
    assert not Selection.objects.exists()


def test_api_list_whose_bonds_carry_the_lists_date_is_stored(client, upload_rotation, make_api_client):
    """Bonds dated like the list are fine."""
    _, key = make_api_client("selector")
    body = {"trade_date": "2024-05-10", "bonds": [{"code": "113050", "trade_date": "2024-05-10"}]}
    response = client.post(
        "/api/v1/rotation/cb-rot/selection",
        json.dumps(body),
        content_type="application/json",
        HTTP_X_API_KEY=key,
    )
    assert response.status_code == 200, response.json()
    assert Selection.objects.get().trade_date == DAY
