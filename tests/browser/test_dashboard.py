"""The dashboard in headless Chromium, as a steward and a technician use it.

Each test gets its own app and stores; the simulated fault begins only when the test feeds
past it, so "the building turns red without a reload" is seen happen. Waits are Playwright's
`expect` with bounded timeouts, never sleeps; screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.browser.dashboard import DashboardServer, Login
from tests.browser.pages import (
    PHONE,
    WAIT_MS,
    new_context,
    new_page,
    submit_login,
    watched_page,
)

pytestmark = pytest.mark.integration

ALARM_RED = "rgb(198, 40, 40)"
expect.set_options(timeout=WAIT_MS)


def _steward_and_technician(dashboard: DashboardServer) -> tuple[Login, Login]:
    steward = dashboard.add_user("steward", "steward", buildings=["b03", "b05"])
    team = dashboard.store.policy.team_for("elevator", "b03")
    technician = dashboard.add_user("tech", "technician", team=team)
    return steward, technician


def test_steward_sees_a_fault_turn_their_building_red_and_a_technician_resolves_it(
    dashboard: DashboardServer, browser: Browser, artifacts: Path
) -> None:
    steward, technician = _steward_and_technician(dashboard)
    errors: list[str] = []

    # The steward sees their two buildings, and only those, all in order.
    context, page = new_page(browser, errors)
    submit_login(page, dashboard.url, steward)
    cards = page.locator(".building-card")
    expect(cards).to_have_count(2)
    assert cards.evaluate_all("cards => cards.map(c => c.dataset.building)") == ["b03", "b05"]
    b03 = page.locator('.building-card[data-building="b03"]')
    b05 = page.locator('.building-card[data-building="b05"]')
    expect(b03).to_have_attribute("data-status", "ok")
    expect(page.locator("#live")).to_have_attribute("data-mode", "sse")
    page.screenshot(path=artifacts / "steward-buildings-ok.png")

    # The passenger gets trapped: building 3 turns red on the open page.
    page.evaluate("window.__sameDocument = true")
    dashboard.feed.run_until(dashboard.fault_at_s + 15)
    expect(b03).to_have_attribute("data-status", "alarm")
    expect(b03).to_have_css("border-left-color", ALARM_RED)
    expect(b03).to_contain_text("Fault")
    expect(b05).to_have_attribute("data-status", "ok")
    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"
    page.screenshot(path=artifacts / "steward-buildings-fault.png")

    # Drilling down: the unit, the trapped car, its charts and what is being done about it.
    b03.click()
    tile = page.locator('.device-tile[data-device="b03-u1-el2"]')
    expect(tile).to_have_attribute("data-status", "alarm")
    expect(page.locator('section.unit[data-unit="b03-u1"] h3')).to_have_text("Building 3 Unit 1")
    tile.click()
    expect(page.locator(".device-detail h2")).to_contain_text("Elevator 2")
    expect(page.locator(".device-orders")).to_contain_text("Passenger trapped")
    chart = page.locator('.chart-figure[data-field="motor_temp_c"]')
    expect(chart.locator("path.chart-line")).to_have_count(1)
    page.screenshot(path=artifacts / "steward-device.png", full_page=True)

    # In Chinese, and the choice is remembered.
    page.click("#lang")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("#nav-buildings")).to_have_text("楼栋")
    expect(page.locator(".device-detail .page-head .badge")).to_have_text("故障")
    expect(chart.locator("figcaption")).to_contain_text("电机温度")
    page.goto(f"{dashboard.url}/#/buildings")
    page.reload()
    expect(b03.locator(".badge")).to_have_text("故障")
    expect(page.locator("#logout")).to_have_text("退出")
    page.screenshot(path=artifacts / "steward-buildings-zh.png")
    context.close()

    # The technician's board: the order is open; they acknowledge it, then resolve it.
    context, page = new_page(browser, errors)
    submit_login(page, dashboard.url, technician)
    card = page.locator(".order-card", has_text="Passenger trapped")
    expect(card).to_have_attribute("data-status", "open")
    expect(page.locator('[data-column="open"] .order-card')).to_have_count(1)
    order_id = int(card.get_attribute("data-work-order") or "0")
    page.screenshot(path=artifacts / "technician-board-open.png")
    card.locator('button[data-action="acknowledged"]').click()
    acknowledged = page.locator(f'[data-column="acknowledged"] [data-work-order="{order_id}"]')
    expect(acknowledged).to_be_visible()
    expect(page.locator('[data-column="open"] .order-card')).to_have_count(0)

    # The detail: the trend before the fault with the fault's start marked, then resolve.
    card.locator(".order-title").click()
    detail = page.locator(f'.order-detail[data-work-order="{order_id}"]')
    expect(detail).to_have_attribute("data-status", "acknowledged")
    expect(detail.locator(".trend .chart-figure").first).to_be_visible()
    expect(detail.locator(".trend line.chart-marker").first).to_be_attached()
    expect(detail.locator('.history li[data-event="transition"]')).to_contain_text("Acknowledged")
    page.screenshot(path=artifacts / "technician-order.png", full_page=True)
    detail.locator(".trend select").select_option("1")
    expect(detail.locator(".trend select")).to_have_value("1")
    expect(detail.locator(".trend .chart-figure path.chart-line").first).to_be_attached()
    expect(detail.locator(".trend line.chart-marker").first).to_be_attached()
    detail.locator('button[data-action="resolved"]').click()
    resolve = page.locator('dialog[data-dialog="resolve"]')
    resolve.locator("select[name=code]").select_option("reset")
    resolve.locator("button.dialog-submit").click()
    # The passenger is still reported trapped: resolving needs a yes.
    page.locator('dialog[data-dialog="confirm-active"] button.dialog-submit').click()
    expect(detail).to_have_attribute("data-status", "resolved")
    resolved = dashboard.store.get(order_id)
    assert resolved.status == "resolved"
    assert [e.actor for e in dashboard.store.history(order_id) if e.event == "transition"] == [
        "tech",
        "tech",
    ]

    # Back on the board the order is gone; the board in Chinese, on a phone.
    page.click("#nav-board")
    expect(page.locator(f'[data-work-order="{order_id}"]')).to_have_count(0)
    page.click("#lang")
    expect(page.locator('[data-column="open"] h3')).to_contain_text("待处理")
    page.set_viewport_size(PHONE)
    page.screenshot(path=artifacts / "technician-board-zh-phone.png", full_page=True)
    context.close()
    assert errors == []


def test_live_updates_fall_back_to_polling_when_the_stream_is_down(
    dashboard: DashboardServer, browser: Browser, artifacts: Path
) -> None:
    steward, _ = _steward_and_technician(dashboard)
    errors: list[str] = []
    context = new_context(browser, viewport=PHONE)
    context.route("**/api/v1/events*", lambda route: route.fulfill(status=503, body="down"))
    page = watched_page(context, errors)
    submit_login(page, dashboard.url, steward)
    b03 = page.locator('.building-card[data-building="b03"]')
    expect(b03).to_have_attribute("data-status", "ok")
    expect(page.locator("#live")).to_have_attribute("data-mode", "polling")
    page.evaluate("window.__sameDocument = true")
    dashboard.feed.run_until(dashboard.fault_at_s + 15)
    expect(b03).to_have_attribute("data-status", "alarm")
    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"
    page.screenshot(path=artifacts / "steward-phone-polling.png", full_page=True)
    context.close()
    assert errors == []


def test_wrong_password_and_foreign_buildings_show_nothing(
    dashboard: DashboardServer, browser: Browser, artifacts: Path
) -> None:
    steward, _ = _steward_and_technician(dashboard)
    errors: list[str] = []
    context, page = new_page(browser, errors)
    submit_login(page, dashboard.url, Login(steward.username, "not-the-password"))
    expect(page.locator("form.login .notice")).to_have_text("Wrong user name or password.")
    expect(page.locator(".building-card")).to_have_count(0)
    page.click("#lang")
    expect(page.locator("form.login .notice")).to_have_text("用户名或密码错误。")
    page.screenshot(path=artifacts / "login-failed-zh.png")
    page.click("#lang")

    # A building of someone else, asked for by its URL, is not there for this steward.
    submit_login(page, dashboard.url, steward)
    expect(page.locator(".building-card")).to_have_count(2)
    page.goto(f"{dashboard.url}/#/buildings/b01")
    expect(page.locator("main .error")).to_contain_text("Could not load")
    expect(page.locator(".device-tile")).to_have_count(0)
    context.close()
    assert errors == []


def test_a_technician_of_another_team_gets_no_buttons_and_filters_the_board(
    dashboard: DashboardServer, browser: Browser
) -> None:
    team = dashboard.store.policy.team_for("elevator", "b03")
    other = dashboard.add_user("painter", "technician", team=f"not-{team}")
    dashboard.feed.run_until(dashboard.fault_at_s + 15)
    errors: list[str] = []
    context, page = new_page(browser, errors)
    submit_login(page, dashboard.url, other)
    card = page.locator(".order-card", has_text="Passenger trapped")
    expect(card).to_have_attribute("data-status", "open")
    expect(card.locator("button")).to_have_count(0)

    # The severity filter asks the API for that severity only.
    severity = page.locator(".filters select").first
    severity.select_option("minor")
    expect(page.locator(".order-card")).to_have_count(0)
    severity.select_option("critical")
    expect(card).to_be_visible()
    context.close()
    assert errors == []


@pytest.mark.parametrize("dashboard", [{"token_ttl_s": 3}], indirect=True)
def test_the_session_outlives_its_first_token_and_ends_when_the_user_is_disabled(
    dashboard: DashboardServer, browser: Browser
) -> None:
    steward, _ = _steward_and_technician(dashboard)
    errors: list[str] = []
    context, page = new_page(browser, errors)
    submit_login(page, dashboard.url, steward)
    expect(page.locator(".building-card")).to_have_count(2)
    first_token = page.evaluate("JSON.parse(sessionStorage.getItem('facility.session')).token")

    # The server's clock moves on a second after each renewal: after four, the first token
    # (3 s) has long expired, and the page is still signed in on the renewed ones.
    for _ in range(4):
        with page.expect_response(lambda r: r.url.endswith("/api/v1/auth/refresh")) as renewal:
            pass
        assert renewal.value.status == 200
        dashboard.feed.run_until(dashboard.feed.next_tick)
    expired = httpx.get(
        f"{dashboard.url}/api/v1/buildings", headers={"Authorization": f"Bearer {first_token}"}
    )
    assert expired.status_code == 401
    page.click('.building-card[data-building="b05"]')
    expect(page.locator('.building-detail[data-building="b05"]')).to_be_visible()
    expect(page.locator("form.login")).to_have_count(0)

    # Disabled: the next call is refused and the sign-in form says why.
    dashboard.app.state.context.users.set_disabled(steward.username, True)
    expect(page.locator("form.login .notice")).to_have_text(
        "Your session ended; please sign in again."
    )
    expect(page.locator(".building-card")).to_have_count(0)
    context.close()
    assert errors == []


def test_live_updates_use_the_cookie_and_a_building_change_ends_the_session(
    dashboard: DashboardServer, browser: Browser
) -> None:
    """No token in the stream's URL (it would land in logs); an admin's building change ends
    the open page's session at the next event; signing out ends the token on the server."""
    steward, _ = _steward_and_technician(dashboard)
    errors: list[str] = []
    context, page = new_page(browser, errors)
    with page.expect_request(lambda r: "/api/v1/events" in r.url) as stream:
        submit_login(page, dashboard.url, steward)
    assert "access_token" not in stream.value.url
    expect(page.locator("#live")).to_have_attribute("data-mode", "sse")

    dashboard.app.state.context.users.set_buildings(steward.username, ["b05"])
    dashboard.feed.run_until(dashboard.fault_at_s + 15)  # events: the stream re-checks
    expect(page.locator("form.login .notice")).to_have_text(
        "Your session ended; please sign in again."
    )

    submit_login(page, dashboard.url, steward)
    expect(page.locator(".building-card")).to_have_count(1)
    token = page.evaluate("JSON.parse(sessionStorage.getItem('facility.session')).token")
    page.click("#logout")
    expect(page.locator("form.login")).to_be_visible()
    refused = httpx.get(
        f"{dashboard.url}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}
    )
    assert refused.status_code == 401
    context.close()
    assert errors == []
