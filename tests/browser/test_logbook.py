"""The compliance logbook in headless Chromium: a steward opens their building, follows the
link to its logbook, and sees one car's EN 81-28 self-test overdue (its last pass four days
ago, the car now reporting a failed test) while the other car's is done, with the reading as
evidence; the same page in Chinese. Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from alerts.maintenance.scheduler import MaintenanceScheduler
from alerts.orderstore.scheduled import TelemetryPass
from tests.browser.dashboard import DashboardServer
from tests.browser.pages import WAIT_MS, new_page, submit_login
from tests.readings import Reading, batch

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000
FAILING = "b03-u1-el1"
PASSING = "b03-u1-el2"
expect.set_options(timeout=WAIT_MS)


def _fail_the_self_test(dashboard: DashboardServer) -> None:
    """FAILING passed its last test four days ago and reports a failed one now."""
    now = dashboard.clock.now
    plans = dashboard.app.state.context.plans
    MaintenanceScheduler(
        dashboard.site, dashboard.store, plans, lead_ms=2 * DAY_MS, clock_ms=dashboard.clock
    ).run_once()  # tracking, and every car's current pass as evidence ...
    with dashboard.store.engine.begin() as conn:  # ... but FAILING's is four days old
        conn.exec_driver_sql(f"DELETE FROM maintenance_evidence WHERE device_id = '{FAILING}'")
    every = {p.id: p.every_ms for p in plans.plans}
    dashboard.store.record_passes(
        [TelemetryPass("elevator.alarm_test", FAILING, now - 4 * DAY_MS, 1.0)], every
    )
    readings = [Reading(FAILING, 1.0, {"alarm_test_ok": 0, "running": 0})]
    dashboard.store.update_device_state(
        dashboard.site, batch(dashboard.site, readings, start_ms=now)
    )


def test_a_steward_finds_an_overdue_alarm_test_in_the_logbook(
    dashboard: DashboardServer, browser: Browser, artifacts: Path
) -> None:
    _fail_the_self_test(dashboard)
    steward = dashboard.add_user("stew", "steward", buildings=["b03"])
    errors: list[str] = []
    context, page = new_page(browser, errors)
    try:
        submit_login(page, dashboard.url, steward)
        page.click('a.building-card[data-building="b03"]')
        page.click("a.logbook-link")

        expect(page).to_have_url(f"{dashboard.url}/#/buildings/b03/logbook")
        failing = page.locator(
            f'.logbook-row[data-device="{FAILING}"][data-plan="elevator.alarm_test"]'
        )
        passing = page.locator(
            f'.logbook-row[data-device="{PASSING}"][data-plan="elevator.alarm_test"]'
        )
        expect(failing).to_have_attribute("data-status", "overdue")
        expect(failing.locator(".badge")).to_have_text("Overdue")
        expect(failing).to_contain_text("overdue by")
        expect(passing).to_have_attribute("data-status", "done")
        expect(passing.locator('[data-evidence="telemetry"]')).to_contain_text("Alarm self-test")
        visit = page.locator(
            f'.logbook-row[data-device="{PASSING}"][data-plan="elevator.maintenance"]'
        )
        expect(visit).to_contain_text("Elevator maintenance (every 15 days)")
        expect(page.locator(".logbook-summary")).to_contain_text("overdue")
        page.screenshot(path=str(artifacts / "logbook-desktop-en.png"), full_page=True)

        page.click("#lang")
        expect(page.locator("h2")).to_contain_text("合规台账")
        expect(failing.locator(".badge")).to_have_text("逾期")
        expect(visit).to_contain_text("电梯维保")
        page.screenshot(path=str(artifacts / "logbook-desktop-zh.png"), full_page=True)
    finally:
        context.close()
    assert errors == []
