"""In headless Chromium: wrong admin passwords lock the login, the page says so, a superuser unlocks it."""

import pytest
from axes.models import AccessAttempt

from execution.tests.test_browser import browser  # noqa: F401 - the shared Chromium fixture

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _log_in(driver, base_url, username, password):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{base_url}/admin/login/")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(password)
    submit = driver.find_element(By.CSS_SELECTOR, "input[type=submit], button[type=submit]")
    submit.click()
    # click() returns before the answer arrives: wait until the form's page is gone, so the
    # next step (another attempt, a look at the page) never overtakes this login.
    WebDriverWait(driver, 10).until(lambda d: _gone(submit))


def _gone(element) -> bool:
    from selenium.common.exceptions import WebDriverException

    try:
        element.is_enabled()
    except WebDriverException:  # stale, or Chromium's "node does not belong to the document"
        return True
    return False


def _wait_for(driver, by, value, seconds=10):
    """The elements once at least one is on the page, or [] after `seconds`."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, seconds).until(lambda d: d.find_elements(by, value))
    except TimeoutException:
        return []


def test_browser_login_lockout_and_unlock(browser, live_server, staff_user, settings):  # noqa: F811
    """Five wrong passwords, then the right one shows the lock page; after a superuser unlocks, login works."""
    from selenium.webdriver.common.by import By

    for _ in range(settings.AXES_FAILURE_LIMIT):
        _log_in(browser, live_server.url, "staff", "wrong-password")
    _log_in(browser, live_server.url, "staff", "pw-for-tests-only")
    # click() returns before the answer has replaced the form: give the new page time to arrive.
    locked = _wait_for(browser, By.ID, "login-locked")
    assert locked, browser.page_source[:500]
    assert "/admin/login/" in browser.current_url
    browser.get(f"{live_server.url}/admin/")
    assert "/admin/login/" in browser.current_url  # not logged in

    AccessAttempt.objects.all().delete()  # what a superuser's delete in admin does
    _log_in(browser, live_server.url, "staff", "pw-for-tests-only")
    tools = _wait_for(browser, By.ID, "user-tools")
    assert not browser.find_elements(By.ID, "login-locked")
    assert tools, browser.page_source[:500]
