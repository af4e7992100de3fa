"""Fixtures the load-driven gateway tests share: a synthetic site of 25 devices per kind, as
a file for the gateway process and loaded for the publisher. A module with its own `site_file`
fixture keeps it."""

from __future__ import annotations

from pathlib import Path

import pytest

from facility.site import Site
from facility.site import load_site as read_site
from tests.integration.load import synthetic_site_text


@pytest.fixture
def site_file(tmp_path: Path) -> Path:
    path = tmp_path / "load-site.toml"
    path.write_text(synthetic_site_text(devices_per_kind=25))
    return path


@pytest.fixture
def load_site(site_file: Path) -> Site:
    return read_site(site_file)
