"""Admin smoke tests and the API client tools (add, rotate key, download, disable)."""

import re

import pytest
from django.urls import reverse

from positions import tokens
from positions.models import ApiClient
from positions.tests.factories import TargetLineFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


@pytest.mark.parametrize("model", ["strategy", "targetsnapshot", "upload", "apiclient"])
def test_changelist_with_search(admin_client, model, make_api_client):
    TargetLineFactory()
    make_api_client()
    response = admin_client.get(reverse(f"admin:positions_{model}_changelist"), {"q": "600000"})
    assert response.status_code == 200


def test_strategy_add_and_change_pages(admin_client):
    line = TargetLineFactory()
    assert admin_client.get(reverse("admin:positions_strategy_add")).status_code == 200
    url = reverse("admin:positions_strategy_change", args=[line.snapshot.strategy.pk])
    assert admin_client.get(url).status_code == 200


def test_snapshot_is_read_only_with_lines_inline(admin_client):
    line = TargetLineFactory(code="000001.SZ", jq_code="000001.XSHE")
    assert admin_client.get(reverse("admin:positions_targetsnapshot_add")).status_code == 403
    response = admin_client.get(reverse("admin:positions_targetsnapshot_change", args=[line.snapshot.pk]))
    assert response.status_code == 200
    assert b"000001.XSHE" in response.content
    assert b'name="_save"' not in response.content


def test_snapshot_rule_exits_read_as_codes_with_names(admin_client):
    """Codes the strategy's rules closed are listed with their names, not as a JSON list."""
    from qmtjq.models import SecurityName

    SecurityName.objects.create(code="113050.SH", name="南银转债")
    line = TargetLineFactory()
    line.snapshot.rule_exits = ["113050.SH"]
    line.snapshot.save()
    page = admin_client.get(reverse("admin:positions_targetsnapshot_change", args=[line.snapshot.pk])).content.decode()
    assert "113050.SH" in page and "南银转债" in page
    assert '[&quot;113050.SH&quot;]' not in page and '["113050.SH"]' not in page


def test_add_api_client_shows_key_once_and_it_works(admin_client, client, rsa_keys):
    response = admin_client.post(
        reverse("admin:positions_apiclient_add"),
        {
            "name": "聚宽",
            "client_id": "jq-main",
            "enabled": "on",
            "public_key": rsa_keys[1],
            "all_strategies": "on",
            "can_create_strategies": "on",
            "rate_limit_per_minute": "60",
        },
    )
    assert response.status_code == 200
    key = re.search(rb'id="api-key"[^>]*>([^<]+)<', response.content).group(1).decode()
    assert "no-store" in response["Cache-Control"]
    api_client = ApiClient.objects.get(client_id="jq-main")
    assert api_client.api_keys.get().digest == tokens.api_key_digest(key)
    # The change page never shows it again.
    change = admin_client.get(reverse("admin:positions_apiclient_change", args=[api_client.pk]))
    assert key.encode() not in change.content
    assert client.get("/api/v1/positions/all", HTTP_X_API_KEY=key).status_code == 200


def test_add_api_client_rejects_bad_public_key(admin_client):
    response = admin_client.post(
        reverse("admin:positions_apiclient_add"),
        {
            "name": "x",
            "client_id": "x1",
            "public_key": "-----BEGIN PUBLIC KEY-----\nnope",
            "rate_limit_per_minute": "60",
        },
    )
    assert response.status_code == 200
    assert b"X.509" in response.content
    assert not ApiClient.objects.exists()


def test_add_api_client_rejects_bad_client_id(admin_client):
    response = admin_client.post(
        reverse("admin:positions_apiclient_add"),
        {"name": "x", "client_id": "has space", "rate_limit_per_minute": "60"},
    )
    assert response.status_code == 200 and not ApiClient.objects.exists()


def test_rotate_key_confirms_then_replaces(admin_client, client, make_api_client):
    api_client, old_key = make_api_client()
    url = reverse("admin:positions_apiclient_rotate_key", args=[api_client.pk])
    confirm = admin_client.get(url)
    assert confirm.status_code == 200 and b"csrfmiddlewaretoken" in confirm.content
    assert (
        client.get("/api/v1/positions/all", HTTP_X_API_KEY=old_key).status_code == 200
    )  # GET changed nothing
    response = admin_client.post(url, {"grace_hours": "0"})
    new_key = re.search(rb'id="api-key"[^>]*>([^<]+)<', response.content).group(1).decode()
    assert new_key != old_key
    assert client.get("/api/v1/positions/all", HTTP_X_API_KEY=old_key).status_code == 401
    assert client.get("/api/v1/positions/all", HTTP_X_API_KEY=new_key).status_code == 200


def test_download_client_file_is_filled_in(admin_client, make_api_client):
    api_client, key = make_api_client(client_id="jq-dl")
    response = admin_client.get(
        reverse("admin:positions_apiclient_client_file", args=[api_client.pk]), {"download": "1"}
    )
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="jq_qmt_api.py"'
    source = response.content.decode()
    assert 'API_URL = "http://testserver"' in source
    assert 'CLIENT_ID = "jq-dl"' in source
    assert key not in source
    compile(source, "jq_qmt_api.py", "exec")


def test_disable_action(admin_client, client, make_api_client):
    api_client, key = make_api_client()
    response = admin_client.post(
        reverse("admin:positions_apiclient_changelist"),
        {"action": "disable_clients", "_selected_action": [api_client.pk]},
    )
    assert response.status_code == 302
    api_client.refresh_from_db()
    assert api_client.enabled is False
    assert client.get("/api/v1/positions/all", HTTP_X_API_KEY=key).status_code == 401


def test_admin_requires_staff(client):
    response = client.get(reverse("admin:positions_apiclient_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_client_file_needs_view_permission(client, make_api_client, django_user_model):
    """A staff user without rights on API clients cannot download a client's file."""
    api_client, _ = make_api_client()
    staff = django_user_model.objects.create_user("nosy", password="pw-for-tests-only", is_staff=True)
    client.force_login(staff)
    response = client.get(reverse("admin:positions_apiclient_client_file", args=[api_client.pk]))
    assert response.status_code == 403


def test_client_file_uses_public_base_url(admin_client, make_api_client, settings):
    """With PUBLIC_BASE_URL set the downloaded file talks to it, not to the address the admin browses from."""
    settings.PUBLIC_BASE_URL = "https://qmt.example.com/sync/"
    api_client, _ = make_api_client(client_id="jq-pub")
    url = reverse("admin:positions_apiclient_client_file", args=[api_client.pk])
    source = admin_client.get(url, {"download": "1"}).content.decode()
    assert 'API_URL = "https://qmt.example.com/sync"' in source
    page = admin_client.get(url)
    assert page.status_code == 200 and "https://qmt.example.com/sync" in page.content.decode()
    assert b'url-warning' not in page.content


@pytest.mark.parametrize(
    "base", ["", "http://127.0.0.1:8000", "http://192.168.1.20:8000", "http://localhost", "http://[::1]:8000"]
)
def test_download_page_warns_when_url_is_not_reachable_from_joinquant(admin_client, make_api_client, settings, base):
    """A loopback or private address cannot be reached from JoinQuant's cloud: the download page says so."""
    settings.PUBLIC_BASE_URL = base
    api_client, _ = make_api_client()
    page = admin_client.get(reverse("admin:positions_apiclient_client_file", args=[api_client.pk]))
    assert page.status_code == 200
    assert b'url-warning' in page.content
    assert b"PUBLIC_BASE_URL" in page.content
    assert b"?download=1" in page.content


def test_url_reachability_rules():
    """Public names and addresses pass; loopback, private, link-local and dotless host names do not."""
    from positions.public_url import url_unreachable_reason

    assert url_unreachable_reason("https://qmt.example.com") is None
    assert url_unreachable_reason("http://8.8.8.8:8000") is None
    for url in ("http://127.0.0.1", "http://10.0.0.5", "http://172.16.3.4", "http://169.254.1.1",
                "http://localhost:8000", "http://testserver", "http://[::1]", "http://[fd00::1]", "not a url"):
        assert url_unreachable_reason(url), url
