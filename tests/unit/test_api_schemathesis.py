"""Schemathesis against the app's own OpenAPI schema, in process: whatever it sends, the API
never answers with a server error, and every status it answers is one the schema documents
for that operation (`status_code_conformance`). A bounded number of examples per operation,
as an admin, a steward and a technician: data that fits the schema, then data that does not
(bodies and parameters of the wrong type, shape or size).

(Schemathesis' pytest plugin does not run on pytest 9, so each operation's Hypothesis
strategy is driven here directly.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance

from alerts.store import WorkOrderStore
from api.app import create_app
from api.auth.passwords import FAST_FOR_TESTS, Passwords
from db.engine import make_engine
from facility.site import Site, load_site
from tests.api_support import T0, Api, new_store, open_order, running_api
from tests.conftest import DEMO_SITE
from tests.fakes import FakeClock

EXAMPLES_PER_OPERATION = 25
NEGATIVE_EXAMPLES_PER_OPERATION = 10
CHECKS = [not_a_server_error, status_code_conformance]
SKIPPED = {("GET", "/api/v1/events")}
"""The event stream never ends by itself; test_api_events covers it over a real server."""


def _operations() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Every operation; those with a body or parameters (something to get wrong)."""
    app = create_app(
        site=load_site(DEMO_SITE),
        store=WorkOrderStore(make_engine("sqlite://")),
        passwords=Passwords(FAST_FOR_TESTS),
        monitor=False,
    )
    every, with_input = [], []
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            if (method.upper(), path) in SKIPPED:
                continue
            every.append((method.upper(), path))
            if "requestBody" in operation or operation.get("parameters"):
                with_input.append((method.upper(), path))
    return every, with_input


OPERATIONS, WITH_INPUT = _operations()


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory, demo_site: Site) -> Iterator[Api]:
    clock = FakeClock(T0)
    path: Path = tmp_path_factory.mktemp("fuzz") / "wo.sqlite3"
    store = new_store(f"sqlite:///{path}", clock)
    with running_api(demo_site, store, clock) as api:
        for device_id in ("b03-u1-el2", "pump-1", "b01-u1-door"):
            open_order(store, demo_site, device_id)
        yield api


@pytest.fixture(scope="module")
def api_schema(fuzzed: Api) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzzed.app)


def _fuzz(api: Api, operation: Any, mode: GenerationMode, examples: int) -> None:
    users = [api.headers(name) for name in ("admin", "steward", "tech")]

    @given(case=operation.as_strategy(mode))
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: Any) -> None:
        for headers in users:
            case.call_and_validate(headers=headers, checks=CHECKS)

    run()


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_server_errors(fuzzed: Api, api_schema: Any, method: str, path: str) -> None:
    _fuzz(fuzzed, api_schema[path][method], GenerationMode.POSITIVE, EXAMPLES_PER_OPERATION)


@pytest.mark.parametrize(("method", "path"), WITH_INPUT, ids=[f"{m} {p}" for m, p in WITH_INPUT])
def test_bad_input_is_a_documented_client_error(
    fuzzed: Api, api_schema: Any, method: str, path: str
) -> None:
    operation = api_schema[path][method]
    _fuzz(fuzzed, operation, GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES_PER_OPERATION)


def test_every_operation_but_the_stream_is_fuzzed() -> None:
    assert len(OPERATIONS) >= 25
    assert ("POST", "/api/v1/work-orders/{work_order_id}/transitions") in OPERATIONS
