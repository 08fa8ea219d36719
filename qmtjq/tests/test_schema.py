"""The OpenAPI schema and docs page are served to staff only, with local assets."""

import pytest

pytestmark = pytest.mark.django_db


def test_schema_for_staff(client, staff_user):
    client.force_login(staff_user)
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    text = response.content.decode()
    for path in ["/api/v1/positions/update", "/api/v1/positions/total", "/api/v1/auth/info"]:
        assert path in text


def test_docs_page_uses_local_assets(client, staff_user):
    """No CDN: the trading PC may have no internet."""
    client.force_login(staff_user)
    html = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in html
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html


@pytest.mark.parametrize("url", ["/api/schema/", "/api/docs/"])
def test_schema_hidden_from_anonymous(client, url):
    response = client.get(url)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_schema_generates_without_warnings():
    """`spectacular --fail-on-warn` passes: every view and auth scheme is described."""
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    assert "X-Auth-Token" in out.getvalue()
