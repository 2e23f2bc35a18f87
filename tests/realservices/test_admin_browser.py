"""The operator's admin flows in a real browser (Debian's chromium driven by Playwright) against the
PostgreSQL + Redis fleet: register a client with grants, find it, revoke, and watch every worker.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time

import pytest

from .servers import require
from .test_multiprocess import BOUND

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    require("chromium", shutil.which("chromium") or shutil.which(CHROMIUM))
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover
        require("playwright (pip install -e '.[test]')", False)
    with sync_playwright() as playwright:
        # Never `playwright install`: the system's chromium, no download.
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium") or CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000
        )
        yield browser
        browser.close()


@pytest.fixture
def admin_page(browser, redis_deployment):
    context = browser.new_context(base_url=redis_deployment.workers[0].url)
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "admin-pw")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    yield page
    context.close()


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def run_action(page, label: str, client_id: str) -> float:
    page.goto("/admin/drf_m2m_auth/client/?q=" + client_id)
    page.check(f"tr:has-text('{client_id}') input.action-select")
    page.select_option("select[name=action]", label=label)
    page.click("button[name=index]")
    page.wait_for_selector("ul.messagelist li.success")
    return time.monotonic()


def test_operator_registers_grants_and_revokes_in_the_admin(admin_page, redis_deployment):
    page, fleet = admin_page, redis_deployment
    client_id = "client_id_of_service_b"

    # Register the client with two grants through the inline (the second row needs the admin's JS).
    page.goto("/admin/drf_m2m_auth/client/add/")
    page.fill("#id_client_id", client_id)
    page.fill("#id_name", "Service B")
    page.fill("#id_grants-0-resource", "orders")
    page.click("text=Add another resource grant")
    page.fill("#id_grants-1-resource", "invoices")
    page.click("input[name=_save]")
    page.wait_for_selector("ul.messagelist li.success")
    fleet.wait_everywhere("/orders/", fleet.token(client_id), 200, time.monotonic())

    # Find it: search, the active filter, and the resources column.
    page.fill("#searchbar", "service_b")
    page.press("#searchbar", "Enter")
    page.wait_for_url("**/?q=service_b")
    row = page.locator(f"#result_list tr:has-text('{client_id}')")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("invoices, orders")
    page.click("#changelist-filter a:text-is('Yes')")
    page.wait_for_url("**is_active__exact=1**")
    expect(page.locator(f"#result_list tr:has-text('{client_id}')")).to_have_count(1)

    token = fleet.token(client_id)
    every = len(fleet.workers)
    assert fleet.statuses("/orders/", token) == [200] * every
    assert fleet.statuses("/payroll/", token) == [403] * every

    # "Revoke all tokens now": every worker answers 401 to the old token within the bound.
    since = run_action(page, "Revoke all tokens now", client_id)
    assert "Revoked every token of 1 client" in page.inner_text("ul.messagelist")
    times = fleet.wait_everywhere("/orders/", token, 401, since)
    assert max(times.values()) <= BOUND, times
    fresh = fleet.fresh_token(client_id)
    assert fleet.statuses("/orders/", fresh) == [200] * every

    # Deactivate, then the inactive filter shows it; activate again.
    since = run_action(page, "Deactivate (reject all their tokens)", client_id)
    fleet.wait_everywhere("/orders/", fresh, 401, since)
    page.goto("/admin/drf_m2m_auth/client/?is_active__exact=0")
    expect(page.locator(f"#result_list tr:has-text('{client_id}')")).to_have_count(1)
    since = run_action(page, "Activate", client_id)
    fleet.wait_everywhere("/orders/", fresh, 200, since)

    # Every change is in the object's admin history (LogEntry), with who did it.
    page.goto("/admin/drf_m2m_auth/client/?q=" + client_id)
    page.click(f"#result_list a:text-is('{client_id}')")
    page.click("a.historylink")
    history = page.inner_text("#change-history")
    for entry in ("Added.", "Revoked all tokens issued before", "Deactivated.", "Activated."):
        assert entry in history
    assert "admin" in history


def test_operator_revokes_one_token_by_jti(admin_page, redis_deployment):
    page, fleet = admin_page, redis_deployment
    fleet.register("svc-browser-jti", "orders")
    leaked = fleet.token("svc-browser-jti", jti="jti seen in a log, é")  # any jti can be revoked
    other = fleet.token("svc-browser-jti")
    assert fleet.statuses("/orders/", leaked) == [200] * len(fleet.workers)

    exp = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    page.goto("/admin/drf_m2m_auth/revokedtoken/add/")
    page.fill("#id_exp_0", exp.strftime("%Y-%m-%d"))
    page.fill("#id_exp_1", exp.strftime("%H:%M:%S"))
    page.click("input[name=_save]")  # no jti: refused with a clear message
    expect(page.locator(".errorlist")).to_contain_text("This field is required")
    page.fill("#id_jti", "jti seen in a log, é")
    page.fill("#id_client_id", "svc-browser-jti")
    page.click("input[name=_save]")
    page.wait_for_selector("ul.messagelist li.success")
    since = time.monotonic()
    times = fleet.wait_everywhere("/orders/", leaked, 401, since)
    assert max(times.values()) <= BOUND, times
    assert fleet.statuses("/orders/", other) == [200] * len(fleet.workers)
    page.goto("/admin/drf_m2m_auth/revokedtoken/?state=active&q=svc-browser-jti")
    expect(page.locator("#result_list tr:has-text('jti seen in a log, é')")).to_have_count(1)
