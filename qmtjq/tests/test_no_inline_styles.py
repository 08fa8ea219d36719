"""No page needs an inline style attribute, and the Content-Security-Policy refuses them everywhere.

An attacker who can inject markup (a strategy or bond name that escaped escaping somewhere) can no
longer restyle the page (overlay a fake "approve" button, hide a warning) with `style="..."`.
"""

import re
from decimal import Decimal as D
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from execution.models import Order, Round
from execution.remote.credentials import worker_client_create
from execution.tests.conftest import paper_account  # noqa: F401  (the fixture)
from execution.tests.test_browser_cockpit import _seed
from positions import services as positions_services
from qmtjq.models import Notification, NotificationChannel
from rotation.models import FactorCatAccount
from rotation.services import rotation_create

pytestmark = pytest.mark.django_db

BASE = Path(settings.BASE_DIR)
# A style attribute inside any start tag (not the <style> element, whose blocks are allowed by hash).
STYLE_ATTRIBUTE = re.compile(r"<[a-zA-Z][^<>]*?\sstyle\s*=", re.DOTALL)
STYLE_DIRECTIVES = ("style-src", "style-src-elem", "style-src-attr", "default-src")


def _directives(header: str) -> dict[str, list[str]]:
    return {part.split()[0]: part.split()[1:] for part in (p.strip() for p in header.split(";")) if part}


@pytest.fixture
def seeded(paper_account):  # noqa: F811
    """Rows behind every page and admin column that used to draw with style attributes."""
    round_ = _seed(paper_account)
    Order.objects.create(
        account=paper_account,
        round=round_,
        key="K1",
        code="600000.SH",
        side="buy",
        volume=100,
        limit_price=D("10.02"),
        status=56,
        filled_volume=100,
    )
    Notification.objects.create(
        event="order_rejected",
        title="rejected",
        body="600000.SH rejected",
        created_at=timezone.now(),
        last_seen_at=timezone.now(),
        deliveries=[{"channel": "ops", "ok": True}, {"channel": "mail", "ok": False, "error": "timeout"}],
    )
    NotificationChannel.objects.create(name="ops", kind="webhook", target="https://hooks.example.com/k")
    FactorCatAccount.objects.create(name="fc", username="u", verify_tls=False)
    rotation_create(name="cb-rot", account=paper_account)
    positions_services.api_client_create(name="jq")
    worker_client_create(account=paper_account, name="home PC")
    return round_


def _product_pages(round_: Round) -> list[str]:
    order = Order.objects.get(key="K1")
    return [
        "/",
        "/orders/",
        f"/orders/{order.pk}/",
        "/rounds/",
        f"/rounds/{round_.pk}/",
        "/accounts/",
        "/accounts/p1/",
        "/rotation/",
        "/rotation/cb-rot/",
        "/no-such-page/",
        "/admin/",
        "/admin/login/",
    ]


def _admin_pages() -> list[str]:
    """Every registered model's list, add page and the change page of its first row."""
    pages = []
    for model in admin.site._registry:
        meta = model._meta
        pages.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        try:
            pages.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_add"))
        except NoReverseMatch:
            pass
        first = model.objects.order_by("pk").first()
        if first is not None:
            pages.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[first.pk]))
    return pages


def test_every_product_page_refuses_inline_style_attributes(client, superuser, seeded):
    """Pages, errors, API answers and every admin page send a policy with no inline-style allowance."""
    client.force_login(superuser)
    paths = [*_product_pages(seeded), *_admin_pages(), "/api/docs/", "/api/v1/positions/total"]
    loose = {}
    for path in paths:
        response = client.get(path)
        assert response.status_code < 500, path
        policy = _directives(response["Content-Security-Policy"])
        # Without 'unsafe-inline' (or 'unsafe-hashes') a style="..." attribute is refused.
        allowances = [
            source
            for directive in STYLE_DIRECTIVES
            for source in policy.get(directive, [])
            if source in ("'unsafe-inline'", "'unsafe-hashes'", "*")
        ]
        if allowances or policy.get("style-src-attr") != ["'none'"]:
            loose[path] = allowances or policy.get("style-src-attr")
    assert loose == {}


def test_rendered_pages_carry_no_style_attribute(client, superuser, seeded):
    """The HTML of every page, admin page and key-shown page has no style="..." attribute to refuse."""
    client.force_login(superuser)
    found = {}
    for path in [*_product_pages(seeded), *_admin_pages()]:
        response = client.get(path)
        assert response.status_code < 500, path
        if hits := STYLE_ATTRIBUTE.findall(response.content.decode()):
            found[path] = hits
    # The keys shown once after a rotation (API client and worker credential).
    from execution.models import WorkerClient
    from positions.models import ApiClient

    for url in (
        reverse("admin:positions_apiclient_rotate_key", args=[ApiClient.objects.get().pk]),
        reverse("admin:execution_workerclient_rotate_key", args=[WorkerClient.objects.get().pk]),
    ):
        response = client.post(url, {"grace_hours": "0"})
        assert response.status_code == 200 and "api_key" in response.context
        if hits := STYLE_ATTRIBUTE.findall(response.content.decode()):
            found[url] = hits
    assert found == {}


def _sources() -> list[Path]:
    """Our templates, static files and app code (not vendored libraries, collected static, tests)."""
    skip = {"vendor", "tests", "migrations"}
    files = []
    for root in ("templates", "static", "qmtjq", "positions", "execution", "rotation"):
        for pattern in ("*.html", "*.py", "*.js"):
            for path in (BASE / root).rglob(pattern):
                if skip.isdisjoint(path.relative_to(BASE).parts):
                    files.append(path)
    assert len(files) > 50  # the scan really sees the code
    return files


def test_sources_build_no_style_attribute():
    """Templates, admin display helpers (format_html) and our JavaScript style through classes only."""
    offenders = []
    js_attribute = re.compile(r"""setAttribute\(\s*["']style["']|style\s*=\s*["']""")
    for path in _sources():
        text = path.read_text(encoding="utf-8")
        if STYLE_ATTRIBUTE.search(text) or (path.suffix == ".js" and js_attribute.search(text)):
            offenders.append(str(path.relative_to(BASE)))
    assert offenders == []


def test_source_scan_can_fail(tmp_path):
    """The pattern the scans use really matches the attribute forms we removed."""
    for markup in ('<pre style="margin: 0">', "<strong class='x' style='color: red'>", '<code\n  style="a">'):
        assert STYLE_ATTRIBUTE.search(markup)
    for markup in (
        "<style>p { margin: 0 }</style>",
        '<link rel="stylesheet" href="x.css">',
        '<div data-style="x">',
    ):
        assert not STYLE_ATTRIBUTE.search(markup)


def test_admin_state_columns_use_classes(superuser, client, seeded):
    """The Factor Cat 'TLS OFF' warning and notification deliveries keep their look through admin.css."""
    client.force_login(superuser)
    account = FactorCatAccount.objects.get()
    changelist = client.get(reverse("admin:rotation_factorcataccount_changelist")).content.decode()
    change = client.get(reverse("admin:rotation_factorcataccount_change", args=[account.pk])).content.decode()
    assert '<strong class="warning-off">' in changelist and '<strong class="warning-off">' in change
    notification = Notification.objects.get()
    page = client.get(reverse("admin:qmtjq_notification_change", args=[notification.pk])).content.decode()
    assert '<pre class="admin-json">' in page
    css = (BASE / "static" / "css" / "admin.css").read_text(encoding="utf-8")
    assert ".warning-off" in css and "pre.admin-json" in css and "#api-key.api-key-shown" in css
