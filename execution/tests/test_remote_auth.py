"""Worker credentials: one generic 401 for every client-dependent refusal (the reason is logged and
recorded on the credential), and API keys that rotate with a grace period (two valid keys)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from execution.models import WorkerClient, WorkerKey
from execution.remote.credentials import worker_client_create, worker_client_rotate_key
from positions import tokens

pytestmark = pytest.mark.django_db

FEED = "/api/v1/worker/feed"


@pytest.fixture
def worker(paper_account, rsa_keys):
    client, key = worker_client_create(account=paper_account, public_key_pem=rsa_keys[1])
    return client, key


def _feed(client, **headers):
    return client.get(FEED, **headers)


def _token(private_pem, client_id, **kwargs):
    return tokens.token_sign(private_pem, client_id, version=2, method="GET", path=FEED, **kwargs)


def test_the_stored_key_is_only_a_digest(worker):
    """The key lives in WorkerKey rows as SHA-256, never in clear."""
    credential, key = worker
    (row,) = WorkerKey.objects.filter(client=credential)
    assert row.digest == tokens.api_key_digest(key) and key not in row.digest
    assert row.prefix == key[:10]


def test_every_client_dependent_refusal_is_the_same_401(client, worker, rsa_keys, make_api_client, caplog):
    """Unknown key, unknown id, disabled, v2-only, no public key, bad signature: one answer; reasons in the log."""
    credential, key = worker
    answers = {}
    answers["unknown key"] = _feed(client, HTTP_X_API_KEY="qw_not-a-key")
    answers["unknown id"] = _feed(client, HTTP_X_AUTH_TOKEN=_token(rsa_keys[0], "w-nobody"))
    WorkerClient.objects.filter(pk=credential.pk).update(require_v2=True)
    answers["v2 only"] = _feed(client, HTTP_X_API_KEY=key)
    WorkerClient.objects.filter(pk=credential.pk).update(require_v2=False, enabled=False)
    answers["disabled key"] = _feed(client, HTTP_X_API_KEY=key)
    answers["disabled token"] = _feed(client, HTTP_X_AUTH_TOKEN=_token(rsa_keys[0], credential.client_id))
    WorkerClient.objects.filter(pk=credential.pk).update(enabled=True, public_key="")
    answers["no public key"] = _feed(client, HTTP_X_AUTH_TOKEN=_token(rsa_keys[0], credential.client_id))
    bodies = {why: (r.status_code, r.json()) for why, r in answers.items()}
    assert set(map(str, bodies.values())) == {str((401, {"error": "invalid credentials"}))}, bodies
    credential.refresh_from_db()
    assert "no RSA public key" in credential.last_auth_failure and credential.last_auth_failure_at
    assert "w-nobody" in caplog.text and "disabled" in caplog.text


def test_rotation_keeps_the_old_key_during_the_grace_period(client, worker):
    """After a rotation both keys work; once the grace ends only the new one does."""
    credential, old_key = worker
    new_key = worker_client_rotate_key(client=credential, grace=timedelta(hours=1))
    assert new_key != old_key and new_key.startswith("qw_")
    assert _feed(client, HTTP_X_API_KEY=old_key).status_code == 200
    assert _feed(client, HTTP_X_API_KEY=new_key).status_code == 200
    WorkerKey.objects.filter(digest=tokens.api_key_digest(old_key)).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    refused = _feed(client, HTTP_X_API_KEY=old_key)
    assert refused.status_code == 401 and refused.json() == {"error": "invalid credentials"}
    credential.refresh_from_db()
    assert "expired" in credential.last_auth_failure
    assert _feed(client, HTTP_X_API_KEY=new_key).status_code == 200


def test_rotation_without_grace_retires_the_old_key_at_once(client, worker):
    credential, old_key = worker
    new_key = worker_client_rotate_key(client=credential, grace=timedelta(0))
    assert _feed(client, HTTP_X_API_KEY=old_key).status_code == 401
    assert _feed(client, HTTP_X_API_KEY=new_key).status_code == 200


def test_create_worker_client_command_creates_and_rotates(paper_account, capsys):
    """`manage.py create_worker_client ACCOUNT` prints a key; `--rotate CLIENT_ID` prints a new one."""
    from django.core.management import call_command

    call_command("create_worker_client", paper_account.name)
    first = capsys.readouterr().out
    credential = WorkerClient.objects.get(account=paper_account)
    assert credential.client_id in first and "qw_" in first
    call_command("create_worker_client", "--rotate", credential.client_id, "--grace-hours", "2")
    second = capsys.readouterr().out
    assert "qw_" in second and WorkerKey.objects.filter(client=credential).count() == 2
    old = WorkerKey.objects.filter(client=credential).order_by("id").first()
    assert timedelta(hours=1.9) < old.expires_at - timezone.now() <= timedelta(hours=2)


def test_admin_shows_keys_and_the_last_refusal(client, superuser, worker):
    """The credential's admin page lists both keys during a rotation and the reason of the last 401."""
    from django.urls import reverse

    credential, key = worker
    worker_client_rotate_key(client=credential, grace=timedelta(hours=1))
    WorkerClient.objects.filter(pk=credential.pk).update(enabled=False)
    assert _feed(client, HTTP_X_API_KEY=key).status_code == 401
    client.force_login(superuser)
    changelist = client.get(reverse("admin:execution_workerclient_changelist"), {"q": credential.client_id})
    assert changelist.status_code == 200 and credential.client_id in changelist.content.decode()
    html = client.get(reverse("admin:execution_workerclient_change", args=[credential.pk])).content.decode()
    assert "while the worker credential is disabled" in html
    assert html.count("<code>qw_") == 2 and key not in html
