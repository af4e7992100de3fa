"""Hand-built work orders with known times for the owners' report's tests, written straight
into the order table (as the store would have left them), on any backend."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert

from alerts.maintenance.plans import PlanSet
from alerts.orderstore.scheduled import TelemetryPass
from alerts.store import WorkOrderStore
from db.schema import work_orders
from facility.site import Site

HOUR = 3_600_000
MINUTE = 60_000
DAY = 24 * HOUR
P0 = 1_790_000_000_000 - 1_790_000_000_000 % DAY  # the period's start (a UTC midnight)
PERIOD = 10 * DAY
NOW = P0 + 20 * DAY
SLA_MS = {  # respond, resolve (the default policy's)
    "critical": (15 * MINUTE, 4 * HOUR),
    "major": (HOUR, DAY),
    "minor": (8 * HOUR, 3 * DAY),
    "warning": (DAY, 7 * DAY),
}


def add_order(
    store: WorkOrderStore,
    site: Site,
    *,
    building_id: str,
    device_id: str | None,
    severity: str,
    start: int,
    source: str = "fault",
    responded: int | None = None,
    resolved: int | None = None,
    status: str = "open",
    code: str | None = None,
    updated: int | None = None,
    title: str = "A fault",
    title_zh: str | None = "一个故障",
) -> int:
    device = site.by_id.get(device_id or "")
    respond_s, resolve_s = SLA_MS[severity]
    values: dict[str, Any] = {
        "site_id": site.id, "building_id": building_id,
        "unit_id": device.unit_id if device else None, "device_id": device_id,
        "kind": device.kind if device else None,
        "rule_id": None if source == "report" else f"test.{device_id}.{start}",
        "severity": severity, "category": "report" if source == "report" else "equipment",
        "title": title, "title_zh": title_zh, "status": status,
        "fault_started_ms": start, "detected_ms": start, "created_ms": start,
        "updated_ms": updated if updated is not None else max(
            t for t in (start, responded, resolved) if t is not None
        ),
        "source": source, "priority": 1, "respond_by_ms": start + respond_s,
        "resolve_by_ms": start + resolve_s, "responded_ms": responded,
        "resolved_ms": resolved, "resolution_code": code,
    }  # fmt: skip
    with store.engine.begin() as conn:
        return int(
            conn.execute(
                insert(work_orders).values(**values).returning(work_orders.c.id)
            ).scalar_one()
        )


def add_month_of_orders(store: WorkOrderStore, site: Site) -> dict[str, int]:
    """The orders of the figures tests (b03 and b05; the expected figures are in the test)."""
    return {
        "trapped": add_order(
            store, site, building_id="b03", device_id="b03-u1-el1", severity="critical",
            start=P0 + HOUR, responded=P0 + HOUR + 10 * MINUTE, resolved=P0 + 3 * HOUR,
            status="resolved", code="repaired", title="Passenger trapped: Elevator 1",
            title_zh="乘客被困：Elevator 1",
        ),
        "levelling": add_order(
            store, site, building_id="b03", device_id="b03-u1-el2", severity="major",
            start=P0 + 2 * HOUR, title="Levelling off by more than 20 mm: Elevator 2",
            title_zh="平层误差超过 20 mm：Elevator 2",
        ),
        "gate": add_order(
            store, site, building_id="b05", device_id="b05-u1-door", severity="minor",
            start=P0 + 5 * HOUR, responded=P0 + 5 * HOUR + 30 * MINUTE, resolved=P0 + 6 * HOUR,
            status="closed", code="reset",
        ),
        "report_checked": add_order(
            store, site, building_id="b03", device_id=None, severity="minor", source="report",
            start=P0 + 6 * HOUR, responded=P0 + 7 * HOUR, resolved=P0 + 8 * HOUR,
            status="resolved", code="no_fault_found",
        ),
        "report_cancelled": add_order(
            store, site, building_id="b05", device_id=None, severity="minor", source="report",
            start=P0 + 7 * HOUR, status="cancelled", updated=P0 + 8 * HOUR,
        ),
        "report_open": add_order(
            store, site, building_id="b05", device_id=None, severity="minor", source="report",
            start=P0 + 9 * HOUR, title="Resident report: water on the stairs",
            title_zh="住户报修：楼梯有水",
        ),
        "before": add_order(
            store, site, building_id="b05", device_id="b05-u2-el1", severity="critical",
            start=P0 - DAY, responded=P0 - DAY + 5 * MINUTE, resolved=P0 + HOUR,
            status="resolved", code="part_replaced",
        ),
        "lamp": add_order(
            store, site, building_id="b03", device_id="b03-u1-stair", severity="warning",
            start=P0 + 200 * HOUR, responded=P0 + 201 * HOUR, resolved=P0 + 250 * HOUR,
            status="resolved", code="part_replaced", title="Lamps failed: Stairwell lighting",
            title_zh="灯具故障：楼梯照明",
        ),
        "after": add_order(
            store, site, building_id="b03", device_id="b03-u2-el1", severity="critical",
            start=P0 + PERIOD + HOUR,
        ),
    }  # fmt: skip


# -- maintenance plans ---------------------------------------------------------------------------

TRACKED_SINCE = P0 - 400 * DAY
"""Tracking of every plan began long ago: a plan never done is overdue by the period."""
LEAD_MS = 2 * DAY
ALARM_PASSES = {  # the EN 81-28 self-test (every 72 h): when each car reported a pass
    "b03-u1-el1": (P0 + DAY, P0 + 9 * DAY),  # done
    "b03-u1-el2": (P0 + 2 * DAY, P0 + 15 * DAY),  # overdue since P0 + 5 d (the 2nd is after)
    "b03-u2-el1": (P0 + 9 * DAY,),  # done
    "b03-u2-el2": (P0 + 8 * DAY,),  # due at P0 + 11 d: within the lead time at the end
    "b05-u1-el1": (P0 - DAY,),  # overdue since P0 + 2 d, nothing in the period
    "b05-u1-el2": (P0 + 9 * DAY,),
    "b05-u2-el1": (P0 + 9 * DAY,),
    "b05-u2-el2": (P0 + 9 * DAY,),
}
RECORDS = [  # technicians' records: (plan, device, resolved at, resolution code)
    *(
        ("elevator.maintenance", car, P0 + 3 * DAY, "maintenance_done")
        for car in ("b03-u1-el2", "b03-u2-el1", "b05-u1-el1", "b05-u1-el2", "b05-u2-el1")
    ),
    ("elevator.maintenance", "b03-u1-el1", P0 - 10 * DAY, "maintenance_done"),  # overdue P0+5d
    ("elevator.maintenance", "b03-u2-el2", P0 - 4 * DAY, "maintenance_done"),  # due P0 + 11 d
    ("elevator.maintenance", "b05-u2-el2", P0 - 20 * DAY, "maintenance_done"),  # overdue P0-5d
    ("elevator.maintenance", "b05-u2-el2", P0 + 2 * DAY, "no_fault_found"),  # not a done code
    ("lighting.emergency_function", "b03-u1-emerg", P0 + 5 * DAY, "maintenance_done"),
]


def add_record(
    store: WorkOrderStore, site: Site, plan_id: str, device_id: str, done: int, code: str
) -> int:
    """A scheduled order of the plan, resolved at `done` with `code` by `lift-tech`."""
    device = site.by_id[device_id]
    values: dict[str, Any] = {
        "site_id": site.id, "building_id": device.building_id, "unit_id": device.unit_id,
        "device_id": device_id, "kind": device.kind, "rule_id": plan_id, "severity": "minor",
        "category": "maintenance", "title": f"Plan {plan_id}", "status": "resolved",
        "created_ms": done - HOUR, "updated_ms": done, "source": "scheduled", "priority": 3,
        "resolve_by_ms": done, "resolved_ms": done, "resolution_code": code,
        "assignee": "lift-tech",
    }  # fmt: skip
    with store.engine.begin() as conn:
        return int(
            conn.execute(
                insert(work_orders).values(**values).returning(work_orders.c.id)
            ).scalar_one()
        )


def add_maintenance(store: WorkOrderStore, site: Site, plans: PlanSet) -> None:
    """b03's and b05's plans tracked since long ago, the passes and the records above."""
    devices = [d for b in ("b03", "b05") for d in site.building_by_id[b].devices]
    store.start_tracking([(p.id, d.id) for p, d in plans.pairs(site, devices)], TRACKED_SINCE)
    alarm = plans.by_id("elevator.alarm_test")
    assert alarm is not None
    passes = [
        TelemetryPass(alarm.id, car, t, 1.0) for car, times in ALARM_PASSES.items() for t in times
    ]
    store.record_passes(passes, {alarm.id: alarm.every_ms})
    for plan_id, device_id, done, code in RECORDS:
        add_record(store, site, plan_id, device_id, done, code)
