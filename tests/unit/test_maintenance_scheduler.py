"""The maintenance scheduler and the compliance logbook, on SQLite and PostgreSQL alike.

A scheduled order is created exactly when its plan's due time comes within the lead time, once
per period however often and by however many schedulers it runs; the logbook shows the EN
81-28 self-test overdue when the car's telemetry stops reporting a pass, and done again when
it resumes (hand-written readings through the gateway's own device-state path).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from alerts.compliance import ComplianceRow, compliance_for
from alerts.maintenance.plans import Evidence, PlanSet, load_plans, parse_plan_file
from alerts.maintenance.schedule import ComplianceStatus, first_due_ms
from alerts.maintenance.scheduler import MaintenanceScheduler
from alerts.store import WorkOrderStore
from alerts.workorders import Source, WorkOrderStatus
from db.engine import make_engine
from db.schema import maintenance_orders, work_orders
from facility.site import Site
from tests.fakes import FakeClock
from tests.readings import Reading, batch

T0 = 1_790_000_000_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
PUMP = "pump-1"
CAR = "b01-u1-el1"
PUMP_PLAN = """\
[[plans]]
id = "pump.visit"
kind = "pump"
devices = "pump-1"
title = "Pump visit"
every = "7d"
evidence = "record"
"""
OFFSET_MS = first_due_ms(parse_plan_file(PUMP_PLAN)[0], PUMP, 0)
LEAD_MS = min(OFFSET_MS // 2, DAY_MS)
FIRST_DUE = T0 + OFFSET_MS


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(db_url: str, clock: FakeClock) -> Iterator[WorkOrderStore]:
    engine = make_engine(db_url)
    store = WorkOrderStore(engine, clock_ms=clock)
    store.migrate()
    try:
        yield store
    finally:
        engine.dispose()


def pump_plans() -> PlanSet:
    return PlanSet(tuple(parse_plan_file(PUMP_PLAN)))


def scheduler(site: Site, store: WorkOrderStore, clock: FakeClock) -> MaintenanceScheduler:
    return MaintenanceScheduler(site, store, pump_plans(), lead_ms=LEAD_MS, clock_ms=clock)


def scheduled(store: WorkOrderStore) -> list[int]:
    with store.engine.connect() as conn:
        query = select(work_orders.c.id).where(work_orders.c.source == str(Source.SCHEDULED))
        return list(conn.execute(query.order_by(work_orders.c.id)).scalars())


def test_the_offset_leaves_room_before_the_first_due() -> None:
    assert LEAD_MS > 0
    assert OFFSET_MS > LEAD_MS


def test_no_order_just_before_the_lead_time_then_exactly_one(
    demo_site: Site, store: WorkOrderStore, clock: FakeClock
) -> None:
    plan_scheduler = scheduler(demo_site, store, clock)
    assert plan_scheduler.run_once().created == 0  # tracking starts at T0

    clock.now = FIRST_DUE - LEAD_MS - 1
    assert plan_scheduler.run_once().created == 0
    assert scheduled(store) == []

    clock.now = FIRST_DUE - LEAD_MS
    assert plan_scheduler.run_once().created == 1
    assert plan_scheduler.run_once().created == 0
    clock.now += HOUR_MS
    assert scheduler(demo_site, store, clock).run_once().created == 0  # another process

    (order_id,) = scheduled(store)
    order = store.get(order_id)
    assert (order.device_id, order.rule_id, order.category, order.status) == (
        PUMP,
        "pump.visit",
        "maintenance",
        WorkOrderStatus.OPEN,
    )
    assert order.resolve_by_ms == FIRST_DUE
    assert order.team == "plumbing"
    assert "maintenance_done" in (store.history(order_id)[0].note or "")


def test_two_schedulers_at_once_make_one_order(
    demo_site: Site, store: WorkOrderStore, clock: FakeClock, db_url: str
) -> None:
    scheduler(demo_site, store, clock).run_once()
    clock.now = FIRST_DUE
    others = [WorkOrderStore(make_engine(db_url), clock_ms=clock) for _ in range(4)]
    start = threading.Barrier(len(others))
    made: list[int] = []

    def run(other: WorkOrderStore) -> None:
        start.wait()
        made.append(scheduler(demo_site, other, clock).run_once().created)

    threads = [threading.Thread(target=run, args=(o,)) for o in others]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for other in others:
        other.engine.dispose()

    assert sorted(made) == [0, 0, 0, 1]
    assert len(scheduled(store)) == 1
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(maintenance_orders)).scalar() == 1


def test_the_next_period_runs_from_the_technicians_record(
    demo_site: Site, store: WorkOrderStore, clock: FakeClock
) -> None:
    plan_scheduler = scheduler(demo_site, store, clock)
    plan_scheduler.run_once()
    clock.now = FIRST_DUE - LEAD_MS
    plan_scheduler.run_once()
    (first,) = scheduled(store)
    done_at = FIRST_DUE - HOUR_MS
    clock.now = done_at
    store.transition(first, "resolved", actor="plumber", resolution_code="maintenance_done")

    clock.now = done_at + WEEK_MS - LEAD_MS - 1
    assert plan_scheduler.run_once().created == 0
    clock.now = done_at + WEEK_MS - LEAD_MS
    assert plan_scheduler.run_once().created == 1
    second = scheduled(store)[-1]
    assert store.get(second).resolve_by_ms == done_at + WEEK_MS


def test_a_cancelled_order_leaves_the_period_owed_and_a_new_order_is_made(
    demo_site: Site, store: WorkOrderStore, clock: FakeClock
) -> None:
    plan_scheduler = scheduler(demo_site, store, clock)
    plan_scheduler.run_once()
    clock.now = FIRST_DUE
    plan_scheduler.run_once()
    (first,) = scheduled(store)
    store.transition(first, "cancelled", actor="dispatcher", note="contractor did not come")

    assert plan_scheduler.run_once().created == 1
    assert plan_scheduler.run_once().created == 0
    second = scheduled(store)[-1]
    assert second != first
    assert store.get(second).resolve_by_ms == FIRST_DUE


def test_a_resolution_without_a_done_code_does_not_complete_the_period(
    demo_site: Site, store: WorkOrderStore, clock: FakeClock
) -> None:
    plans = pump_plans()
    plan_scheduler = scheduler(demo_site, store, clock)
    plan_scheduler.run_once()
    clock.now = FIRST_DUE - LEAD_MS
    plan_scheduler.run_once()
    (first,) = scheduled(store)
    store.transition(first, "resolved", actor="plumber", resolution_code="no_fault_found")
    clock.now = FIRST_DUE + 1

    (row,) = logbook(store, demo_site, plans, "estate", clock.now)

    assert row.status is ComplianceStatus.OVERDUE
    assert row.last_done is None


def logbook(
    store: WorkOrderStore, site: Site, plans: PlanSet, building: str, at_ms: int
) -> list[ComplianceRow]:
    return compliance_for(
        store, site, plans, building, at_ms=at_ms, start_ms=at_ms - 30 * DAY_MS, lead_ms=LEAD_MS
    )


def row_of(rows: list[ComplianceRow], plan_id: str, device_id: str) -> ComplianceRow:
    (row,) = [r for r in rows if r.plan.id == plan_id and r.device.id == device_id]
    return row


def report(site: Site, store: WorkOrderStore, t_ms: int, alarm_test_ok: int) -> None:
    """The car reports (the gateway's device-state write), `t_ms` after T0."""
    readings = [Reading(CAR, t_ms / 1000, {"alarm_test_ok": alarm_test_ok, "running": 0})]
    store.update_device_state(site, batch(site, readings))


def test_the_logbook_shows_the_alarm_test_overdue_when_passes_stop_and_done_when_they_resume(
    demo_site: Site, store: WorkOrderStore, clock: FakeClock
) -> None:
    plans = load_plans()
    plan_scheduler = MaintenanceScheduler(demo_site, store, plans, lead_ms=LEAD_MS, clock_ms=clock)
    report(demo_site, store, 0, alarm_test_ok=1)
    plan_scheduler.run_once()  # keeps the pass at T0 as evidence

    row = row_of(logbook(store, demo_site, plans, "b01", T0), "elevator.alarm_test", CAR)
    assert row.status is ComplianceStatus.DONE
    assert row.last_done is not None
    assert (row.last_done.evidence, row.last_done.done_ms) == (Evidence.TELEMETRY, T0)
    assert (row.last_done.field, row.last_done.value) == ("alarm_test_ok", 1.0)
    assert row.next_due_ms == T0 + 72 * HOUR_MS

    # The next self-test fails, and the car keeps reporting that for days.
    for hours in (1, 24, 48, 71, 73):
        clock.now = T0 + hours * HOUR_MS
        report(demo_site, store, hours * HOUR_MS, alarm_test_ok=0)
        plan_scheduler.run_once()

    row = row_of(
        logbook(store, demo_site, plans, "b01", T0 + 71 * HOUR_MS), "elevator.alarm_test", CAR
    )
    assert row.status is ComplianceStatus.DUE  # within the lead time of its due
    row = row_of(logbook(store, demo_site, plans, "b01", clock.now), "elevator.alarm_test", CAR)
    assert row.status is ComplianceStatus.OVERDUE
    assert row.last_done is not None
    assert row.last_done.done_ms == T0
    assert row.open_order_id is None  # telemetry plans make no orders: the rule raises a fault

    clock.now = T0 + 80 * HOUR_MS
    report(demo_site, store, 80 * HOUR_MS, alarm_test_ok=1)  # repaired: the test passes again
    row = row_of(logbook(store, demo_site, plans, "b01", clock.now), "elevator.alarm_test", CAR)
    assert row.status is ComplianceStatus.DONE
    assert row.last_done is not None
    assert row.last_done.done_ms == clock.now
    plan_scheduler.run_once()
    rows = logbook(store, demo_site, plans, "b01", clock.now)
    assert [e.done_ms for e in row_of(rows, "elevator.alarm_test", CAR).done] == [clock.now, T0]


def test_the_logbook_as_of_an_earlier_time_ignores_later_readings(
    demo_site: Site, store: WorkOrderStore, clock: FakeClock
) -> None:
    plans = load_plans()
    report(demo_site, store, 100 * HOUR_MS, alarm_test_ok=1)

    row = row_of(logbook(store, demo_site, plans, "b01", T0), "elevator.alarm_test", CAR)

    assert row.last_done is None
    assert row.status is ComplianceStatus.DUE


def test_the_logbook_shows_a_technicians_record_with_who_and_which_order(
    demo_site: Site, store: WorkOrderStore, clock: FakeClock
) -> None:
    plans = pump_plans()
    plan_scheduler = scheduler(demo_site, store, clock)
    plan_scheduler.run_once()
    clock.now = FIRST_DUE - LEAD_MS
    plan_scheduler.run_once()
    (order_id,) = scheduled(store)
    (due,) = logbook(store, demo_site, plans, "estate", clock.now)
    assert (due.status, due.open_order_id, due.next_due_ms) == (
        ComplianceStatus.DUE,
        order_id,
        FIRST_DUE,
    )
    clock.now += HOUR_MS
    store.transition(order_id, "in_progress", actor="plumber")
    store.transition(order_id, "resolved", actor="plumber", resolution_code="maintenance_done")

    (row,) = logbook(store, demo_site, plans, "estate", clock.now + 1)

    assert row.status is ComplianceStatus.DONE
    assert row.last_done is not None
    assert (row.last_done.evidence, row.last_done.work_order_id, row.last_done.by) == (
        Evidence.RECORD,
        order_id,
        "plumber",
    )
    assert row.last_done.code == "maintenance_done"
    assert row.next_due_ms == clock.now + WEEK_MS
    assert row.open_order_id is None
    assert logbook(store, demo_site, plans, "b01", clock.now) == []  # no pump there
