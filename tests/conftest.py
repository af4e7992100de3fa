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
