"""Fixtures the API's unit tests share: a fake clock at the suite's epoch and an in-process API
over a fresh work-order store on each database (`db_url`). A module that needs another clock
or store defines its own fixture of the same name, which wins."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from facility.site import Site
from tests.api_support import T0, Api, new_store, running_api
from tests.fakes import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def api(demo_site: Site, db_url: str, clock: FakeClock) -> Iterator[Api]:
    with running_api(demo_site, new_store(db_url, clock), clock) as api:
        yield api
