"""Worker credentials: `create_worker_client` and the admin (list, create, disable, rotate)."""

import io
import json

import pytest
import requests
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from execution.models import WorkerClient, WorkerKey
from execution.remote.credentials import worker_client_create
from qmtjq import keys

pytestmark = pytest.mark.django_db(transaction=True)


def _key_valid(client, raw: str) -> bool:
    """Only the key's digest is stored; a key is valid for this credential when its row is."""
    row, problem = keys.key_find(model=WorkerKey, raw=raw)
    return row is not None and row.client_id == client.pk and problem == ""


def _run(*args) -> str:
    out = io.StringIO()
    call_command("create_worker_client", *args, stdout=out)
    return out.getvalue()


def test_command_prints_the_key_once_and_stores_it_hashed(paper_account):
    """The key is printed with the .env lines; only its SHA-256 is stored."""
    text = _run("p1")
    client = WorkerClient.objects.get(account=paper_account)
    key = next(line.strip() for line in text.splitlines() if line.strip().startswith("qw_"))
    assert _key_valid(client, key)
    assert not WorkerKey.objects.filter(digest=key).exists() and f"QMTJQ_WORKER_CLIENT_ID={client.client_id}" in text


def test_command_json_and_public_key(paper_account, rsa_keys, tmp_path):
    """--json prints one object a script reads; --public-key enables signed tokens."""
    pem = tmp_path / "pc.pub.pem"
    pem.write_text(rsa_keys[1], encoding="ascii")
    made = json.loads(_run("p1", "--public-key", str(pem), "--require-v2", "--json"))
    client = WorkerClient.objects.get(client_id=made["client_id"])
    assert made["account"] == "p1" and made["rsa_key"] and client.require_v2
    assert client.public_key.startswith("-----BEGIN PUBLIC KEY-----")
    assert _key_valid(client, made["api_key"])


def test_command_refuses_bad_input(paper_account, tmp_path):
    """Unknown account, unreadable or invalid key file, v2 without a key: clear errors, nothing stored."""
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key", encoding="ascii")
    for args, words in [
        (["nope"], "no broker account"),
        (["p1", "--public-key", str(tmp_path / "missing.pem")], "cannot read"),
        (["p1", "--public-key", str(bad)], "--public-key"),
        (["p1", "--require-v2"], "--require-v2 needs"),
    ]:
        with pytest.raises(CommandError, match=words):
            _run(*args)
    assert not WorkerClient.objects.exists()


def test_admin_changelist_add_shows_key_once(admin_client, paper_account):
    """The list opens with a search; adding a credential shows its key once and stores the digest."""
    worker_client_create(account=paper_account, name="old PC")
    url = reverse("admin:execution_workerclient_changelist")
    assert admin_client.get(url, {"q": "old"}).status_code == 200
    assert admin_client.get(reverse("admin:execution_workerclient_add")).status_code == 200
    response = admin_client.post(
        reverse("admin:execution_workerclient_add"),
        {"name": "home PC", "account": paper_account.pk, "client_id": "", "enabled": "on", "public_key": ""},
    )
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    client = WorkerClient.objects.get(name="home PC")
    key = response.context["api_key"]
    assert key.startswith("qw_") and _key_valid(client, key)
    assert client.client_id.startswith("w-p1-")
    assert (
        admin_client.get(reverse("admin:execution_workerclient_change", args=[client.pk])).status_code == 200
    )


def test_admin_rotate_with_grace_then_disable(admin_client, paper_account, live_server):
    """Rotation asks first; during the grace period both keys sign in, with 0 hours the old one stops;
    disabling is an action."""
    client, old_key = worker_client_create(account=paper_account)
    url = reverse("admin:execution_workerclient_rotate_key", args=[client.pk])
    assert admin_client.get(url).status_code == 200
    assert _key_valid(client, old_key) and client.api_keys.count() == 1  # a GET changes nothing
    new_key = admin_client.post(url, {"grace_hours": 24}).context["api_key"]
    feed = f"{live_server.url}/api/v1/worker/feed"
    assert [
        requests.get(feed, headers={"X-API-Key": k}, timeout=10).status_code for k in (old_key, new_key)
    ] == [
        200,
        200,
    ]
    newest = admin_client.post(url, {"grace_hours": 0}).context["api_key"]
    codes = [
        requests.get(feed, headers={"X-API-Key": k}, timeout=10).status_code
        for k in (old_key, new_key, newest)
    ]
    assert codes == [401, 401, 200]
    admin_client.post(
        reverse("admin:execution_workerclient_changelist"),
        {"action": "disable_clients", "_selected_action": [client.pk]},
    )
    client.refresh_from_db()
    assert not client.enabled
    assert requests.get(feed, headers={"X-API-Key": newest}, timeout=10).status_code == 401


def test_worker_pages_open(admin_client, paper_account):
    """The read-only remote status and quote lists open."""
    for name in ("workerstatus", "workerquote"):
        assert admin_client.get(reverse(f"admin:execution_{name}_changelist"), {"q": "x"}).status_code == 200
