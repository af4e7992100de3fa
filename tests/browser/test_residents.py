"""Issue 14 in headless Chromium: a steward reads why a building is red on its tile, then sees
it green again; a resident files a report from a unit's code on a phone, the steward reads it
and adds a note; the building's public status page tells the outage in plain words and
nothing private. Desktop and phone, English and 中文; screenshots in test-artifacts/browser/.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, FilePayload, expect

from alerts.workorders import Source
from tests.browser.dashboard import DashboardServer
from tests.browser.pages import DESKTOP, PHONE, WAIT_MS, new_page, submit_login, watched_page

pytestmark = pytest.mark.integration

expect.set_options(timeout=WAIT_MS)
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99"
    b"=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)
"""A 1x1 PNG."""
GIF = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"
RESIDENT_TEXT = "The lift stops between floors 3 and 4 and shakes"
CONTACT = "room 1203, 13800000000"


def _trapped_order(dashboard: DashboardServer) -> int:
    (order,) = [
        o
        for o in dashboard.store.open_work_orders(["b03"])
        if o.source is Source.FAULT and o.rule_id == "elevator.entrapment"
    ]
    return order.id


def test_the_steward_sees_the_reason_on_the_tile_then_green(
    dashboard: DashboardServer, browser: Browser, artifacts: Path
) -> None:
    steward = dashboard.add_user("steward", "steward", buildings=["b03", "b05"])
    errors: list[str] = []
    desktop, page = new_page(browser, errors)
    submit_login(page, dashboard.url, steward)
    b03 = page.locator('.building-card[data-building="b03"]')
    expect(b03).to_have_attribute("data-status", "ok")
    expect(b03.locator(".problem")).to_have_count(0)

    # The passenger is trapped: the tile says so in words, without a click.
    dashboard.feed.run_until(dashboard.fault_at_s + 15)
    expect(b03).to_have_attribute("data-status", "alarm")
    problem = b03.locator(".problem").first
    expect(problem).to_have_text("Elevator 2: passenger trapped")
    expect(problem).to_have_class(re.compile(r"severity-critical"))
    page.screenshot(path=artifacts / "residents-steward-tile-reason.png")
    order_id = _trapped_order(dashboard)
    page.click("#lang")
    expect(problem).to_have_text("2号电梯：困人")
    page.screenshot(path=artifacts / "residents-steward-tile-reason-zh.png")

    # On a phone, in Chinese (remembered), the building page names it too.
    phone, phone_page = new_page(browser, errors, viewport=PHONE, locale="zh-CN")
    submit_login(phone_page, dashboard.url, steward)
    phone_b03 = phone_page.locator('.building-card[data-building="b03"]')
    expect(phone_b03.locator(".problem").first).to_have_text("2号电梯：困人")
    phone_page.screenshot(path=artifacts / "residents-steward-tile-reason-zh-phone.png")
    phone_b03.click()
    expect(phone_page.locator(".building-detail .problem").first).to_have_text("2号电梯：困人")
    phone_page.screenshot(
        path=artifacts / "residents-steward-building-zh-phone.png", full_page=True
    )

    # The car is freed (the fault clears) and the order resolved: green, nothing named.
    dashboard.feed.run_until(dashboard.fault_at_s + 600 + 30)
    assert dashboard.store.get(order_id).cleared_ms is not None
    if dashboard.store.get(order_id).status != "resolved":
        dashboard.store.transition(
            order_id, "resolved", actor="dispatcher", resolution_code="reset"
        )
    page.click("#lang")
    expect(b03).to_have_attribute("data-status", "ok")
    expect(b03.locator(".problem")).to_have_count(0)
    expect(b03.locator(".badge")).to_have_text("OK")
    page.screenshot(path=artifacts / "residents-steward-tile-green.png")
    expect(phone_page.locator(".building-detail")).to_have_attribute("data-status", "ok")
    expect(phone_page.locator(".building-detail .problem")).to_have_count(0)
    phone_page.screenshot(path=artifacts / "residents-steward-building-green-zh-phone.png")
    desktop.close()
    phone.close()
    assert errors == []


def test_a_resident_reports_the_steward_reads_it_and_the_status_page_says_what_is_out(
    dashboard: DashboardServer, browser: Browser, artifacts: Path
) -> None:
    steward = dashboard.add_user("steward", "steward", buildings=["b03", "b05"])
    context = dashboard.app.state.context
    report_code = context.report_codes.code_for("b03-u1")
    status_code = context.status_codes.code_for("b03")
    errors: list[str] = []

    # A resident scans the stairwell's code: the form, on a phone, in Chinese.
    resident, form_page = new_page(browser, errors, viewport=PHONE, locale="zh-CN")
    form_page.goto(f"{dashboard.url}/r/{report_code}")
    expect(form_page.locator("h1")).to_have_text("报修")
    expect(form_page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(form_page.locator('#device option[value="b03-u1-el2"]')).to_have_text("2号电梯")
    form_page.screenshot(path=artifacts / "residents-form-zh-phone.png", full_page=True)
    # Too short, then a photo that is not a JPEG/PNG/WebP: told so, nothing sent.
    form_page.click("#send")
    expect(form_page.locator("#problem")).to_have_text("请描述问题（至少5个字）。")
    form_page.fill("#description", RESIDENT_TEXT)
    form_page.set_input_files(
        "#photo", files=FilePayload(name="cat.gif", mimeType="image/gif", buffer=GIF)
    )
    form_page.click("#send")
    expect(form_page.locator("#problem")).to_have_text("照片须为 JPEG、PNG 或 WebP 格式。")
    assert dashboard.store.open_work_orders(["b03"]) == []
    # In English, with the device, a contact and a photo: filed.
    form_page.click("#lang")
    expect(form_page.locator("h1")).to_have_text("Report a problem")
    form_page.select_option("#device", "b03-u1-el2")
    form_page.fill("#contact", CONTACT)
    form_page.set_input_files(
        "#photo", files=FilePayload(name="lift.png", mimeType="image/png", buffer=PNG)
    )
    form_page.click("#send")
    done = form_page.locator("#done")
    expect(done).to_be_visible()
    expect(done).to_contain_text("Thank you")
    report_id = int(done.get_attribute("data-work-order") or "0")
    form_page.screenshot(path=artifacts / "residents-form-sent-phone.png", full_page=True)
    report = dashboard.store.get(report_id)
    assert (report.source, report.unit_id, report.device_id) == (
        Source.REPORT, "b03-u1", "b03-u1-el2",
    )  # fmt: skip

    # The steward: building 3 is not green, the report counts, and its page lists it.
    desktop, page = new_page(browser, errors)
    submit_login(page, dashboard.url, steward)
    b03 = page.locator('.building-card[data-building="b03"]')
    expect(b03).to_have_attribute("data-status", "warning")
    expect(b03.locator(".card-reports")).to_have_text("Resident reports: 1")
    expect(b03.locator(".problem").first).to_have_text("Elevator 2: resident report")
    page.screenshot(path=artifacts / "residents-steward-report-tile.png")
    b03.click()
    item = page.locator(f'.reports .report[data-work-order="{report_id}"]')
    expect(item).to_have_attribute("data-status", "open")
    expect(item.locator(".report-text")).to_contain_text(RESIDENT_TEXT)
    expect(item.locator(".report-text")).to_contain_text(CONTACT)
    photo = item.locator(".report-photos img")
    expect(photo).to_have_count(1)
    page.wait_for_function(  # loaded with the steward's login (the cookie)
        "() => { const img = document.querySelector('.report-photos img');"
        " return img && img.complete && img.naturalWidth === 1; }"
    )
    # What the steward learned on the spot, as a note on the report.
    item.locator(".report-note summary").click()
    note = item.locator(".report-note textarea")
    note.fill("Checked: car 2 stops 3 cm low at floor 4")
    # The dispatcher takes the report meanwhile: the page redraws live, and what the steward
    # opened and typed is still there (it used to fold away, text and all).
    dashboard.store.transition(report_id, "acknowledged", actor="dispatcher")
    expect(item).to_have_attribute("data-status", "acknowledged")
    expect(item.locator(".report-note")).to_have_attribute("open", "")
    expect(note).to_have_value("Checked: car 2 stops 3 cm low at floor 4")
    expect(note).to_be_focused()
    item.locator(".report-note button[type=submit]").click()
    expect(item.locator(".report-notes li")).to_contain_text("3 cm low at floor 4")
    # Stored: the box is folded and empty for the next note.
    expect(item.locator(".report-note")).not_to_have_attribute("open", "")
    expect(note).to_have_value("")
    page.screenshot(path=artifacts / "residents-steward-reports.png", full_page=True)
    page.click("#lang")
    expect(page.locator(".reports h3")).to_have_text("住户报修")
    page.screenshot(path=artifacts / "residents-steward-reports-zh.png", full_page=True)

    # The passenger gets trapped; a technician is on the way: the public page says so.
    dashboard.feed.run_until(dashboard.fault_at_s + 15)
    order_id = _trapped_order(dashboard)
    dashboard.store.transition(order_id, "acknowledged", actor="dispatcher", note="Li Wei, 10 min")
    status_page = watched_page(resident, errors)
    status_page.goto(f"{dashboard.url}/s/{status_code}")
    outage = status_page.locator("#outages .outage")
    expect(outage).to_have_count(1)
    expect(outage).to_have_text(
        re.compile(r"^Elevator 2 out of service since \d\d:\d\d, technician on the way$")
    )
    expect(status_page.locator("#building")).to_have_text("Building 3")
    status_page.screenshot(path=artifacts / "residents-status-phone.png", full_page=True)
    status_page.click("#lang")
    expect(outage).to_have_text(re.compile(r"^2号电梯自\d\d:\d\d起暂停使用，维修人员正在赶来$"))
    expect(status_page.locator("#building")).to_have_text("3号楼")
    status_page.screenshot(path=artifacts / "residents-status-zh-phone.png", full_page=True)
    shown = status_page.locator("body").inner_text()
    for private in ("b03-u1", "Unit 1", "单元", RESIDENT_TEXT[:20], "1203", "1380", "Li Wei",
                    "dispatcher", "steward", f"#{order_id}", f"#{report_id}", "3 cm"):  # fmt: skip
        assert private not in shown, private
    # On a desktop too, and green again once the order is done.
    desktop_status = watched_page(desktop, errors)
    desktop_status.set_viewport_size(DESKTOP)
    desktop_status.goto(f"{dashboard.url}/s/{status_code}")
    expect(desktop_status.locator("#outages .outage")).to_have_count(1)
    desktop_status.screenshot(path=artifacts / "residents-status-desktop.png")
    dashboard.store.transition(
        order_id, "resolved", actor="dispatcher", resolution_code="reset", confirm_active=True
    )
    desktop_status.reload()
    expect(desktop_status.locator("#all-ok")).to_be_visible()
    expect(desktop_status.locator("#outages .outage")).to_have_count(0)
    desktop_status.screenshot(path=artifacts / "residents-status-ok-desktop.png")

    # An unknown code is a plain 404 page in both languages.
    unknown = watched_page(resident, errors)
    answer = unknown.goto(f"{dashboard.url}/s/not-a-code")
    assert answer is not None
    assert answer.status == 404
    expect(unknown.locator("main")).to_contain_text("无法识别")
    resident.close()
    desktop.close()
    assert errors == []


def test_a_steward_prints_the_qr_codes_of_their_building(
    dashboard: DashboardServer, browser: Browser, artifacts: Path
) -> None:
    steward = dashboard.add_user("steward", "steward", buildings=["b03", "b05"])
    errors: list[str] = []
    context, page = new_page(browser, errors)
    submit_login(page, dashboard.url, steward)
    page.locator('.building-card[data-building="b03"]').click()
    page.locator(".qr-link").click()
    cards = page.locator(".qr-card")
    expect(cards).to_have_count(3)  # two units and the building's status page
    expect(cards.nth(0)).to_contain_text("Building 3 Unit 1")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.qr-card img')]"
        ".every((img) => img.complete && img.naturalWidth > 0)"
    )
    code = dashboard.app.state.context.report_codes.code_for("b03-u1")
    expect(cards.nth(0).locator(".qr-url")).to_have_text(f"{dashboard.url}/r/{code}")
    page.screenshot(path=artifacts / "residents-qr-sheet.png", full_page=True)
    page.emulate_media(media="print")
    expect(page.locator(".topbar")).to_be_hidden()
    expect(page.locator(".qr-print")).to_be_hidden()
    page.pdf(path=artifacts / "residents-qr-sheet.pdf")
    context.close()
    assert errors == []
