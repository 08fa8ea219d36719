"""A real browser (Debian's headless Chromium) filters the orders page and follows its CSV link."""

import csv
import io
import os
import shutil
from decimal import Decimal as D

import pytest
from django.conf import settings

from execution.models import BrokerAccount, Order

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _missing() -> str | None:
    if not shutil.which("chromium") or not os.path.exists(CHROMIUM):
        return f"chromium is not installed ({CHROMIUM})"
    if not os.path.exists(CHROMEDRIVER):
        return f"chromedriver is not installed ({CHROMEDRIVER})"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -r requirements-dev.txt)"
    return None


@pytest.fixture
def browser(tmp_path):
    if reason := _missing():
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the browser test (apt-get install chromium chromium-driver)")
        pytest.skip(f"{reason}: apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        # Without these Chromium calls Google's services and hangs on a closed network.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(15)
    driver.set_script_timeout(15)
    try:
        yield driver
    finally:
        driver.quit()


def test_browser_filters_orders_and_downloads_the_same_rows_as_csv(browser, live_server, client, staff_user):
    """In Chromium: filter the orders page to sells, see only sells, and the CSV link returns those same sells."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    account = BrokerAccount.objects.create(name="p1", account_id="P1")
    for code, side in [
        ("600000.SH", "buy"),
        ("000001.SZ", "sell"),
        ("600036.SH", "buy"),
        ("300750.SZ", "sell"),
        ("113050.SH", "buy"),
    ]:
        Order.objects.create(account=account, code=code, side=side, volume=100, limit_price=D("10"))
    sells = {o.pk: o.code for o in Order.objects.filter(side="sell")}

    client.force_login(staff_user)
    browser.get(f"{live_server.url}/static/css/qmtjq.css")  # any page of the host, to own its cookies
    browser.add_cookie(
        {"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value}
    )

    browser.get(f"{live_server.url}/orders/")
    assert len(browser.find_elements(By.CSS_SELECTOR, "tr.order")) == 5
    Select(browser.find_element(By.NAME, "side")).select_by_value("sell")
    browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    WebDriverWait(browser, 10).until(lambda b: "side=sell" in b.current_url)

    rows = browser.find_elements(By.CSS_SELECTOR, "tr.order")
    shown = {
        int(row.get_attribute("data-order")): row.find_element(By.CSS_SELECTOR, "td.code").text
        for row in rows
    }
    assert shown == sells

    link = browser.find_element(By.ID, "csv-export").get_attribute("href")
    assert "side=sell" in link
    # Fetched by the page itself, with the browser's session: what a click downloads.
    download = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        fetch(arguments[0], {credentials: "same-origin"})
          .then(r => r.arrayBuffer().then(b => done({
            status: r.status, type: r.headers.get("content-type"), bytes: Array.from(new Uint8Array(b))})))
          .catch(e => done({status: 0, error: String(e)}));
        """,
        link,
    )
    assert download["status"] == 200, download
    assert download["type"].startswith("text/csv")
    body = bytes(download["bytes"])
    assert body.startswith(b"\xef\xbb\xbf")
    _header, *csv_rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert sorted(row[2] for row in csv_rows) == sorted(sells.values())
