"""/docs in headless Chromium: the bundled Swagger UI renders the OpenAPI 3.1 schema the app serves.

A Swagger UI that reads only OpenAPI 3.0 still answers 200 and shows "Unable to render this
definition", so only a browser can tell; the app is served without telemetry (the schema does
not depend on it), and every script must come from this server (requests elsewhere fail).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Route, ViewportSize, expect

from facility.site import Site
from tests.browser.dashboard import DashboardServer
from tests.browser.pages import WAIT_MS, new_context, watched_page

pytestmark = pytest.mark.integration

TALL: ViewportSize = {"width": 1280, "height": 900}
"""The window this page has been checked in: a little taller than DESKTOP."""


@pytest.fixture
def api_server(demo_site: Site, tmp_path: Path) -> Iterator[DashboardServer]:
    server = DashboardServer(
        demo_site, tmp_path, fault="elevator-entrapment:b03-u1-el2", fault_at_s=600
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_docs_lists_the_operations_offline(
    browser: Browser, api_server: DashboardServer, artifacts: Path
) -> None:
    context = new_context(browser, viewport=TALL, timezone_id=None)
    outside: list[str] = []

    def local_only(route: Route) -> None:
        url = route.request.url
        if url.startswith(api_server.url):
            route.continue_()
        else:  # a CDN would be reached here: the page must not need it
            outside.append(url)
            route.abort()

    context.route("**/*", local_only)
    errors: list[str] = []
    page = watched_page(context, errors)
    try:
        page.goto(f"{api_server.url}/docs")
        login = page.locator(".opblock-summary-path", has_text="/api/v1/auth/login")
        expect(login.first).to_be_visible(timeout=WAIT_MS)
        expect(
            page.locator(".opblock-summary-path", has_text="/api/v1/work-orders").first
        ).to_be_visible()
        expect(page.get_by_text("Unable to render this definition")).to_have_count(0)
        expect(page.locator(".swagger-ui .errors-wrapper")).to_have_count(0)
        # An operation opened: its media-type select draws its arrow from a data: image,
        # which the page's Content-Security-Policy must allow (and nothing else inline).
        login.first.click()
        expect(page.locator(".opblock-body select").first).to_be_visible()
        page.screenshot(path=str(artifacts / "api-docs.png"), full_page=False)
    finally:
        context.close()
    assert outside == []
    assert errors == []
