"""Every way an API caller can fail to authenticate, and the ways it succeeds."""

import base64
import json
import time

import pytest
from django.urls import reverse

from positions import tokens
from positions.models import SeenToken, TargetSnapshot

UPDATE = "/api/v1/positions/update"


def body_for(strategy="策略A", positions=None) -> bytes:
    positions = [{"code": "600000.XSHG", "volume": 100, "cost": 10.0}] if positions is None else positions
    return json.dumps({"strategy_name": strategy, "positions": positions}).encode()


def post(client, body: bytes, **headers):
    return client.generic("POST", UPDATE, body, content_type="application/json", **headers)


def v2_token(private_pem, client_id, body, *, method="POST", path=UPDATE, **kwargs):
    return tokens.token_sign(private_pem, client_id, version=2, method=method, path=path, body=body, **kwargs)


@pytest.fixture
def api(make_api_client):
    client, key = make_api_client()
    return client, key


# --- success ----------------------------------------------------------------


def test_api_key_authenticates(client, api):
    """A valid X-API-Key uploads and is reported as api_key."""
    api_client, key = api
    response = post(client, body_for(), HTTP_X_API_KEY=key)
    assert response.status_code == 200, response.json()
    assert response.json()["auth_type"] == "api_key"
    assert response.json()["client_id"] == api_client.client_id


def test_v1_token_authenticates(client, api, rsa_keys):
    """The jq2qmt v1 token (client_id + timestamp) is accepted."""
    api_client, _ = api
    token = tokens.token_sign(rsa_keys[0], api_client.client_id)
    response = post(client, body_for(), HTTP_X_AUTH_TOKEN=token)
    assert response.status_code == 200, response.json()
    assert response.json()["auth_type"] == "rsa_v1"


def test_v2_token_authenticates(client, api, rsa_keys):
    api_client, _ = api
    body = body_for()
    response = post(client, body, HTTP_X_AUTH_TOKEN=v2_token(rsa_keys[0], api_client.client_id, body))
    assert response.status_code == 200, response.json()
    assert response.json()["auth_type"] == "rsa_v2"


def test_v2_token_on_get_with_query_and_unicode_path(client, api, rsa_keys):
    """v2 binds the percent-encoded path and query string as sent on the wire."""
    api_client, key = api
    post(client, body_for("策略A"), HTTP_X_API_KEY=key)
    path = "/api/v1/positions/total?strategies=%E7%AD%96%E7%95%A5A"
    token = v2_token(rsa_keys[0], api_client.client_id, b"", method="GET", path=path)
    response = client.get(path, HTTP_X_AUTH_TOKEN=token)
    assert response.status_code == 200, response.json()
    assert response.json()["strategies"] == ["策略A"]


# --- failures ---------------------------------------------------------------


def assert_401(response, fragment):
    assert response.status_code == 401, response.content
    assert fragment in response.json()["error"]
    assert not TargetSnapshot.objects.exists()


def assert_generic_401(response, api_client=None, reason=None):
    """The caller sees one answer; the reason is on the client's admin page (when there is a client)."""
    assert_401(response, "invalid credentials")
    assert response.json()["error"] == "invalid credentials"
    if api_client is not None:
        api_client.refresh_from_db()
        assert reason in api_client.last_auth_failure
        assert api_client.last_auth_failure_at is not None


def test_missing_credentials(client, api):
    response = post(client, body_for())
    assert_401(response, "authentication required")
    assert "X-API-Key" in response["WWW-Authenticate"]


def test_wrong_api_key(client, api):
    assert_generic_401(post(client, body_for(), HTTP_X_API_KEY="qk_not-a-real-key"))


def test_empty_api_key(client, api):
    assert_401(post(client, body_for(), HTTP_X_API_KEY=""), "empty")


def test_both_headers_rejected(client, api, rsa_keys):
    api_client, key = api
    token = tokens.token_sign(rsa_keys[0], api_client.client_id)
    assert_401(post(client, body_for(), HTTP_X_API_KEY=key, HTTP_X_AUTH_TOKEN=token), "not both")


@pytest.mark.parametrize(
    ("token", "fragment"),
    [
        ("not base64 !!", "base64"),
        (base64.b64encode(b"not json").decode(), "JSON"),
        (base64.b64encode(b'["a"]').decode(), "auth_data"),
        (base64.b64encode(json.dumps({"auth_data": {"client_id": "x"}}).encode()).decode(), "signature"),
        (
            base64.b64encode(
                json.dumps({"auth_data": {"timestamp": 1}, "signature": "AA=="}).encode()
            ).decode(),
            "client_id",
        ),
        (
            base64.b64encode(
                json.dumps(
                    {"auth_data": {"client_id": "x", "timestamp": "now"}, "signature": "AA=="}
                ).encode()
            ).decode(),
            "timestamp",
        ),
        ("A" * 9000, "too long"),
    ],
)
def test_malformed_token(client, api, token, fragment):
    assert_401(post(client, body_for(), HTTP_X_AUTH_TOKEN=token), fragment)


def test_v2_token_missing_a_field(client, api, rsa_keys):
    """A token claiming v2 must carry all of method, path, body_sha256 and nonce."""
    api_client, _ = api
    header = json.loads(base64.b64decode(v2_token(rsa_keys[0], api_client.client_id, body_for())))
    del header["auth_data"]["nonce"]
    token = base64.b64encode(json.dumps(header).encode()).decode()
    assert_401(post(client, body_for(), HTTP_X_AUTH_TOKEN=token), "nonce")


def test_forged_signature(client, api):
    """A token signed by another key does not verify."""
    api_client, _ = api
    other_private, _ = tokens.key_pair_generate(2048)
    token = tokens.token_sign(other_private, api_client.client_id)
    assert_generic_401(
        post(client, body_for(), HTTP_X_AUTH_TOKEN=token), api_client, "signature does not verify"
    )


def test_tampered_auth_data(client, api, rsa_keys):
    """Changing auth_data after signing (here: the timestamp) breaks the signature."""
    api_client, _ = api
    header = json.loads(base64.b64decode(tokens.token_sign(rsa_keys[0], api_client.client_id)))
    header["auth_data"]["timestamp"] -= 1
    token = base64.b64encode(json.dumps(header).encode()).decode()
    assert_generic_401(
        post(client, body_for(), HTTP_X_AUTH_TOKEN=token), api_client, "signature does not verify"
    )


def test_unknown_client_id(client, api, rsa_keys, caplog):
    """An unknown client id gets the same answer as a bad signature; the log says why."""
    assert_generic_401(post(client, body_for(), HTTP_X_AUTH_TOKEN=tokens.token_sign(rsa_keys[0], "nobody")))
    assert "unknown client_id 'nobody'" in caplog.text


def test_expired_token(client, api, rsa_keys):
    api_client, _ = api
    token = tokens.token_sign(rsa_keys[0], api_client.client_id, timestamp=time.time() - 320)
    assert_401(post(client, body_for(), HTTP_X_AUTH_TOKEN=token), "expired")


def test_future_token(client, api, rsa_keys):
    """The seed accepted future-dated tokens forever; we reject beyond the skew."""
    api_client, _ = api
    token = tokens.token_sign(rsa_keys[0], api_client.client_id, timestamp=time.time() + 320)
    assert_401(post(client, body_for(), HTTP_X_AUTH_TOKEN=token), "future")


def test_skew_is_configurable(client, api, rsa_keys, settings):
    api_client, _ = api
    settings.API_TOKEN_MAX_SKEW_SECONDS = 30
    token = tokens.token_sign(rsa_keys[0], api_client.client_id, timestamp=time.time() - 60)
    assert_401(post(client, body_for(), HTTP_X_AUTH_TOKEN=token), "expired")


def test_token_within_skew_accepted(client, api, rsa_keys):
    api_client, _ = api
    token = tokens.token_sign(rsa_keys[0], api_client.client_id, timestamp=time.time() - 250)
    assert post(client, body_for(), HTTP_X_AUTH_TOKEN=token).status_code == 200


def test_replayed_v1_token(client, api, rsa_keys):
    """The same token twice: the second is rejected even though it is still in its window."""
    api_client, _ = api
    token = tokens.token_sign(rsa_keys[0], api_client.client_id)
    assert post(client, body_for(), HTTP_X_AUTH_TOKEN=token).status_code == 200
    response = post(client, body_for("策略B"), HTTP_X_AUTH_TOKEN=token)
    assert response.status_code == 401
    assert "replay" in response.json()["error"]


def test_replayed_v2_nonce(client, api, rsa_keys):
    """A v2 nonce is single-use even with a fresh signature."""
    api_client, _ = api
    body = body_for()
    first = v2_token(rsa_keys[0], api_client.client_id, body, nonce="nonce-0001")
    second = v2_token(rsa_keys[0], api_client.client_id, body, nonce="nonce-0001")
    assert post(client, body, HTTP_X_AUTH_TOKEN=first).status_code == 200
    response = post(client, body, HTTP_X_AUTH_TOKEN=second)
    assert response.status_code == 401 and "replay" in response.json()["error"]


def test_seen_tokens_expire_with_window(client, api, rsa_keys):
    """Replay entries live for twice the skew window and are purged after."""
    from datetime import timedelta

    from django.utils import timezone

    from positions.tasks import seen_tokens_purge

    api_client, _ = api
    post(client, body_for(), HTTP_X_AUTH_TOKEN=tokens.token_sign(rsa_keys[0], api_client.client_id))
    seen = SeenToken.objects.get()
    assert timedelta(seconds=590) < seen.expires_at - timezone.now() <= timedelta(seconds=600)
    assert seen_tokens_purge() == 0
    SeenToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert seen_tokens_purge() == 1


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"method": "PUT"}, "signed for PUT"),
        ({"path": "/api/v1/positions/other"}, "another path"),
        ({"body": b'{"strategy_name": "other", "positions": []}'}, "body_sha256"),
    ],
)
def test_v2_token_bound_to_request(client, api, rsa_keys, change, fragment):
    """A v2 token signed for another method, path or body is refused."""
    api_client, _ = api
    body = body_for()
    kwargs = {"method": "POST", "path": UPDATE, "body": body, **change}
    token = tokens.token_sign(rsa_keys[0], api_client.client_id, version=2, **kwargs)
    assert_401(post(client, body, HTTP_X_AUTH_TOKEN=token), fragment)


def test_disabled_client_api_key(client, api):
    api_client, key = api
    api_client.enabled = False
    api_client.save()
    assert_generic_401(post(client, body_for(), HTTP_X_API_KEY=key), api_client, "disabled")


def test_disabled_client_token(client, api, rsa_keys):
    api_client, _ = api
    api_client.enabled = False
    api_client.save()
    assert_generic_401(
        post(client, body_for(), HTTP_X_AUTH_TOKEN=tokens.token_sign(rsa_keys[0], api_client.client_id)),
        api_client,
        "disabled",
    )


def test_client_without_public_key_cannot_use_tokens(client, make_api_client, rsa_keys):
    api_client, _ = make_api_client(rsa=False)
    token = tokens.token_sign(rsa_keys[0], api_client.client_id)
    assert_generic_401(post(client, body_for(), HTTP_X_AUTH_TOKEN=token), api_client, "no RSA public key")


@pytest.mark.parametrize("scheme", ["api_key", "v1"])
def test_require_v2_rejects_weaker_schemes(client, make_api_client, rsa_keys, scheme):
    api_client, key = make_api_client(require_v2=True)
    if scheme == "api_key":
        response = post(client, body_for(), HTTP_X_API_KEY=key)
    else:
        response = post(
            client, body_for(), HTTP_X_AUTH_TOKEN=tokens.token_sign(rsa_keys[0], api_client.client_id)
        )
    assert_generic_401(response, api_client, "v2")


def test_require_v2_accepts_v2(client, make_api_client, rsa_keys):
    api_client, _ = make_api_client(require_v2=True)
    body = body_for()
    assert (
        post(client, body, HTTP_X_AUTH_TOKEN=v2_token(rsa_keys[0], api_client.client_id, body)).status_code
        == 200
    )


# --- scope and reads ---------------------------------------------------------


def test_out_of_scope_upload_is_403(client, make_api_client):
    _, key = make_api_client(strategy_names=["允许的"])
    response = post(client, body_for("别的策略"), HTTP_X_API_KEY=key)
    assert response.status_code == 403
    assert "may not use strategy" in response.json()["error"]
    assert not TargetSnapshot.objects.exists()


def test_in_scope_upload_allowed(client, make_api_client):
    _, key = make_api_client(strategy_names=["允许的"])
    assert post(client, body_for("允许的"), HTTP_X_API_KEY=key).status_code == 200


def test_out_of_scope_read_is_403(client, make_api_client):
    _, writer_key = make_api_client("writer")
    post(client, body_for("别的策略"), HTTP_X_API_KEY=writer_key)
    _, key = make_api_client("reader", strategy_names=["允许的"])
    response = client.get("/api/v1/positions/strategy/别的策略", HTTP_X_API_KEY=key)
    assert response.status_code == 403
    response = client.get("/api/v1/positions/total?strategies=别的策略", HTTP_X_API_KEY=key)
    assert response.status_code == 403


def test_scoped_listing_shows_only_allowed(client, make_api_client):
    _, writer_key = make_api_client("writer")
    post(client, body_for("别的策略"), HTTP_X_API_KEY=writer_key)
    post(client, body_for("允许的"), HTTP_X_API_KEY=writer_key)
    _, key = make_api_client("reader", strategy_names=["允许的"])
    names = [
        s["strategy_name"]
        for s in client.get("/api/v1/positions/all", HTTP_X_API_KEY=key).json()["strategies"]
    ]
    assert names == ["允许的"]
    total = client.get("/api/v1/positions/total", HTTP_X_API_KEY=key).json()
    assert total["strategies"] == ["允许的"]


def test_reads_require_authentication(client, db):
    for url in ["/api/v1/positions/all", "/api/v1/positions/total", "/api/v1/positions/strategy/x"]:
        assert client.get(url).status_code == 401


def test_staff_session_can_read_but_not_write(client, staff_user, make_api_client):
    _, key = make_api_client()
    post(client, body_for(), HTTP_X_API_KEY=key)
    client.force_login(staff_user)
    assert client.get("/api/v1/positions/all").status_code == 200
    response = post(client, body_for("策略B"))
    assert response.status_code in (401, 403)
    assert "error" in response.json()


def test_non_staff_session_cannot_read(client, django_user_model, db):
    user = django_user_model.objects.create_user("plain", password="pw-for-tests-only")
    client.force_login(user)
    assert client.get("/api/v1/positions/all").status_code in (401, 403)


def test_auth_info_is_public_and_secret_free(client, api):
    api_client, key = api
    response = client.get(reverse("api:api-auth-info"))
    assert response.status_code == 200
    text = response.content.decode()
    assert "X-Auth-Token" in text and "X-API-Key" in text
    assert key not in text and api_client.client_id not in text


def test_api_key_stored_hashed(api):
    api_client, key = api
    (stored,) = api_client.api_keys.all()
    assert key not in stored.digest and stored.digest == tokens.api_key_digest(key)


def test_rate_limit_429(client, make_api_client):
    """Past its per-minute budget a client gets 429 with a JSON error and Retry-After."""
    from django.core.cache import cache

    cache.clear()
    _, key = make_api_client(rate_limit_per_minute=3)
    codes = [client.get("/api/v1/positions/all", HTTP_X_API_KEY=key).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    response = client.get("/api/v1/positions/all", HTTP_X_API_KEY=key)
    assert "rate limit" in response.json()["error"]
    assert int(response["Retry-After"]) > 0
