"""Chromium, logged in, zh-hans and en, desktop and 390 px: status rows, banner, chart with data, numbers."""

import os
import tempfile
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.utils import timezone

from execution.models import AccountState, EquityPoint, Holding, Round
from execution.tests.test_browser import browser  # noqa: F401  (the shared Chromium fixture)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("QMTJQ_SCREENSHOTS") or tempfile.gettempdir()) / "qmtjq-screenshots"
PO = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"


def _english_msgids_with_chinese() -> set[str]:
    """Catalogue entries whose Chinese differs from the English: seeing the English on a zh page is a miss."""
    return {
        e.msgid for e in polib.pofile(str(PO))
        if e.msgstr and e.msgstr != e.msgid and len(e.msgid) > 12 and "%" not in e.msgid and "{" not in e.msgid
    }


def _seed(account) -> Round:
    now = timezone.now()
    for hours, value in [(6, "1000000"), (4, "1012000"), (2, "1004000"), (0, "1023456.78")]:
        EquityPoint.objects.create(account=account, at=now - timedelta(hours=hours), cash=D(0),
                                   market_value=D(0), total_asset=D(value))
    AccountState.objects.create(account=account, cash=D("1000000"), total_asset=D("1023456.78"), updated_at=now)
    Holding.objects.create(account=account, code="113050.SH", volume=1230, can_use_volume=1230,
                           avg_cost=D("100"), last_price=D("110.123"), market_value=D("135451.29"), updated_at=now)
    return Round.objects.create(
        account=account, trigger="target_changed", status=Round.Status.HELD,
        planned=[{"code": "600000.SH", "side": "buy", "volume": 1000, "limit_price": "10.02", "value": "10020.00",
                  "reason": "increase to target", "price_source": "manual"}],
        message="round trades 10020.00, 40.0% of total assets, above the approval threshold 30.0%",
    )


@pytest.mark.parametrize("language", ["zh-hans", "en"])
@pytest.mark.parametrize("width", [1400, 390])
def test_cockpit_pages_in_chromium(browser, live_server, client, superuser, paper_account, language, width):  # noqa: F811
    """Each page shows the status row, the held banner, the drawn chart and formatted numbers, fully translated."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    round_ = _seed(paper_account)
    client.force_login(superuser)
    browser.set_window_size(width, 1000)
    browser.get(f"{live_server.url}/static/css/qmtjq.css")
    browser.add_cookie({"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value})
    browser.add_cookie({"name": settings.LANGUAGE_COOKIE_NAME, "value": language})
    untranslated = _english_msgids_with_chinese() if language == "zh-hans" else set()
    SHOTS.mkdir(parents=True, exist_ok=True)

    for name, path in [("front", "/"), ("account", "/accounts/p1/"), ("round", f"/rounds/{round_.pk}/"),
                       ]:
        browser.get(live_server.url + path)
        body = browser.find_element(By.TAG_NAME, "body").text
        assert browser.find_elements(By.CSS_SELECTOR, f'.held-banner[data-round="{round_.pk}"]'), name
        if name in ("front", "account"):
            row = browser.find_element(By.CSS_SELECTOR, 'tr.status-row[data-account="p1"]')
            assert row.get_attribute("data-level") in ("ok", "warn", "bad")
            assert ("✖" in row.text or "⚠" in row.text or "✓" in row.text), "level never by colour alone"
        if name == "account":
            chart = browser.find_element(By.ID, "equity-chart")
            WebDriverWait(browser, 10).until(
                lambda b: b.find_element(By.ID, "equity-chart").get_attribute("data-drawn") == "4"
            )
            assert chart.is_displayed() and chart.find_elements(By.CSS_SELECTOR, "svg path")
            assert "1,023,456.78" in body and "110.123" in body and "1,230" in body
        missed = sorted(msgid for msgid in untranslated if msgid in body)
        assert not missed, f"{name}: untranslated {missed[:5]}"
        # Nothing wider than the phone: tables scroll inside their box, the page itself does not.
        overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{name} overflows by {overflow}px at {width}px"
        badges = browser.execute_script(
            "return [...document.querySelectorAll('.badge')].filter(b => b.offsetParent && b.getClientRects().length > 1).length"
        )
        assert badges == 0, f"{name}: a badge wraps"
        browser.save_screenshot(str(SHOTS / f"{name}-{language}-{width}.png"))

    if width == 390:
        nav = browser.find_element(By.CSS_SELECTOR, ".topbar nav")
        assert not nav.is_displayed()
        browser.find_element(By.CSS_SELECTOR, "label.nav-toggle-label").click()
        assert nav.is_displayed()
