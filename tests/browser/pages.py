"""What every browser test does the same way: the waits, the viewports, a context, a page that
records script errors, and the sign-in form. Each test keeps what it expects after signing in.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect

from tests.browser.dashboard import Login, csp_violations

WAIT_MS = 20_000
"""Longest wait for a change to show: the monitor's 1 s tick, or 5 s polling, plus slack."""
DESKTOP: ViewportSize = {"width": 1280, "height": 860}
PHONE: ViewportSize = {"width": 390, "height": 844}
TIMEZONE = "Asia/Shanghai"
"""The demo site's zone: times on the page read as a steward there sees them."""
ON_DESKTOP_AND_PHONE = pytest.mark.parametrize(
    ("viewport", "language"), [(DESKTOP, "en"), (PHONE, "zh")], ids=["desktop-en", "phone-zh"]
)
"""A walk run twice: on a desktop in English and on a phone in 中文."""


def shot_name(walk: str, viewport: ViewportSize, language: str) -> str:
    """The screenshots' prefix of one run of an ON_DESKTOP_AND_PHONE walk."""
    return f"{walk}-{'desktop' if viewport is DESKTOP else 'phone'}-{language}"


def new_context(
    browser: Browser,
    *,
    viewport: ViewportSize = DESKTOP,
    locale: str = "en-US",
    timezone_id: str | None = TIMEZONE,
) -> BrowserContext:
    """A fresh browser profile whose actions wait at most WAIT_MS; `timezone_id=None` keeps
    the machine's zone."""
    context = browser.new_context(viewport=viewport, locale=locale, timezone_id=timezone_id)
    context.set_default_timeout(WAIT_MS)
    return context


def watched_page(context: BrowserContext, errors: list[str]) -> Page:
    """A page whose script errors and Content-Security-Policy violations land in `errors`,
    so a test can end with `assert errors == []`."""
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.extend(csp_violations([message.text])))
    return page


def new_page(
    browser: Browser,
    errors: list[str],
    *,
    viewport: ViewportSize = DESKTOP,
    locale: str = "en-US",
    timezone_id: str | None = TIMEZONE,
) -> tuple[BrowserContext, Page]:
    """A context of its own with one watched page: the caller closes the context."""
    context = new_context(browser, viewport=viewport, locale=locale, timezone_id=timezone_id)
    return context, watched_page(context, errors)


def submit_login(page: Page, base_url: str, login: Login) -> None:
    """Open the dashboard and send its sign-in form; what shows next is the caller's to check."""
    page.goto(f"{base_url}/")
    page.fill("form.login input[name=username]", login.username)
    page.fill("form.login input[name=password]", login.password)
    page.click("form.login button[type=submit]")


def show_in(page: Page, language: str) -> None:
    """Switch the signed-in page to 中文 for `language == "zh"` (English is where it starts)."""
    if language == "zh":
        page.click("#lang")
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
