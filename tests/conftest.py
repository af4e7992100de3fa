"""Shared fixtures: the demo site, and real Mosquitto / InfluxDB for integration tests."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from facility.site import Site, load_site
from tests.services import (
    PostgresServer,
    ServiceProcess,
    start_influxd,
    start_mosquitto,
    start_postgres,
    start_victoria_metrics,
)

ROOT = Path(__file__).resolve().parent.parent
DEMO_SITE = ROOT / "sites" / "shangri-la.toml"


@pytest.fixture(scope="session")
def demo_site() -> Site:
    return load_site(DEMO_SITE)


def _running(service: ServiceProcess) -> Iterator[ServiceProcess]:
    """Yield a service this test started, and stop it (by PID) afterwards."""
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[ServiceProcess]:
    yield from _running(start_mosquitto(tmp_path / "mosquitto"))


@pytest.fixture
def influxd(tmp_path: Path) -> Iterator[ServiceProcess]:
    yield from _running(start_influxd(tmp_path / "influxd"))


@pytest.fixture
def victoria_metrics(tmp_path: Path) -> Iterator[ServiceProcess]:
    yield from _running(start_victoria_metrics(tmp_path / "victoria-metrics"))


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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The machine's PostgreSQL, or one started for this test session (stopped by PID)."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A throwaway database `facility_test_<random>`, dropped by name afterwards."""
    name = f"facility_test_{secrets.token_hex(6)}"
    postgres_server.admin(f"CREATE DATABASE {name}")
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)],
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One work-order database per test, on each backend: the store's contract suites use it."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'work-orders.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    return url
