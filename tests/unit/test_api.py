"""API routes against a real SQLite store filled through the real alerts stage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from alerts.engine import RuleEngine
from alerts.rules import default_rule_set
from alerts.sink import AlertsSink
from alerts.store import WorkOrderStore, make_engine
from api.app import create_app
from facility.site import Site
from gateway.decoder import Decoder, Message
from tests.fakes import FakeClock

T0 = 1_790_000_000_000


@pytest.fixture
def store(tmp_path: Path) -> WorkOrderStore:
    store = WorkOrderStore(make_engine(f"sqlite:///{tmp_path / 'wo.sqlite3'}"))
    store.create_schema()
    return store


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def client(demo_site: Site, store: WorkOrderStore, clock: FakeClock) -> Iterator[TestClient]:
    with TestClient(create_app(site=demo_site, store=store, clock_ms=clock)) as client:
        yield client


def _feed(site: Site, store: WorkOrderStore, messages: list[Message], now_ms: int) -> None:
    result = Decoder(site).decode(messages, now_ms=now_ms)
    assert result.rejections == []
    AlertsSink(site, RuleEngine.from_rule_set(site, default_rule_set()), store).handle(result.batch)


def _pump_readings(suction_bar: float, seconds: int) -> Message:
    readings = [
        {"ts": T0 + i * 1000, "seq": i + 1, "running": True, "suction_bar": suction_bar}
        for i in range(seconds)
    ]
    return Message(
        "facility/v1/shangri-la/estate/pump/pump-1/telemetry", orjson.dumps({"readings": readings})
    )


def _all_estate_devices_ok(site: Site) -> list[Message]:
    out = []
    for device in site.building_by_id["estate"].devices:
        field = {"pump": "running", "gate": "door_open", "lighting": "commanded_on"}[device.kind]
        out.append(
            Message(
                f"facility/v1/shangri-la/estate/{device.kind}/{device.id}/telemetry",
                orjson.dumps({"ts": T0, "seq": 1, field: False}),
            )
        )
    return out


def test_buildings_list_every_building_unknown_before_any_data(client: TestClient) -> None:
    response = client.get("/api/v1/buildings")
    assert response.status_code == 200
    body = response.json()
    assert len(body) == 13
    assert {b["status"] for b in body} == {"unknown"}
    assert body[0]["counts"] == {
        "elevator": {"unknown": 4},
        "lighting": {"unknown": 4},
        "gate": {"unknown": 2},
    }


def test_building_status_rolls_up_from_devices(
    client: TestClient, demo_site: Site, store: WorkOrderStore, clock: FakeClock
) -> None:
    _feed(demo_site, store, _all_estate_devices_ok(demo_site), T0)
    status = client.get("/api/v1/buildings/estate/status").json()
    assert status["status"] == "ok"
    assert len(status["devices"]) == 8
    assert status["counts"]["pump"] == {"ok": 3}

    clock.now = T0 + 61_000  # past the pumps' 60 s heartbeat, within the others' 120 s
    status = client.get("/api/v1/buildings/estate/status").json()
    assert status["status"] == "offline"
    assert status["counts"]["pump"] == {"offline": 3}
    assert status["counts"]["gate"] == {"ok": 2}


def test_a_dry_run_turns_the_building_to_alarm_with_one_work_order(
    client: TestClient, demo_site: Site, store: WorkOrderStore, clock: FakeClock
) -> None:
    _feed(demo_site, store, _all_estate_devices_ok(demo_site), T0)
    _feed(demo_site, store, [_pump_readings(0.05, 31)], T0 + 31_000)
    _feed(demo_site, store, [_pump_readings(0.05, 31)], T0 + 31_000)  # redelivered
    clock.now = T0 + 31_000
    status = client.get("/api/v1/buildings/estate/status").json()
    assert status["status"] == "alarm"
    assert status["open_work_orders"] == 1
    pump = next(d for d in status["devices"] if d["id"] == "pump-1")
    assert pump["status"] == "alarm"
    assert pump["values"] == {"running": True, "suction_bar": 0.05}

    page = client.get("/api/v1/work-orders", params={"status": "open"}).json()
    assert [(o["device_id"], o["rule_id"], o["fault_started_ms"]) for o in page["items"]] == [
        ("pump-1", "pump.dry_run", T0)
    ]
    assert client.get("/api/v1/work-orders", params={"building": "b01"}).json()["items"] == []
    assert len(client.get("/api/v1/work-orders", params={"device": "pump-1"}).json()["items"]) == 1
    assert client.get("/api/v1/work-orders", params={"status": "resolved"}).json()["items"] == []


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/buildings/no-such-building/status",
        "/api/v1/work-orders?building=no-such-building",
    ],
)
def test_unknown_buildings_are_404(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert "no-such-building" in response.json()["detail"]


@pytest.mark.parametrize(
    "query",
    ["status=broken", "limit=0", "limit=501", "offset=-1", "limit=abc", "building=" + "x" * 65],
)
def test_bad_work_order_queries_are_422(client: TestClient, query: str) -> None:
    assert client.get(f"/api/v1/work-orders?{query}").status_code == 422


def test_dashboard_health_and_openapi(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "Shangri-La Residences" in page.text
    assert client.get("/static/dashboard.js").status_code == 200
    assert client.get("/health").json() == {"status": "ok", "site": "shangri-la"}
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/v1/buildings/{building_id}/status", "/api/v1/work-orders"} <= set(paths)
