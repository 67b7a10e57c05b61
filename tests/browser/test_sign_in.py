"""Sign in, sign out, phone width and language switch, in a real browser.

The pages are Chinese by default, so elements are found by id, test id or form action, never by
English text.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

PASSWORD = "Browser-Pass-1"
CHINESE = re.compile(r"^zh\b")  # zh-CN (or zh-Hans-CN): the default language


def _path(url: str) -> str:
    return urlsplit(url).path


def _assert_all_local(page, live_server: str) -> None:
    assert page.requested_urls, "the page made no requests at all"
    foreign = [
        url
        for url in page.requested_urls
        if not (url.startswith(live_server + "/") or url.startswith(("data:", "about:")))
    ]
    assert foreign == [], f"requests left the machine: {foreign}"


def _sign_in(page, username: str, password: str = PASSWORD) -> None:
    page.locator("#username").fill(username)
    page.locator("#password").fill(password)
    page.locator("form:has(#password) [type=submit]").click()


def _scroll_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def _expect_login_page(page) -> None:
    expect(page).to_have_url(re.compile(r"/login(\?.*)?$"))
    expect(page.locator("#username")).to_be_visible()
    expect(page.locator("#password")).to_be_visible()
    expect(page.locator("[data-testid=home-heading]")).to_have_count(0)


def _expect_home(page, live_server: str) -> None:
    expect(page.locator("[data-testid=home-heading]")).to_be_visible()
    expect(page).to_have_url(live_server + "/")


@pytest.mark.parametrize("role", ["finance_office", "bureau", "advisor"])
def test_sign_in_lands_on_role_home(page, live_server, make, role):
    user = make.user(role, password=PASSWORD)

    page.goto("/")
    _expect_login_page(page)
    _sign_in(page, user.username)

    _expect_home(page, live_server)
    page.wait_for_load_state("load")
    _assert_all_local(page, live_server)


def test_wrong_password_stays_on_login(page, live_server, make):
    user = make.user("advisor", password=PASSWORD)

    page.goto("/login")
    _sign_in(page, user.username, "not-the-password")

    _expect_login_page(page)
    expect(page.locator(".invalid-feedback, .alert-danger").first).to_be_visible()


def test_sign_out_revokes_session(page, live_server, make):
    user = make.user("finance_office", password=PASSWORD)
    page.goto("/login")
    _sign_in(page, user.username)
    _expect_home(page, live_server)

    page.locator("[data-testid=user-menu]").click()
    sign_out = page.locator("form[action$='/logout'] button[type=submit]")
    expect(sign_out).to_be_visible()
    sign_out.click()
    _expect_login_page(page)

    # Back to the signed-in page: the browser must not show it from cache, the server must refuse.
    page.go_back()
    page.reload()
    _expect_login_page(page)
    page.goto("/")
    _expect_login_page(page)
    _assert_all_local(page, live_server)


def test_advisor_home_fits_phone_width(phone_page, live_server, make):
    user = make.user("advisor", password=PASSWORD)
    phone_page.goto("/")
    _expect_login_page(phone_page)
    assert _scroll_width(phone_page) <= 375

    _sign_in(phone_page, user.username)
    _expect_home(phone_page, live_server)
    phone_page.wait_for_load_state("load")

    width = _scroll_width(phone_page)
    assert width <= 375, f"horizontal scroll at phone width: scrollWidth={width}"
    _assert_all_local(phone_page, live_server)


def test_language_switch_on_login_page(page, live_server):
    html = page.locator("html")
    page.goto("/login")
    expect(html).to_have_attribute("lang", CHINESE)

    page.locator("[data-testid=lang-switch]").click()
    expect(html).to_have_attribute("lang", "en")
    _expect_login_page(page)

    page.locator("[data-testid=lang-switch]").click()
    expect(html).to_have_attribute("lang", CHINESE)
    _expect_login_page(page)
    _assert_all_local(page, live_server)


def test_language_switch_when_signed_in(page, live_server, make):
    user = make.user("advisor", password=PASSWORD)
    html = page.locator("html")
    page.goto("/login")
    _sign_in(page, user.username)
    _expect_home(page, live_server)
    expect(html).to_have_attribute("lang", CHINESE)

    # Each switch stays on the same page.
    page.locator("[data-testid=lang-switch]").click()
    expect(html).to_have_attribute("lang", "en")
    _expect_home(page, live_server)

    page.reload()
    expect(html).to_have_attribute("lang", "en")

    page.locator("[data-testid=lang-switch]").click()
    expect(html).to_have_attribute("lang", CHINESE)
    _expect_home(page, live_server)
    _assert_all_local(page, live_server)
