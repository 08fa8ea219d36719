"""Fuzzing the live test server (hypothesis): no input gives a 5xx, and every 4xx is `{"error": ...}` JSON.

Requests go to Django's live test server over real HTTP on 127.0.0.1, built
from the API's own routes plus nasty fragments (thousand-digit integers, lone
surrogates, bidi overrides, NUL, non-ASCII digits, deep nesting). The run is
bounded to about a minute (FUZZ_SECONDS), whatever the machine's speed.
"""

import json
import os
import time
from decimal import Decimal as D
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from execution.services.accounts import account_create
from positions import services, tokens
from rotation.services import rotation_create

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FUZZ_SECONDS = float(os.environ.get("FUZZ_SECONDS", "50"))
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "600"))

NASTY_TEXT = [
    "",
    " ",
    "9" * 5000,
    "9" * 25,
    str(2**63),
    "-1",
    "0",
    "²",
    "١٢",
    "1e999",
    "NaN",
    "\u202e策略",
    "a\u200bb",
    "\x00",
    "a\nb",
    "../etc",
    "%ED%A0%80",
    "策略A",
    "600000.XSHG",
    "open",
    "2026-02-30",
    "2026-01-01T09:30:00+08:00",
    "x" * 300,
]
# Raw JSON fragments that no json.dumps produces: they reach the decoder as sent.
NASTY_JSON = [
    "9" * 5000,
    "-" + "9" * 400,
    "1e999",
    "NaN",
    "-Infinity",
    '"\\ud800"',
    '"\\udfff\\ud800"',
    '"\\u202e名"',
    '"\\u0000"',
    "[" * 3000 + "]" * 3000,
    "true",
    "null",
    "{}",
    "[]",
    '"²"',
    "1.5",
    '"' + "x" * 2000 + '"',
]
FIELDS = ["strategy_name", "positions", "total_value", "cash", "snapshot_id", "trade_date", "bonds"]
LINE_FIELDS = ["code", "volume", "cost", "name", "rank"]


def _valid_upload(strategy: str) -> dict:
    return {
        "strategy_name": strategy,
        "positions": [{"code": "600000.XSHG", "volume": 100, "cost": 10.5, "name": "浦发银行"}],
        "total_value": 100000,
        "cash": 1000,
        "snapshot_id": "fuzz-1",
    }


def _valid_selection() -> dict:
    return {"trade_date": "2026-11-20", "bonds": [{"code": "113050", "name": "南银转债", "rank": 1}]}


@st.composite
def bodies(draw, template: dict) -> bytes:
    """A valid body with some fields (top-level or in the first line) replaced by nasty JSON, or raw junk."""
    kind = draw(st.sampled_from(["mutate", "mutate", "mutate", "raw", "json"]))
    if kind == "raw":
        return draw(st.sampled_from([*NASTY_JSON, "{", "", "\xff"])).encode("utf-8", "surrogateescape")
    if kind == "json":
        value = draw(
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(FIELDS), inner),
                max_leaves=12,
            )
        )
        return json.dumps(value, allow_nan=True).encode()
    text = json.dumps(template, ensure_ascii=False)
    for _ in range(draw(st.integers(1, 3))):
        nasty = draw(st.sampled_from(NASTY_JSON + [json.dumps(t, ensure_ascii=False) for t in NASTY_TEXT]))
        field = draw(st.sampled_from(FIELDS + LINE_FIELDS))
        marker = f'"{field}": '
        start = text.find(marker)
        if start < 0:
            continue
        value_start = start + len(marker)
        # Replace the value up to the next separator at the same level (good enough for flat values).
        end = value_start
        depth = 0
        in_string = False
        while end < len(text):
            char = text[end]
            if in_string:
                in_string = char != '"' or text[end - 1] == "\\"
            elif char == '"':
                in_string = True
            elif char in "[{":
                depth += 1
            elif char in "]}":
                if depth == 0:
                    break
                depth -= 1
            elif char == "," and depth == 0:
                break
            end += 1
        text = text[:value_start] + nasty + text[end:]
    return text.encode("utf-8", "surrogatepass")


@st.composite
def query_strings(draw, names: list[str]) -> str:
    pairs = draw(
        st.lists(
            st.tuples(
                st.sampled_from([*names, "page", "x\x00"]), st.sampled_from(NASTY_TEXT) | st.text(max_size=8)
            ),
            max_size=4,
        )
    )
    return "&".join(
        f"{quote(k, safe='')}={quote(v.encode('utf-8', 'surrogatepass'), safe='')}" for k, v in pairs
    )


@st.composite
def auth_headers(draw, key: str, private_pem: bytes, client_id: str) -> dict:
    choice = draw(st.sampled_from(["key", "key", "key", "bad-key", "token", "junk-token", "none", "session"]))
    if choice == "key":
        return {"X-API-Key": key}
    if choice == "bad-key":
        # requests itself refuses header values with surrounding spaces or line breaks.
        value = draw(st.sampled_from([v for v in NASTY_TEXT if v and v == v.strip() and v.isprintable()]))
        return {"X-API-Key": value.encode("utf-8").decode("latin-1")[:500]}
    if choice == "token":
        timestamp = draw(st.sampled_from([time.time(), 0, -1, 10**11, time.time() - 10_000]))
        return {"X-Auth-Token": tokens.token_sign(private_pem, client_id, timestamp=timestamp)}
    if choice == "junk-token":
        raw = '{"auth_data": {"client_id": ' + draw(st.sampled_from(NASTY_JSON)) + ', "timestamp": '
        raw += draw(st.sampled_from(NASTY_JSON)) + '}, "signature": "AA=="}'
        import base64

        return {"X-Auth-Token": base64.b64encode(raw.encode("utf-8", "surrogatepass")).decode()[:8000]}
    return {}


ROUTES = [
    ("POST", "/api/v1/positions/update", "upload", []),
    ("GET", "/api/v1/positions/strategy/{name}", None, []),
    ("GET", "/api/v1/positions/total", None, ["strategies"]),
    ("GET", "/api/v1/positions/all", None, []),
    ("GET", "/api/v1/auth/info", None, []),
    ("GET", "/api/v1/accounts/{name}/positions", None, []),
    ("GET", "/api/v1/accounts/{name}/drift", None, []),
    (
        "GET",
        "/api/v1/orders",
        None,
        ["account", "status", "strategy", "side", "code", "since", "date_from", "date_to"],
    ),
    ("POST", "/api/v1/rotation/{name}/selection", "selection", []),
]
PATH_NAMES = ["策略A", "fz", "fz-rot", "nobody"] + NASTY_TEXT


def test_fuzz_api_never_5xx_and_every_4xx_is_json(live_server):
    """About a minute of generated requests against every API route: no 5xx, every 4xx `{"error": str}`."""
    client, key = services.api_client_create(name="fuzz", rate_limit_per_minute=0, public_key_pem="")
    private_pem, public_pem = tokens.key_pair_generate(2048)
    client.public_key = public_pem.decode()
    client.save(update_fields=["public_key"])
    account = account_create(name="fz", mode="paper", account_id="FZ", starting_cash=D("1000"))
    rotation_create(name="fz-rot", account=account, top_n=2)
    services_upload = json.dumps(_valid_upload("策略A")).encode()
    requests.post(
        f"{live_server.url}/api/v1/positions/update",
        data=services_upload,
        headers={"X-API-Key": key, "Content-Type": "application/json"},
        timeout=10,
    ).raise_for_status()

    session = requests.Session()
    deadline = time.monotonic() + FUZZ_SECONDS
    seen = {"requests": 0, "statuses": set()}

    @settings(
        max_examples=MAX_EXAMPLES,
        phases=[Phase.generate],
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def run(data):
        method, template, body_kind, params = data.draw(st.sampled_from(ROUTES))
        path = template
        if "{name}" in template:
            name = data.draw(st.sampled_from(PATH_NAMES))
            path = template.replace("{name}", quote(name.encode("utf-8", "surrogatepass"), safe=""))
        query = data.draw(query_strings(params))
        url = f"{live_server.url}{path}" + (f"?{query}" if query else "")
        headers = data.draw(auth_headers(key, private_pem, client.client_id))
        body = None
        if body_kind:
            template_body = _valid_upload("策略A") if body_kind == "upload" else _valid_selection()
            body = data.draw(bodies(template_body))
            headers["Content-Type"] = "application/json"
        # Past the time budget the example still draws everything (hypothesis
        # refuses examples whose draws depend on outside state), it only sends nothing.
        if time.monotonic() > deadline:
            return
        response = session.request(method, url, data=body, headers=headers, timeout=30)
        seen["requests"] += 1
        seen["statuses"].add(response.status_code)
        detail = f"{method} {url[:200]} body={body[:200] if body else None!r} -> {response.status_code} {response.text[:300]}"
        # Failures are collected, not raised: hypothesis would replay them after the time budget ran out.
        if response.status_code >= 500:
            failures.append(detail)
        elif 400 <= response.status_code < 500:
            try:
                payload = response.json()
            except ValueError:
                payload = None
            json_type = response.headers.get("Content-Type", "").startswith("application/json")
            if not (json_type and isinstance(payload, dict) and isinstance(payload.get("error"), str)):
                failures.append(detail)

    failures: list[str] = []
    run()
    assert not failures, f"{len(failures)} bad answers, e.g.:\n" + "\n".join(failures[:8])
    assert seen["requests"] >= 50, seen  # the budget really fuzzed
    assert {200, 400, 401, 404} <= seen["statuses"], seen
