"""Every page at phone width (390 px) in headless Chromium: the nav collapses, nothing sticks out of the
screen (tables scroll inside their box), and no badge or cell is squeezed to a character per line."""

import os
import tempfile
from pathlib import Path

import pytest
from django.conf import settings

from execution.models import Order, OrderStatus
from execution.tests.test_browser import browser  # noqa: F401  (the shared Chromium fixture)
from execution.tests.test_browser_cockpit import _seed
from rotation.tests.test_pages import rotation  # noqa: F401  (a rotation with holdings)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("QMTJQ_SCREENSHOTS") or tempfile.gettempdir()) / "qmtjq-screenshots"

# Text squeezed into a column so narrow that each line holds one or two characters.
SQUEEZED_JS = """
const bad = [];
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
while (walker.nextNode()) {
  const node = walker.currentNode, text = node.textContent.trim();
  const el = node.parentElement;
  if (text.length < 3 || !el || !el.offsetParent) continue;
  const range = document.createRange(); range.selectNodeContents(node);
  const rects = [...range.getClientRects()].filter(r => r.width > 0);
  const tops = new Set(rects.map(r => Math.round(r.top)));
  const size = parseFloat(getComputedStyle(el).fontSize);
  if (tops.size >= 3 && Math.max(...rects.map(r => r.width)) <= 2.2 * size) bad.push(text.slice(0, 30));
}
document.querySelectorAll('.badge, .level, .mode-badge, a.button, button').forEach(b => {
  if (b.offsetParent && b.getClientRects().length > 1) bad.push('wrapped: ' + b.textContent.trim().slice(0, 30));
});
return bad;
"""

# The innermost elements that reach past the right edge, for the failure message.
WIDE_JS = """
const w = window.innerWidth;
return [...document.querySelectorAll('body *')].filter(e => {
  const r = e.getBoundingClientRect();
  return r.right > w + 1 && e.offsetParent && ![...e.children].some(c => c.getBoundingClientRect().right > w + 1);
}).slice(0, 4).map(e => e.tagName.toLowerCase() + '.' + e.className + ' ' + e.textContent.trim().slice(0, 25));
"""


def _pages(account, round_, order, rotation_strategy):
    return [
        ("front", "/"),
        ("orders", "/orders/"),
        ("order", f"/orders/{order.pk}/"),
        ("rounds", "/rounds/"),
        ("round", f"/rounds/{round_.pk}/"),
        ("approve", f"/rounds/{round_.pk}/approve/"),
        ("accounts", "/accounts/"),
        ("account", f"/accounts/{account.name}/"),
        ("rotations", "/rotation/"),
        ("rotation", f"/rotation/{rotation_strategy.name}/"),
        ("missing", "/no-such-page/"),
        ("admin", "/admin/"),
        ("admin-accounts", "/admin/execution/brokeraccount/"),
        ("admin-account", f"/admin/execution/brokeraccount/{account.pk}/change/"),
        ("admin-round", f"/admin/execution/round/{round_.pk}/change/"),
        ("admin-orders", "/admin/execution/order/"),
        ("admin-rotation", f"/admin/rotation/rotationstrategy/{rotation_strategy.pk}/change/"),
        ("admin-snapshots", "/admin/positions/targetsnapshot/"),
    ]


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_every_page_fits_a_phone(browser, live_server, client, superuser, paper_account, rotation, language):  # noqa: F811
    from selenium.webdriver.common.by import By

    round_ = _seed(paper_account)
    order = Order.objects.create(
        account=paper_account, round=round_, code="600000.SH", side=Order.Side.BUY, volume=1000,
        limit_price="10.02", status=OrderStatus.PART_SUCC, filled_volume=300,
        message="已成 (56)",
    )
    client.force_login(superuser)
    browser.set_window_size(390, 844)
    browser.get(f"{live_server.url}/static/css/qmtjq.css")
    browser.add_cookie({"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value})
    browser.add_cookie({"name": settings.LANGUAGE_COOKIE_NAME, "value": language})
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems = []
    for name, path in _pages(paper_account, round_, order, rotation):
        browser.get(live_server.url + path)
        browser.save_screenshot(str(SHOTS / f"phone-{name}-{language}.png"))
        overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        if overflow > 1:
            problems.append(f"{name}: page {overflow}px wider than the phone: {browser.execute_script(WIDE_JS)}")
        squeezed = browser.execute_script(SQUEEZED_JS)
        if squeezed:
            problems.append(f"{name}: squeezed {squeezed[:4]}")
        if not path.startswith("/admin/"):
            nav = browser.find_element(By.CSS_SELECTOR, ".topbar nav")
            if nav.is_displayed():
                problems.append(f"{name}: nav not collapsed")
            if browser.find_element(By.CSS_SELECTOR, ".topbar").size["height"] > 120:
                problems.append(f"{name}: header taller than 120px")
    assert not problems, "\n".join(problems)
