"""Two real web processes on one database share what must be shared (issue 12).

Each server is `python -m qmtjq.web --workers 1` (granian) on its own port,
both on one SQLite file, once with the default database cache and once with
`CACHE_URL=redis://…` (the real Redis server; .ci/run starts one, and without
it those cases skip). The test sends each request to a chosen process: a token
replayed on the other process, a reused nonce, the rate limit, a duplicate
snapshot_id, and a disabled or rotated key (refused on both within one second)
all hold across processes.
"""

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings

from positions import tokens
from qmtjq.tests.redis_server import redis_or_skip

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.name != "posix", reason="granian runs several processes on Linux/macOS only"),
]

BASE_DIR = Path(settings.BASE_DIR)
ALL = "/api/v1/positions/all"
UPDATE = "/api/v1/positions/update"

SETUP = """
import json, sys
import django
django.setup()
from positions import services
from positions.models import ApiClient
spec = json.loads(sys.argv[1])
if spec["do"] == "create":
    client, key = services.api_client_create(
        name=spec["name"], public_key_pem=spec["public_key"], rate_limit_per_minute=spec["rate"]
    )
    print(json.dumps({"client_id": client.client_id, "api_key": key}))
elif spec["do"] == "disable":
    services.api_client_set_enabled(client=ApiClient.objects.get(client_id=spec["client_id"]), enabled=False)
elif spec["do"] == "rotate":
    key = services.api_client_rotate_key(client=ApiClient.objects.get(client_id=spec["client_id"]))
    print(json.dumps({"api_key": key}))
"""


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


REDIS_CACHE_URL = os.environ.get("QMTJQ_TEST_REDIS_CACHE_URL", "redis://127.0.0.1:6379/13")


@pytest.fixture(scope="module", params=["database cache", "redis cache"])
def site(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("two-processes")
    env = {k: v for k, v in os.environ.items() if k not in ("CACHE_URL", "DJANGO_SETTINGS_MODULE", "DEBUG")}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
        SECRET_KEY="two-process-test-secret-key-only-for-this-test",
        DJANGO_SETTINGS_MODULE="qmtjq.settings",
        ALLOWED_HOSTS="127.0.0.1",
        LOG_LEVEL="ERROR",
    )
    if request.param == "redis cache":
        redis_or_skip(REDIS_CACHE_URL).flushdb()  # this test's own database: no versions left from before
        env["CACHE_URL"] = REDIS_CACHE_URL
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=BASE_DIR,
        env=env,
        check=True,
        capture_output=True,
    )

    def admin(**spec) -> dict:
        done = subprocess.run(
            [sys.executable, "-c", SETUP, json.dumps(spec)],
            cwd=BASE_DIR,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        lines = done.stdout.strip().splitlines()
        return json.loads(lines[-1]) if lines else {}

    servers, bases = [], []
    for _ in range(2):
        port = _free_port()
        servers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "qmtjq.web",
                    "--port",
                    str(port),
                    "--workers",
                    "1",
                    "--threads",
                    "2",
                    "--stop-on-stdin-eof",
                ],
                cwd=BASE_DIR,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
        bases.append(f"http://127.0.0.1:{port}")
    try:
        for base, server in zip(bases, servers, strict=True):
            deadline = time.monotonic() + 60
            while True:
                assert server.poll() is None, "web server exited while starting"
                try:
                    if requests.get(base + "/api/v1/auth/info", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                assert time.monotonic() < deadline, "web server did not start"
                time.sleep(0.2)
        yield bases, admin
    finally:
        for server in servers:
            server.stdin.close()  # the way serve's exit stops them
        for server in servers:
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@pytest.fixture
def new_client(site, rsa_keys):
    _, admin = site

    def make(rate=0):
        return admin(do="create", name="two processes", public_key=rsa_keys[1], rate=rate)

    return make


def _get(base, **headers):
    return requests.get(base + ALL, headers=headers, timeout=10)


def test_a_token_used_on_one_process_is_a_replay_on_the_other(site, new_client, rsa_keys):
    (a, b), _ = site
    client_id = new_client()["client_id"]
    v2 = tokens.token_sign(rsa_keys[0], client_id, version=2, method="GET", path=ALL)
    assert _get(a, **{"X-Auth-Token": v2}).status_code == 200
    refused = _get(b, **{"X-Auth-Token": v2})
    assert refused.status_code == 401 and "replay" in refused.json()["error"]
    v1 = tokens.token_sign(rsa_keys[0], client_id)
    assert _get(b, **{"X-Auth-Token": v1}).status_code == 200
    assert "replay" in _get(a, **{"X-Auth-Token": v1}).json()["error"]


def test_a_nonce_used_on_one_process_is_refused_on_the_other(site, new_client, rsa_keys):
    (a, b), _ = site
    client_id = new_client()["client_id"]
    first = tokens.token_sign(
        rsa_keys[0], client_id, version=2, method="GET", path=ALL, nonce="nonce-shared-1"
    )
    second = tokens.token_sign(
        rsa_keys[0],
        client_id,
        version=2,
        method="GET",
        path=ALL,
        nonce="nonce-shared-1",
        timestamp=time.time() - 1,
    )
    assert json.loads(base64.b64decode(first)) != json.loads(base64.b64decode(second))  # two different tokens
    assert _get(a, **{"X-Auth-Token": first}).status_code == 200
    refused = _get(b, **{"X-Auth-Token": second})
    assert refused.status_code == 401 and "replay" in refused.json()["error"]


def test_the_rate_limit_counts_requests_on_both_processes(site, new_client):
    (a, b), _ = site
    key = new_client(rate=4)["api_key"]
    # The server processes read their own clock: keep the six requests inside one minute-long
    # window, since across a boundary the sliding window rightly lets one more through.
    into_window = time.time() % 60
    if into_window > 50:
        time.sleep(61 - into_window)
    answers = [_get(base, **{"X-API-Key": key}).status_code for base in (a, b, a, b)]
    assert answers == [200, 200, 200, 200]
    assert _get(a, **{"X-API-Key": key}).status_code == 429
    assert _get(b, **{"X-API-Key": key}).status_code == 429


def test_a_snapshot_id_stored_by_one_process_is_a_duplicate_on_the_other(site, new_client):
    (a, b), _ = site
    key = new_client()["api_key"]
    body = {
        "strategy_name": "two-process idempotency",
        "positions": [{"code": "600000.XSHG", "volume": 100, "cost": 9.5}],
        "snapshot_id": "same-upload-1",
    }
    first = requests.post(a + UPDATE, json=body, headers={"X-API-Key": key}, timeout=10).json()
    again = requests.post(b + UPDATE, json=body, headers={"X-API-Key": key}, timeout=10).json()
    assert first["duplicate"] is False and again["duplicate"] is True
    assert again["update_time"] == first["update_time"]


def _refused_everywhere_within(bases, key, seconds: float) -> float:
    started = time.monotonic()
    pending = set(bases)
    while pending and time.monotonic() - started < seconds + 1:
        for base in list(pending):
            if _get(base, **{"X-API-Key": key}).status_code == 401:
                pending.discard(base)
        time.sleep(0.05)
    assert not pending, f"still accepted by {pending}"
    return time.monotonic() - started


def test_a_disabled_client_is_refused_by_every_process_within_a_second(site, new_client):
    bases, admin = site
    created = new_client()
    for base in bases:  # both processes have the key in their cache now
        assert _get(base, **{"X-API-Key": created["api_key"]}).status_code == 200
    admin(do="disable", client_id=created["client_id"])
    assert _refused_everywhere_within(bases, created["api_key"], 1.0) < 1.0


def test_a_rotated_key_is_refused_by_every_process_within_a_second(site, new_client):
    bases, admin = site
    created = new_client()
    for base in bases:
        assert _get(base, **{"X-API-Key": created["api_key"]}).status_code == 200
    new_key = admin(do="rotate", client_id=created["client_id"])["api_key"]
    assert _refused_everywhere_within(bases, created["api_key"], 1.0) < 1.0
    assert all(_get(base, **{"X-API-Key": new_key}).status_code == 200 for base in bases)


@pytest.mark.parametrize("site", ["redis cache"], indirect=True)
def test_with_cache_url_redis_the_key_versions_live_in_redis(site, new_client):
    """CACHE_URL=redis://… really moves the shared credential version to Redis (not a silent fallback)."""
    bases, admin = site
    connection = redis_or_skip(REDIS_CACHE_URL)
    connection.flushdb()
    created = new_client()
    admin(do="disable", client_id=created["client_id"])
    assert any(b"credentials:version" in key for key in connection.keys("*"))
    assert _refused_everywhere_within(bases, created["api_key"], 1.0) < 1.0
