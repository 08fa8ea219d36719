"""Codes written with non-ASCII digits are refused, with a clear error and nothing stored, on every
rotation entry path: the selection API, the CSV upload, the admin's code fields (Factor Cat lists: see
test_selection_dates.py::test_factorcat_list_with_an_unreadable_code_is_refused)."""

import json

import pytest

from rotation.models import RotationStrategy, Selection
from rotation.services import selection_parse_csv
from rotation.tests.test_admin import admin_url, paper_rotation, staff, upload  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db

NON_ASCII_CODES = [
    "１１３０５０",  # full-width
    "１１３０５０.SH",
    "11305０",  # one full-width digit
    "١١٣٠٥٠",  # Arabic-Indic
    "۱۱۳۰۵۰",  # extended Arabic-Indic (Persian)
    "११३०५०",  # Devanagari
    "sh１１３０５０",
    "113050.ＳＨ",
]


@pytest.mark.parametrize("code", NON_ASCII_CODES)
def test_api_selection_refuses_non_ascii_codes(client, paper_rotation, make_api_client, code):  # noqa: F811
    """The selection API answers 400 naming the line, and stores no selection."""
    _, key = make_api_client("selector")
    body = {"trade_date": "2024-05-10", "bonds": [{"code": "123001"}, {"code": code}]}
    response = client.post(
        "/api/v1/rotation/cb-rot/selection",
        json.dumps(body),
        content_type="application/json",
        HTTP_X_API_KEY=key,
    )
    assert response.status_code == 400
    assert "bonds[1].code" in response.json()["error"]
    assert not Selection.objects.exists()


@pytest.mark.parametrize("code", NON_ASCII_CODES)
def test_csv_upload_refuses_non_ascii_codes(staff, paper_rotation, code):  # noqa: F811
    """The admin CSV upload explains the refused line on the form and stores nothing."""
    response = upload(staff, paper_rotation, f"code,rank\n123001,1\n{code},2\n".encode())
    assert response.status_code == 200
    assert "bonds[1].code" in response.content.decode()
    assert not Selection.objects.exists()


@pytest.mark.parametrize("rank", ["²", "١", "１", "٣", "1.5", "-1", "x"])
def test_csv_rank_must_be_written_with_ascii_digits(rank):
    """'²' passes str.isdigit() but is no rank: a clear error naming the line, never a crash from int()."""
    with pytest.raises(ValueError, match=r"line 2: rank .* is not a whole number"):
        selection_parse_csv(f"code,rank\n113050,{rank}\n".encode())


@pytest.mark.parametrize("rank", ["²", "１"])
def test_csv_upload_with_a_non_ascii_rank_is_a_form_error(staff, paper_rotation, rank):  # noqa: F811
    """Through the admin the same file is a form error, not a server error, and stores nothing."""
    response = upload(staff, paper_rotation, f"code,rank\n113050,{rank}\n".encode())
    assert response.status_code == 200 and "is not a whole number" in response.content.decode()
    assert not Selection.objects.exists()


def test_csv_upload_line_of_another_trade_date_is_refused(staff, paper_rotation):  # noqa: F811
    """A CSV `trade_date` column must carry the upload's trade date on every line."""
    response = upload(staff, paper_rotation, b"code,trade_date\n113050,2024-05-10\n123001,2024-05-09\n")
    assert response.status_code == 200 and "bonds[1].trade_date" in response.content.decode()
    assert not Selection.objects.exists()
    response = upload(staff, paper_rotation, b"code,trade_date\n113050,2024-05-10\n123001,20240510\n")
    assert response.status_code == 302 and Selection.objects.get().items.count() == 2


def rotation_change_form(rotation, **fields):
    return {
        "name": rotation.name,
        "account": rotation.account_id,
        "enabled": "on",
        "source": "upload",
        "schedule": "daily",
        "run_time": "14:50",
        "max_lateness": "00:05:00",
        "sizing": "equal",
        "top_n": "2",
        "cooldown_days": "1",
        **fields,
    }


@pytest.mark.parametrize("code", NON_ASCII_CODES)
def test_admin_excluded_codes_refuse_non_ascii_codes(staff, paper_rotation, code):  # noqa: F811
    """The excluded-codes field names the refused code and the rotation keeps its old exclusions."""
    url = admin_url("rotationstrategy", "change", paper_rotation.pk)
    response = staff.post(
        url,
        rotation_change_form(paper_rotation, excluded_codes=f"123001.SZ\n{code}"),
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Unknown codes" in html and code in html
    assert RotationStrategy.objects.get(pk=paper_rotation.pk).excluded_codes == ""


def test_admin_excluded_codes_with_ascii_digits_are_stored(staff, paper_rotation):  # noqa: F811
    """The control case: the same form with ASCII codes saves."""
    url = admin_url("rotationstrategy", "change", paper_rotation.pk)
    response = staff.post(url, rotation_change_form(paper_rotation, excluded_codes="123001.SZ\n113050"))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert RotationStrategy.objects.get(pk=paper_rotation.pk).excluded_code_set() == {
        "123001.SZ",
        "113050.SH",
    }


@pytest.mark.parametrize(
    "name",
    [
        "南银\u202e转债",  # bidi override
        "南银\u200b转债",  # zero-width space
        "南银\x00转债",  # NUL
        '"南银\n转债"',  # a newline inside a quoted CSV field
    ],
)
def test_csv_upload_refuses_bond_names_with_hidden_characters(staff, paper_rotation, name):  # noqa: F811
    """CSV bond names pass the same name check as the API's: a form error naming the line, nothing stored."""
    content = f"code,name\n113050,{name}\n".encode()
    response = upload(staff, paper_rotation, content)
    assert response.status_code == 200
    assert "bonds[0].name" in response.content.decode()
    assert not Selection.objects.exists()


def test_selection_validate_refuses_a_bond_name_with_a_lone_surrogate():
    """Whatever path a list comes by, a name no database can store is refused naming the line."""
    from rotation.services import selection_validate

    with pytest.raises(ValueError, match=r"bonds\[1\]\.name: contains unencodable text"):
        selection_validate([{"code": "113050"}, {"code": "123001", "name": "蓝标\ud800"}])
