"""The compliance logbook's API on SQLite and PostgreSQL: who may read it (a steward only their
buildings, dispatchers and admins any, technicians none), bad ranges refused with a 422 that
names the parameter, and what the rows say about telemetry and technicians' records."""

from __future__ import annotations

from typing import Any

import pytest

from alerts.maintenance.scheduler import MaintenanceScheduler
from api.schemas import MAX_MS
from tests.api_support import T0, Api, seen
from tests.fakes import FakeClock

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
CAR = "b03-u1-el1"
URL = "/api/v1/buildings/b03/compliance"


def rows_of(body: dict[str, Any], plan_id: str, device_id: str) -> dict[str, Any]:
    (row,) = [r for r in body["rows"] if r["plan"]["id"] == plan_id and r["device_id"] == device_id]
    found: dict[str, Any] = row
    return found


def schedule(api: Api, clock: FakeClock) -> None:
    lead_ms = round(api.context.maintenance.lead_s * 1000)
    MaintenanceScheduler(
        api.site, api.store, api.context.plans, lead_ms=lead_ms, clock_ms=clock
    ).run_once()


def test_a_steward_reads_their_buildings_logbook(api: Api, clock: FakeClock) -> None:
    seen(api.store, api.site, CAR, T0, alarm_test_ok=True, running=False)
    schedule(api, clock)

    got = api.get(URL, "steward")

    assert got.status_code == 200, got.text
    body = got.json()
    assert (body["building_id"], body["end_ms"], body["start_ms"]) == ("b03", T0, T0 - 90 * DAY_MS)
    plans = {(r["plan"]["id"], r["kind"]) for r in body["rows"]}
    assert plans == {
        ("elevator.maintenance", "elevator"),
        ("elevator.alarm_test", "elevator"),
        ("lighting.emergency_function", "lighting"),
        ("lighting.emergency_duration", "lighting"),
    }
    alarm = rows_of(body, "elevator.alarm_test", CAR)
    assert alarm["status"] == "done"
    assert alarm["last_done"] == {
        "done_ms": T0, "evidence": "telemetry", "field": "alarm_test_ok", "value": 1.0,
        "work_order_id": None, "by": None, "code": None,
    }  # fmt: skip
    assert alarm["next_due_ms"] == T0 + 72 * HOUR_MS
    assert alarm["tracked_since_ms"] == T0
    assert sum(body["counts"].values()) == len(body["rows"])


def test_the_alarm_test_is_overdue_through_the_api_when_passes_stop(
    api: Api, clock: FakeClock
) -> None:
    seen(api.store, api.site, CAR, T0, alarm_test_ok=True, running=False)
    schedule(api, clock)
    clock.now = T0 + 73 * HOUR_MS

    body = api.get(URL, "dispatcher").json()

    alarm = rows_of(body, "elevator.alarm_test", CAR)
    assert alarm["status"] == "overdue"
    assert alarm["last_done"]["done_ms"] == T0
    assert body["counts"]["overdue"] >= 1


def test_a_scheduled_order_shows_in_the_logbook_and_leaves_the_status_alone(
    api: Api, clock: FakeClock
) -> None:
    seen(api.store, api.site, CAR, T0, alarm_test_ok=True, running=False)
    schedule(api, clock)  # tracking starts
    clock.now = T0 + 15 * DAY_MS  # every first visit is due within one interval
    seen_again = clock.now - 1000
    with api.store.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE device_state SET last_seen_ms = {seen_again}")
    schedule(api, clock)

    body = api.get(URL, "admin").json()

    visit = rows_of(body, "elevator.maintenance", CAR)
    assert visit["status"] in ("due", "overdue")
    order_id = visit["open_work_order_id"]
    assert order_id is not None
    order = api.get(f"/api/v1/work-orders/{order_id}", "admin").json()
    assert (order["source"], order["category"], order["device_id"]) == (
        "scheduled",
        "maintenance",
        CAR,
    )
    status = api.get("/api/v1/buildings/b03/status", "steward").json()
    (car,) = [d for d in status["devices"] if d["id"] == CAR]
    assert car["status"] == "ok"


@pytest.mark.parametrize(
    ("user", "path", "code"),
    [
        ("steward", "/api/v1/buildings/b01/compliance", 404),  # not theirs: as if absent
        ("tech", URL, 403),
        ("dispatcher", URL, 200),
        ("admin", "/api/v1/buildings/b01/compliance", 200),
        ("admin", "/api/v1/buildings/nowhere/compliance", 404),
    ],
)
def test_who_may_read_a_logbook(api: Api, user: str, path: str, code: int) -> None:
    got = api.get(path, user)

    assert got.status_code == code, got.text


def test_no_token_no_logbook(api: Api) -> None:
    assert api.client.get(URL).status_code == 401


@pytest.mark.parametrize(
    ("params", "loc", "says"),
    [
        ({"start_ms": T0, "end_ms": T0}, "end_ms", "end_ms must be after start_ms"),
        ({"start_ms": T0 - 400 * DAY_MS, "end_ms": T0}, "start_ms", "at most 366 days"),
        ({"start_ms": -1}, "start_ms", "greater than or equal to 0"),
        ({"end_ms": MAX_MS + 1}, "end_ms", "less than or equal to"),
        ({"end_ms": "soon"}, "end_ms", "valid integer"),
    ],
)
def test_a_bad_range_is_a_422_naming_the_parameter(
    api: Api, params: dict[str, Any], loc: str, says: str
) -> None:
    got = api.get(URL, "steward", params=params)

    assert got.status_code == 422
    (error,) = got.json()["detail"]
    assert error["loc"] == ["query", loc]
    assert says in error["msg"]


def test_the_range_lists_only_evidence_within_it(api: Api, clock: FakeClock) -> None:
    for hours in (0, 80, 160):
        clock.now = T0 + hours * HOUR_MS
        with api.store.engine.begin() as conn:
            conn.exec_driver_sql(f"DELETE FROM device_state WHERE device_id = '{CAR}'")
        seen(api.store, api.site, CAR, clock.now, alarm_test_ok=True, running=False)
        schedule(api, clock)

    body = api.get(
        URL, "steward", params={"start_ms": T0 + 50 * HOUR_MS, "end_ms": T0 + 100 * HOUR_MS}
    ).json()

    alarm = rows_of(body, "elevator.alarm_test", CAR)
    assert [e["done_ms"] for e in alarm["done"]] == [T0 + 80 * HOUR_MS]
    assert alarm["last_done"]["done_ms"] == T0 + 80 * HOUR_MS
