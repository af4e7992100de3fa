"""The admins' users screen in headless Chromium, on a desktop and a phone, in English and
Chinese: only an admin has the link; the admin adds a team to the managed list, tries to add a
technician without a team (the server's answer is shown in words) and with a too-short password
(the form does not send), adds them with the new team, makes them a steward of two buildings,
disables and enables them, unlocks the account after failed sign-ins, is refused disabling the
last admin (in words), and removes the team again.

Waits are Playwright's `expect` with bounded timeouts; screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect

from api.auth.users import User
from tests.browser.dashboard import DashboardServer, Login
from tests.browser.pages import (
    DESKTOP,
    ON_DESKTOP_AND_PHONE,
    WAIT_MS,
    new_page,
    shot_name,
    show_in,
    submit_login,
)

pytestmark = pytest.mark.integration

NEW_USER = "ann.lee"
NEW_TEAM = "night-shift"
PASSWORD = "ann-password-123"
FAILED_SIGN_INS = 6
expect.set_options(timeout=WAIT_MS)

WORDS = {
    "en": {"title": "Users", "added": f"User {NEW_USER} added.", "failed": "Add user failed",
           "disabled": "Disabled", "active": "Active", "team_added": f"Team {NEW_TEAM} added.",
           "unlocked": f"{NEW_USER}: failed sign-ins from 1 address(es) forgotten."},
    "zh": {"title": "用户管理", "added": f"已添加用户 {NEW_USER}。", "failed": "添加用户失败",
           "disabled": "已停用", "active": "已启用", "team_added": f"已添加班组 {NEW_TEAM}。",
           "unlocked": f"{NEW_USER}：已清除 1 个地址的登录失败记录。"},
}  # fmt: skip


def _sign_in(page: Page, base_url: str, login: Login, language: str) -> None:
    submit_login(page, base_url, login)
    expect(page.locator("#who")).to_contain_text(login.username)
    expect(page.locator(".board-page")).to_be_visible()  # the role's home, before going on
    show_in(page, language)


def _users_screen(
    dashboard: DashboardServer, browser: Browser, admin: Login, errors: list[str]
) -> tuple[BrowserContext, Page]:
    """The admin signed in, in English, on the users screen (desktop)."""
    context, page = new_page(browser, errors, viewport=DESKTOP)
    _sign_in(page, dashboard.url, admin, "en")
    page.click("#nav-users")
    return context, page


def _user(dashboard: DashboardServer) -> User:
    user: User | None = dashboard.app.state.context.users.by_username(NEW_USER)
    assert user is not None
    return user


@ON_DESKTOP_AND_PHONE
def test_an_admin_manages_users_and_teams(
    dashboard: DashboardServer,
    browser: Browser,
    artifacts: Path,
    viewport: ViewportSize,
    language: str,
) -> None:
    name = shot_name("users", viewport, language)
    words = WORDS[language]
    admin = dashboard.add_user("boss", "admin")
    dispatcher = dashboard.add_user("dispatch", "dispatcher")
    errors: list[str] = []

    # Only admins get the link.
    other_context, other = new_page(browser, errors, viewport=viewport)
    _sign_in(other, dashboard.url, dispatcher, language)
    expect(other.locator("#nav-board")).to_be_visible()
    expect(other.locator("#nav-users")).to_be_hidden()
    other_context.close()

    context, page = new_page(browser, errors, viewport=viewport)
    _sign_in(page, dashboard.url, admin, language)
    page.click("#nav-users")
    users = page.locator(".users-page")
    expect(users.locator("h2")).to_have_text(words["title"])
    expect(users.locator('.user-row[data-user="boss"]')).to_be_visible()
    message = users.locator(".users-message")

    # A new team on the managed list; it is offered at once in the team choices.
    teams = users.locator("form[data-form=add-team]")
    teams.locator("input[name=name]").fill(NEW_TEAM)
    teams.locator("button[type=submit]").click()
    expect(message).to_have_text(words["team_added"])
    expect(users.locator(f'.team-list li[data-team="{NEW_TEAM}"]')).to_be_visible()

    add = users.locator("form[data-form=add-user]")
    add.locator("input[name=username]").fill(NEW_USER)
    add.locator("input[name=display_name]").fill("Ann Lee")
    # A password shorter than the server allows: the form does not send it.
    add.locator("input[name=password]").fill("short")
    add.locator("button[type=submit]").click()
    assert add.evaluate("form => form.checkValidity()") is False
    expect(message).to_have_text(words["team_added"])  # nothing new was said: nothing was sent
    assert dashboard.app.state.context.users.by_username(NEW_USER) is None
    # A technician without a team: the server refuses, and says why.
    add.locator("input[name=password]").fill(PASSWORD)
    add.locator("select[name=role]").select_option("technician")
    add.locator("button[type=submit]").click()
    expect(message).to_have_attribute("role", "alert")
    expect(message).to_contain_text(words["failed"])
    expect(message).to_contain_text("a technician needs a team")
    expect(add.locator("input[name=username]")).to_have_value(NEW_USER)  # kept for a retry
    page.screenshot(path=artifacts / f"{name}-refused.png", full_page=True)
    add.locator("select[name=team]").select_option(NEW_TEAM)
    add.locator("button[type=submit]").click()
    expect(message).to_have_text(words["added"])
    row = users.locator(f'.user-row[data-user="{NEW_USER}"]')
    expect(row).to_have_attribute("data-role", "technician")
    expect(row.locator(".user-scope")).to_have_text(NEW_TEAM)
    assert _user(dashboard).team == NEW_TEAM

    # Made a steward of buildings 3 and 5, picked from the site's buildings.
    row.locator(".users-edit summary").click()
    edit = row.locator("form.users-edit-form")
    edit.locator("select[name=role]").select_option("steward")
    for building in ("b03", "b05"):
        edit.locator(f'input[name=building][value="{building}"]').check()
    edit.locator("button[type=submit]").click()
    expect(row).to_have_attribute("data-role", "steward")
    names = [dashboard.site.building_by_id[b].name for b in ("b03", "b05")]
    expect(row.locator(".user-scope")).to_have_text(", ".join(names))
    assert set(_user(dashboard).buildings) == {"b03", "b05"}

    # Disabled and enabled again.
    row.locator('button[data-action="disable"]').click()
    expect(row).to_have_attribute("data-disabled", "true")
    expect(row.locator(".user-state")).to_have_text(words["disabled"])
    row.locator('button[data-action="enable"]').click()
    expect(row).to_have_attribute("data-disabled", "false")
    expect(row.locator(".user-state")).to_have_text(words["active"])

    # Failed sign-ins hold the account back for that address; the admin unlocks it.
    for _ in range(FAILED_SIGN_INS):
        httpx.post(f"{dashboard.url}/api/v1/auth/login", timeout=10,
                   json={"username": NEW_USER, "password": "wrong-password-0"})  # fmt: skip
    page.reload()
    expect(row.locator(".user-locked")).to_be_visible()
    page.screenshot(path=artifacts / f"{name}-locked.png", full_page=True)
    row.locator('button[data-action="unlock"]').click()
    expect(message).to_have_text(words["unlocked"])
    expect(row.locator(".user-locked")).to_have_count(0)
    signed_in = httpx.post(f"{dashboard.url}/api/v1/auth/login", timeout=10,
                           json={"username": NEW_USER, "password": PASSWORD})  # fmt: skip
    assert signed_in.status_code == 200, signed_in.text

    # The last admin cannot be disabled: the server's reason is shown.
    users.locator('.user-row[data-user="boss"] button[data-action="disable"]').click()
    expect(message).to_have_attribute("role", "alert")
    expect(message).to_contain_text("would leave no enabled admin")
    expect(users.locator('.user-row[data-user="boss"]')).to_have_attribute("data-disabled", "false")

    # The team leaves the list (the user's record keeps no team: they are a steward now).
    users.locator(f'.team-list li[data-team="{NEW_TEAM}"] button').click()
    expect(users.locator(f'.team-list li[data-team="{NEW_TEAM}"]')).to_have_count(0)
    assert NEW_TEAM not in dashboard.store.list_teams()
    page.screenshot(path=artifacts / f"{name}.png", full_page=True)

    context.close()
    assert errors == []


def test_typing_goes_on_in_a_form_across_a_redraw(
    dashboard: DashboardServer, browser: Browser
) -> None:
    """A redraw (a live update, a language switch) moves the screen's kept forms into the new
    page; the field being typed in keeps focus and caret, so no keystroke is lost."""
    admin = dashboard.add_user("typist", "admin")
    errors: list[str] = []
    context, page = _users_screen(dashboard, browser, admin, errors)
    field = page.locator("form[data-form=add-team] input[name=name]")
    field.click()
    page.keyboard.type("night")
    drawn = page.locator(".users-page").element_handle()
    # The language switch redraws the page at once; clicked from a script, so that the button
    # does not take the focus the way a mouse click would.
    page.evaluate("document.getElementById('lang').click()")
    page.wait_for_function("node => !node.isConnected", arg=drawn)
    page.keyboard.type("-shift")
    expect(field).to_have_value("night-shift")
    expect(field).to_be_focused()
    context.close()
    assert errors == []


def test_a_change_sent_from_one_form_leaves_what_is_typed_in_the_others(
    dashboard: DashboardServer, browser: Browser
) -> None:
    """An admin half-way through adding a user disables someone else, then sets a third
    user's password: the page reloads after each change, the form that sent it starts empty,
    and the new user's name and the team typed elsewhere are still there to finish."""
    admin = dashboard.add_user("keeper", "admin")
    dashboard.add_user("leaver", "dispatcher")
    dashboard.add_user("forgetful", "dispatcher")
    errors: list[str] = []
    context, page = _users_screen(dashboard, browser, admin, errors)
    add = page.locator("form[data-form=add-user]")
    add.locator("input[name=username]").fill("half.typed")
    team = page.locator("form[data-form=add-team] input[name=name]")
    team.fill("night")

    page.locator('.user-row[data-user="leaver"] button[data-action=disable]').click()
    expect(page.locator(".users-message")).to_have_text(
        "leaver is disabled; their sessions have ended."
    )
    row = page.locator('.user-row[data-user="forgetful"]')
    row.locator(".users-password summary").click()
    password = row.locator("form[data-form=set-password] input[name=password]")
    password.fill("a-new-password-1")
    row.locator("form[data-form=set-password] button[type=submit]").click()
    expect(page.locator(".users-message")).to_have_text(
        "forgetful has a new password; their sessions ended."
    )
    expect(password).to_have_value("")  # the form that sent the change starts empty
    expect(add.locator("input[name=username]")).to_have_value("half.typed")
    expect(team).to_have_value("night")
    context.close()
    assert errors == []


def test_a_click_made_while_the_page_redraws_is_not_lost(
    dashboard: DashboardServer, browser: Browser
) -> None:
    """The button is pressed, the page redraws (a live update; here the language switch,
    clicked from a script) and the button is released: the click still adds the team."""
    admin = dashboard.add_user("presser", "admin")
    errors: list[str] = []
    context, page = _users_screen(dashboard, browser, admin, errors)
    form = page.locator("form[data-form=add-team]")
    form.locator("input[name=name]").fill(NEW_TEAM)
    button = form.locator("button[type=submit]")
    button.scroll_into_view_if_needed()
    box = button.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    drawn = page.locator(".users-page").element_handle()
    page.evaluate("document.getElementById('lang').click()")
    page.mouse.up()
    expect(page.locator(".users-message")).to_have_text(WORDS["zh"]["team_added"])
    page.wait_for_function("node => !node.isConnected", arg=drawn)  # it did redraw
    assert NEW_TEAM in dashboard.store.list_teams()
    context.close()
    assert errors == []


def test_a_user_half_added_survives_a_team_added_and_one_removed(
    dashboard: DashboardServer, browser: Browser
) -> None:
    """The add-user form lists the teams, so adding or removing a team makes it anew: what was
    typed comes along (name, display name, password, role and the team chosen while it is still
    offered), the new team is offered, and a removed team that was chosen falls back to none."""
    admin = dashboard.add_user("carrier", "admin")
    for name in ("day", "weekend"):
        dashboard.store.add_team(name)
    errors: list[str] = []
    context, page = _users_screen(dashboard, browser, admin, errors)
    add = page.locator("form[data-form=add-user]")
    add.locator("input[name=username]").fill("half.typed")
    add.locator("input[name=display_name]").fill("Half Typed")
    add.locator("input[name=password]").fill("a-long-password-1")
    add.locator("select[name=role]").select_option("technician")
    add.locator("select[name=team]").select_option("weekend")
    drawn = add.element_handle()

    teams = page.locator("form[data-form=add-team]")
    teams.locator("input[name=name]").fill(NEW_TEAM)
    teams.locator("button[type=submit]").click()
    expect(page.locator(".users-message")).to_have_text(f"Team {NEW_TEAM} added.")
    page.wait_for_function("node => !node.isConnected", arg=drawn)  # the form was made anew
    expect(add.locator(f'select[name=team] option[value="{NEW_TEAM}"]')).to_have_count(1)
    expect(add.locator("input[name=username]")).to_have_value("half.typed")
    expect(add.locator("input[name=display_name]")).to_have_value("Half Typed")
    expect(add.locator("input[name=password]")).to_have_value("a-long-password-1")
    expect(add.locator("select[name=role]")).to_have_value("technician")
    expect(add.locator("select[name=team]")).to_have_value("weekend")
    expect(add.locator("select[name=team]")).to_be_visible()  # the role's fields follow it
    expect(teams.locator("input[name=name]")).to_have_value("")  # the form that sent it

    # Removed while the admin types on: a click from a script, which leaves the focus where it
    # is; the field typed in keeps it in the new form, so the keystrokes after go on in it.
    username = add.locator("input[name=username]")
    username.focus()
    page.keyboard.press("End")
    page.evaluate("""document.querySelector('.team-list li[data-team="weekend"] button').click()""")
    expect(add.locator('select[name=team] option[value="weekend"]')).to_have_count(0)
    expect(add.locator("select[name=team]")).to_have_value("")
    expect(username).to_be_focused()
    page.keyboard.type("2")
    expect(username).to_have_value("half.typed2")

    add.locator("select[name=team]").select_option("day")
    add.locator("button[type=submit]").click()
    expect(page.locator(".users-message")).to_have_text("User half.typed2 added.")
    user = dashboard.app.state.context.users.by_username("half.typed2")
    assert user is not None
    assert (user.role, user.team, user.display_name) == ("technician", "day", "Half Typed")
    context.close()
    assert errors == []
