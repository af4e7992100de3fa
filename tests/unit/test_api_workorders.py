"""Work orders through the API on SQLite and PostgreSQL: filters and paging, detail with its
history, transitions, assignment, comments, residents' reports, service figures."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from alerts.interface import Severity
from alerts.store import WorkOrder, WorkOrderEvent
from db.schema import work_order_events, work_orders
from tests.api_support import T0, Api, open_order, seen
from tests.fakes import FakeClock

MINUTE = 60_000


def test_work_order_fields_follow_the_table_columns() -> None:
    """The store builds orders and events from rows by column name: every column has a field."""
    assert {f.name for f in dataclasses.fields(WorkOrder)} == set(work_orders.c.keys())
    assert {f.name for f in dataclasses.fields(WorkOrderEvent)} == set(work_order_events.c.keys())


def ids(api: Api, username: str = "dispatcher", **params: Any) -> list[int]:
    response = api.get("/api/v1/work-orders", username, params=params)
    assert response.status_code == 200, response.text
    return [o["id"] for o in response.json()["items"]]


def test_list_filters_and_paging(api: Api, clock: FakeClock) -> None:
    site, store = api.site, api.store
    lift = open_order(store, site, "b01-u1-el1")  # critical elevator, team lift-contractor
    pump = open_order(store, site, "pump-1", severity=Severity.MAJOR)  # plumbing
    light = open_order(store, site, "b02-u1-stair", severity=Severity.WARNING)
    gate = open_order(store, site, "b05-u2-door")
    store.transition(
        gate, "resolved", actor="dispatcher", resolution_code="repaired", confirm_active=True
    )
    store.assign(light, actor="dispatcher", assignee="tech")

    assert ids(api) == [gate, light, pump, lift]
    assert ids(api, status="open") == [light, pump, lift]
    assert ids(api, status=["resolved", "open"], severity="critical") == [gate, lift]
    assert ids(api, severity=["major", "warning"]) == [light, pump]
    assert ids(api, kind="elevator") == [lift]
    assert ids(api, kind=["pump", "gate"]) == [gate, pump]
    assert ids(api, building=["b01", "b02"]) == [light, lift]
    assert ids(api, assignee="tech") == [light]
    assert ids(api, team="plumbing") == [pump]
    assert ids(api, device="pump-1") == [pump]

    # Critical: respond within 15 min, resolve within 4 h, counted from the fault's start.
    assert ids(api, overdue=True) == []
    clock.now = T0 + 16 * MINUTE
    assert ids(api, overdue=True) == [lift]
    assert ids(api, overdue=False) == [gate, light, pump]
    store.transition(lift, "acknowledged", actor="tech")
    assert ids(api, overdue=True) == []
    clock.now = T0 + 241 * MINUTE  # past the lift's resolve-by and the pump's respond-by
    assert ids(api, overdue=True) == [pump, lift]
    assert api.get(f"/api/v1/work-orders/{lift}", "admin").json()["overdue"] is True

    page = api.get("/api/v1/work-orders", "admin", params={"limit": 2, "offset": 1}).json()
    assert [o["id"] for o in page["items"]] == [light, pump]
    assert (page["total"], page["limit"], page["offset"]) == (4, 2, 1)
    assert api.get("/api/v1/work-orders", "steward").json()["total"] == 1  # the gate, in b05


def test_detail_has_history_comments_and_no_trend_without_a_history_store(api: Api) -> None:
    order = open_order(api.store, api.site, "b03-u1-el2")
    api.post(f"/api/v1/work-orders/{order}/transitions", "tech", {"to": "acknowledged"})
    api.post(f"/api/v1/work-orders/{order}/comments", "tech", {"text": "  on site in 10 min "})
    detail = api.get(f"/api/v1/work-orders/{order}", "steward").json()
    assert detail["status"] == "acknowledged"
    assert [(e["event"], e["actor"]) for e in detail["history"]] == [
        ("created", "system"),
        ("transition", "tech"),
        ("assigned", "tech"),  # acknowledging an unassigned order takes it
        ("comment", "tech"),
    ]
    assert detail["assignee"] == "tech"
    assert [c["note"] for c in detail["comments"]] == ["on site in 10 min"]
    assert detail["trend"] is None
    assert detail["responded_ms"] == T0


def test_transitions_follow_the_lifecycle(api: Api) -> None:
    order = open_order(api.store, api.site, "pump-1")
    path = f"/api/v1/work-orders/{order}/transitions"
    needs: dict[str, dict[str, Any]] = {
        "on_hold": {"hold_until_ms": T0 + 60 * MINUTE},
        "resolved": {"resolution_code": "adjusted", "confirm_active": True},
    }
    for to in ("acknowledged", "in_progress", "on_hold", "in_progress", "resolved", "closed"):
        response = api.post(
            path, "dispatcher", {"to": to, "note": f"now {to}", **needs.get(to, {})}
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == to
    refused = api.post(path, "dispatcher", {"to": "open"})
    assert refused.status_code == 409
    detail = f"work order {order} cannot go from 'closed' to 'open' (allowed: none, it is final)"
    assert refused.json() == {"detail": detail}


@pytest.mark.parametrize(
    ("route", "body", "loc"),
    [
        ("transitions", {}, ["body", "to"]),
        ("transitions", {"to": "done"}, ["body", "to"]),
        ("transitions", {"to": "resolved", "status": "closed"}, ["body", "status"]),
        ("transitions", {"to": "resolved", "note": "x" * 2001}, ["body", "note"]),
        ("assign", {"assignee": "tech", "severity": "minor"}, ["body", "severity"]),
        ("assign", {"team": "plumbing"}, ["body", "assignee"]),
        ("comments", {"text": "   "}, ["body", "text"]),
        ("comments", {"text": "ok", "actor": "admin"}, ["body", "actor"]),
        ("comments", [], ["body"]),
    ],
)
def test_bad_bodies_are_422_naming_the_field(
    api: Api, route: str, body: Any, loc: list[str]
) -> None:
    order = open_order(api.store, api.site, "pump-1")
    response = api.post(f"/api/v1/work-orders/{order}/{route}", "admin", body)
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert errors[0]["loc"] == loc, errors
    assert errors[0]["msg"]


def test_assign_and_unassign(api: Api) -> None:
    order = open_order(api.store, api.site, "pump-1")
    path = f"/api/v1/work-orders/{order}/assign"
    done = api.post(
        path, "dispatcher", {"assignee": "plumber", "team": "plumbing", "note": "yours"}
    )
    assert done.status_code == 200
    assert (done.json()["assignee"], done.json()["team"]) == ("plumber", "plumbing")
    unknown = api.post(path, "dispatcher", {"assignee": "ghost"})
    assert unknown.status_code == 422
    assert "'ghost' is not a user who can take work orders" in unknown.json()["detail"][0]["msg"]
    assert api.post(path, "dispatcher", {"assignee": "steward"}).status_code == 422
    assert api.post(path, "dispatcher", {"assignee": None}).json()["assignee"] is None
    notes = [e["note"] for e in api.get(f"/api/v1/work-orders/{order}", "admin").json()["history"]]
    assert "assignee: plumber, team: plumbing; yours" in notes


def test_unknown_work_orders_are_404_and_ids_are_bounded(api: Api) -> None:
    assert api.get("/api/v1/work-orders/999", "admin").status_code == 404
    assert api.get("/api/v1/work-orders/0", "admin").status_code == 422
    assert api.get(f"/api/v1/work-orders/{2**40}", "admin").status_code == 422
    assert api.post("/api/v1/work-orders/999/comments", "admin", {"text": "x"}).status_code == 404


def report_code(api: Api, unit_id: str) -> str:
    code: str = api.get(f"/api/v1/units/{unit_id}/report-code", "admin").json()["code"]
    return code


def test_a_residents_report_becomes_a_work_order(api: Api) -> None:
    code = report_code(api, "b03-u1")
    response = api.client.post(
        "/api/v1/reports",
        json={
            "code": code.upper(),
            "description": "The lift in unit 1 makes a grinding noise between floors 3 and 4",
            "device_id": "b03-u1-el2",
            "contact": "room 1203",
        },
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created == {
        "work_order_id": created["work_order_id"],
        "status": "open",
        "building_id": "b03",
        "unit_id": "b03-u1",
    }
    order = api.get(f"/api/v1/work-orders/{created['work_order_id']}", "steward").json()
    assert order["source"] == "report"
    assert order["severity"] == "minor"
    assert order["category"] == "report"
    assert order["kind"] == "elevator"
    assert order["team"] == "lift-contractor"
    assert order["title"].startswith("Resident report: The lift in unit 1 makes a grinding")
    assert order["history"][0]["actor"] == "resident"
    assert order["history"][0]["note"].endswith("contact: room 1203")
    # A building-level report (no device) shows in the building's open orders.
    status = api.get("/api/v1/buildings/b03/status", "steward").json()
    assert status["open_work_orders"] == 1


@pytest.mark.parametrize(
    ("body", "status", "where"),
    [
        ({"code": "nope", "description": "broken light"}, 404, None),
        ({"code": "{code}", "description": "x"}, 422, ["body", "description"]),
        ({"code": "{code}", "description": "broken", "device_id": "pump-1"}, 422,
         ["body", "device_id"]),
        ({"code": "{code}", "description": "broken", "severity": "critical"}, 422,
         ["body", "severity"]),
        ({"description": "broken light"}, 422, ["body", "code"]),
    ],
)  # fmt: skip
def test_bad_reports(api: Api, body: dict[str, str], status: int, where: list[str] | None) -> None:
    code = report_code(api, "b03-u1")
    body = {k: v.replace("{code}", code) for k, v in body.items()}
    response = api.client.post("/api/v1/reports", json=body)
    assert response.status_code == status
    if where is not None:
        assert response.json()["detail"][0]["loc"] == where


def test_reports_are_rate_limited_per_client(api: Api, clock: FakeClock) -> None:
    code = report_code(api, "b01-u1")
    body = {"code": code, "description": "the hallway light flickers"}
    for _ in range(5):
        assert api.client.post("/api/v1/reports", json=body).status_code == 201
    limited = api.client.post("/api/v1/reports", json=body)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "600"
    clock.now += 600_000
    assert api.client.post("/api/v1/reports", json=body).status_code == 201
    assert "facility_api_reports_total 6" in api.client.get("/metrics").text


def test_service_figures(api: Api, clock: FakeClock) -> None:
    site, store = api.site, api.store
    hour = 60 * MINUTE
    # b03 has 4 elevators. el1: trapped 2 h, acknowledged after 10 min, resolved at 2 h.
    clock.now = T0
    el1 = open_order(store, site, "b03-u1-el1", rule_id="r1")
    clock.now = T0 + 10 * MINUTE
    store.transition(el1, "acknowledged", actor="tech")
    clock.now = T0 + 2 * hour
    store.transition(el1, "resolved", actor="tech", resolution_code="repaired", confirm_active=True)
    # el2: major from 1 h, never answered: misses its 1 h respond-by.
    clock.now = T0 + hour
    open_order(
        store, site, "b03-u1-el2", rule_id="r2", severity=Severity.MAJOR, started_ms=T0 + hour
    )
    # a gate fault: acknowledged after 30 min, resolved after 1 h.
    clock.now = T0
    gate = open_order(store, site, "b03-u1-door", rule_id="r3", severity=Severity.MINOR)
    clock.now = T0 + 30 * MINUTE
    store.transition(gate, "acknowledged", actor="tech")
    clock.now = T0 + hour
    store.transition(
        gate, "resolved", actor="tech", resolution_code="repaired", confirm_active=True
    )

    clock.now = T0 + 4 * hour
    response = api.get(
        "/api/v1/buildings/b03/service", "steward", params={"start_ms": T0, "end_ms": T0 + 4 * hour}
    )
    assert response.status_code == 200, response.text
    figures = response.json()
    assert figures["work_orders"] == 3
    assert figures["mean_time_to_acknowledge_s"] == pytest.approx((10 + 30) * 60 / 2)
    assert figures["mean_time_to_resolve_s"] == pytest.approx((2 * 3600 + 3600) / 2)
    assert figures["faults_by_kind"] == {"elevator": 2, "gate": 1}
    sla = figures["sla"]
    assert (sla["compliant"], sla["breached"], sla["pending"]) == (2, 1, 0)
    assert sla["compliance"] == pytest.approx(2 / 3)
    assert (sla["respond_met"], sla["respond_missed"]) == (2, 1)
    # Down: el1 2 h + el2 3 h of 4 elevators x 4 h.
    assert figures["elevator_availability"] == pytest.approx(1 - 5 / 16)

    assert (
        api.get("/api/v1/buildings/estate/service", "admin").json()["elevator_availability"] is None
    )
    bad = api.get("/api/v1/buildings/b03/service", "admin", params={"start_ms": 5, "end_ms": 5})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["msg"] == "end_ms must be after start_ms"
    too_long = api.get(
        "/api/v1/buildings/b03/service", "admin", params={"start_ms": 0, "end_ms": T0}
    )
    assert too_long.status_code == 422
    assert "at most 366 days" in too_long.json()["detail"][0]["msg"]


def test_what_the_change_monitor_reads(api: Api) -> None:
    seen(api.store, api.site, "pump-1", T0 - 5_000)
    seen(api.store, api.site, "b03-u1-el1", T0)
    assert api.store.devices_last_seen() == {"pump-1": T0 - 5_000, "b03-u1-el1": T0}
    order = open_order(api.store, api.site, "pump-1", severity=Severity.MAJOR)
    api.store.create_report(
        site_id=api.site.id, building_id="b07", unit_id=None, device_id=None, kind=None,
        description="water on the stairs",
    )  # fmt: skip
    assert sorted(api.store.open_order_marks(), key=str) == [
        ("pump-1", "estate", "major"),
        (None, "b07", "minor"),
    ]
    api.store.transition(order, "cancelled", actor="dispatcher", note="not needed")
    assert api.store.open_order_marks() == [(None, "b07", "minor")]
    assert api.store.last_event_id() == len(api.store.events_after(0))
