"""Bad input never reaches a 500 (issue 11): bodies, tokens, text fields and query parameters."""

import base64
import json
import time

import pytest

from positions.models import Strategy, TargetSnapshot

UPDATE = "/api/v1/positions/update"
HUGE_INT = "9" * 5000  # beyond Python's int-string conversion limit (4300 digits)


def post(client, body, **headers):
    if not isinstance(body, bytes):
        body = body.encode("utf-8", "surrogatepass")
    return client.generic("POST", UPDATE, body, content_type="application/json", **headers)


def assert_400(response, fragment):
    assert response.status_code == 400, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    assert fragment in response.json()["error"], response.json()
    assert not TargetSnapshot.objects.exists()


@pytest.fixture
def key(make_api_client):
    return make_api_client()[1]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (
            '{"strategy_name": "a", "positions": [{"code": "600000.SH", "volume": '
            + HUGE_INT
            + ', "cost": 1}]}',
            "body",
        ),
        ('{"strategy_name": "a", "positions": [], "cash": ' + HUGE_INT + "}", "body"),
        (
            '{"strategy_name": "a", "positions": [{"code": "600000.SH", "volume": 1e999, "cost": 1}]}',
            "volume",
        ),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        (b'{"strategy_name": "\xff\xfe"}', "UTF-8"),
        ('{"strategy_name": NaN}', "NaN"),
        ('{"strategy_name": "a", "positions": "\\ud800"}', "positions"),
        ('{"strategy_name": "\\udc00abc", "positions": []}', "strategy_name"),
        (
            '{"strategy_name": "a", "positions": [{"code": "600000.SH", "volume": 100, "cost": 1, "name": "\\ud83d"}]}',
            "positions[0].name",
        ),
        ('{"strategy_name": "a", "positions": [], "snapshot_id": "\\ud800"}', "snapshot_id"),
        ('{"\\ud800": 1}', "key"),
    ],
)
def test_undecodable_or_unencodable_bodies_are_400_json(client, key, body, fragment):
    """Huge integers, deep nesting, bad UTF-8 and lone surrogates answer 400 JSON naming the field."""
    assert_400(post(client, body, HTTP_X_API_KEY=key), fragment)


@pytest.mark.parametrize(
    "name",
    ["策略\u202eA", "策略\u200bA", "\ufeff策略", "a\u2066b", "a\u00adb", "a\x00b", "a\nb", "a\u2028b"],
)
def test_invisible_and_control_characters_rejected_in_strategy_names(client, key, name):
    """Bidi overrides, zero-width and other format characters would make two names look identical."""
    body = json.dumps({"strategy_name": name, "positions": []})
    assert_400(post(client, body, HTTP_X_API_KEY=key), "strategy_name")
    assert not Strategy.objects.exists()


def test_invisible_characters_rejected_in_security_names(client, key):
    body = json.dumps(
        {
            "strategy_name": "a",
            "positions": [{"code": "600000.SH", "volume": 100, "cost": 1, "name": "浦\u200b发"}],
        }
    )
    assert_400(post(client, body, HTTP_X_API_KEY=key), "positions[0].name")


def test_snapshot_id_with_trailing_newline_rejected(client, key):
    """`$` in a regex matches before a final newline: the id must match in full."""
    body = json.dumps({"strategy_name": "a", "positions": [], "snapshot_id": "abc\n"})
    assert_400(post(client, body, HTTP_X_API_KEY=key), "snapshot_id")


def test_non_ascii_content_length_is_400(client, key):
    response = client.generic(
        "POST", UPDATE, b"{}", content_type="application/json", HTTP_X_API_KEY=key, CONTENT_LENGTH="²"
    )
    assert response.status_code == 400 and "Content-Length" in response.json()["error"]


def _token(auth_data: dict, signature: str = "AA==") -> str:
    return base64.b64encode(json.dumps({"auth_data": auth_data, "signature": signature}).encode()).decode()


def _raw_token(text: str) -> str:
    return base64.b64encode(text.encode("utf-8", "surrogatepass")).decode()


@pytest.mark.parametrize(
    "header",
    [
        _raw_token('{"auth_data": {"client_id": "x", "timestamp": ' + "9" * 5000 + '}, "signature": "AA=="}'),
        _raw_token('{"auth_data": {"client_id": "x", "timestamp": ' + "9" * 400 + '}, "signature": "AA=="}'),
        _token({"client_id": "x", "timestamp": -(10**30)}),
        _raw_token('{"auth_data": {"client_id": "\\ud800", "timestamp": 1}, "signature": "AA=="}'),
        _token({"client_id": "has space", "timestamp": int(time.time())}),
        _token({"client_id": "x\n", "timestamp": int(time.time())}),
        _raw_token("[" * 50_000),
    ],
)
def test_unusable_tokens_are_401_json(client, key, header):
    """A token with a thousand-digit timestamp or an unencodable client id is 401 JSON, not a 500."""
    response = post(
        client, json.dumps({"strategy_name": "a", "positions": []}), HTTP_X_AUTH_TOKEN=header[:8000]
    )
    assert response.status_code == 401, response.content[:300]
    assert response.json()["error"]


def test_unencodable_strategy_path_and_query_are_400(client, key):
    """Path and query text with lone surrogates is refused before any lookup."""
    response = client.get("/api/v1/positions/strategy/%ED%A0%80", HTTP_X_API_KEY=key)
    assert response.status_code in (400, 404) and response.json()["error"]
    response = client.get("/api/v1/positions/total?strategies=a%E2%80%AEb", HTTP_X_API_KEY=key)
    assert response.status_code == 400 and "strategies" in response.json()["error"]


@pytest.mark.parametrize("value", ["a\x00b", "x\x01"])
def test_control_characters_in_any_query_parameter_are_400(client, key, value):
    response = client.get("/api/v1/positions/all", {"anything": value}, HTTP_X_API_KEY=key)
    assert response.status_code == 400 and "anything" in response.json()["error"]


@pytest.mark.parametrize(
    "page",
    ["²", "١", "9" * 5000, str(2**63), "99999999999999999999999", "0", "-1", "1.5", " ", "1e3"],
)
def test_orders_page_parameter_never_500(client, key, page):
    """`?page=` with non-ASCII digits, numbers beyond the database integer or thousands of digits is 400."""
    response = client.get("/api/v1/orders", {"page": page}, HTTP_X_API_KEY=key)
    assert response.status_code == 400, response.content[:300]
    assert "page" in response.json()["error"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "9" * 5000}, "since"),
        ({"date_from": "2026-01-0²"}, "date_from"),
        ({"status": "²"}, "status"),
        ({"account": "nobody"}, "account"),
        ({"code": "1" * 5000}, "code"),
        ({"side": "\u202ebuy"}, "side"),
    ],
)
def test_orders_filters_never_500(client, key, params, field):
    response = client.get("/api/v1/orders", params, HTTP_X_API_KEY=key)
    assert response.status_code == 400, response.content[:300]
    assert field in response.json()["error"]


@pytest.mark.parametrize(
    "path", ["/api/v1/nothing", "/api/v1/rotation//selection", "/api/v1/positions/strategy/"]
)
def test_unknown_api_paths_answer_json_404(client, path):
    """Routing misses under /api/ are JSON like every other API answer."""
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == {"error": "no such API endpoint"}


def test_unknown_page_paths_keep_the_html_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")
