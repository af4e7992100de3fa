"""A user's own account in headless Chromium: every role reaches it from their name in the
header and changes their password (a wrong current password and two new ones that differ are
told in words and change nothing); their other device is signed out, this one goes on. On a
phone in 中文: "sign out on every device" ends both sessions, and an admin sets a password
for a technician who forgot theirs, which ends the technician's open session.

Waits are Playwright's `expect` with bounded timeouts; screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    APIResponse,
    Browser,
    Locator,
    Page,
    Route,
    ViewportSize,
    expect,
)

from tests.browser.dashboard import DashboardServer, Login
from tests.browser.pages import DESKTOP, PHONE, WAIT_MS, new_page, show_in, submit_login

pytestmark = pytest.mark.integration
expect.set_options(timeout=WAIT_MS)

NEW_PASSWORD = "a-new-password-456"
ROLES: dict[str, dict[str, Any]] = {
    "steward": {"buildings": ["b03"]},
    "technician": {"team": "lift-contractor"},
    "dispatcher": {},
    "admin": {},
}


def _signed_in(browser: Browser, errors: list[str], dashboard: DashboardServer, login: Login,
               viewport: ViewportSize = DESKTOP, language: str = "en") -> Page:  # fmt: skip
    _, page = new_page(browser, errors, viewport=viewport)
    submit_login(page, dashboard.url, login)
    expect(page.locator("#who")).to_contain_text(login.username)
    show_in(page, language)
    return page


def _signed_out(page: Page) -> None:
    """The page's next request is refused and it shows the sign-in form, its session gone.
    (Whether it learns first from a poll or from this reload decides whether the form says
    why: both are right.)"""
    page.reload()
    expect(page.locator("form.login")).to_be_visible()
    expect(page.locator("#who")).to_have_text("")
    assert page.evaluate("sessionStorage.getItem('facility.session')") is None


def _logs_in(dashboard: DashboardServer, username: str, password: str) -> bool:
    answer = httpx.post(f"{dashboard.url}/api/v1/auth/login", timeout=10,
                        json={"username": username, "password": password})  # fmt: skip
    return answer.status_code == 200


# Every sign-in and password check of the walk comes from this one machine: more than one
# client's default 20 a minute.
@pytest.mark.parametrize("dashboard", [{"login_attempts_per_client": 100}], indirect=True)
def test_every_role_changes_their_own_password(
    dashboard: DashboardServer, browser: Browser, artifacts: Path
) -> None:
    errors: list[str] = []
    for role, extra in ROLES.items():
        login = dashboard.add_user(f"my-{role}", role, **extra)
        other_device = _signed_in(browser, errors, dashboard, login)
        page = _signed_in(browser, errors, dashboard, login)
        page.click("#who")
        account = page.locator(".account-page")
        expect(account.locator("h2")).to_have_text("Your account")
        form = account.locator("form[data-form=change-password]")
        message = account.locator(".users-message")

        def send(current: str, new: str, again: str, *, form: Locator = form) -> None:
            form.locator("input[name=current_password]").fill(current)
            form.locator("input[name=new_password]").fill(new)
            form.locator("input[name=repeat_password]").fill(again)
            form.locator("button[type=submit]").click()

        send("not-my-password", NEW_PASSWORD, NEW_PASSWORD)
        expect(message).to_have_text("The current password is wrong.")
        expect(message).to_have_attribute("role", "alert")
        send(login.password, NEW_PASSWORD, NEW_PASSWORD + "x")
        expect(message).to_have_text("The two new passwords differ.")
        assert _logs_in(dashboard, login.username, login.password)  # nothing changed yet

        send(login.password, NEW_PASSWORD, NEW_PASSWORD)
        expect(message).to_have_text("Password changed. Your other devices are signed out.")
        if role == "steward":
            page.screenshot(path=artifacts / "account-desktop-en.png", full_page=True)
            page.click("#lang")  # what was said is said again in the other language
            expect(message).to_have_text("密码已修改，其他设备已退出登录。")
            expect(form.locator("button[type=submit]")).to_have_text("修改密码")
            page.click("#lang")
        # The other device is signed out at its next request; this one goes on after a reload.
        _signed_out(other_device)
        page.reload()
        expect(page.locator(".account-page h2")).to_have_text("Your account")
        expect(page.locator("#who")).to_contain_text(login.username)
        assert not _logs_in(dashboard, login.username, login.password)
        assert _logs_in(dashboard, login.username, NEW_PASSWORD)
        page.context.close()
        other_device.context.close()
    assert errors == []


def test_sign_out_everywhere_and_a_forgotten_password_on_a_phone(
    dashboard: DashboardServer, browser: Browser, artifacts: Path
) -> None:
    errors: list[str] = []
    tech = dashboard.add_user("lift-tech", "technician", team="lift-contractor")
    desk = _signed_in(browser, errors, dashboard, tech, PHONE, "zh")
    phone = _signed_in(browser, errors, dashboard, tech, PHONE, "zh")
    phone.click("#who")
    expect(phone.locator(".account-page h2")).to_have_text("我的账户")
    phone.click("button[data-action=logout-all]")
    expect(phone.locator("form.login .notice")).to_have_text("已在所有设备上退出登录。")
    _signed_out(desk)

    # The technician forgot the password: an admin sets one; a session still open ends.
    still_open = _signed_in(browser, errors, dashboard, tech, PHONE, "zh")
    admin = _signed_in(browser, errors, dashboard, dashboard.add_user("boss", "admin"),
                       PHONE, "zh")  # fmt: skip
    admin.click("#nav-users")
    own_row = admin.locator('.user-row[data-user="boss"]')
    expect(own_row).to_be_visible()
    expect(own_row.locator("form[data-form=set-password]")).to_have_count(0)  # their own: account
    row = admin.locator('.user-row[data-user="lift-tech"]')
    row.locator(".users-password summary").click()
    set_password = row.locator("form[data-form=set-password]")
    set_password.locator("input[name=password]").fill("short")
    set_password.locator("button[type=submit]").click()
    assert set_password.evaluate("form => form.checkValidity()") is False  # not sent
    assert _logs_in(dashboard, "lift-tech", tech.password)
    set_password.locator("input[name=password]").fill(NEW_PASSWORD)
    set_password.locator("button[type=submit]").click()
    expect(admin.locator(".users-message")).to_have_text(
        "lift-tech 的密码已重设，其登录已全部结束。"
    )
    admin.screenshot(path=artifacts / "account-set-password-phone-zh.png", full_page=True)
    _signed_out(still_open)
    assert not _logs_in(dashboard, "lift-tech", tech.password)
    assert _logs_in(dashboard, "lift-tech", NEW_PASSWORD)
    for page in (desk, phone, still_open, admin):
        page.context.close()
    assert errors == []


def test_a_request_refused_while_the_change_is_answered_waits_for_the_new_session(
    dashboard: DashboardServer, browser: Browser
) -> None:
    """The server has ended every session (this one's token too) before its answer, with the
    new session's token, reaches the page. A request the page makes in between is refused:
    it waits for that answer and goes again with the new token, instead of signing out."""
    errors: list[str] = []
    login = dashboard.add_user("slow-net", "steward", buildings=["b03"])
    page = _signed_in(browser, errors, dashboard, login)
    held: list[Route] = []
    answers: list[APIResponse] = []

    def hold(route: Route) -> None:
        answers.append(route.fetch())  # the server changes the password now
        held.append(route)  # ... and the page hears of it only when the test says

    page.route("**/api/v1/users/me/password", hold)
    page.click("#who")
    form = page.locator("form[data-form=change-password]")
    form.locator("input[name=current_password]").fill(login.password)
    form.locator("input[name=new_password]").fill(NEW_PASSWORD)
    form.locator("input[name=repeat_password]").fill(NEW_PASSWORD)
    form.locator("button[type=submit]").click()
    for _ in range(WAIT_MS // 100):  # Playwright runs the handler while the page waits
        if held:
            break
        page.wait_for_timeout(100)
    assert len(held) == 1
    assert not _logs_in(dashboard, login.username, login.password)  # changed on the server

    page.evaluate("location.hash = '#/buildings'")  # loads with the old token: 401
    page.wait_for_timeout(1000)
    held[0].fulfill(response=answers[0])

    expect(page.locator(".building-card").first).to_be_visible()
    expect(page.locator("#who")).to_contain_text(login.username)  # still signed in
    page.evaluate("location.hash = '#/account'")
    expect(page.locator(".account-page h2")).to_have_text("Your account")
    page.context.close()
    assert errors == []
