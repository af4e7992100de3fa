"""An order's trend opens on the span that has data: on a fresh install (ten minutes of readings
before the fault) that is the last hour before the fault, not 24 h of empty charts; the span
is chosen by `api/static/trend-span.js`, whose rule is checked here in Chromium too.
Screenshots go to test-artifacts/browser/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.dashboard import DashboardServer
from tests.browser.pages import WAIT_MS, new_page, submit_login

pytestmark = pytest.mark.integration

HOUR_MS = 3_600_000
FAULT_MS = 1_750_000_000_000
SPANS_H = [24, 1]


def _open_order(browser: Browser, dashboard: DashboardServer, errors: list[str]) -> Page:
    login = dashboard.add_user("dispatch", "dispatcher")
    _, page = new_page(browser, errors, timezone_id=None)
    submit_login(page, dashboard.url, login)
    expect(page.locator(".board-page")).to_be_visible(timeout=WAIT_MS)
    return page


def test_a_fresh_installs_order_opens_on_the_hour_before_the_fault(
    dashboard: DashboardServer, browser: Browser, artifacts: Path
) -> None:
    dashboard.feed.run_until(dashboard.fault_at_s + 15)
    (order,) = [o for o in dashboard.store.open_work_orders() if o.device_id == "b03-u1-el2"]
    errors: list[str] = []
    page = _open_order(browser, dashboard, errors)
    page.goto(f"{dashboard.url}/#/orders/{order.id}")
    trend = page.locator(".order-detail .trend")
    expect(trend.locator("select")).to_have_value("1", timeout=WAIT_MS)
    charts = trend.locator("figure.chart-figure")
    expect(charts.first).to_be_visible(timeout=WAIT_MS)
    # Every chart shown draws its line; none is the empty "no history" chart.
    expect(trend.locator(".chart-empty")).to_have_count(0)
    assert charts.count() == trend.locator("path.chart-line").count() > 0
    page.screenshot(path=artifacts / "order-trend-fresh-install.png", full_page=True)
    # The longer span is still a choice away.
    trend.locator("select").select_option("24")
    expect(trend.locator("select")).to_have_value("24")
    expect(trend.locator("path.chart-line").first).to_be_visible(timeout=WAIT_MS)
    page.context.close()
    assert errors == []


def _series(*starts_min: float) -> dict[str, Any]:
    """A trend whose readings start these many minutes before the fault (one series each)."""
    return {
        "interval_s": 300,
        "series": [
            {"field": f"f{i}", "buckets": [{"start_ms": FAULT_MS - m * 60_000}]}
            for i, m in enumerate(starts_min)
        ],
    }


CASES = [
    (_series(10), 1),  # minutes of history: the last hour
    (_series(10, 59), 1),
    (_series(10, 64), 1),  # within one 5-minute bucket of the hour
    (_series(10, 66), 24),  # one signal goes back further: the whole day
    (_series(23 * 60), 24),
    (_series(-5), 1),  # readings only after the fault
    (_series(), 24),  # nothing at all: the largest span (its charts say "no history")
    (None, 24),
]


def test_the_span_rule(dashboard: DashboardServer, browser: Browser) -> None:
    page = browser.new_page()
    page.goto(f"{dashboard.url}/")
    chosen = page.evaluate(
        """async ([cases, faultMs, spans]) => {
             const { defaultSpanH } = await import("/static/trend-span.js");
             return cases.map(([trend]) => defaultSpanH(trend, faultMs, spans));
           }""",
        [CASES, FAULT_MS, SPANS_H],
    )
    page.close()
    assert chosen == [expected for _, expected in CASES]
