"""Site, units, devices, device status and history through the API (SQLite history store)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from facility.batch import Batch, KindBatch
from facility.catalog import KINDS
from facility.site import Site
from ingest.sqlite_history import SQLiteHistory
from ingest.sqlite_store import SQLiteTimeSeries
from tests.api_support import T0, Api, new_store, open_order, running_api, seen
from tests.fakes import FakeClock

PUMP = KINDS["pump"]
N = 600  # pump-1: ten minutes at 1 Hz before T0; suction_bar = (i % 60) / 10


def _pump_history(site: Site, path: Path) -> None:
    i = np.arange(N)
    values = np.full((N, len(PUMP.fields)), np.nan)
    values[:, PUMP.col("suction_bar")] = (i % 60) / 10
    values[:, PUMP.col("running")] = 1.0
    kb = KindBatch(
        PUMP,
        np.full(N, site.by_id["pump-1"].kind_index, np.int32),
        T0 - N * 1000 + i.astype(np.int64) * 1000,
        i.astype(np.int64) + 1,
        values,
    )
    writer = SQLiteTimeSeries(site, path)
    assert writer.write(Batch(site.id, {"pump": kb})).written == N
    writer.close()


@pytest.fixture
def api(demo_site: Site, tmp_path: Path) -> Iterator[Api]:
    clock = FakeClock(T0)
    _pump_history(demo_site, tmp_path / "ts.sqlite3")
    history = SQLiteHistory(tmp_path / "ts.sqlite3")
    store = new_store(f"sqlite:///{tmp_path / 'wo.sqlite3'}", clock)
    with running_api(demo_site, store, clock, history=history) as api:
        yield api
    history.close()


def test_sites_units_and_devices(api: Api) -> None:
    assert api.get("/api/v1/sites", "admin").json() == [
        {"id": "shangri-la", "name": "Shangri-La Residences", "timezone": "Asia/Shanghai",
         "buildings": 13, "status": "unknown", "open_work_orders": 0},
    ]  # fmt: skip
    building = api.get("/api/v1/buildings/b03", "steward").json()
    assert [u["id"] for u in building["units"]] == ["b03-u1", "b03-u2"]
    unit = api.get("/api/v1/units/b03-u1", "steward").json()
    assert unit["building_id"] == "b03"
    assert [d["kind"] for d in unit["devices"]] == [
        "elevator", "elevator", "lighting", "lighting", "gate",
    ]  # fmt: skip

    page = api.get("/api/v1/devices", "admin", params={"kind": "pump"}).json()
    assert [d["id"] for d in page["items"]] == ["pump-1", "pump-2", "pump-3"]
    page = api.get("/api/v1/devices", "admin", params={"unit": "b03-u2", "limit": 2}).json()
    assert (len(page["items"]), page["total"]) == (2, 5)
    assert api.get("/api/v1/devices", "admin").json()["total"] == 128

    device = api.get("/api/v1/devices/pump-1", "admin").json()
    assert device["heartbeat_s"] == 60.0
    suction = next(f for f in device["fields"] if f["name"] == "suction_bar")
    assert suction == {
        "name": "suction_bar", "type": "float", "unit": "bar", "min": -1.0, "max": 16.0,
        "labels": [],
    }  # fmt: skip


def test_device_status_online_offline_values_and_faults(api: Api) -> None:
    unknown = api.get("/api/v1/devices/b03-u1-el1/status", "steward").json()
    assert (unknown["status"], unknown["online"], unknown["last_seen_ms"]) == (
        "unknown",
        None,
        None,
    )

    seen(api.store, api.site, "b03-u1-el1", T0 - 1000, floor=3, running=False)
    status = api.get("/api/v1/devices/b03-u1-el1/status", "steward").json()
    assert (status["status"], status["online"], status["values"]) == (
        "ok", True, {"floor": 3, "running": False},
    )  # fmt: skip
    order = open_order(api.store, api.site, "b03-u1-el1", rule_id="elevator.trapped")
    status = api.get("/api/v1/devices/b03-u1-el1/status", "steward").json()
    assert status["status"] == "alarm"
    assert status["active_faults"] == [
        {"work_order_id": order, "rule_id": "elevator.trapped", "severity": "critical",
         "title": "elevator.trapped on Elevator 1", "fault_started_ms": T0},
    ]  # fmt: skip
    api.store.record_clears([])
    api.clock.now = T0 + 200_000  # past the elevator's 120 s heartbeat
    status = api.get("/api/v1/devices/b03-u1-el1/status", "steward").json()
    assert status["online"] is False
    assert status["status"] == "alarm"  # an open critical order wins over offline


def test_history_raw_and_downsampled(api: Api) -> None:
    params = {"field": "suction_bar", "start_ms": T0 - 600_000, "end_ms": T0 - 596_000}
    raw = api.get("/api/v1/devices/pump-1/history", "admin", params=params).json()
    assert raw["interval_s"] is None
    assert raw["series"] == [
        {"field": "suction_bar", "unit": "bar", "buckets": None,
         "points": [[T0 - 600_000, 0.0], [T0 - 599_000, 0.1], [T0 - 598_000, 0.2],
                    [T0 - 597_000, 0.3]]},
    ]  # fmt: skip

    params = {"field": ["suction_bar", "running"], "start_ms": T0 - N * 1000, "end_ms": T0,
              "interval_s": 60}  # fmt: skip
    down = api.get("/api/v1/devices/pump-1/history", "admin", params=params).json()
    suction, running = down["series"]
    # Buckets align to whole minutes since the epoch; T0 is 20 s past one.
    assert [b["count"] for b in suction["buckets"]] == [40] + [60] * 9 + [20]
    full = suction["buckets"][1]
    assert full["start_ms"] % 60_000 == 0
    assert (full["min"], full["max"], full["count"]) == (0.0, 5.9, 60)
    assert full["mean"] == pytest.approx(2.95)
    assert {b["mean"] for b in running["buckets"]} == {1.0}

    limited = api.get(
        "/api/v1/devices/pump-1/history", "admin",
        params={"field": "suction_bar", "start_ms": T0 - N * 1000, "end_ms": T0, "limit": 7},
    ).json()  # fmt: skip
    assert len(limited["series"][0]["points"]) == 7


Q = {"field": "running", "start_ms": 0, "end_ms": 5}


@pytest.mark.parametrize(
    ("params", "loc", "message"),
    [
        ({"start_ms": 0, "end_ms": 1}, ["query", "field"], "Field required"),
        ({**Q, "field": "flux"}, ["query", "field"], "pump has no field(s) 'flux'"),
        ({**Q, "start_ms": 5}, ["query", "end_ms"], "end_ms must be after start_ms"),
        ({**Q, "end_ms": T0}, ["query", "end_ms"], "the range may be at most 31 days"),
        ({**Q, "start_ms": -1}, ["query", "start_ms"], "greater than or equal to 0"),
        (
            {**Q, "end_ms": 86_400_000, "interval_s": 1},
            ["query", "interval_s"],
            "at most 2000: widen the interval",
        ),
        ({**Q, "limit": 10_001}, ["query", "limit"], "less than or equal to 10000"),
        ({**Q, "field": ["running"] * 9}, ["query", "field"], "ask for 1 to 8 fields"),
    ],
)  # fmt: skip
def test_bad_history_queries_are_422_saying_what_is_wrong(
    api: Api, params: dict[str, object], loc: list[str], message: str
) -> None:
    response = api.get("/api/v1/devices/pump-1/history", "admin", params=params)
    assert response.status_code == 422, response.text
    error = response.json()["detail"][0]
    assert error["loc"][: len(loc)] == loc, error
    assert message in error["msg"], error


def test_a_work_orders_detail_has_the_trend_before_the_fault(api: Api) -> None:
    order = open_order(api.store, api.site, "pump-1", started_ms=T0 - 60_000)
    trend = api.get(f"/api/v1/work-orders/{order}", "admin").json()["trend"]
    assert trend["start_ms"] == T0 - 60_000 - 86_400_000
    assert trend["end_ms"] == T0 - 60_000 + 900_000
    assert trend["interval_s"] == 300
    series = {s["field"]: s for s in trend["series"]}
    assert "suction_bar" in series
    assert "running" not in series  # the numeric fields
    assert sum(b["count"] for b in series["suction_bar"]["buckets"]) == N
    assert series["discharge_bar"]["buckets"] == []


def test_history_without_a_store_is_503(demo_site: Site, tmp_path: Path) -> None:
    clock = FakeClock(T0)
    store = new_store(f"sqlite:///{tmp_path / 'wo.sqlite3'}", clock)
    with running_api(demo_site, store, clock) as api:
        params = {"field": "running", "start_ms": 0, "end_ms": 5}
        response = api.get("/api/v1/devices/pump-1/history", "admin", params=params)
        assert response.status_code == 503
        assert response.json() == {"detail": "no history store is configured"}
