"""The owners' report page in headless Chromium: a dispatcher downloads the PDF in English and,
with the page in 中文, the CSV in 中文; both hold the day's entrapment (its title in the
report's language) and the figures the service route gives. A steward's report covers their
buildings; a technician has no report link. The board shows the order's 中文 title in 中文.

Waits are Playwright's `expect` with bounded timeouts.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Download, Page, expect
from pypdf import PdfReader

from alerts.owners_report import day_range_ms, previous_month_ms
from alerts.owners_tables import local_date, percent
from alerts.service import service_figures
from tests.browser.dashboard import DashboardServer, Login
from tests.browser.pages import WAIT_MS, new_page, submit_login

pytestmark = pytest.mark.integration

expect.set_options(timeout=WAIT_MS)


def _page(browser: Browser, errors: list[str]) -> Page:
    """In London: the report's dates follow the site's zone, not the browser's."""
    _, page = new_page(browser, errors, timezone_id="Europe/London")
    return page


def _sign_in(page: Page, base_url: str, login: Login) -> None:
    submit_login(page, base_url, login)
    expect(page.locator("#nav")).to_be_visible()


def _download(page: Page, fmt: str) -> Download:
    with page.expect_download() as info:
        page.click(f"button.download-{fmt}")
    download = info.value
    expect(page.locator(".report-status")).to_have_attribute(
        "data-file", download.suggested_filename
    )
    return download


def test_reports_download_in_both_languages(
    dashboard: DashboardServer, browser: Browser, artifacts: Path
) -> None:
    dashboard.feed.run_until(dashboard.fault_at_s + 30)  # the passenger is trapped
    site = dashboard.site
    day = dt.datetime.fromtimestamp(dashboard.clock.now / 1000, ZoneInfo(site.timezone)).date()
    start, end = day_range_ms(day, day, site.timezone)
    b03 = site.building_by_id["b03"]
    expected = service_figures(
        "b03", dashboard.store.orders_for_period("b03", start, end),
        elevators=sum(d.kind == "elevator" for d in b03.devices),
        start_ms=start, end_ms=end, now_ms=dashboard.clock.now,
    )  # fmt: skip
    assert expected.work_orders >= 1
    row = f"b03 Building 3 {expected.work_orders} {expected.reports}"
    errors: list[str] = []
    page = _page(browser, errors)
    _sign_in(page, dashboard.url, dashboard.add_user("dispatch", "dispatcher"))

    page.click("#nav-report")
    expect(page.locator(".report-page")).to_be_visible()
    expect(page.locator(".report-page")).to_contain_text("Asia/Shanghai")
    # A half-given range is refused before anything is asked for.
    page.fill("input[name=from]", day.isoformat())
    page.click("button.download-pdf")
    expect(page.locator(".report-status.error")).to_contain_text("both the first and the last")
    page.fill("input[name=to]", day.isoformat())
    expect(page.locator("select[name=lang]")).to_have_value("en")  # the page's language
    pdf = _download(page, "pdf")
    assert pdf.suggested_filename == f"owners-report-shangri-la-{day}-{day}-en.pdf"
    reader = PdfReader(io.BytesIO(Path(pdf.path()).read_bytes()))
    text = " ".join(" ".join(p.extract_text() for p in reader.pages).split())
    assert "Owners' meeting report" in text
    assert row in text
    assert percent(expected.elevator_availability) in text
    assert "Passenger trapped: Elevator 2" in text
    page.screenshot(path=str(artifacts / "owners-report-en.png"), full_page=True)

    page.click("#lang")  # the page in 中文: the report's language follows unless chosen
    expect(page.locator(".report-page h2")).to_have_text("业主大会报告")
    expect(page.locator("input[name=to]")).to_have_value(day.isoformat())  # kept on redraw
    expect(page.locator("select[name=lang]")).to_have_value("zh")
    csv_file = _download(page, "csv")
    assert csv_file.suggested_filename.endswith("-zh.csv")
    body = Path(csv_file.path()).read_bytes().decode("utf-8-sig")
    assert "业主大会报告" in body
    assert "乘客被困：Elevator 2" in body
    assert f"buildings,b03,Building 3,{expected.work_orders},{expected.reports}," in body
    page.screenshot(path=str(artifacts / "owners-report-zh.png"), full_page=True)

    # The board in 中文 shows the order's 中文 title.
    page.click("#nav-board")
    expect(page.locator(".order-title", has_text="乘客被困：Elevator 2")).to_be_visible()
    assert errors == []


def test_a_steward_gets_their_buildings_and_a_technician_no_link(
    dashboard: DashboardServer, browser: Browser
) -> None:
    errors: list[str] = []
    page = _page(browser, errors)
    _sign_in(page, dashboard.url, dashboard.add_user("tech", "technician", team="lift-contractor"))
    expect(page.locator(".board-page")).to_be_visible()
    expect(page.locator("#nav-report")).to_be_hidden()
    page.goto(f"{dashboard.url}/#/report")
    expect(page.locator("main")).to_contain_text("administrators, dispatchers and stewards")
    page.click("#logout")

    steward = dashboard.add_user("stew", "steward", buildings=["b03", "b05"])
    _sign_in(page, dashboard.url, steward)
    page.click("#nav-report")
    expect(page.locator(".report-page")).to_contain_text("Your buildings only: b03, b05")
    csv_file = _download(page, "csv")  # the month preset: the previous one in Shanghai
    start, end = previous_month_ms(dashboard.clock.now, "Asia/Shanghai")
    first, last = local_date(start, "Asia/Shanghai"), local_date(end - 1, "Asia/Shanghai")
    assert csv_file.suggested_filename == f"owners-report-shangri-la-{first}-{last}-en.csv"
    lines = Path(csv_file.path()).read_bytes().decode("utf-8-sig").splitlines()
    assert [line.split(",")[1] for line in lines if line.startswith("buildings,")] == [
        "b03",
        "b05",
    ]
    assert errors == []
