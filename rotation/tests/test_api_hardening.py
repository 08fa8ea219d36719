"""The selection API never answers 500 and checks bond names like position names (issue 11)."""

import json

import pytest
from django.utils import timezone

from rotation.models import Selection
from rotation.tests.test_services import setup  # noqa: F401 - fixture

URL = "/api/v1/rotation/cb-rot/selection"


def post_raw(client, key, text: str):
    return client.generic(
        "POST",
        URL,
        text.encode("utf-8", "surrogatepass"),
        content_type="application/json",
        HTTP_X_API_KEY=key,
    )


def _body(bonds) -> str:
    return json.dumps({"trade_date": timezone.localdate().isoformat(), "bonds": bonds})


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"trade_date": "2026-11-20", "bonds": [{"code": "113050", "rank": ' + "9" * 5000 + "}]}", "body"),
        ('{"trade_date": "2026-11-20", "bonds": [{"code": "113050", "name": "\\ud800"}]}', "bonds[0].name"),
        ('{"trade_date": "\\udc00", "bonds": []}', "trade_date"),
        ("[" * 100_000, "nested too deeply"),
    ],
)
def test_selection_body_never_500(client, setup, make_api_client, text, fragment):  # noqa: F811
    """Huge ranks, lone surrogates and deep nesting are 400 JSON naming the field; nothing stored."""
    key = make_api_client()[1]
    response = post_raw(client, key, text)
    assert response.status_code == 400, response.content[:300]
    assert fragment in response.json()["error"]
    assert not Selection.objects.exists()


@pytest.mark.parametrize("name", ["南银\x00转债", "南银\n转债", "南银\u202e转债", "南银\u200b转债"])
def test_bond_names_reject_control_and_invisible_characters(client, setup, make_api_client, name):  # noqa: F811
    key = make_api_client()[1]
    response = post_raw(client, key, _body([{"code": "113050", "name": name, "rank": 1}]))
    assert response.status_code == 400 and "bonds[0].name" in response.json()["error"]
    assert not Selection.objects.exists()


def test_huge_rank_within_json_limits_is_400(client, setup, make_api_client):  # noqa: F811
    """A rank beyond the database integer is refused, not stored or crashed on."""
    key = make_api_client()[1]
    response = post_raw(client, key, _body([{"code": "113050", "rank": 10**30}]))
    assert response.status_code == 400 and "rank" in response.json()["error"]
