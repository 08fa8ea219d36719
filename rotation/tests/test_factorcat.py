"""The Factor Cat client and the credential services, against a LOCAL fake Factor Cat server.

Every test here talks over real sockets to `FakeFactorCat`, a ThreadingHTTPServer
on 127.0.0.1 with the DESIGN §8 endpoints and shapes; no test contacts the real
Factor Cat or any other outside host.
"""

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import re
import socket
import ssl
import threading
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.fernet import Fernet
from django.utils import timezone

from qmtjq import crypto
from qmtjq.notifications import EVENT_FACTORCAT_LOGIN_FAILED
from rotation import credentials, factorcat
from rotation.factorcat import FactorCatAuthError, FactorCatClient, FactorCatError, tp_sl_ratios
from rotation.models import FactorCatAccount

PASSWORD = "correct horse 42 密码"
LOGIN_TTL = timedelta(hours=2)
LONG_TTL = timedelta(days=30)


# --- the fake server ---------------------------------------------------------------


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def make_jwt(subject: str, expires: datetime) -> str:
    """An HS256 JWT like Factor Cat's (the client never checks the signature)."""
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64url(json.dumps({"sub": subject, "exp": int(expires.timestamp())}).encode())
    signature = hmac.new(b"fake-server-secret", f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(signature)}"


SELECTION_101 = [
    {"kzz_code": "113050", "name": "南银转债", "price": 123.456, "trade_date": "2024-05-10"},
    {"code": "123001", "name": "蓝标转债", "price": "108.2", "trade_date": "20240510"},
    {"kzz_code": "128136.SZ", "name": "立讯转债", "price": None, "trade_date": None},
    {"code": "sh110059", "name": "浦发转债", "price": "-", "trade_date": "2024-05-10T00:00:00"},
]


class FakeFactorCat:
    """State of the fake server: users, issued tokens, data, recorded calls and scripted faults."""

    def __init__(self):
        self.base_url = ""
        self.users = {"alice": PASSWORD}
        self.long_term = True
        self.inflate_total_pages = False
        self.valid_tokens: set[str] = set()
        self.calls: list[tuple[str, str, str | None]] = []
        self.faults: dict[str, list[tuple]] = defaultdict(list)
        self._lock = threading.Lock()
        self.strategies = [
            {
                "id": number,
                "name": f"{'低价高收益' if number % 3 == 0 else '双低轮动'} {number}",
                "description": "可转债轮动",
                "backtest_count": number % 4,
                "created_at": f"2024-03-{number:02d}T09:30:00",
            }
            for number in range(1, 24)
        ]
        self.histories = {
            1: [
                {
                    "id": 100 + number,
                    "backtest_time": f"2024-04-{number:02d}T20:00:00",
                    "strategy_return": 0.1 * number,
                    "win_rate": 0.55,
                    "annualized_return": 0.21,
                    "max_drawdown": -0.12,
                    "sharpe_ratio": 1.7,
                }
                for number in range(1, 8)
            ]
        }
        self.parameters = {
            (1, 101): {"holdNum": 10, "profitTargetRatio": 0.15, "stopLossRatio": 0, "sortFactor": "双低"},
            (1, 102): {"holdNum": 5},
        }
        self.selections = {101: SELECTION_101}
        # Top-level fields of a selection answer per record; omitted: the public shape, dated 2024-05-10.
        self.selection_tops: dict[int, dict] = {}

    # Helpers for tests.
    def issue(self, subject: str, ttl: timedelta) -> str:
        token = make_jwt(subject, datetime.now(UTC) + ttl)
        with self._lock:
            self.valid_tokens.add(token)
        return token

    def script(self, path: str, *actions: tuple) -> None:
        """Answer the next requests to `path` with `actions`: ("status", code, body[, headers]) or ("sleep", s)."""
        with self._lock:
            self.faults[path].extend(actions)

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return sum(1 for call in self.calls if call[0] == method and call[1] == path)

    # Used by the handler.
    def record(self, method: str, path: str, authorization: str | None) -> tuple | None:
        with self._lock:
            self.calls.append((method, path, authorization))
            return self.faults[path].pop(0) if self.faults[path] else None

    def route(self, method: str, path: str, query: dict, body: dict, authorization: str | None):
        if (method, path) == ("POST", "/auth/login"):
            missing = [name for name in ("username", "password") if name not in body]
            if missing:
                return 422, {
                    "detail": [
                        {"loc": ["body", name], "msg": "field required", "type": "value_error.missing"}
                        for name in missing
                    ]
                }
            if self.users.get(body["username"]) != body["password"]:
                return 401, {"detail": "Incorrect username or password"}
            token = self.issue(body["username"], LOGIN_TTL)
            return 200, {
                "access_token": token,
                "token_type": "bearer",
                "username": body["username"],
                "role_name": "VIP会员",
            }
        if not authorization:
            # FastAPI's HTTPBearer without a header.
            return 403, {"detail": "Not authenticated"}
        token = authorization.removeprefix("Bearer ")
        expires = factorcat.token_expires_at(token)
        if token not in self.valid_tokens or expires is None or expires < datetime.now(UTC):
            return 401, {"detail": "Could not validate credentials"}
        if (method, path) == ("POST", "/auth/generate-long-term-token"):
            if not self.long_term:
                return 404, {"detail": "Not Found"}
            return 200, {"access_token": self.issue("alice", LONG_TTL), "token_type": "bearer"}
        if (method, path) == ("GET", "/strategies/"):
            search = query.get("search", [""])[0]
            return self._paged([row for row in self.strategies if search in row["name"]], query)
        if method == "GET" and (match := re.fullmatch(r"/strategies/(\d+)/histories", path)):
            return self._paged(self.histories.get(int(match[1]), []), query)
        if method == "GET" and (match := re.fullmatch(r"/strategies/(\d+)/histories/(\d+)/parameters", path)):
            parameters = self.parameters.get((int(match[1]), int(match[2])))
            if parameters is None:
                return 404, {"message": "回测记录不存在"}
            return 200, {"parameters": parameters}
        if (method, path) == ("POST", "/bond-selection/today-bond-selection"):
            history_id = body.get("strategy_history_id")
            if history_id not in self.selections:
                return 404, {"message": "回测记录不存在"}
            top = self.selection_tops.get(history_id, {"trade_date": "2024-05-10"})
            return 200, [
                {"strategy_history_id": history_id, **top, "selected_bonds": self.selections[history_id]}
            ]
        return 404, {"detail": "Not Found"}

    def _paged(self, rows: list, query: dict):
        page = int(query.get("page", ["1"])[0])
        limit = int(query.get("limit", ["20"])[0])
        if page < 1 or not 1 <= limit <= 100:
            return 422, {
                "detail": [
                    {
                        "loc": ["query", "limit"],
                        "msg": "ensure this value is less than or equal to 100",
                        "type": "value_error.number.not_le",
                    }
                ]
            }
        total_pages = 999 if self.inflate_total_pages else max(1, math.ceil(len(rows) / limit))
        start = (page - 1) * limit
        return 200, {
            "items": rows[start : start + limit],
            "total_count": len(rows),
            "total_pages": total_pages,
            "page": page,
            "limit": limit,
        }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        pass

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        fake: FakeFactorCat = self.server.fake
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        action = fake.record(method, url.path, self.headers.get("Authorization"))
        if action and action[0] == "sleep":
            time.sleep(action[1])
        elif action and action[0] == "status":
            self._send(action[1], action[2], action[3] if len(action) > 3 else {})
            return
        body = json.loads(raw) if raw else {}
        status, answer = fake.route(
            method, url.path, parse_qs(url.query), body, self.headers.get("Authorization")
        )
        self._send(status, answer, {"WWW-Authenticate": "Bearer"} if status == 401 else {})

    def _send(self, status: int, answer, headers: dict) -> None:
        if isinstance(answer, dict | list):
            payload = json.dumps(answer, ensure_ascii=False).encode("utf-8")
            headers = {"Content-Type": "application/json", **headers}
        else:
            payload = answer.encode("utf-8")
            headers = {"Content-Type": "text/plain; charset=utf-8", **headers}
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # failed TLS handshakes and dropped clients are what some tests are about


def _serve(fake: FakeFactorCat, tls_context: ssl.SSLContext | None = None):
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = fake
    scheme = "http"
    if tls_context is not None:
        server.socket = tls_context.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
        scheme = "https"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.base_url = f"{scheme}://127.0.0.1:{server.server_port}"
    return server


@pytest.fixture
def fake():
    fake = FakeFactorCat()
    server = _serve(fake)
    yield fake
    server.shutdown()
    server.server_close()


def fast_client(fake: FakeFactorCat, **kwargs) -> FactorCatClient:
    options = {"timeout": (2, 2), "retries": 2, "backoff": 0.01}
    options.update(kwargs)
    return FactorCatClient(fake.base_url, **options)


def logged_in(fake: FakeFactorCat, **kwargs) -> FactorCatClient:
    return fast_client(fake, token=fake.issue("alice", LOGIN_TTL), **kwargs)


# --- login and tokens --------------------------------------------------------------


def test_login_returns_token_user_role_and_expiry_read_from_the_jwt(fake):
    """A login yields the token, user and role, and the expiry from the JWT's exp claim; later calls send it as Bearer."""
    client = fast_client(fake)
    before = datetime.now(UTC)
    result = client.login("alice", PASSWORD)

    assert result.username == "alice" and result.role_name == "VIP会员"
    assert client.token == result.access_token
    assert (
        before + LOGIN_TTL - timedelta(seconds=2)
        <= result.expires_at
        <= before + LOGIN_TTL + timedelta(seconds=2)
    )
    client.strategies()
    assert fake.calls[-1][2] == f"Bearer {result.access_token}"


def test_wrong_password_is_an_auth_error_with_the_servers_message(fake):
    """A refused login raises FactorCatAuthError carrying the server's words and the 401."""
    with pytest.raises(FactorCatAuthError) as caught:
        fast_client(fake).login("alice", "wrong")
    assert str(caught.value) == "Incorrect username or password"
    assert caught.value.status == 401
    assert fake.count("POST", "/auth/login") == 1  # never retried


def test_long_term_token_replaces_the_login_token(fake):
    """The long-lived token becomes the client's token and expires later than the login token."""
    client = fast_client(fake)
    login = client.login("alice", PASSWORD)
    long_token = client.long_term_token()

    assert long_token != login.access_token and client.token == long_token
    assert factorcat.token_expires_at(long_token) > login.expires_at + timedelta(days=29)


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("opaque-session-token", None),
        ("a.b.c", None),
        (f"x.{_b64url(json.dumps({'sub': 'alice'}).encode())}.y", None),
        (f"x.{_b64url(json.dumps({'exp': 'soon'}).encode())}.y", None),
        (f"x.{_b64url(json.dumps({'exp': True}).encode())}.y", None),
        (f"x.{_b64url(json.dumps({'exp': 1715313600}).encode())}.y", datetime(2024, 5, 10, 4, 0, tzinfo=UTC)),
        (None, None),
    ],
)
def test_token_expiry_is_read_from_exp_or_none(token, expected):
    """Only a JWT with a numeric exp has an expiry; anything else is 'unknown', never a crash."""
    assert factorcat.token_expires_at(token) == expected


def test_401_raises_auth_error(fake):
    """A token the server does not accept raises FactorCatAuthError."""
    client = fast_client(fake, token=make_jwt("alice", datetime.now(UTC) + LOGIN_TTL))  # not issued
    with pytest.raises(FactorCatAuthError) as caught:
        client.strategies()
    assert caught.value.status == 401 and str(caught.value) == "Could not validate credentials"


def test_fastapi_403_not_authenticated_counts_as_an_auth_error(fake):
    """FastAPI's HTTPBearer answers a call without a token with 403 'Not authenticated': also an auth error."""
    with pytest.raises(FactorCatAuthError) as caught:
        fast_client(fake).strategies()
    assert caught.value.status == 403


# --- strategies, records, parameters -------------------------------------------------


def test_strategies_page_and_search(fake):
    """One page carries the items and the paging numbers; search narrows the list."""
    client = logged_in(fake)
    page = client.strategies(page=2, limit=10)
    assert [row["id"] for row in page.items] == list(range(11, 21))
    assert (page.total_count, page.total_pages, page.page, page.limit) == (23, 3, 2, 10)
    assert page.has_next

    found = client.strategies(search="低价高收益", limit=100)
    assert found.total_count == 7 and all("低价高收益" in row["name"] for row in found.items)


def test_strategies_all_pages_to_the_end(fake):
    """strategies_all reads page after page until total_pages: 23 strategies in 3 requests."""
    rows = logged_in(fake).strategies_all(limit=10)
    assert [row["id"] for row in rows] == list(range(1, 24))
    assert fake.count("GET", "/strategies/") == 3


def test_strategies_all_stops_on_an_empty_page_and_at_the_cap(fake, monkeypatch):
    """A server claiming 999 pages is read only until its first empty page, and never past MAX_PAGES."""
    fake.inflate_total_pages = True
    client = logged_in(fake)
    assert len(client.strategies_all(limit=10)) == 23
    assert fake.count("GET", "/strategies/") == 4  # the 4th page is empty

    monkeypatch.setattr(factorcat.client, "MAX_PAGES", 2)
    assert len(client.strategies_all(limit=10)) == 20
    assert fake.count("GET", "/strategies/") == 6


def test_histories_page_carries_returns_drawdown_and_sharpe(fake):
    """Backtest records come page by page with their performance figures."""
    page = logged_in(fake).histories(1, page=1, limit=5)
    assert [row["id"] for row in page.items] == [101, 102, 103, 104, 105]
    assert (page.total_count, page.total_pages) == (7, 2)
    assert {"strategy_return", "win_rate", "annualized_return", "max_drawdown", "sharpe_ratio"} <= set(
        page.items[0]
    )


def test_parameters_include_take_profit_and_stop_loss_where_zero_means_off(fake):
    """Record parameters come back whole; profitTargetRatio/stopLossRatio read as Decimals, 0 kept (= disabled)."""
    client = logged_in(fake)
    parameters = client.parameters(1, 101)
    assert parameters["holdNum"] == 10
    assert tp_sl_ratios(parameters) == (Decimal("0.15"), Decimal("0"))
    assert tp_sl_ratios(client.parameters(1, 102)) == (None, None)  # not given by the record


def test_unknown_record_surfaces_the_servers_message(fake):
    """A 404 with a `message` body raises that message."""
    with pytest.raises(FactorCatError) as caught:
        logged_in(fake).parameters(1, 999)
    assert str(caught.value) == "回测记录不存在" and caught.value.status == 404


# --- today's selection ---------------------------------------------------------------


def test_today_selection_reads_kzz_code_or_code_and_normalises(fake):
    """Items carrying kzz_code or code, bare or prefixed, become canonical QMT codes ranked in server order."""
    answer = logged_in(fake).today_selection(101)
    bonds = answer.bonds
    assert answer.trade_date == date(2024, 5, 10) and answer.problems == []

    assert [(bond.rank, bond.code) for bond in bonds] == [
        (1, "113050.SH"),
        (2, "123001.SZ"),
        (3, "128136.SZ"),
        (4, "110059.SH"),
    ]
    assert bonds[0].name == "南银转债" and bonds[0].price == Decimal("123.456")
    assert bonds[1].price == Decimal("108.2")
    assert bonds[2].price is None and bonds[3].price is None  # null and "-" are no price
    assert [bond.trade_date for bond in bonds] == [
        date(2024, 5, 10),
        date(2024, 5, 10),
        None,
        date(2024, 5, 10),
    ]
    assert fake.count("POST", "/bond-selection/today-bond-selection") == 1


def test_today_selection_skips_bad_codes_with_a_log_and_keeps_the_rest(fake, caplog):
    """An ambiguous, empty or malformed item is listed as a problem and logged; a repeat keeps its first place."""
    fake.selections[202] = [
        {"kzz_code": "112345", "name": "某公司债"},  # 112xxx: SZ corporate bond, ambiguous bare code
        {"code": "", "name": "无代码"},
        {"kzz_code": "113050", "name": "南银转债"},
        "not an object",
        {"kzz_code": "113050.SH", "name": "南银转债"},
        {"code": "127045", "name": "牧原转债"},
    ]
    with caplog.at_level(logging.WARNING, logger="rotation.factorcat"):
        answer = logged_in(fake).today_selection(202)

    assert [(bond.rank, bond.code) for bond in answer.bonds] == [(1, "113050.SH"), (2, "127045.SZ")]
    assert [problem.split(":")[0].split(" is")[0] for problem in answer.problems] == [
        "item 1",
        "item 2",
        "item 4",
    ]
    assert "112345" in caplog.text and "twice" in caplog.text


def test_empty_selection_is_an_empty_list(fake):
    """No bonds today is an empty list, not an error (the run refuses it)."""
    fake.selections[303] = []
    assert logged_in(fake).today_selection(303).bonds == []


# --- retries, timeouts, errors -----------------------------------------------------


def test_500_then_200_is_retried_and_succeeds(fake):
    """A transient 500 is retried; the second answer is used."""
    fake.script("/strategies/", ("status", 500, {"detail": "database is busy"}))
    page = logged_in(fake).strategies()
    assert page.total_count == 23
    assert fake.count("GET", "/strategies/") == 2


def test_429_is_retried_after_the_servers_wait(fake):
    """A 429 is retried (honouring a short Retry-After)."""
    fake.script("/strategies/", ("status", 429, {"detail": "Too Many Requests"}, {"Retry-After": "0"}))
    assert logged_in(fake).strategies().total_count == 23
    assert fake.count("GET", "/strategies/") == 2


def test_persistent_5xx_gives_up_after_the_bounded_retries(fake):
    """Three 503s with retries=2: three requests, then the server's message."""
    fake.script("/strategies/", *[("status", 503, {"message": "维护中"})] * 3)
    with pytest.raises(FactorCatError) as caught:
        logged_in(fake, retries=2).strategies()
    assert str(caught.value) == "维护中" and caught.value.status == 503
    assert fake.count("GET", "/strategies/") == 3


def test_400_is_not_retried(fake):
    """A client error will not change on a retry: one request, the server's message."""
    fake.script("/strategies/", ("status", 400, {"detail": "bad page"}))
    with pytest.raises(FactorCatError) as caught:
        logged_in(fake).strategies()
    assert str(caught.value) == "bad page" and caught.value.status == 400
    assert fake.count("GET", "/strategies/") == 1


def test_slow_server_times_out_within_a_bounded_total_time(fake):
    """A server slower than the read timeout fails after (retries + 1) short waits, not a long hang."""
    fake.script("/strategies/", ("sleep", 0.8), ("sleep", 0.8))
    client = logged_in(fake, timeout=(1, 0.2), retries=1, backoff=0.05)
    started = time.monotonic()
    with pytest.raises(FactorCatError) as caught:
        client.strategies()
    elapsed = time.monotonic() - started

    assert elapsed < 0.75
    assert "did not answer in time after 2 attempts" in str(caught.value)
    assert caught.value.status is None
    assert fake.count("GET", "/strategies/") == 2


def test_unreachable_server_is_retried_then_reported_clearly():
    """A refused connection is retried a bounded number of times and then named as unreachable."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens here
    client = FactorCatClient(
        f"http://127.0.0.1:{port}", token="t", timeout=(0.5, 0.5), retries=2, backoff=0.01
    )
    started = time.monotonic()
    with pytest.raises(FactorCatError) as caught:
        client.strategies()
    assert "could not be reached after 3 attempts" in str(caught.value)
    assert time.monotonic() - started < 2


def test_base_url_without_scheme_is_a_clear_error_without_retries():
    """A base URL missing https:// fails at once with a message naming the URL (no network involved)."""
    with pytest.raises(FactorCatError, match="api.example.invalid:8003/strategies/"):
        FactorCatClient("api.example.invalid:8003", token="t", backoff=5).strategies()


@pytest.mark.parametrize(
    ("status", "body", "headers", "message"),
    [
        (400, {"detail": "page must be >= 1"}, {}, "page must be >= 1"),
        (404, {"message": "策略不存在"}, {}, "策略不存在"),
        (403, {"error": "会员已过期"}, {}, "会员已过期"),
        (400, {"msg": "参数错误"}, {}, "参数错误"),
        (400, {"code": 1001, "error": {"message": "bad search"}}, {}, "bad search"),
        (
            422,
            {
                "detail": [
                    {"loc": ["query", "limit"], "msg": "ensure this value is less than or equal to 100"}
                ]
            },
            {},
            "query.limit: ensure this value is less than or equal to 100",
        ),
        (400, "plain words from a proxy", {}, "plain words from a proxy"),
        (
            502,
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
            {"Content-Type": "text/html"},
            "HTTP 502 Bad Gateway from 127.0.0.1",
        ),
        (400, {}, {}, "HTTP 400 Bad Request from 127.0.0.1"),
    ],
)
def test_error_messages_are_surfaced_from_each_style(fake, status, body, headers, message):
    """detail / message / error / msg, FastAPI validation lists, nested errors, text and HTML all give a readable message."""
    fake.script("/strategies/", ("status", status, body, headers))
    with pytest.raises(FactorCatError) as caught:
        logged_in(fake, retries=0).strategies()
    assert str(caught.value) == message
    assert caught.value.status == status


def test_non_json_success_is_a_clear_error(fake):
    """A 200 that is not JSON is reported as such instead of crashing the caller."""
    fake.script("/strategies/", ("status", 200, "<html>captive portal</html>", {"Content-Type": "text/html"}))
    with pytest.raises(FactorCatError, match="not JSON"):
        logged_in(fake).strategies()


# --- TLS ---------------------------------------------------------------------------


def _self_signed_context(tmp_path) -> ssl.SSLContext:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-factor-cat")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_is_verified_by_default_and_turning_it_off_is_logged(tmp_path, caplog):
    """A self-signed certificate is refused by default (not retried); verify_tls=False connects and logs a warning naming the host."""
    fake = FakeFactorCat()
    server = _serve(fake, _self_signed_context(tmp_path))
    try:
        with pytest.raises(FactorCatError, match="TLS connection to 127.0.0.1 failed") as caught:
            FactorCatClient(fake.base_url, retries=2, backoff=0.01, timeout=(2, 2)).login("alice", PASSWORD)
        assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
        assert "turn off TLS verification" in str(caught.value)
        assert fake.count("POST", "/auth/login") == 0  # the handshake failed, nothing was sent

        with caplog.at_level(logging.WARNING, logger="rotation.factorcat"):
            client = FactorCatClient(fake.base_url, verify_tls=False, timeout=(2, 2))
        assert client.login("alice", PASSWORD).username == "alice"
        warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
        assert len(warnings) == 1 and "127.0.0.1" in warnings[0].getMessage()
        assert "OFF" in warnings[0].getMessage()
    finally:
        server.shutdown()
        server.server_close()


def test_verified_client_logs_no_tls_warning(fake, caplog):
    """Verification on (the default) is silent."""
    with caplog.at_level(logging.WARNING, logger="rotation.factorcat"):
        FactorCatClient(fake.base_url)
    assert caplog.records == []


# --- credentials ---------------------------------------------------------------------


@pytest.fixture
def notified(monkeypatch):
    from qmtjq.notifications import notification_render

    sent = []

    def record(event, **kwargs):  # titles and bodies as notify renders them (callables in LANGUAGE_CODE)
        sent.append((event, {name: notification_render(value) for name, value in kwargs.items()}))

    monkeypatch.setattr(credentials, "notify", record)
    return sent


@pytest.fixture
def account(db, fake, settings, notified):
    settings.FIELD_ENCRYPTION_KEY = Fernet.generate_key().decode()
    account = FactorCatAccount.objects.create(name="main", base_url=fake.base_url, username="alice")
    credentials.factorcat_password_set(account=account, password=PASSWORD)
    return account


def store_token(account: FactorCatAccount, token: str) -> None:
    account.token_encrypted = crypto.encrypt(token)
    account.token_expires_at = factorcat.token_expires_at(token)
    account.save()


def test_password_is_stored_encrypted_and_an_empty_one_forgets_it(account):
    """The stored password is ciphertext that decrypts back; setting '' clears it."""
    account.refresh_from_db()
    assert PASSWORD not in account.password_encrypted
    assert crypto.decrypt(account.password_encrypted) == PASSWORD

    credentials.factorcat_password_set(account=account, password="")
    account.refresh_from_db()
    assert account.password_encrypted == ""


def test_token_valid_for_a_day_is_used_without_logging_in(account, fake):
    """A stored token with a day left is reused: no login request."""
    token = fake.issue("alice", timedelta(days=1))
    store_token(account, token)

    client = credentials.factorcat_client_for(account=account)
    assert client.token == token
    assert client.strategies().total_count == 23
    assert fake.count("POST", "/auth/login") == 0


def test_token_expiring_in_five_minutes_is_renewed_with_the_remembered_password(account, fake):
    """Five minutes left (< the 10-minute margin): a new login, a long-term token stored encrypted, the error cleared."""
    store_token(account, fake.issue("alice", timedelta(minutes=5)))
    account.last_error = "old problem"
    account.save(update_fields=["last_error"])
    now = timezone.now()

    client = credentials.factorcat_client_for(account=account, now=now)

    assert fake.count("POST", "/auth/login") == 1
    assert fake.count("POST", "/auth/generate-long-term-token") == 1
    account.refresh_from_db()
    assert crypto.decrypt(account.token_encrypted) == client.token
    assert account.token_expires_at > now + LONG_TTL - timedelta(minutes=1)
    assert account.last_login_at == now and account.last_error == ""
    assert client.today_selection(101).bonds[0].code == "113050.SH"


def test_without_long_term_tokens_the_login_token_is_kept(account, fake):
    """A server without the long-term endpoint (404) still gives a working client with the login token."""
    fake.long_term = False
    client = credentials.factorcat_client_for(account=account)
    account.refresh_from_db()
    assert account.last_error == ""
    assert account.token_expires_at < timezone.now() + LOGIN_TTL + timedelta(minutes=1)
    assert client.strategies().total_count == 23


def test_expiring_token_without_remember_password_raises_and_notifies(account, fake, notified):
    """No remembered password: no login attempt, a clear error recorded and notified."""
    account.remember_password = False
    account.save(update_fields=["remember_password"])
    store_token(account, fake.issue("alice", timedelta(minutes=5)))

    with pytest.raises(FactorCatAuthError, match="no password is remembered"):
        credentials.factorcat_client_for(account=account)
    assert fake.count("POST", "/auth/login") == 0
    account.refresh_from_db()
    assert "no password is remembered" in account.last_error
    assert [event for event, _ in notified] == [EVENT_FACTORCAT_LOGIN_FAILED]


def test_login_failure_records_last_error_and_notifies_without_the_password(account, fake, notified, caplog):
    """A refused login: last_error holds the server's message, one notification keyed by the account and cause, no password anywhere."""
    fake.users["alice"] = "changed on the website"
    caplog.set_level(logging.DEBUG)

    with pytest.raises(FactorCatAuthError) as caught:
        credentials.factorcat_client_for(account=account)

    account.refresh_from_db()
    assert "Incorrect username or password" in account.last_error
    assert "Incorrect username or password" in str(caught.value)
    assert len(notified) == 1
    event, kwargs = notified[0]
    assert event == EVENT_FACTORCAT_LOGIN_FAILED and kwargs["key"] == "main:http-401"
    assert "Incorrect username or password" in kwargs["body"]
    for text in (caplog.text, account.last_error, kwargs["title"], kwargs["body"], str(caught.value)):
        assert PASSWORD not in text


def test_server_errors_during_login_are_retried_with_backoff_then_recorded(
    account, fake, notified, monkeypatch
):
    """Three 503s on login: retried after 0.5 s and 1 s, then a login failure recorded and notified."""
    slept = []
    monkeypatch.setattr(factorcat.time, "sleep", slept.append)
    fake.script("/auth/login", *[("status", 503, {"detail": "upstream down"})] * 3)

    with pytest.raises(FactorCatAuthError, match="upstream down"):
        credentials.factorcat_client_for(account=account)

    assert slept == [0.5, 1.0]
    assert fake.count("POST", "/auth/login") == 3
    account.refresh_from_db()
    assert "upstream down" in account.last_error and len(notified) == 1


def test_with_relogin_logs_in_again_once_after_a_401(account, fake):
    """A token the server revoked (401) is replaced by one new login and the call retried once."""
    store_token(
        account, make_jwt("alice", datetime.now(UTC) + timedelta(days=1))
    )  # looks fine, server refuses it

    total = credentials.with_relogin(account, lambda client: client.strategies().total_count)

    assert total == 23
    assert fake.count("POST", "/auth/login") == 1
    assert fake.count("GET", "/strategies/") == 2


def test_with_relogin_without_remember_password_raises_and_forgets_the_token(account, fake, notified):
    """Without a remembered password a 401 is not retried; the dead token is dropped and the user told."""
    account.remember_password = False
    account.save(update_fields=["remember_password"])
    store_token(account, make_jwt("alice", datetime.now(UTC) + timedelta(days=1)))

    with pytest.raises(FactorCatAuthError, match="refused the stored token"):
        credentials.with_relogin(account, lambda client: client.strategies())
    assert fake.count("POST", "/auth/login") == 0
    account.refresh_from_db()
    assert account.token_encrypted == "" and account.token_expires_at is None
    assert "refused the stored token" in account.last_error and len(notified) == 1


def test_stored_password_under_a_replaced_key_is_a_clear_login_failure(account, fake, settings, notified):
    """After FIELD_ENCRYPTION_KEY is replaced, the old ciphertext is reported (naming the variable), not sent."""
    settings.FIELD_ENCRYPTION_KEY = Fernet.generate_key().decode()
    with pytest.raises(FactorCatAuthError, match="FIELD_ENCRYPTION_KEY"):
        credentials.factorcat_client_for(account=account)
    assert fake.count("POST", "/auth/login") == 0
    account.refresh_from_db()
    assert "FIELD_ENCRYPTION_KEY" in account.last_error and len(notified) == 1


def test_password_and_tokens_never_appear_in_logs_or_reprs(account, fake, caplog):
    """A full login at DEBUG logs neither the password nor a whole token; reprs show at most the last 4 characters."""
    caplog.set_level(logging.DEBUG)
    client = credentials.factorcat_client_for(account=account)
    login = factorcat.LoginResult(access_token=client.token, username="alice", role_name="", expires_at=None)
    account.refresh_from_db()

    texts = [caplog.text, repr(client), repr(login), repr(account), str(account)]
    for text in texts:
        assert PASSWORD not in text
        assert client.token not in text
        assert account.password_encrypted not in text
    assert client.token[-4:] in repr(client)
    assert all(PASSWORD not in path for _, path, _ in fake.calls)
