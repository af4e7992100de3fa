"""The maintenance board's day in headless Chromium, on a desktop and a phone, in English and
Chinese: a fault opens an order → the open board announces it (the tab's title counts it) →
the dispatcher assigns it → the technician acknowledges, starts, puts it on hold with a reason,
resolves it with a code while the fault is still active (warned, confirms) → the order is in
the device's maintenance history with every action; finished, it is found by a search.

Waits are Playwright's `expect` with bounded timeouts; screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.browser.dashboard import DashboardServer, Login
from tests.browser.pages import (
    ON_DESKTOP_AND_PHONE,
    WAIT_MS,
    new_page,
    shot_name,
    show_in,
    submit_login,
)

pytestmark = pytest.mark.integration

DEVICE = "b03-u1-el2"
REASON = "waiting for the lift contractor's landing-door key"
TECH_NOTE = "landing door 4 relevelled, watch it for a week"
DESK_NOTE = "owner asks for a call when done"
expect.set_options(timeout=WAIT_MS)

# What each language shows for the few words the walk checks.
WORDS = {
    "en": {"warning": "The device still reports this fault", "repaired": "repaired in",
           "history": "Maintenance history", "on_hold": "On hold"},
    "zh": {"warning": "设备仍在上报该故障", "repaired": "内修复", "history": "维修记录",
           "on_hold": "挂起"},
}  # fmt: skip


def _sign_in(page: Page, base_url: str, login: Login, language: str) -> None:
    submit_login(page, base_url, login)
    expect(page.locator(".board-page")).to_be_visible()
    show_in(page, language)


def _column(page: Page, status: str, order_id: int) -> None:
    expect(page.locator(f'[data-column="{status}"] [data-work-order="{order_id}"]')).to_be_visible()


@ON_DESKTOP_AND_PHONE
def test_a_fault_through_the_board_to_the_devices_history(
    dashboard: DashboardServer,
    browser: Browser,
    artifacts: Path,
    viewport: ViewportSize,
    language: str,
) -> None:
    name = shot_name("workboard", viewport, language)
    words = WORDS[language]
    team = dashboard.store.policy.team_for("elevator", "b03")
    dispatcher = dashboard.add_user("dispatch", "dispatcher")
    technician = dashboard.add_user("tech", "technician", team=team)
    errors: list[str] = []

    desk_context, desk = new_page(browser, errors, viewport=viewport)
    _sign_in(desk, dashboard.url, dispatcher, language)
    tech_context, tech = new_page(browser, errors, viewport=viewport)
    _sign_in(tech, dashboard.url, technician, language)
    expect(desk.locator("#live")).to_have_attribute("data-mode", "sse")
    expect(desk).not_to_have_title(re.compile(r"^\("))

    # The passenger is trapped: the open board announces the new critical order.
    dashboard.feed.run_until(dashboard.fault_at_s + 15)
    card = desk.locator('.order-card.severity-critical[data-status="open"]')
    expect(card).to_have_count(1)
    order_id = int(card.get_attribute("data-work-order") or "0")
    expect(desk).to_have_title(re.compile(r"^\(1\) "))
    expect(desk.locator(f'#announce [data-work-order="{order_id}"]')).to_be_visible()
    expect(desk.locator("#sound")).to_have_attribute("aria-pressed", "true")
    desk.screenshot(path=artifacts / f"{name}-announced.png")

    # The dispatcher gives it to the technician (touching the page clears the count).
    card.locator('button[data-action="assign"]').click()
    assign = desk.locator('dialog[data-dialog="assign"]')
    assign.locator("select[name=assignee]").select_option("tech")
    desk.screenshot(path=artifacts / f"{name}-assign.png")
    assign.locator("button.dialog-submit").click()
    expect(card.locator(".assignee")).to_contain_text("tech")
    expect(desk).not_to_have_title(re.compile(r"^\("))

    # The technician acknowledges, starts, and puts it on hold with a reason and a date.
    tech_card = tech.locator(f'.order-card[data-work-order="{order_id}"]')
    expect(tech_card.locator(".assignee")).to_contain_text("tech")
    tech_card.locator('button[data-action="acknowledged"]').click()
    _column(tech, "acknowledged", order_id)
    tech_card.locator('button[data-action="in_progress"]').click()
    _column(tech, "in_progress", order_id)
    tech_card.locator('button[data-action="on_hold"]').click()
    hold = tech.locator('dialog[data-dialog="on_hold"]')
    hold.locator("button.dialog-submit").click()  # no reason yet: the form does not send
    expect(hold).to_be_visible()
    hold.locator("textarea[name=reason]").fill(REASON)
    hold.locator("button.dialog-submit").click()
    _column(tech, "on_hold", order_id)
    expect(tech_card.locator(".hold")).to_contain_text(REASON)
    expect(tech.locator('[data-column="on_hold"] h3')).to_contain_text(words["on_hold"])
    _column(desk, "on_hold", order_id)  # the dispatcher's board follows live
    tech.screenshot(path=artifacts / f"{name}-on-hold.png", full_page=True)

    # Resolving while the passenger is still reported trapped: warned, then confirmed.
    tech_card.locator(".order-title").click()
    detail = tech.locator(f'.order-detail[data-work-order="{order_id}"]')
    expect(detail.locator(".fault-active")).to_be_visible()
    detail.locator('button[data-action="resolved"]').click()
    resolve = tech.locator('dialog[data-dialog="resolve"]')
    resolve.locator("select[name=code]").select_option("part_replaced")
    resolve.locator("textarea[name=note]").fill("door operator board replaced")
    resolve.locator("button.dialog-submit").click()
    confirm = tech.locator('dialog[data-dialog="confirm-active"]')
    expect(confirm.locator(".notice")).to_contain_text(words["warning"])
    tech.screenshot(path=artifacts / f"{name}-confirm-active.png")
    confirm.locator("button.dialog-submit").click()
    expect(detail).to_have_attribute("data-status", "resolved")
    expect(detail.locator(".sla")).to_contain_text(words["repaired"])
    expect(detail.locator('.history li[data-event="transition"]')).to_have_count(4)
    # Half-way through a comment, the dispatcher's lands first: the page shows it live and
    # keeps the technician's draft (with the caret in it); sent, the box is empty again.
    draft = detail.locator(".comment-form textarea")
    draft.fill(TECH_NOTE)
    dashboard.store.comment(order_id, actor="dispatch", text=DESK_NOTE)
    comments = detail.locator('.history li[data-event="comment"]')
    expect(comments).to_have_count(1)
    expect(draft).to_have_value(TECH_NOTE)
    expect(draft).to_be_focused()
    detail.locator(".comment-form button[type=submit]").click()
    expect(comments).to_have_count(2)
    expect(comments.nth(1)).to_contain_text(TECH_NOTE)
    expect(draft).to_have_value("")
    order = dashboard.store.get(order_id)
    assert (order.status, order.assignee, order.resolution_code) == (
        "resolved",
        "tech",
        "part_replaced",
    )

    # The device's maintenance history holds the order and who did what.
    tech.goto(f"{dashboard.url}/#/devices/{DEVICE}")
    history = tech.locator(".maintenance")
    expect(history.locator("h3")).to_have_text(words["history"])
    item = history.locator(f'.maintenance-order[data-work-order="{order_id}"]')
    expect(item).to_have_attribute("data-status", "resolved")
    item.locator("summary").click()
    actions = item.locator(".history li")
    expect(item.locator('li[data-event="assigned"]')).to_contain_text("dispatch")
    expect(item.locator('li[data-event="transition"]')).to_have_count(4)
    expect(actions.filter(has_text=REASON)).to_have_count(1)
    expect(actions.filter(has_text="door operator board replaced")).to_have_count(1)
    # (The page redraws on its own timer, so no action on one element of it: a full-page shot.)
    tech.screenshot(path=artifacts / f"{name}-device-history.png", full_page=True)

    # Finished, it is off the board but found by a search over finished orders.
    desk.locator(".filters select[name=status]").select_option("finished")
    search = desk.locator(".filters input[name=q]")
    search.fill("contractor's landing-door")
    # A live change redraws the board while the search is typed: the text and focus stay.
    drawn = search.element_handle()
    dashboard.store.comment(order_id, actor="dispatch", text="invoice to the contractor")
    desk.wait_for_function("node => !node.isConnected", arg=drawn)
    expect(search).to_have_value("contractor's landing-door")
    expect(search).to_be_focused()
    desk.locator(".filters .search button").click()
    expect(desk.locator(f'.order-list [data-work-order="{order_id}"]')).to_be_visible()
    expect(desk.locator(".order-list .order-card")).to_have_count(1)
    desk.screenshot(path=artifacts / f"{name}-search.png", full_page=True)

    desk_context.close()
    tech_context.close()
    assert errors == []
