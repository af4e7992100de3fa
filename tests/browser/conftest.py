"""Fixtures of the browser tests: the system Chromium driven by Playwright, and the dashboard."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Error, Playwright, sync_playwright

from facility.site import Site
from tests.browser.dashboard import DashboardServer
from tests.services import find_binary

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = "/usr/bin/chromium"
"""Debian's chromium package (scripts/ensure-services.sh installs it): Playwright never
downloads a browser of its own here."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """A failed browser test reports what each of its open pages showed at that moment (its
    address and text, and a screenshot in test-artifacts/browser/): a failure that happens only
    under CI's load can then be read from CI's log. Taken before teardown stops the server."""
    outcome = yield
    report = outcome.get_result()
    browser = getattr(item, "funcargs", {}).get("browser")
    if report.when != "call" or not report.failed or not isinstance(browser, Browser):
        return
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pages = [page for context in browser.contexts for page in context.pages]
    for number, page in enumerate(pages, 1):
        shot = ARTIFACTS / f"FAILED-{item.name}-{number}.png"
        try:
            page.screenshot(path=shot, full_page=True)
            text = page.locator("body").inner_text(timeout=5000)
        except Error as exc:
            text = f"(could not be read: {exc.message})"
        report.sections.append(
            (
                f"page {number} of {len(pages)} at the failure: {page.url}",
                f"{text[:3000]}\n[{shot}]",
            )
        )


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Module-scoped on purpose: the sync API keeps an event loop running in this thread (on a
    greenlet) while it is open, which breaks asyncio.run() and pytest's assertion rewriting in
    the tests collected after these."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    executable = find_binary("chromium", CHROMIUM)
    launched = playwright.chromium.launch(executable_path=executable)
    try:
        yield launched
    finally:
        launched.close()


@pytest.fixture
def artifacts() -> Path:
    """Where screenshots go (gitignored), kept after the run for people to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def dashboard(
    request: pytest.FixtureRequest, demo_site: Site, tmp_path: Path
) -> Iterator[DashboardServer]:
    """The app on a free port with ten simulated minutes of the demo site fed in; a passenger
    gets trapped in elevator 2 of building 3, unit 1, when the test feeds past `fault_at_s`.
    Indirect parameters (a dict) go to DashboardServer, e.g. {"token_ttl_s": 3}."""
    options: dict[str, Any] = getattr(request, "param", {})
    server = DashboardServer(
        demo_site, tmp_path, fault="elevator-entrapment:b03-u1-el2", fault_at_s=600, **options
    )
    server.feed.run_until(server.fault_at_s - 1)
    server.start()
    try:
        yield server
    finally:
        server.stop()
