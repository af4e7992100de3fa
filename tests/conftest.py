"""Shared fixtures: the demo site, and real Mosquitto / InfluxDB for integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from facility.site import Site, load_site
from tests.services import ServiceProcess, start_influxd, start_mosquitto, start_victoria_metrics

ROOT = Path(__file__).resolve().parent.parent
DEMO_SITE = ROOT / "sites" / "shangri-la.toml"


@pytest.fixture(scope="session")
def demo_site() -> Site:
    return load_site(DEMO_SITE)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[ServiceProcess]:
    service = start_mosquitto(tmp_path / "mosquitto")
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def influxd(tmp_path: Path) -> Iterator[ServiceProcess]:
    service = start_influxd(tmp_path / "influxd")
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def victoria_metrics(tmp_path: Path) -> Iterator[ServiceProcess]:
    service = start_victoria_metrics(tmp_path / "victoria-metrics")
    try:
        yield service
    finally:
        service.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say plainly whether the tests on real services ran: CI must not pass on skips."""
    counts: dict[str, int] = {}
    for outcome in ("passed", "failed", "skipped", "error"):
        reports = terminalreporter.stats.get(outcome, [])
        counts[outcome] = sum(
            1
            for report in reports
            if getattr(report, "when", "call") in ("call", "setup")
            and "integration" in getattr(report, "keywords", {})
            and (outcome != "passed" or report.when == "call")
        )
    terminalreporter.write_line(
        "integration tests on real services: "
        + ", ".join(f"{n} {outcome}" for outcome, n in counts.items() if n or outcome == "passed")
    )
