"""API keys expire and rotate with a grace period: two valid keys, no downtime (issue 11)."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from positions import services
from positions.models import ApiKey
from qmtjq.credential_cache import credentials_changed

ALL = "/api/v1/positions/all"


def status(client, key):
    return client.get(ALL, HTTP_X_API_KEY=key).status_code


def test_rotation_with_grace_keeps_both_keys_valid_until_the_grace_ends(client, make_api_client):
    """During the grace period old and new key both work; after it only the new one."""
    api_client, old = make_api_client()
    new = services.api_client_rotate_key(client=api_client, grace=timedelta(hours=2))
    assert status(client, old) == 200 and status(client, new) == 200
    # The grace period ends (a raw update stands in for time passing; a row
    # written behind the services' back must publish the change like they do).
    ApiKey.objects.filter(prefix=old[:10]).update(expires_at=timezone.now() - timedelta(seconds=1))
    credentials_changed()
    assert status(client, old) == 401 and status(client, new) == 200
    api_client.refresh_from_db()
    assert "expired" in api_client.last_auth_failure


def test_rotation_without_grace_stops_the_old_key_at_once(client, make_api_client):
    api_client, old = make_api_client()
    new = services.api_client_rotate_key(client=api_client)
    assert status(client, old) == 401 and status(client, new) == 200


def test_rotation_never_extends_a_key_that_expires_sooner(make_api_client):
    api_client, old = make_api_client()
    soon = timezone.now() + timedelta(minutes=5)
    ApiKey.objects.filter(client=api_client).update(expires_at=soon)
    services.api_client_rotate_key(client=api_client, grace=timedelta(days=3))
    assert ApiKey.objects.get(prefix=old[:10]).expires_at == soon


def test_key_lifetime_sets_an_expiry_and_expired_keys_are_refused(client, make_api_client):
    """A client with a key lifetime gets keys that expire; an expired key is a generic 401."""
    api_client, key = make_api_client(api_key_lifetime_days=30)
    row = ApiKey.objects.get(client=api_client)
    assert timedelta(days=29) < row.expires_at - timezone.now() <= timedelta(days=30)
    ApiKey.objects.filter(pk=row.pk).update(expires_at=timezone.now())
    response = client.get(ALL, HTTP_X_API_KEY=key)
    assert response.status_code == 401 and response.json()["error"] == "invalid credentials"


def test_revoke_stops_every_key(client, make_api_client):
    api_client, old = make_api_client()
    new = services.api_client_rotate_key(client=api_client, grace=timedelta(hours=1))
    assert services.api_client_revoke_keys(client=api_client) == 2
    assert status(client, old) == 401 and status(client, new) == 401


def test_admin_rotation_with_grace_and_key_table(admin_client, client, make_api_client):
    """The admin rotate page asks for the grace hours; the change page lists both valid keys."""
    api_client, old = make_api_client()
    url = reverse("admin:positions_apiclient_rotate_key", args=[api_client.pk])
    assert b'name="grace_hours"' in admin_client.get(url).content
    response = admin_client.post(url, {"grace_hours": "24"})
    assert response.status_code == 200 and b'id="api-key"' in response.content
    assert ApiKey.objects.filter(client=api_client).count() == 2
    assert status(client, old) == 200
    change = admin_client.get(reverse("admin:positions_apiclient_change", args=[api_client.pk])).content
    assert change.count(b"<code>qk_") == 2
    assert admin_client.post(url, {"grace_hours": "-1"}).status_code == 200  # form error, nothing rotated
    assert ApiKey.objects.filter(client=api_client).count() == 2


def test_admin_shows_the_last_auth_failure(admin_client, client, make_api_client):
    api_client, key = make_api_client(require_v2=True)
    assert client.get(ALL, HTTP_X_API_KEY=key).status_code == 401
    change = admin_client.get(reverse("admin:positions_apiclient_change", args=[api_client.pk]))
    assert "requires v2" in change.content.decode()


def test_create_api_client_command_rotates_with_grace(client, make_api_client):
    api_client, old = make_api_client()
    out = StringIO()
    call_command(
        "create_api_client", "--rotate", api_client.client_id, "--grace-hours", "1", "--json", stdout=out
    )
    new = json.loads(out.getvalue())["api_key"]
    assert status(client, old) == 200 and status(client, new) == 200
    assert ApiKey.objects.get(prefix=old[:10]).expires_at <= timezone.now() + timedelta(hours=1)


def test_create_api_client_command_key_lifetime(db):
    out = StringIO()
    call_command("create_api_client", "脚本", "--key-lifetime-days", "7", "--json", stdout=out)
    row = ApiKey.objects.get()
    assert row.expires_at is not None and row.client.api_key_lifetime_days == 7


@pytest.mark.parametrize(
    "args",
    [["--rotate", "nobody"], ["--rotate", "x", "--grace-hours", "-1"], ["x", "--key-lifetime-days", "0"], []],
)
def test_create_api_client_command_errors(make_api_client, args):
    from django.core.management.base import CommandError

    make_api_client(client_id="x")
    with pytest.raises(CommandError):
        call_command("create_api_client", *args, stdout=StringIO())


def test_creating_a_client_logs_a_new_key_not_a_rotation(make_api_client, caplog, client, superuser):
    """A new client's first key is issued, not rotated: the log says so (command, service and admin)."""
    caplog.set_level("INFO", logger="positions.services")
    make_api_client(client_id="jq-new")
    client.force_login(superuser)
    client.post(
        reverse("admin:positions_apiclient_add"),
        {"name": "admin-made", "client_id": "jq-admin", "enabled": "on", "rate_limit_per_minute": "60"},
    )
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "rotated" in m]
    assert any("issued for new client jq-new" in m for m in messages)
    assert any("issued for new client jq-admin" in m for m in messages)
