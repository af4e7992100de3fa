"""A portfolio in headless Chromium: three estates from a directory of site files, each with its
own building `b03` (scoped `riverside:b03`, `hillcrest:b03`, `lakeview:b03`).

A passenger is trapped in Riverside's b03 (a fault: red) and Lakeview's b07 door is held open
(a warning); Hillcrest is fine. The dispatch desk sees the sites worst first and each site's
buildings worst first, opens Hillcrest's b03 (not Riverside's), and narrows the board to one
site (the address keeps it); when a passenger is trapped in Hillcrest too, the open page puts
Hillcrest first. A steward of Riverside's b03 sees that building only, as a
one-site deployment looks. The admin limits a dispatcher to one site on the users screen;
that dispatcher then sees that site only, and a steward added for a whole site sees its
buildings. The owners' report is of the estate chosen, in that estate's time zone.

Waits are Playwright's `expect` with bounded timeouts; screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from alerts.rule_faults import site_fault
from facility.portfolio import load_portfolio
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
expect.set_options(timeout=WAIT_MS)

SHANGHAI = "Asia/Shanghai"
SITES = {
    "hillcrest": ("Hillcrest Court", SHANGHAI, [("b02", "Building 2"), ("b03", "Building 3")]),
    "lakeview": ("Lakeview Towers", "Asia/Hong_Kong", [("b03", "Tower 3"), ("b07", "Tower 7")]),
    "riverside": ("Riverside Gardens", SHANGHAI, [("b01", "Building 1"), ("b03", "Building 3")]),
}
"""Named so that alphabetical order is not the worst-first order the page must show; one
estate keeps another time zone (the owners' report's days are its own)."""
TRAPPED = "elevator-entrapment:riverside:b03-u1-el2"
HELD_OPEN = "gate-held-open:lakeview:b07-u1-door@500+900"
FAULT_AT_S = 600
LATER = 18
"""Seconds after FAULT_AT_S a passenger is trapped in Hillcrest's b02 too (only tests that feed
past the fixture's feed see it)."""
TRAPPED_LATER = f"elevator-entrapment:hillcrest:b02-u1-el1@{FAULT_AT_S + LATER}+600"
HELD_OPEN_S = 20
"""The doors' held-open limit in these site files: the warning comes within the test's feed."""
WORST_FIRST = ["riverside", "lakeview", "hillcrest"]

WORDS = {
    "en": {"site": "Site", "fault": "Fault", "warning": "Warning", "ok": "OK", "sites": "Sites"},
    "zh": {"site": "小区", "fault": "故障", "warning": "警告", "ok": "正常", "sites": "小区"},
}


def _site_file(site_id: str, name: str, timezone: str, buildings: list[tuple[str, str]]) -> str:
    """A small estate: each building one unit with two elevators and a door."""
    parts = [f'[site]\nid = "{site_id}"\nname = "{name}"\ntimezone = "{timezone}"\n']
    for building, title in buildings:
        unit = f"{building}-u1"
        parts.append(
            f'[[buildings]]\nid = "{building}"\nname = "{title}"\n\n'
            f'[[buildings.units]]\nid = "{unit}"\nname = "{title} Unit 1"\ndevices = [\n'
            f'  {{ id = "{unit}-el1", kind = "elevator", name = "Elevator 1" }},\n'
            f'  {{ id = "{unit}-el2", kind = "elevator", name = "Elevator 2" }},\n'
            f'  {{ id = "{unit}-door", kind = "gate", name = "Unit door",'
            f" params = {{ gate_held_open_s = {HELD_OPEN_S} }} }},\n]\n"
        )
    return "\n".join(parts)


@pytest.fixture
def portfolio(tmp_path: Path) -> Iterator[DashboardServer]:
    """The app on a portfolio of SITES, fed until both faults have filed their orders."""
    directory = tmp_path / "sites"
    directory.mkdir()
    for site_id, (name, timezone, buildings) in SITES.items():
        (directory / f"{site_id}.toml").write_text(_site_file(site_id, name, timezone, buildings))
    server = DashboardServer(
        load_portfolio(directory),
        tmp_path,
        fault=TRAPPED,
        fault_at_s=FAULT_AT_S,
        more_faults=[HELD_OPEN, TRAPPED_LATER],
    )
    server.feed.run_until(FAULT_AT_S + 15)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _sign_in(page: Page, base_url: str, login: Login, language: str) -> None:
    submit_login(page, base_url, login)
    expect(page.locator("#who")).to_contain_text(login.username)
    show_in(page, language)


def _data(page: Page, selector: str, name: str) -> list[str]:
    values: list[str] = page.locator(selector).evaluate_all(
        f"nodes => nodes.map(n => n.dataset.{name})"
    )
    return values


@ON_DESKTOP_AND_PHONE
def test_the_dispatch_desk_sees_sites_worst_first_and_opens_the_right_b03(
    portfolio: DashboardServer,
    browser: Browser,
    artifacts: Path,
    viewport: ViewportSize,
    language: str,
) -> None:
    name = shot_name("portfolio", viewport, language)
    words = WORDS[language]
    dispatcher = portfolio.add_user("desk", "dispatcher")
    errors: list[str] = []
    context, page = new_page(browser, errors, viewport=viewport)
    _sign_in(page, portfolio.url, dispatcher, language)
    expect(page.locator(".board-page")).to_be_visible()
    expect(page.locator(".topbar .site")).to_contain_text("3")

    # The sites, worst first; in each, its buildings worst first, named with their site.
    page.click("#nav-buildings")
    groups = page.locator(".site-group")
    expect(groups).to_have_count(3)
    expect(page.locator(".portfolio h2")).to_have_text(words["sites"])
    assert _data(page, ".site-group", "site") == WORST_FIRST
    assert _data(page, ".site-group", "status") == ["alarm", "warning", "ok"]
    riverside = page.locator('.site-group[data-site="riverside"]')
    expect(riverside.locator(".site-head h3")).to_have_text("Riverside Gardens")
    expect(riverside.locator(".site-head > .badge")).to_have_text(words["fault"])
    expect(riverside.locator('.site-counts [data-status="alarm"]')).to_contain_text(
        f"{words['fault']}1"
    )
    expect(riverside.locator('.site-counts [data-status="ok"]')).to_contain_text(f"{words['ok']}1")
    expect(riverside.locator(".site-orders")).to_contain_text("1")
    assert _data(page, '.site-group[data-site="riverside"] .building-card', "building") == [
        "riverside:b03",
        "riverside:b01",
    ]
    assert _data(page, '.site-group[data-site="lakeview"] .building-card', "building") == [
        "lakeview:b07",
        "lakeview:b03",
    ]
    expect(riverside.locator(".building-card").first.locator(".card-site")).to_have_text(
        "Riverside Gardens"
    )
    expect(page.locator('.site-group[data-site="hillcrest"] .site-orders')).to_contain_text("0")
    page.screenshot(path=artifacts / f"{name}-sites.png", full_page=True)

    # A site's open orders lead to the board narrowed to that site.
    riverside.locator("a.site-orders").click()
    expect(page.locator(".filters select[name=site]")).to_have_value("riverside")
    expect(page.locator(".board-page .order-card")).to_have_count(1)
    page.go_back()
    expect(groups).to_have_count(3)

    # Hillcrest's b03 opens Hillcrest's b03 (all fine), not Riverside's (trapped passenger).
    page.locator('.building-card[data-building="hillcrest:b03"]').click()
    detail = page.locator(".building-detail")
    expect(detail).to_have_attribute("data-building", "hillcrest:b03")
    expect(detail).to_have_attribute("data-status", "ok")
    assert page.evaluate("location.hash") == "#/buildings/hillcrest%3Ab03"
    expect(detail.locator(".page-head h2")).to_contain_text("Building 3")
    expect(detail.locator(".page-site")).to_contain_text("Hillcrest Court")
    expect(detail.locator('section.unit[data-unit="hillcrest:b03-u1"]')).to_be_visible()
    expect(detail.locator(".device-tile")).to_have_count(3)
    expect(detail.locator('.device-tile[data-status="alarm"]')).to_have_count(0)
    page.screenshot(path=artifacts / f"{name}-hillcrest-b03.png", full_page=True)
    detail.locator('.device-tile[data-device="hillcrest:b03-u1-el2"]').click()
    expect(page.locator(".device-detail")).to_have_attribute("data-device", "hillcrest:b03-u1-el2")
    expect(page.locator(".device-detail .back")).to_contain_text("Hillcrest Court")
    expect(page.locator(".device-orders")).to_have_count(0)

    # Riverside's b03 through the address is the trapped one; its logbook and QR sheet too.
    page.goto(f"{portfolio.url}/#/buildings/riverside%3Ab03")
    expect(detail).to_have_attribute("data-building", "riverside:b03")
    expect(detail).to_have_attribute("data-status", "alarm")
    detail.locator(".logbook-link").click()
    expect(page.locator(".logbook")).to_have_attribute("data-building", "riverside:b03")
    expect(page.locator(".logbook h2")).to_contain_text("Building 3 · Riverside Gardens")
    page.go_back()
    detail.locator(".qr-link").click()
    expect(page.locator(".qr-sheet")).to_have_attribute("data-building", "riverside:b03")
    expect(page.locator(".qr-sheet h2")).to_contain_text("Building 3 · Riverside Gardens")

    # The board: both orders; the site filter narrows it to one site, and the address keeps it.
    page.click("#nav-board")
    board = page.locator(".board-page")
    expect(board.locator(".order-card")).to_have_count(2)
    site_filter = board.locator(".filters select[name=site]")
    expect(site_filter.locator("option")).to_have_count(4)
    expect(board.locator(".filters label:has(select[name=site])")).to_contain_text(words["site"])
    site_filter.select_option("riverside")
    expect(board.locator(".order-card")).to_have_count(1)
    card = board.locator(".order-card")
    expect(card).to_contain_text("Riverside Gardens · Building 3")
    assert page.evaluate("location.hash") == "#/orders?site=riverside"
    options = board.locator(".filters select[name=building] option").evaluate_all(
        "nodes => nodes.map(n => n.value)"
    )
    assert options == ["", "riverside:b01", "riverside:b03"]
    page.screenshot(path=artifacts / f"{name}-board-riverside.png", full_page=True)
    page.reload()
    expect(site_filter).to_have_value("riverside")
    expect(board.locator(".order-card")).to_have_count(1)
    site_filter.select_option("lakeview")
    expect(board.locator(".order-card")).to_contain_text("Lakeview Towers · Tower 7")
    expect(board.locator(".order-card")).to_have_count(1)
    site_filter.select_option("hillcrest")
    expect(board.locator(".order-card")).to_have_count(0)
    site_filter.select_option("")
    expect(board.locator(".order-card")).to_have_count(2)
    assert page.evaluate("location.hash") == "#/orders"

    # The order's page names its site and links its building and device.
    site_filter.select_option("riverside")
    expect(board.locator(".order-card")).to_have_count(1)
    board.locator(".order-card .order-title").click()
    order = page.locator(".order-detail")
    expect(order.locator(".facts")).to_contain_text("Riverside Gardens")
    page.screenshot(path=artifacts / f"{name}-order.png", full_page=True)
    order.locator(".order-building").click()
    expect(detail).to_have_attribute("data-building", "riverside:b03")

    # A passenger trapped in Hillcrest's b02 too: the open page puts Hillcrest first (two sites
    # at fault: by name), its b02 first, without a reload.
    page.click("#nav-buildings")
    expect(groups).to_have_count(3)
    page.evaluate("window.__sameDocument = true")
    portfolio.feed.run_until(FAULT_AT_S + LATER + 10)
    hillcrest = page.locator('.site-group[data-site="hillcrest"]')
    expect(hillcrest).to_have_attribute("data-status", "alarm")
    expect(groups.first).to_have_attribute("data-site", "hillcrest")
    assert _data(page, ".site-group", "site") == ["hillcrest", "riverside", "lakeview"]
    expect(hillcrest.locator(".building-card").first).to_have_attribute(
        "data-building", "hillcrest:b02"
    )
    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"
    expect(page.locator("#announce")).to_contain_text("Hillcrest Court")  # where it is
    page.screenshot(path=artifacts / f"{name}-sites-live.png", full_page=True)
    context.close()
    assert errors == []


@ON_DESKTOP_AND_PHONE
def test_a_steward_of_one_b03_sees_that_building_only(
    portfolio: DashboardServer,
    browser: Browser,
    artifacts: Path,
    viewport: ViewportSize,
    language: str,
) -> None:
    name = shot_name("portfolio-steward", viewport, language)
    steward = portfolio.add_user("river", "steward", buildings=["riverside:b03"])
    errors: list[str] = []
    context, page = new_page(browser, errors, viewport=viewport)
    _sign_in(page, portfolio.url, steward, language)

    # One site: the page is a one-site deployment's, the header names the steward's estate.
    card = page.locator(".building-card")
    expect(card).to_have_count(1)
    expect(card).to_have_attribute("data-building", "riverside:b03")
    expect(card).to_have_attribute("data-status", "alarm")
    expect(page.locator(".site-group")).to_have_count(0)
    expect(page.locator(".card-site")).to_have_count(0)
    expect(page.locator(".topbar .site")).to_have_text("Riverside Gardens")
    page.screenshot(path=artifacts / f"{name}-buildings.png", full_page=True)
    card.click()
    detail = page.locator(".building-detail")
    expect(detail).to_have_attribute("data-building", "riverside:b03")
    expect(detail.locator(".page-site")).to_have_count(0)
    page.screenshot(path=artifacts / f"{name}-building.png", full_page=True)

    # Another estate's b03 is not theirs, whatever the address says.
    page.goto(f"{portfolio.url}/#/buildings/hillcrest%3Ab03")
    expect(page.locator("#view .error")).to_be_visible()
    expect(page.locator(".building-detail")).to_have_count(0)
    context.close()
    assert errors == []


def test_the_admin_limits_users_to_sites(
    portfolio: DashboardServer, browser: Browser, artifacts: Path
) -> None:
    admin = portfolio.add_user("boss", "admin")
    portfolio.add_user("north", "dispatcher")
    errors: list[str] = []
    context, page = new_page(browser, errors, viewport=DESKTOP)
    _sign_in(page, portfolio.url, admin, "en")
    page.click("#nav-users")
    row = page.locator('.user-row[data-user="north"]')
    row.locator(".users-edit summary").click()
    edit = row.locator("form.users-edit-form")
    sites = edit.locator(".users-sites")
    expect(sites).to_be_visible()
    expect(sites.locator("input[name=site]")).to_have_count(3)
    expect(edit.locator(".users-buildings:not(.users-sites)")).to_be_hidden()
    sites.locator('input[name=site][value="lakeview"]').check()
    edit.locator("button[type=submit]").click()
    expect(row.locator(".user-scope")).to_have_text("Sites: Lakeview Towers")
    user = portfolio.app.state.context.users.by_username("north")
    assert user is not None
    assert list(user.sites) == ["lakeview"]

    # A new steward of the whole of Hillcrest; buildings are picked under their site's name
    # (every site has a b03), and none is needed with a site.
    add = page.locator("form[data-form=add-user]")
    add.locator("input[name=username]").fill("hill")
    add.locator("input[name=password]").fill("hill-password-123")
    add.locator("select[name=role]").select_option("steward")
    groups = add.locator(".users-site-buildings")
    expect(groups).to_have_count(3)
    expect(groups.locator('input[name=building][value="lakeview:b03"]')).to_have_count(1)
    expect(add.locator(".users-sites legend")).to_contain_text("Whole sites")
    add.locator('.users-sites input[value="hillcrest"]').check()
    page.screenshot(path=artifacts / "portfolio-users.png", full_page=True)
    add.locator("button[type=submit]").click()
    hill = page.locator('.user-row[data-user="hill"]')
    expect(hill.locator(".user-scope")).to_have_text("Sites: Hillcrest Court")
    context.close()

    # The dispatcher limited to Lakeview sees Lakeview's order only, and no site level.
    context, page = new_page(browser, errors, viewport=DESKTOP)
    _sign_in(page, portfolio.url, Login("north", "north-password-123"), "en")
    board = page.locator(".board-page")
    expect(board.locator(".order-card")).to_have_count(1)
    expect(board.locator(".order-card")).to_contain_text("Tower 7")
    expect(board.locator(".filters select[name=site]")).to_have_count(0)
    page.click("#nav-buildings")
    expect(page.locator(".building-card")).to_have_count(2)
    expect(page.locator(".site-group")).to_have_count(0)
    expect(page.locator(".topbar .site")).to_have_text("Lakeview Towers")
    context.close()

    # The steward of Hillcrest sees its two buildings as a one-site deployment shows them.
    context, page = new_page(browser, errors, viewport=DESKTOP)
    _sign_in(page, portfolio.url, Login("hill", "hill-password-123"), "en")
    expect(page.locator(".building-card")).to_have_count(2)
    assert _data(page, ".building-card", "building") == ["hillcrest:b02", "hillcrest:b03"]
    expect(page.locator(".site-group")).to_have_count(0)
    context.close()
    assert errors == []


def test_the_owners_report_is_of_the_chosen_estate(
    portfolio: DashboardServer, browser: Browser, artifacts: Path
) -> None:
    errors: list[str] = []
    context, page = new_page(browser, errors, viewport=DESKTOP)
    _sign_in(page, portfolio.url, portfolio.add_user("desk", "dispatcher"), "en")
    page.click("#nav-report")
    report = page.locator(".report-page")
    choice = report.locator("select[name=site]")
    expect(choice.locator("option")).to_have_count(3)
    options = choice.locator("option").evaluate_all("nodes => nodes.map(n => n.value)")
    assert options == ["hillcrest", "lakeview", "riverside"]  # by name
    expect(report).to_contain_text("(Asia/Shanghai)")
    choice.select_option("lakeview")
    expect(report).to_contain_text("(Asia/Hong_Kong)")  # the days are Lakeview's
    with page.expect_download() as info:
        page.click("button.download-csv")
    csv_file = info.value
    assert csv_file.suggested_filename.startswith("owners-report-lakeview-")
    body = Path(csv_file.path()).read_bytes().decode("utf-8-sig")
    assert "Lakeview Towers" in body
    assert "Riverside" not in body
    expect(page.locator(".report-status")).to_have_attribute(
        "data-file", csv_file.suggested_filename
    )
    page.screenshot(path=artifacts / "portfolio-owners-report.png", full_page=True)
    context.close()
    assert errors == []


def test_an_order_of_a_whole_estate_names_the_estate(
    portfolio: DashboardServer, browser: Browser
) -> None:
    """A site incident is filed on the estate's id, which is no building: the board and the
    order's page name the estate (the page does not fail on the building it has not)."""
    hillcrest = next(s for s in portfolio.site.sites if s.id == "hillcrest")
    now = portfolio.clock.now
    portfolio.store.open_for_faults("hillcrest", [site_fault(hillcrest, now - 60_000, now)])
    order = next(o for o in portfolio.store.open_work_orders() if o.building_id == "hillcrest")
    errors: list[str] = []
    context, page = new_page(browser, errors, viewport=DESKTOP)
    _sign_in(page, portfolio.url, portfolio.add_user("desk", "dispatcher"), "en")
    card = page.locator(f'.order-card[data-work-order="{order.id}"]')
    expect(card).to_contain_text("Hillcrest Court")
    card.locator(".order-title").click()
    detail = page.locator(f'.order-detail[data-work-order="{order.id}"]')
    expect(detail.locator(".facts")).to_contain_text("Hillcrest Court")
    expect(detail.locator(".order-building")).to_have_count(0)
    context.close()
    assert errors == []
