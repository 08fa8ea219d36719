"""Chromium loads the cockpit pages (with the ECharts chart), admin and the API docs under the
Content-Security-Policy and reports no violation; the language switch still works without inline JS."""

import pytest
from django.conf import settings
from django.utils import timezone

from execution.tests.test_browser import CHROMEDRIVER, CHROMIUM, _missing
from execution.tests.test_browser_cockpit import _seed
from qmtjq.models import Notification, NotificationChannel
from rotation.models import FactorCatAccount

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def logging_browser(tmp_path):
    """Headless Chromium that keeps its console log (CSP violations are logged there)."""
    if reason := _missing():
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(15)
    try:
        yield driver
    finally:
        driver.quit()


def _violations(browser) -> list[str]:
    return [
        entry["message"]
        for entry in browser.get_log("browser")
        if "Content Security Policy" in entry["message"] or "Content-Security-Policy" in entry["message"]
    ]


def test_pages_load_under_the_policy_without_violations(logging_browser, live_server, client, superuser, paper_account):
    """The chart is drawn (tooltip shown too), admin lists and forms and Swagger UI load: zero CSP reports."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser = logging_browser
    round_ = _seed(paper_account)
    channel = NotificationChannel.objects.create(name="ops", kind="webhook", target="https://hooks.example.com/k")
    notification = Notification.objects.create(
        event="order_rejected", title="rejected", body="600000.SH rejected", created_at=timezone.now(),
        last_seen_at=timezone.now(), deliveries=[{"channel": "ops", "ok": False, "error": "timeout"}],
    )
    factorcat = FactorCatAccount.objects.create(name="fc", username="u", verify_tls=False)
    client.force_login(superuser)
    browser.get(f"{live_server.url}/static/css/qmtjq.css")
    browser.add_cookie({"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value})
    browser.get_log("browser")
    seen = {}
    for path in [
        "/",
        "/accounts/p1/",
        f"/rounds/{round_.pk}/",
        "/orders/",
        "/rotation/",
        "/admin/",
        "/admin/qmtjq/notification/",
        f"/admin/qmtjq/notification/{notification.pk}/change/",
        f"/admin/qmtjq/notificationchannel/{channel.pk}/change/",
        "/admin/rotation/factorcataccount/",
        f"/admin/rotation/factorcataccount/{factorcat.pk}/change/",
        "/admin/execution/brokeraccount/",
        "/api/docs/",
    ]:
        browser.get(live_server.url + path)
        if path == "/accounts/p1/":
            WebDriverWait(browser, 10).until(
                lambda b: b.find_element(By.ID, "equity-chart").get_attribute("data-drawn") == "4"
            )
            chart = browser.find_element(By.ID, "equity-chart")
            ActionChains(browser).move_to_element(chart).perform()
            # The tooltip is drawn from classes (no style attribute): axis label, coloured marker, value.
            row = WebDriverWait(browser, 10).until(
                lambda b: next((r for r in b.find_elements(By.CSS_SELECTOR, ".chart-tip-row") if r.is_displayed()), None)
            )
            marker = row.find_element(By.CSS_SELECTOR, ".chart-tip-marker")
            assert marker.size["width"] == 10 and marker.value_of_css_property("background-color") not in ("", "rgba(0, 0, 0, 0)")
            assert any(ch.isdigit() for ch in row.find_element(By.CSS_SELECTOR, ".chart-tip-value").text)
        if path.startswith("/admin/rotation/factorcataccount/"):
            warning = browser.find_element(By.CSS_SELECTOR, "strong.warning-off")
            assert warning.value_of_css_property("color") == "rgba(186, 33, 33, 1)"
        if path == "/api/docs/":
            WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".swagger-ui .info"))
        seen[path] = _violations(browser)
    assert seen == {path: [] for path in seen}
    # The policy is really enforced and its reports really reach the log: an inline script is refused.
    browser.execute_script(
        "var s = document.createElement('script'); s.textContent = 'window.inlineRan = 1'; document.head.appendChild(s);"
    )
    assert browser.execute_script("return window.inlineRan") is None
    assert any("script-src" in message for message in _violations(browser))


def test_language_switch_submits_without_inline_script(logging_browser, live_server, client, superuser):
    """Choosing English in the header select switches the page, through static JS, with no CSP report."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    browser = logging_browser
    client.force_login(superuser)
    browser.get(f"{live_server.url}/static/css/qmtjq.css")
    browser.add_cookie({"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value})
    browser.add_cookie({"name": settings.LANGUAGE_COOKIE_NAME, "value": "zh-hans"})
    browser.get(live_server.url + "/orders/")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-hans"
    Select(browser.find_element(By.NAME, "language")).select_by_value("en")
    WebDriverWait(browser, 10).until(lambda b: b.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en")
    assert _violations(browser) == []


def test_admin_widgets_and_api_docs_work_without_style_attributes(
    logging_browser, live_server, client, superuser, paper_account
):
    """With style attributes refused: admin's calendar pop-up and select2 autocomplete open, and a Swagger
    operation expands (they style through the CSSOM, which the policy does not govern), with no CSP report."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser = logging_browser
    client.force_login(superuser)
    browser.get(f"{live_server.url}/static/css/qmtjq.css")
    browser.add_cookie(
        {"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value}
    )
    browser.get_log("browser")
    seen = {}

    browser.get(f"{live_server.url}/admin/execution/tradingday/add/")
    browser.find_element(By.CSS_SELECTOR, ".datetimeshortcuts a[id^=calendarlink]").click()
    WebDriverWait(browser, 10).until(lambda b: b.find_element(By.CSS_SELECTOR, ".calendarbox").is_displayed())
    seen["calendar"] = _violations(browser)

    browser.get(f"{live_server.url}/admin/execution/workerclient/add/")
    browser.find_element(By.CSS_SELECTOR, ".select2-selection").click()
    WebDriverWait(browser, 10).until(
        lambda b: "p1"
        in b.execute_script(  # the options are re-rendered as results arrive: read them in one go
            "return Array.from(document.querySelectorAll('.select2-results__option'), o => o.textContent).join('|')"
        )
    )
    seen["autocomplete"] = _violations(browser)

    browser.get(f"{live_server.url}/api/docs/")
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".opblock-summary"))
    browser.find_elements(By.CSS_SELECTOR, ".opblock-summary")[0].click()
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".opblock-body"))
    seen["swagger operation"] = _violations(browser)

    assert seen == {name: [] for name in seen}
