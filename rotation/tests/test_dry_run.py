"""A dry run writes nothing at all: no selection, no run, no target, no row of any rotation, positions,
execution (or notification) model."""

from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command

from rotation.services import SelectedBond, rotation_run_now, selection_store
from rotation.tests import test_selection_dates
from rotation.tests.test_selection_dates import NOW, serve_selection

account = test_selection_dates.account
factorcat = test_selection_dates.factorcat
fc_rotation = test_selection_dates.fc_rotation
upload_rotation = test_selection_dates.upload_rotation

WATCHED_APPS = ("rotation", "positions", "execution", "qmtjq")


def row_counts() -> dict[str, int]:
    return {
        model._meta.label: model.objects.count()
        for app in WATCHED_APPS
        for model in apps.get_app_config(app).get_models()
    }


@pytest.mark.parametrize(
    ("top", "bond_dates"),
    [
        ({"trade_date": "2024-05-10"}, ["2024-05-10", "2024-05-10"]),  # decided
        ({"trade_date": "2024-05-09"}, [None, None]),  # refused
    ],
)
def test_factorcat_dry_run_writes_no_row(fc_rotation, factorcat, top, bond_dates):
    """Deciding from Factor Cat's fresh list (or refusing it) leaves every table as it was."""
    serve_selection(factorcat, top, bond_dates)
    before = row_counts()
    run, decision, message = rotation_run_now(rotation=fc_rotation, now=NOW, dry_run=True)
    assert run is None
    assert (decision is not None) == (top["trade_date"] == "2024-05-10"), message
    assert row_counts() == before


def test_upload_dry_run_writes_no_row(upload_rotation):
    """The dry run of an uploaded list decides and leaves every table as it was."""
    selection_store(
        rotation=upload_rotation,
        trade_date=NOW.date(),
        bonds=[SelectedBond("113050.SH"), SelectedBond("123001.SZ")],
        source="api",
    )
    before = row_counts()
    _run, decision, _message = rotation_run_now(rotation=upload_rotation, now=NOW, dry_run=True)
    assert {row.code for row in decision.rows if row.action == "buy"} == {"113050.SH", "123001.SZ"}
    assert row_counts() == before


def test_dry_run_command_writes_no_row(fc_rotation, factorcat):
    """`run_rotation --dry-run` of a Factor Cat rotation prints the decision and writes nothing."""
    serve_selection(factorcat, {"trade_date": "2024-05-10"}, [None, None])
    before = row_counts()
    out = StringIO()
    call_command("run_rotation", fc_rotation.name, "--dry-run", "--date", "2024-05-10", stdout=out)
    assert "113050.SH" in out.getvalue()
    assert row_counts() == before
