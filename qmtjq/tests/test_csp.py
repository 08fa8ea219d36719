"""Every response carries a strict Content-Security-Policy; the pages need no inline script."""

import re
from pathlib import Path

import pytest
from django.conf import settings

from execution.tests.conftest import paper_account  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db

PAGES = [
    "/",
    "/orders/",
    "/rounds/",
    "/accounts/",
    "/accounts/p1/",
    "/rotation/",
    "/admin/",
    "/admin/qmtjq/notification/",
    "/admin/qmtjq/notificationchannel/add/",
    "/api/docs/",
    "/no-such-page/",
    "/api/v1/positions/total",
]


def _directives(header: str) -> dict[str, list[str]]:
    return {
        part.split()[0]: part.split()[1:] for part in (p.strip() for p in header.split(";")) if part
    }


@pytest.mark.parametrize("path", PAGES)
def test_every_response_has_a_strict_policy(client, superuser, paper_account, path):  # noqa: F811
    """Pages, admin, API docs, errors and JSON answers all send the policy: scripts from this site only."""
    client.force_login(superuser)
    response = client.get(path)
    assert response.status_code < 500
    policy = _directives(response["Content-Security-Policy"])
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in policy["style-src"]


def test_login_page_has_the_policy_too(client):
    """Anonymous pages (the admin login) are covered as well."""
    response = client.get("/admin/login/")
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_templates_hold_no_inline_script_or_event_handler():
    """Inline JavaScript would need 'unsafe-inline': every script is a static file."""
    offenders = []
    for template in Path(settings.BASE_DIR, "templates").rglob("*.html"):
        text = template.read_text(encoding="utf-8")
        if re.search(r"\son[a-z]+\s*=", text) or re.search(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)", text):
            offenders.append(template.name)
        if "javascript:" in text:
            offenders.append(template.name)
    assert not offenders


def test_admin_inline_style_block_is_allowed_by_its_hash(client, superuser, monkeypatch):
    """Django admin's change list <style> (lists without action bars) is allowed by hash, nothing wider."""
    import base64
    import hashlib

    from django.contrib import admin

    from qmtjq.models import Notification

    model_admin = admin.site._registry[Notification]
    monkeypatch.setattr(model_admin, "actions_on_top", False)
    monkeypatch.setattr(model_admin, "actions_on_bottom", False)
    client.force_login(superuser)
    response = client.get("/admin/qmtjq/notification/")
    block = re.search(r"<style>(.*?)</style>", response.content.decode(), re.DOTALL).group(1)
    digest = base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()
    policy = _directives(response["Content-Security-Policy"])
    assert f"'sha256-{digest}'" in policy["style-src-elem"]
