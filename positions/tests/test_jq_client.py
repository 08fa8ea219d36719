"""The JoinQuant client file (positions/clients/jq_qmt_api.py), exercised as users run it.

The file is imported by path, the way JoinQuant imports it from the research root, and
talks either to pytest-django's live server (a real HTTP server on this Django project)
or to tiny local HTTP servers that fake the network (errors, slowness, retries).
"""

import ast
import base64
import hashlib
import importlib.util
import json
import pickle
import re
import socket
import sys
import threading
import time
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from positions import services, tokens
from positions.models import ApiClient, Strategy, TargetSnapshot, Upload

CLIENT_FILE = Path(__file__).resolve().parent.parent / "clients" / "jq_qmt_api.py"
SEED_POSITIONS = [{"code": "000001.XSHE", "volume": 1000, "cost": 12.5}]
FAST = {"timeout": (1.0, 2.0), "backoff": 0.05, "backoff_max": 0.2, "deadline": 5.0}

live = pytest.mark.django_db(transaction=True)


def load_client_module(path=CLIENT_FILE):
    spec = importlib.util.spec_from_file_location("jq_qmt_api", str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def jq(monkeypatch):
    """The client module, registered as `jq_qmt_api` so pickle can find its class."""
    module = load_client_module()
    monkeypatch.setitem(sys.modules, "jq_qmt_api", module)
    return module


@pytest.fixture
def jqdata(monkeypatch):
    """Stands in for JoinQuant's runtime module `jqdata` (read_file, get_security_info)."""
    fake = types.ModuleType("jqdata")
    fake.files = {}
    fake.names = {"000001.XSHE": "平安银行", "600000.XSHG": "浦发银行"}

    def read_file(path):
        if path not in fake.files:
            raise OSError(f"no such file in the research root: {path}")
        return fake.files[path]

    def get_security_info(code):
        if code not in fake.names:
            raise ValueError(f"unknown security {code}")
        return types.SimpleNamespace(display_name=fake.names[code])

    fake.read_file = read_file
    fake.get_security_info = get_security_info
    monkeypatch.setitem(sys.modules, "jqdata", fake)
    return fake


@pytest.fixture(scope="module")
def keys():
    """(PKCS#8 private PEM bytes, SPKI public PEM str), generated once for this file."""
    private_pem, public_pem = tokens.key_pair_generate(2048)
    return private_pem, public_pem.decode("ascii")


@pytest.fixture
def server_url(settings, live_server):
    settings.ALLOWED_HOSTS = ["*"]
    return live_server.url


def make_client(keys, **kwargs):
    kwargs.setdefault("public_key_pem", keys[1])
    return services.api_client_create(name="jq", **kwargs)


def latest_lines(strategy_name):
    snapshot = Strategy.objects.get(name=strategy_name).current_snapshot
    return snapshot, [
        (line.code, line.jq_code, line.name, line.volume, float(line.cost)) for line in snapshot.lines.all()
    ]


# --- fake network -------------------------------------------------------------


class FakeServer:
    """Fakes the network: a local HTTP server on 127.0.0.1 (port 0) that records every request
    and answers from a script of (status, json body, delay seconds, extra headers); after the
    script it answers 200 with an upload-like JSON."""

    def __init__(self, script=()):
        self.script = list(script)
        self.requests = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with fake.lock:
                    fake.requests.append(
                        {
                            "method": self.command,
                            "path": self.path,
                            "headers": dict(self.headers),
                            "body": body,
                        }
                    )
                    step = (
                        fake.script.pop(0)
                        if fake.script
                        else (200, {"message": "ok", "changed": True}, 0, {})
                    )
                status, payload, delay, headers = step
                if delay:
                    time.sleep(delay)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # the client hung up on a slow answer: expected here

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def bodies(self):
        return [json.loads(r["body"]) for r in self.requests]


def decode_token(header):
    return json.loads(base64.b64decode(header))


# --- the file itself ------------------------------------------------------------


def test_source_parses_as_python_36():
    source = CLIENT_FILE.read_text(encoding="utf-8")
    tree = ast.parse(source, feature_version=(3, 6))
    top_level_imports = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top_level_imports.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            top_level_imports.add(node.module.split(".")[0])
    # cryptography is imported lazily, only when RSA signing is used.
    assert "cryptography" not in top_level_imports
    assert top_level_imports <= {"base64", "hashlib", "json", "logging", "time", "uuid", "urllib", "requests"}
    assert "from __future__ import annotations" not in source
    assert ast.get_docstring(tree) and "聚宽" in ast.get_docstring(tree)


def test_settings_are_substitutable_one_line_constants():
    source = CLIENT_FILE.read_text(encoding="utf-8")
    for name in ("API_URL", "CLIENT_ID", "API_KEY", "PRIVATE_KEY_FILE"):
        assert len(re.findall(rf'^{name} = ".*"$', source, flags=re.M)) == 1, name


@live
def test_seed_usage_with_api_key_from_substituted_file(server_url, keys, tmp_path, monkeypatch):
    """The admin substitutes the constants; `JQQMTAPI().update_positions(...)` works unchanged."""
    client, api_key = make_client(keys)
    source = CLIENT_FILE.read_text(encoding="utf-8")
    for name, value in (("API_URL", server_url), ("CLIENT_ID", client.client_id), ("API_KEY", api_key)):
        source = re.sub(rf'^{name} = ".*"$', f"{name} = {json.dumps(value)}", source, count=1, flags=re.M)
    path = tmp_path / "jq_qmt_api.py"
    path.write_text(source, encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # no private_key.pem here: API-key mode
    module = load_client_module(path)

    api = module.JQQMTAPI()
    result = api.update_positions("我的策略", SEED_POSITIONS)

    assert result["auth_type"] == "api_key"
    assert result["client_id"] == client.client_id
    assert result["changed"] is True and result["positions_count"] == 1
    _, lines = latest_lines("我的策略")
    assert lines == [("000001.SZ", "000001.XSHE", "", 1000, 12.5)]
    assert Upload.objects.get().snapshot_id == result["snapshot_id"]


@live
def test_rsa_v2_with_key_read_through_read_file(server_url, keys, jq, jqdata):
    client, _ = make_client(keys)
    jqdata.files["private_key.pem"] = keys[0]
    api = jq.JQQMTAPI(api_url=server_url, client_id=client.client_id)
    positions = [
        {"code": "600000.XSHG", "volume": 300.0, "cost": 7, "name": "浦发银行"},
        {"code": "000001.XSHE", "volume": 1000, "cost": 12.5},
    ]

    result = api.update_positions("RSA策略", positions, total_value=100000, cash=5000.5)

    assert result["auth_type"] == "rsa_v2", result
    snapshot, lines = latest_lines("RSA策略")
    assert lines == [
        ("000001.SZ", "000001.XSHE", "", 1000, 12.5),
        ("600000.SH", "600000.XSHG", "浦发银行", 300, 7.0),
    ]
    assert float(snapshot.total_value) == 100000 and float(snapshot.cash) == 5000.5


@live
def test_require_v2_client_accepts_uploads_and_reads(server_url, keys, jq):
    """A client that refuses API keys and v1 tokens accepts the file's requests, reads included
    (a name that needs percent-encoding and a query string are signed as sent)."""
    client, api_key = make_client(keys, require_v2=True)
    api = jq.JQQMTAPI(
        api_url=server_url,
        client_id=client.client_id,
        private_key_pem=keys[0].decode(),
        raise_errors=True,
        **FAST,
    )
    name = "多策略 V1.0 (A)+1"

    upload = api.update_positions(name, SEED_POSITIONS, total_value=20000, cash=7500)
    api.update_positions("其他", [{"code": "000001.XSHE", "volume": 500, "cost": 10}])

    assert upload["auth_type"] == "rsa_v2"
    one = api.get_strategy_positions(name)
    assert one["strategy_name"] == name
    assert [(p["code"], p["volume"], p["cost"]) for p in one["positions"]] == [("000001.XSHE", 1000, 12.5)]
    assert one["total_value"] == 20000 and one["cash"] == 7500
    total = api.get_total_positions([name, "其他"])
    assert sorted(total["strategies"]) == sorted([name, "其他"])
    assert [(p["code"], p["total_volume"]) for p in total["positions"]] == [("000001.XSHE", 1500)]
    assert api.get_total_positions(name)["positions"][0]["total_volume"] == 1000
    everything = api.get_all_positions()
    assert sorted(s["strategy_name"] for s in everything["strategies"]) == sorted([name, "其他"])
    # The same client's API key is refused: the uploads above really were v2-signed.
    refused = jq.JQQMTAPI(api_url=server_url, api_key=api_key, private_key_file="", raise_errors=True, **FAST)
    with pytest.raises(jq.JQQMTAPIError) as info:
        refused.update_positions(name, SEED_POSITIONS)
    assert info.value.status == 401 and info.value.server_message == "invalid credentials"
    assert "v2" in ApiClient.objects.get(client_id=client.client_id).last_auth_failure


@live
def test_save_all_positions_sends_portfolio_totals_and_names(server_url, keys, jq, jqdata):
    client, api_key = make_client(keys)
    positions = {
        "000001.XSHE": types.SimpleNamespace(security="000001.XSHE", total_amount=1000, avg_cost=12.5),
        "600000.XSHG": types.SimpleNamespace(security="600000.XSHG", total_amount=200, avg_cost=7.25),
        "300750.XSHE": types.SimpleNamespace(security="300750.XSHE", total_amount=100, avg_cost=180.0),
        "601318.XSHG": types.SimpleNamespace(security="601318.XSHG", total_amount=0, avg_cost=40.0),
    }
    context = types.SimpleNamespace(
        portfolio=types.SimpleNamespace(positions=positions, total_value=123456.78, available_cash=1000.5),
        run_params=types.SimpleNamespace(type="sim_trade"),
    )
    api = jq.JQQMTAPI(api_url=server_url, client_id=client.client_id, api_key=api_key, private_key_file="")

    result = api.save_all_positions(context, "多策略V1.0")

    assert result["positions_count"] == 3
    snapshot, lines = latest_lines("多策略V1.0")
    assert float(snapshot.total_value) == 123456.78 and float(snapshot.cash) == 1000.5
    assert lines == [
        ("000001.SZ", "000001.XSHE", "平安银行", 1000, 12.5),
        ("300750.SZ", "300750.XSHE", "", 100, 180.0),  # get_security_info failed: no name
        ("600000.SH", "600000.XSHG", "浦发银行", 200, 7.25),
    ]


def test_save_all_positions_cash_fallback_and_only_sim_trade(jq):
    portfolio = types.SimpleNamespace(
        positions={
            "000001.XSHE": types.SimpleNamespace(security="000001.XSHE", total_amount=100, avg_cost=10)
        },
        total_value=5000,
        cash=4000,
    )
    backtest = types.SimpleNamespace(
        portfolio=portfolio, run_params=types.SimpleNamespace(type="simple_backtest")
    )
    with FakeServer() as fake:
        skipping = jq.JQQMTAPI(api_url=fake.url, api_key="k", private_key_file="", only_sim_trade=True)
        assert skipping.save_all_positions(backtest, "S") is None
        assert fake.requests == []
        uploading = jq.JQQMTAPI(api_url=fake.url, api_key="k", private_key_file="")
        assert uploading.save_all_positions(backtest, "S") == {"message": "ok", "changed": True}
    (body,) = fake.bodies()
    assert body["cash"] == 4000 and body["total_value"] == 5000
    assert body["positions"] == [{"code": "000001.XSHE", "volume": 100, "cost": 10.0}]


# --- retries, timeouts, errors ----------------------------------------------------


def test_retries_reuse_snapshot_id_with_fresh_signatures(jq, keys):
    script = [
        (429, {"error": "rate limit exceeded"}, 0, {"Retry-After": "0"}),
        (503, {"error": "busy"}, 0, {}),
    ]
    with FakeServer(script) as fake:
        api = jq.JQQMTAPI(api_url=fake.url, client_id="jq-test", private_key_pem=keys[0], **FAST)
        started = time.monotonic()
        result = api.update_positions("S", SEED_POSITIONS)
        elapsed = time.monotonic() - started

    assert result == {"message": "ok", "changed": True}
    assert len(fake.requests) == 3
    bodies = [r["body"] for r in fake.requests]
    assert len(set(bodies)) == 1  # byte-identical bodies, so one snapshot_id
    (snapshot_id,) = {json.loads(b)["snapshot_id"] for b in bodies}
    assert re.fullmatch("[0-9a-f]{32}", snapshot_id)  # generated by the client, once
    nonces = {decode_token(r["headers"]["X-Auth-Token"])["auth_data"]["nonce"] for r in fake.requests}
    assert len(nonces) == 3  # every attempt signs a fresh token
    assert elapsed < 2.0


def test_retries_are_bounded_then_warn(jq, caplog, capsys):
    with FakeServer([(503, {"error": "down"}, 0, {})] * 5) as fake:
        api = jq.JQQMTAPI(api_url=fake.url, api_key="k", private_key_file="", max_retries=2, **FAST)
        assert api.update_positions("S", SEED_POSITIONS, snapshot_id="rebalance-2024-01-02") is None
    assert len(fake.requests) == 3
    assert {body["snapshot_id"] for body in fake.bodies()} == {"rebalance-2024-01-02"}
    assert "HTTP 503: down" in caplog.text and "3 attempts" in caplog.text
    assert "HTTP 503: down" in capsys.readouterr().out


def test_connection_refused_is_retried_and_bounded(jq, caplog):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    api = jq.JQQMTAPI(api_url=f"http://127.0.0.1:{port}", api_key="k", private_key_file="", **FAST)
    started = time.monotonic()
    assert api.update_positions("S", SEED_POSITIONS) is None
    assert time.monotonic() - started < 2.0
    assert "connection error" in caplog.text and "3 attempts" in caplog.text


@pytest.mark.parametrize("status", [400, 401, 403, 409, 413])
def test_client_errors_are_not_retried(jq, caplog, status):
    with FakeServer([(status, {"error": f"nope {status}"}, 0, {})] * 3) as fake:
        api = jq.JQQMTAPI(api_url=fake.url, api_key="k", private_key_file="", **FAST)
        assert api.update_positions("S", SEED_POSITIONS) is None
    assert len(fake.requests) == 1
    assert f"nope {status}" in caplog.text


def test_read_timeout_is_honoured(jq, caplog):
    with FakeServer([(200, {}, 1.5, {})] * 3) as fake:
        api = jq.JQQMTAPI(
            api_url=fake.url,
            api_key="k",
            private_key_file="",
            timeout=(0.5, 0.3),
            max_retries=1,
            backoff=0.05,
        )
        started = time.monotonic()
        assert api.update_positions("S", SEED_POSITIONS) is None
        elapsed = time.monotonic() - started
    assert len(fake.requests) == 2
    assert elapsed < 0.3 * 2 + 0.05 + 0.5
    assert "timeout" in caplog.text


def test_overall_deadline_caps_retries(jq):
    with FakeServer([(200, {}, 2.0, {})] * 10) as fake:
        api = jq.JQQMTAPI(
            api_url=fake.url,
            api_key="k",
            private_key_file="",
            timeout=(1.0, 1.0),
            max_retries=9,
            backoff=0.05,
            deadline=0.6,
        )
        started = time.monotonic()
        assert api.update_positions("S", SEED_POSITIONS) is None
        assert time.monotonic() - started < 1.0


@live
def test_raise_errors_carries_status_and_server_message(server_url, keys, jq):
    client, api_key = make_client(keys, strategy_names=("允许的策略",))
    api = jq.JQQMTAPI(
        api_url=server_url,
        client_id=client.client_id,
        api_key=api_key,
        private_key_file="",
        raise_errors=True,
        **FAST,
    )
    with pytest.raises(jq.JQQMTAPIError) as info:
        api.update_positions("别的策略", SEED_POSITIONS)
    assert info.value.status == 403
    assert "may not use strategy" in info.value.server_message
    assert info.value.attempts == 1
    with pytest.raises(jq.JQQMTAPIError) as info:
        api.update_positions("允许的策略", [{"code": "nonsense", "volume": 1, "cost": 1}])
    assert info.value.status == 400 and "positions[0].code" in info.value.server_message
    bad_key = jq.JQQMTAPI(api_url=server_url, api_key="qk_wrong", private_key_file="", raise_errors=True)
    with pytest.raises(jq.JQQMTAPIError) as info:
        bad_key.get_all_positions()
    assert info.value.status == 401 and info.value.server_message == "invalid credentials"
    assert TargetSnapshot.objects.count() == 0


def test_without_credentials_nothing_is_sent(jq, jqdata, caplog):
    with FakeServer() as fake:
        quiet = jq.JQQMTAPI(api_url=fake.url)  # no API key, no private_key.pem in the research root
        assert quiet.update_positions("S", SEED_POSITIONS) is None
        loud = jq.JQQMTAPI(api_url=fake.url, raise_errors=True)
        with pytest.raises(jq.JQQMTAPIError, match="no credentials"):
            loud.get_all_positions()
    assert fake.requests == []
    assert "no credentials" in caplog.text


# --- signing details and pickling ---------------------------------------------------


def test_signed_path_is_the_wire_path_including_prefix(jq, keys):
    with FakeServer() as fake:
        api = jq.JQQMTAPI(api_url=fake.url + "/qmt/", client_id="jq-test", private_key_pem=keys[0], **FAST)
        api.update_positions("策略", SEED_POSITIONS)
        api.get_total_positions(["甲 乙", "b"])
        api.get_strategy_positions("名字 (1)")
    assert [r["path"] for r in fake.requests] == [
        "/qmt/api/v1/positions/update",
        "/qmt/api/v1/positions/total?strategies=%E7%94%B2%20%E4%B9%99,b",
        "/qmt/api/v1/positions/strategy/%E5%90%8D%E5%AD%97%20(1)",
    ]
    for request in fake.requests:
        token = decode_token(request["headers"]["X-Auth-Token"])
        data = token["auth_data"]
        assert set(data) == {"client_id", "timestamp", "version", "method", "path", "body_sha256", "nonce"}
        assert data["version"] == 2 and data["client_id"] == "jq-test"
        assert data["method"] == request["method"] and data["path"] == request["path"]
        assert data["body_sha256"] == hashlib.sha256(request["body"]).hexdigest()
        assert abs(data["timestamp"] - time.time()) < 60
        parsed = tokens.token_parse(request["headers"]["X-Auth-Token"])
        tokens.token_verify_signature(parsed, keys[1])  # raises if the signature is wrong
    assert fake.requests[0]["headers"]["Content-Type"] == "application/json; charset=utf-8"
    assert "策略".encode() in fake.requests[0]["body"]  # UTF-8, not \\u escapes


@live
def test_pickled_instance_still_uploads(server_url, keys, jq, jqdata):
    client, api_key = make_client(keys)
    jqdata.files["private_key.pem"] = keys[0]
    from_file = jq.JQQMTAPI(api_url=server_url, client_id=client.client_id, **FAST)
    with_pem = jq.JQQMTAPI(api_url=server_url, client_id=client.client_id, private_key_pem=keys[0], **FAST)
    with_key = jq.JQQMTAPI(api_url=server_url, api_key=api_key, private_key_file="", **FAST)
    assert (
        from_file.update_positions("P", SEED_POSITIONS)["auth_type"] == "rsa_v2"
    )  # loads and caches the key

    expected = {}
    for api, auth_type in ((from_file, "rsa_v2"), (with_pem, "rsa_v2"), (with_key, "api_key")):
        for protocol in (2, pickle.HIGHEST_PROTOCOL):
            copy = pickle.loads(pickle.dumps(api, protocol=protocol))  # noqa: S301 - our own data
            assert copy.__dict__.get("_key_cache") is None
            result = copy.update_positions(
                "P", [{"code": "000001.XSHE", "volume": 100 + len(expected), "cost": 1}]
            )
            assert result["auth_type"] == auth_type and result["changed"] is True
            expected[result["snapshot_id"]] = auth_type
    assert (
        dict(Upload.objects.filter(snapshot_id__in=expected).values_list("snapshot_id", "auth_type"))
        == expected
    )
    assert ApiClient.objects.get(pk=client.pk).last_used_at is not None
