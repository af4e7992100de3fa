"""alerts/store.py: filing work orders and device state, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
from sqlalchemy import update

from alerts.faults import FaultCleared, FaultOpened
from alerts.interface import Category, Severity
from alerts.store import WorkOrder, WorkOrderStore
from alerts.workorders import Source, WorkOrderStatus
from db.engine import make_engine
from db.schema import work_orders
from facility.batch import Batch, KindBatch
from facility.catalog import GATE, PUMP, KindSpec
from facility.site import parse_site
from tests.fakes import FakeClock

SITE = parse_site(
    """
[site]
id = "s1"

[[buildings]]
id = "b1"

[[buildings.units]]
id = "u1"
devices = [{ id = "g1", kind = "gate" }, { id = "g2", kind = "gate" }]

[[buildings]]
id = "plant"

[[buildings.units]]
id = "pump-room"
devices = [{ id = "p1", kind = "pump" }, { id = "p2", kind = "pump" }]
"""
)
T0 = 1_790_000_000_000


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0 + 10_000)


@pytest.fixture
def store(db_url: str, clock: FakeClock) -> Iterator[WorkOrderStore]:
    engine = make_engine(db_url)
    store = WorkOrderStore(engine, clock_ms=clock)
    store.create_schema()
    try:
        yield store
    finally:
        engine.dispose()


def fault(
    device: str = "p1",
    rule: str = "pump.dry_run",
    *,
    building: str = "plant",
    unit: str = "pump-room",
    kind: str = "pump",
    started_ms: int = T0,
    detected_ms: int = T0 + 30_000,
) -> FaultOpened:
    return FaultOpened(
        rule_id=rule,
        kind=kind,
        device_id=device,
        building_id=building,
        unit_id=unit,
        severity=Severity.CRITICAL,
        category=Category.EQUIPMENT,
        title=f"Pump dry run: {device}",
        started_ms=started_ms,
        detected_ms=detected_ms,
    )


def gate_fault(device: str) -> FaultOpened:
    return fault(device, "gate.forced_open", building="b1", unit="u1", kind="gate")


def set_status(store: WorkOrderStore, order_id: int, status: str) -> None:
    """Force a status (the lifecycle's own tests are in test_workorders_store.py); a resolution
    is dated long ago, so a new fault is past its cool-down."""
    resolved_ms = T0 - 90 * 86_400_000 if status == "resolved" else None
    with store.engine.begin() as conn:
        conn.execute(
            update(work_orders)
            .where(work_orders.c.id == order_id)
            .values(status=status, resolved_ms=resolved_ms)
        )


def ids(orders: list[WorkOrder]) -> list[int]:
    return [o.id for o in orders]


# -- work orders -----------------------------------------------------------------------------


def test_a_fault_opens_a_work_order(store: WorkOrderStore, clock: FakeClock) -> None:
    assert store.open_for_faults("s1", [fault()]) == 1

    assert store.list_work_orders() == [
        WorkOrder(
            id=1,
            site_id="s1",
            building_id="plant",
            unit_id="pump-room",
            device_id="p1",
            kind="pump",
            rule_id="pump.dry_run",
            severity=Severity.CRITICAL,
            category="equipment",
            title="Pump dry run: p1",
            status=WorkOrderStatus.OPEN,
            fault_started_ms=T0,
            detected_ms=T0 + 30_000,
            created_ms=clock.now,
            updated_ms=clock.now,
            cleared_ms=None,
            source=Source.FAULT,
            priority=1,
            respond_by_ms=T0 + 15 * 60_000,
            resolve_by_ms=T0 + 4 * 3_600_000,
            responded_ms=None,
            resolved_ms=None,
            closed_ms=None,
            team="plumbing",
            assignee=None,
            escalation_level=0,
            recurrences=0,
            last_fault_ms=T0,
            parent_id=None,
            hold_reason=None,
            hold_until_ms=None,
            resolution_code=None,
        )
    ]


def test_the_same_fault_twice_opens_one_work_order(store: WorkOrderStore) -> None:
    assert store.open_for_faults("s1", [fault()]) == 1
    assert store.open_for_faults("s1", [fault(detected_ms=T0 + 90_000)]) == 0

    orders = store.list_work_orders()
    assert len(orders) == 1
    assert orders[0].detected_ms == T0 + 30_000


def test_one_work_order_per_device_and_rule_within_one_call(store: WorkOrderStore) -> None:
    faults = [fault(), fault("p2"), fault(rule="pump.leak"), fault(), gate_fault("g1")]

    assert store.open_for_faults("s1", faults) == 4

    pairs = {(o.device_id, o.rule_id) for o in store.list_work_orders()}
    assert pairs == {
        ("p1", "pump.dry_run"),
        ("p2", "pump.dry_run"),
        ("p1", "pump.leak"),
        ("g1", "gate.forced_open"),
    }


def test_no_faults_open_nothing(store: WorkOrderStore) -> None:
    assert store.open_for_faults("s1", []) == 0
    assert store.list_work_orders() == []


@pytest.mark.parametrize("status", ["acknowledged", "in_progress", "on_hold"])
def test_an_order_being_worked_on_is_still_the_open_episode(
    store: WorkOrderStore, status: str
) -> None:
    store.open_for_faults("s1", [fault()])
    set_status(store, 1, status)

    assert store.open_for_faults("s1", [fault()]) == 0
    assert len(store.list_work_orders()) == 1


@pytest.mark.parametrize("status", ["resolved", "closed", "cancelled"])
def test_after_resolution_a_new_fault_opens_a_new_order(
    store: WorkOrderStore, clock: FakeClock, status: str
) -> None:
    store.open_for_faults("s1", [fault()])
    set_status(store, 1, status)
    clock.now += 60_000

    assert store.open_for_faults("s1", [fault(started_ms=T0 + 100_000)]) == 1
    assert store.open_for_faults("s1", [fault(started_ms=T0 + 100_000)]) == 0

    orders = store.list_work_orders()
    assert [(o.id, o.status, o.fault_started_ms) for o in orders] == [
        (2, "open", T0 + 100_000),
        (1, status, T0),
    ]
    assert orders[0].created_ms == clock.now


def test_record_clears_sets_cleared_ms(store: WorkOrderStore, clock: FakeClock) -> None:
    store.open_for_faults("s1", [fault(), fault("p2"), fault(rule="pump.leak")])
    created = clock.now
    clock.now += 5_000

    store.record_clears([FaultCleared("pump.dry_run", "p1", T0 + 70_000)])

    orders = {(o.device_id, o.rule_id): o for o in store.list_work_orders()}
    cleared = orders[("p1", "pump.dry_run")]
    assert (cleared.cleared_ms, cleared.updated_ms, cleared.status) == (
        T0 + 70_000,
        clock.now,
        "open",
    )
    for other in (orders[("p2", "pump.dry_run")], orders[("p1", "pump.leak")]):
        assert (other.cleared_ms, other.updated_ms) == (None, created)


def test_a_later_clear_does_not_overwrite_the_first(store: WorkOrderStore) -> None:
    store.open_for_faults("s1", [fault()])

    store.record_clears([FaultCleared("pump.dry_run", "p1", T0 + 70_000)])
    store.record_clears([FaultCleared("pump.dry_run", "p1", T0 + 99_000)])

    assert store.list_work_orders()[0].cleared_ms == T0 + 70_000


def test_a_cleared_but_unresolved_order_still_holds_the_episode(store: WorkOrderStore) -> None:
    store.open_for_faults("s1", [fault()])
    store.record_clears([FaultCleared("pump.dry_run", "p1", T0 + 70_000)])

    assert store.open_for_faults("s1", [fault(started_ms=T0 + 80_000)]) == 0


def test_a_clear_does_not_touch_resolved_orders(store: WorkOrderStore) -> None:
    store.open_for_faults("s1", [fault()])
    set_status(store, 1, "resolved")

    store.record_clears([FaultCleared("pump.dry_run", "p1", T0 + 70_000)])

    assert store.list_work_orders()[0].cleared_ms is None


def test_list_work_orders_filters(store: WorkOrderStore) -> None:
    store.open_for_faults("s1", [fault("p1")])  # 1
    store.open_for_faults("s1", [fault("p2")])  # 2
    store.open_for_faults("s1", [gate_fault("g1")])  # 3
    store.open_for_faults("s1", [gate_fault("g2")])  # 4
    set_status(store, 1, "resolved")
    set_status(store, 3, "acknowledged")

    assert ids(store.list_work_orders()) == [4, 3, 2, 1]
    assert ids(store.list_work_orders(statuses=["open"])) == [4, 2]
    assert ids(store.list_work_orders(statuses=["open", "acknowledged"])) == [4, 3, 2]
    assert ids(store.list_work_orders(statuses=[])) == []
    assert ids(store.list_work_orders(building_ids=["b1"])) == [4, 3]
    assert ids(store.list_work_orders(building_ids=["b1", "plant"])) == [4, 3, 2, 1]
    assert ids(store.list_work_orders(building_ids=["nowhere"])) == []
    assert ids(store.list_work_orders(device_id="p1")) == [1]
    assert ids(store.list_work_orders(device_id="g2", statuses=["resolved"])) == []
    assert ids(store.list_work_orders(statuses=["open"], building_ids=["plant"])) == [2]
    assert ids(store.list_work_orders(limit=2)) == [4, 3]
    assert ids(store.list_work_orders(limit=2, offset=2)) == [2, 1]
    assert ids(store.open_work_orders()) == [4, 3, 2]
    assert ids(store.open_work_orders(building_ids=["plant"])) == [2]


# -- device state ----------------------------------------------------------------------------


def kind_batch(spec: KindSpec, rows: list[tuple[int, int, int, dict[str, float]]]) -> KindBatch:
    """rows: (kind_index, ts_ms, seq, {field: value})."""
    values = np.full((len(rows), len(spec.fields)), math.nan)
    for i, (_, _, _, fields) in enumerate(rows):
        for name, value in fields.items():
            values[i, spec.col(name)] = value
    return KindBatch(
        spec,
        np.array([r[0] for r in rows], np.int32),
        np.array([r[1] for r in rows], np.int64),
        np.array([r[2] for r in rows], np.int64),
        values,
    )


def pump_batch(*rows: tuple[int, int, int, dict[str, float]]) -> Batch:
    return Batch("s1", {"pump": kind_batch(PUMP, list(rows))})


def test_device_state_keeps_the_newest_reading_per_device(store: WorkOrderStore) -> None:
    batch = Batch(
        "s1",
        {
            "pump": kind_batch(
                PUMP,
                [
                    (0, T0 + 3000, 3, {"running": 1.0, "suction_bar": 0.5}),
                    (1, T0 + 1000, 8, {"flow_m3h": 12.5}),
                    (0, T0 + 1000, 1, {"running": 0.0, "suction_bar": 1.5}),
                    (0, T0 + 2000, 2, {"suction_bar": 1.0}),
                ],
            ),
            "gate": kind_batch(GATE, [(1, T0 + 500, 4, {"door_open": 0.0, "granted": 7.0})]),
        },
    )

    store.update_device_state(SITE, batch)

    states = store.device_states()
    assert set(states) == {"p1", "p2", "g2"}
    p1 = states["p1"]
    assert (p1.kind, p1.building_id, p1.last_seen_ms, p1.last_seq) == (
        "pump",
        "plant",
        T0 + 3000,
        3,
    )
    assert p1.values == {"running": True, "suction_bar": 0.5}
    assert (states["p2"].last_seen_ms, states["p2"].values) == (T0 + 1000, {"flow_m3h": 12.5})
    g2 = states["g2"]
    assert (g2.kind, g2.building_id, g2.last_seq) == ("gate", "b1", 4)
    assert g2.values == {"door_open": False, "granted": 7}
    assert type(g2.values["granted"]) is int


def test_device_state_does_not_go_back_in_time(store: WorkOrderStore) -> None:
    store.update_device_state(SITE, pump_batch((0, T0 + 5000, 5, {"suction_bar": 0.5})))

    # An older batch (late or replayed) arrives: p1 stays as it was, p2 is new.
    store.update_device_state(
        SITE,
        pump_batch((0, T0 + 4000, 4, {"suction_bar": 2.0}), (1, T0 + 4000, 9, {"vfd_hz": 40.0})),
    )
    states = store.device_states()
    assert (states["p1"].last_seen_ms, states["p1"].last_seq) == (T0 + 5000, 5)
    assert states["p1"].values == {"suction_bar": 0.5}
    assert states["p2"].values == {"vfd_hz": 40.0}

    store.update_device_state(SITE, pump_batch((0, T0 + 6000, 6, {"suction_bar": 3.0})))
    states = store.device_states()
    assert (states["p1"].last_seen_ms, states["p1"].last_seq) == (T0 + 6000, 6)
    assert states["p1"].values == {"suction_bar": 3.0}


def test_device_states_can_be_asked_for_some_devices(store: WorkOrderStore) -> None:
    store.update_device_state(
        SITE, pump_batch((0, T0, 1, {"leak": 1.0}), (1, T0, 1, {"leak": 0.0}))
    )

    assert list(store.device_states(["p2", "g1"])) == ["p2"]
    assert store.device_states(["p2"])["p2"].values == {"leak": False}


def test_an_empty_batch_writes_no_state(store: WorkOrderStore) -> None:
    store.update_device_state(SITE, Batch("s1", {}))

    assert store.device_states() == {}
