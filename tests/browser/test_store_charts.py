"""The device charts drawn from the HTTP stores' history: the simulated site's telemetry is
written through the registry's writer to a real InfluxDB 1.x or VictoriaMetrics (the InfluxDB
2.x/3.x-style store), and the app reads it back through `open_history` - no SQLite telemetry
anywhere. When the store goes away, the page says so instead of drawing nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from facility.site import Site
from ingest.settings import StoreKind, StoreSettings
from tests.browser.dashboard import DashboardServer
from tests.browser.pages import WAIT_MS, new_page, submit_login
from tests.services import ServiceProcess, start_influxd, start_victoria_metrics

pytestmark = pytest.mark.integration

FED_S = 590
"""Simulated seconds of telemetry in the store before the page opens (the feed's clock ends
about now; the fault it was given, at 600 s, never comes)."""


@pytest.fixture(params=["influx-v1", "influx-v2"])
def served(
    request: pytest.FixtureRequest, demo_site: Site, tmp_path: Path
) -> Iterator[tuple[DashboardServer, ServiceProcess]]:
    kind: StoreKind = request.param
    start = start_influxd if kind == "influx-v1" else start_victoria_metrics
    service = start(tmp_path / kind)
    url = f"http://127.0.0.1:{service.port}"
    try:
        server = DashboardServer(
            demo_site, tmp_path, fault="elevator-entrapment:b03-u1-el2", fault_at_s=600,
            time_series=StoreSettings(kind=kind, influx_url=url, influx_db="charts"),
        )  # fmt: skip
        server.feed.run_until(FED_S)
        if kind == "influx-v2":  # searchable now, not after VictoriaMetrics' next flush
            httpx.get(f"{url}/internal/force_flush", timeout=10).raise_for_status()
        server.start()
        try:
            yield server, service
        finally:
            server.stop()
    finally:
        service.stop()


def test_device_charts_come_from_the_configured_store(
    served: tuple[DashboardServer, ServiceProcess], browser: Browser, artifacts: Path
) -> None:
    dashboard, service = served
    login = dashboard.add_user("steward", "steward", buildings=["b03"])
    errors: list[str] = []
    context, page = new_page(browser, errors, timezone_id=None)
    submit_login(page, dashboard.url, login)
    expect(page.locator(".building-card")).to_have_count(1)
    store = service.name

    # An elevator: float and integer fields, bucketed by the store.
    page.goto(f"{dashboard.url}/#/devices/b03-u1-el2")
    expect(page.locator(".device-detail h2")).to_contain_text("Elevator 2", timeout=WAIT_MS)
    for field in ("motor_temp_c", "vibration_mm_s", "door_reopen_count"):
        chart = page.locator(f'.chart-figure[data-field="{field}"]')
        expect(chart.locator("path.chart-line")).to_have_count(1, timeout=WAIT_MS)
        expect(chart.locator(".chart-empty")).to_have_count(0)
    page.screenshot(path=artifacts / f"device-charts-{store}.png", full_page=True)

    # A unit door: its open/closed boolean comes back as the fraction of time open.
    page.goto(f"{dashboard.url}/#/devices/b03-u1-door")
    door = page.locator('.chart-figure[data-field="door_open"]')
    expect(door.locator(".chart-empty")).to_have_count(0, timeout=WAIT_MS)
    expect(door.locator("path.chart-line")).to_have_count(1, timeout=WAIT_MS)

    # The store goes away: the page says the history is not available.
    service.stop()
    page.goto(f"{dashboard.url}/#/devices/b03-u1-el2")
    page.reload()
    expect(page.locator(".device-detail")).to_contain_text(
        "History is not available", timeout=WAIT_MS
    )
    expect(page.locator(".chart-figure")).to_have_count(0)
    context.close()
    assert errors == []
