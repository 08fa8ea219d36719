"""The overview page: login, escaping, staleness badge, language."""

from datetime import timedelta

import pytest
from django.utils import timezone

from positions.tests.factories import StrategyFactory, TargetLineFactory

pytestmark = pytest.mark.django_db


def test_overview_requires_login(client):
    response = client.get("/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_overview_escapes_names(client, staff_user):
    """Strategy and security names are user input: never rendered as HTML (the seed's stored XSS)."""
    evil = "<script>alert(1)</script>"
    line = TargetLineFactory(name=evil, snapshot__strategy__name=evil)
    line.snapshot.strategy.current_snapshot = line.snapshot
    line.snapshot.strategy.save()
    client.force_login(staff_user)
    html = client.get("/").content.decode()
    assert evil not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_overview_totals_and_badges(client, staff_user, settings):
    settings.STRATEGY_STALE_AFTER_HOURS = 24
    fresh = TargetLineFactory(volume=300, snapshot__strategy__name="新鲜")
    stale = TargetLineFactory(volume=200, snapshot__strategy__name="陈旧")
    for line, age in ((fresh, timedelta(hours=1)), (stale, timedelta(hours=30))):
        strategy = line.snapshot.strategy
        strategy.current_snapshot = line.snapshot
        strategy.confirmed_at = timezone.now() - age
        strategy.save()
    StrategyFactory(name="从未上传")
    client.force_login(staff_user)
    html = client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert ">500<" in html  # 300 + 200 of 600000.SH in the total table
    assert html.count('class="badge ok"') == 1
    assert html.count('class="badge warn"') == 1
    assert "no upload yet" in html


def test_overview_is_chinese_by_default(client, staff_user):
    client.force_login(staff_user)
    html = client.get("/").content.decode()
    assert "目标持仓" in html


def test_language_switch_to_english(client, staff_user):
    client.force_login(staff_user)
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    html = client.get("/").content.decode()
    assert "Target positions" in html and "目标持仓" not in html
