"""End to end: the JoinQuant client file uploads over real HTTP, the paper worker converges the account.

A stand-in for JoinQuant's `jqdata` module supplies the private key file, as on JoinQuant.
"""

import sys
import types
from io import StringIO

import pytest
from django.core.management import call_command

from execution.models import Order, PaperOrder, PaperPosition
from execution.tests.conftest import set_price
from positions import services
from positions.tests.test_jq_client import load_client_module


@pytest.mark.django_db(transaction=True)
def test_jq_upload_then_worker_once_matches_the_scaled_target(
    live_server, settings, paper_account, rsa_keys, monkeypatch
):
    settings.ALLOWED_HOSTS = ["*"]
    jq = load_client_module()
    monkeypatch.setitem(sys.modules, "jq_qmt_api", jq)
    jqdata = types.ModuleType("jqdata")
    jqdata.read_file = lambda path: rsa_keys[0]
    monkeypatch.setitem(sys.modules, "jqdata", jqdata)
    api_client, _ = services.api_client_create(name="jq", public_key_pem=rsa_keys[1], require_v2=True)
    set_price("300750.SZ", "180.00")

    api = jq.JQQMTAPI(api_url=live_server.url, client_id=api_client.client_id, raise_errors=True)
    result = api.update_positions(
        "S",
        [
            {"code": "600000.XSHG", "volume": 2300, "cost": 9.8},  # × 0.5 = 1150 → 1100
            {"code": "000001.XSHE", "volume": 1000, "cost": 11.5},  # → 500
            {"code": "300750.XSHE", "volume": 150, "cost": 170.0},  # → 75: below one lot, skipped
            {"code": "113050.XSHG", "volume": 35, "cost": 118.0},  # bond → 17.5 → 10
        ],
    )
    assert result["changed"] is True and result["auth_type"] == "rsa_v2"

    out = StringIO()
    call_command("qmt_worker", "--account", "p1", "--once", "--interval", "0.05", stdout=out)
    assert "converged" in out.getvalue()
    held = dict(
        PaperPosition.objects.filter(account=paper_account, volume__gt=0).values_list("code", "volume")
    )
    assert held == {"600000.SH": 1100, "000001.SZ": 500, "113050.SH": 10}
    assert "300750.SZ" in out.getvalue() and "lot_too_small" in out.getvalue()

    placed = PaperOrder.objects.count()
    call_command("qmt_worker", "--account", "p1", "--once", "--interval", "0.05", stdout=StringIO())
    assert PaperOrder.objects.count() == placed == Order.objects.count() == 3
