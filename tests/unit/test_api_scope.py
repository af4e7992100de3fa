"""Who sees what: every route with an id x every building a steward is not assigned -> 404,
lists without foreign buildings, technicians only change their own (or their team's) orders.

The routes come from the app's own route table, so a new route with an id cannot escape the
check: a path parameter this test does not know fails it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alerts.store import Photo, WorkOrderStore
from api.app import create_app
from api.auth.passwords import FAST_FOR_TESTS, Passwords
from db.engine import make_engine
from facility.catalog import KINDS
from facility.site import Site, load_site
from tests.api_support import STEWARD_BUILDINGS, T0, Api, new_store, open_order, running_api
from tests.conftest import DEMO_SITE
from tests.fakes import FakeClock

SITE = load_site(DEMO_SITE)
FOREIGN = [b.id for b in SITE.buildings if b.id not in STEWARD_BUILDINGS]
OWN = sorted(STEWARD_BUILDINGS)

# What each route needs besides its ids, so that only the object-level check can refuse it.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/work-orders/{work_order_id}/transitions"): {"to": "acknowledged"},
    ("POST", "/api/v1/work-orders/{work_order_id}/assign"): {"assignee": "tech"},
    ("POST", "/api/v1/work-orders/{work_order_id}/comments"): {"text": "on my way"},
}
QUERIES: dict[tuple[str, str], Any] = {
    ("GET", "/api/v1/devices/{device_id}/history"): lambda device_id: {
        "field": KINDS[SITE.by_id[device_id].kind].fields[0].name,
        "start_ms": T0 - 60_000,
        "end_ms": T0,
    },
}
NOT_BUILDING_SCOPED = {"site_id", "username", "name", "code"}
"""Path parameters that do not name something inside a building (there is one site; users
and teams are managed by admins only, who see every building; a public status code is the
key to one building's public page, for anyone who has it)."""


def _id_routes() -> list[tuple[str, str, list[str]]]:
    store = WorkOrderStore(make_engine("sqlite://"))
    app = create_app(site=SITE, store=store, passwords=Passwords(FAST_FOR_TESTS), monitor=False)
    out = []
    # The routes as the app publishes them (FastAPI nests included routers in `app.routes`).
    for path, operations in app.openapi()["paths"].items():
        params = re.findall(r"{(\w+)}", path)
        if params:
            out += [(method.upper(), path, params) for method in sorted(operations)]
    return out


ID_ROUTES = _id_routes()
BUILDING_ROUTES = [r for r in ID_ROUTES if not set(r[2]) <= NOT_BUILDING_SCOPED]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, demo_site: Site) -> Iterator[Api]:
    clock = FakeClock(T0)
    path: Path = tmp_path_factory.mktemp("scope") / "wo.sqlite3"
    store = new_store(f"sqlite:///{path}", clock)
    with running_api(demo_site, store, clock) as api:
        yield api


@pytest.fixture(scope="module")
def orders(api: Api) -> dict[str, int]:
    """One work order in every building (a resident's report, with a photo), by building."""
    out = {}
    for building in api.site.buildings:
        unit = building.units[0]
        out[building.id] = api.store.create_report(
            site_id=api.site.id, building_id=building.id, unit_id=unit.id, device_id=None,
            kind=None, description=f"report in {building.id}",
            photo=Photo("image/png", b"\x89PNG\r\n\x1a\n"),
        ).id  # fmt: skip
    for order_id, photos in api.store.photos_of(out.values()).items():
        PHOTO_IDS[order_id] = photos[0].id
    return out


PHOTO_IDS: dict[int, int] = {}
"""Each order's photo (filled by the `orders` fixture)."""


def _concrete(path: str, params: list[str], building_id: str, orders: dict[str, int]) -> str:
    building = SITE.building_by_id[building_id]
    values = {
        "building_id": building.id,
        "unit_id": building.units[0].id,
        "device_id": building.devices[0].id,
        "work_order_id": str(orders[building_id]),
        "photo_id": str(PHOTO_IDS[orders[building_id]]),
        "site_id": SITE.id,
    }
    for name in params:
        if name not in values:
            pytest.fail(f"{path}: path parameter {{{name}}} is unknown to the scope test: add it")
        path = path.replace("{" + name + "}", values[name])
    return path


def _call(api: Api, method: str, path: str, concrete: str, building_id: str) -> Any:
    kwargs: dict[str, Any] = {"headers": api.headers("steward")}
    if method == "POST":
        if (method, path) not in BODIES:
            pytest.fail(f"POST {path}: give the scope test a valid body for it")
        kwargs["json"] = BODIES[(method, path)]
    query = QUERIES.get((method, path))
    if query is not None:
        kwargs["params"] = query(SITE.building_by_id[building_id].devices[0].id)
    return api.client.request(method, concrete, **kwargs)


@pytest.mark.parametrize(
    ("method", "path", "params"),
    BUILDING_ROUTES,
    ids=[f"{m} {p}" for m, p, _ in BUILDING_ROUTES],
)
def test_every_route_with_an_id_is_404_for_every_foreign_building(
    api: Api, orders: dict[str, int], method: str, path: str, params: list[str]
) -> None:
    for building_id in FOREIGN:
        concrete = _concrete(path, params, building_id, orders)
        response = _call(api, method, path, concrete, building_id)
        assert response.status_code == 404, (concrete, response.text)
        assert response.json()["detail"].startswith("no "), response.text  # as if missing
    for building_id in OWN:  # the same request on the steward's own building is not a 404
        concrete = _concrete(path, params, building_id, orders)
        response = _call(api, method, path, concrete, building_id)
        assert response.status_code != 404, (concrete, response.text)


def test_the_route_table_has_the_id_routes_we_expect() -> None:
    # Every route of the API is in the OpenAPI schema (none hidden from it).
    store = WorkOrderStore(make_engine("sqlite://"))
    app = create_app(site=SITE, store=store, passwords=Passwords(FAST_FOR_TESTS), monitor=False)
    published = {path for path in app.openapi()["paths"] if path.startswith("/api/")}
    assert published >= {path for _, path, _ in ID_ROUTES}
    paths = {p for _, p, _ in ID_ROUTES}
    assert {
        "/api/v1/buildings/{building_id}/status",
        "/api/v1/units/{unit_id}",
        "/api/v1/devices/{device_id}/history",
        "/api/v1/work-orders/{work_order_id}/transitions",
    } <= paths
    assert len(ID_ROUTES) >= 12


@pytest.mark.parametrize(
    "query",
    [
        "/api/v1/work-orders?building={b}",
        "/api/v1/work-orders?building=b03&building={b}",
        "/api/v1/work-orders?device={device}",
        "/api/v1/devices?building={b}",
        "/api/v1/devices?unit={unit}",
    ],
)
def test_filters_naming_a_foreign_building_are_404(api: Api, query: str) -> None:
    for building_id in FOREIGN:
        building = SITE.building_by_id[building_id]
        url = query.format(b=building_id, device=building.devices[0].id, unit=building.units[0].id)
        assert api.get(url, "steward").status_code == 404, url


def test_lists_never_show_foreign_buildings(api: Api, orders: dict[str, int]) -> None:
    assert {b["id"] for b in api.get("/api/v1/buildings", "steward").json()} == STEWARD_BUILDINGS
    site = api.get(f"/api/v1/sites/{SITE.id}", "steward").json()
    assert {b["id"] for b in site["buildings"]} == STEWARD_BUILDINGS
    assert api.get("/api/v1/sites", "steward").json()[0]["buildings"] == 2

    page = api.get("/api/v1/devices", "steward", params={"limit": 1000}).json()
    assert {d["building_id"] for d in page["items"]} == STEWARD_BUILDINGS
    assert page["total"] == sum(len(SITE.building_by_id[b].devices) for b in STEWARD_BUILDINGS)

    page = api.get("/api/v1/work-orders", "steward", params={"limit": 500}).json()
    assert {o["building_id"] for o in page["items"]} == STEWARD_BUILDINGS
    assert page["total"] == 2
    everything = api.get("/api/v1/work-orders", "dispatcher", params={"limit": 500}).json()
    assert everything["total"] == len(orders)


def test_technicians_change_only_their_own_or_their_teams_orders(api: Api) -> None:
    elevator = open_order(api.store, api.site, "b01-u1-el1", rule_id="scope.tech")
    pump = open_order(api.store, api.site, "pump-1", rule_id="scope.tech")
    assert api.store.get(elevator).team == "lift-contractor"
    assert api.store.get(pump).team == "plumbing"

    moved = api.post(f"/api/v1/work-orders/{elevator}/transitions", "tech", {"to": "acknowledged"})
    assert moved.status_code == 200
    assert moved.json()["status"] == "acknowledged"

    refused = api.post(f"/api/v1/work-orders/{pump}/transitions", "tech", {"to": "acknowledged"})
    assert refused.status_code == 403
    assert "assigned to them or their team" in refused.json()["detail"]
    assert (
        api.post(f"/api/v1/work-orders/{pump}/comments", "tech", {"text": "x"}).status_code == 403
    )
    assert (
        api.post(f"/api/v1/work-orders/{pump}/assign", "tech", {"assignee": "tech"}).status_code
        == 403
    )
    assert api.store.get(pump).status == "open"

    # Assigned to them personally, though of another team: theirs to work.
    assert (
        api.post(
            f"/api/v1/work-orders/{pump}/assign", "dispatcher", {"assignee": "tech"}
        ).status_code
        == 200
    )
    assert (
        api.post(
            f"/api/v1/work-orders/{pump}/transitions", "tech", {"to": "in_progress"}
        ).status_code
        == 200
    )
    # A technician takes an order but cannot hand it to someone else.
    assign = api.post(f"/api/v1/work-orders/{elevator}/assign", "tech", {"assignee": "plumber"})
    assert assign.status_code == 403
    assert (
        api.post(f"/api/v1/work-orders/{elevator}/assign", "tech", {"assignee": "tech"}).status_code
        == 200
    )


def test_stewards_comment_on_their_buildings_orders_but_do_not_work_them(
    api: Api, orders: dict[str, int]
) -> None:
    own = orders["b03"]
    assert (
        api.post(
            f"/api/v1/work-orders/{own}/comments", "steward", {"text": "residents ask"}
        ).status_code
        == 201
    )
    assert (
        api.post(
            f"/api/v1/work-orders/{own}/transitions", "steward", {"to": "resolved"}
        ).status_code
        == 403
    )
    assert (
        api.post(f"/api/v1/work-orders/{own}/assign", "steward", {"assignee": "tech"}).status_code
        == 403
    )
    assert api.get("/api/v1/users", "steward").status_code == 403
    assert api.get("/api/v1/units/b03-u1/report-code", "steward").status_code == 200
    assert api.get("/api/v1/units/b03-u1/report-code", "tech").status_code == 403
