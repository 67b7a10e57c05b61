"""Browser fixtures: a live server on the test app, and Debian's chromium driven by Playwright.

``live_server`` serves the session's ``_app`` (the same app object, hence the same database, as
the ``app`` and ``make`` fixtures) from a werkzeug server in a daemon thread. ``browser`` launches
``/usr/bin/chromium`` headless: Playwright's own browser download is never used. When chromium is
missing the browser tests skip, unless ``REQUIRE_BROWSER=1`` (CI), where they fail.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}
PASSWORD = "Browser-Pass-1"  # of the users the browser tests create


def sign_in(page, username: str) -> None:
    """Sign in through the form and wait for the home page."""
    from playwright.sync_api import expect

    page.goto("/login")
    page.locator("#username").fill(username)
    page.locator("#password").fill(PASSWORD)
    page.locator("form:has(#password) [type=submit]").click()
    expect(page.locator("[data-testid=home-heading]")).to_be_visible()


def _no_browser(reason: str):
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def live_server(_app):
    server = make_server("127.0.0.1", 0, _app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def _playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - playwright is in requirements-dev.txt
        _no_browser("the playwright package is not installed")
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(_playwright):
    if not CHROMIUM.exists():
        _no_browser(f"{CHROMIUM} is missing (apt-get install chromium chromium-driver)")
    browser = _playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


def _new_page(browser, live_server, **options):
    context = browser.new_context(base_url=live_server, **options)
    context.set_default_timeout(10_000)
    page = context.new_page()
    # Every request the page makes, so a test can assert nothing leaves the machine.
    page.requested_urls = []
    page.on("request", lambda request: page.requested_urls.append(request.url))
    return context, page


# ``app`` comes before the page so the page (and its in-flight requests) closes before the
# ``app`` fixture empties the tables.
@pytest.fixture
def page(app, browser, live_server):
    context, page = _new_page(browser, live_server, viewport=DESKTOP)
    yield page
    context.close()


@pytest.fixture
def phone_page(app, browser, live_server):
    context, page = _new_page(browser, live_server, viewport=PHONE, is_mobile=True, has_touch=True)
    yield page
    context.close()
