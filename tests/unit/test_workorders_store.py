"""The work-order store's contract, on SQLite and PostgreSQL alike (one suite, two backends):
lifecycle and audit history, comments, assignment, recurrence and cool-down, root-cause
orders, SLA escalation, and filing that stays exactly-once under duplicates and concurrency."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from alerts.engine import RuleEngine
from alerts.faults import FaultCleared, FaultOpened
from alerts.interface import Category, Severity
from alerts.rules import default_rule_set
from alerts.sink import AlertsSink
from alerts.store import WorkOrder, WorkOrderStore
from alerts.workorders import (
    AssignmentRule,
    InvalidTransitionError,
    Source,
    UnknownTeamError,
    WorkOrderConflictError,
    WorkOrderError,
    WorkOrderNotFoundError,
    WorkOrderPolicy,
)
from db.engine import make_engine
from db.schema import fault_episodes, work_orders
from facility.site import Site
from gateway.decoder import Decoder, Message
from tests.fakes import FakeClock

T0 = 1_790_000_000_000
MIN_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0 + MIN_MS)


@pytest.fixture
def store(db_url: str, clock: FakeClock) -> Iterator[WorkOrderStore]:
    engine = make_engine(db_url)
    store = WorkOrderStore(engine, clock_ms=clock)
    store.migrate()
    try:
        yield store
    finally:
        engine.dispose()


def fault(
    started_ms: int = T0,
    *,
    device: str = "p1",
    rule: str = "pump.dry_run",
    severity: Severity = Severity.CRITICAL,
    kind: str = "pump",
    building: str = "plant",
) -> FaultOpened:
    return FaultOpened(
        rule_id=rule,
        kind=kind,
        device_id=device,
        building_id=building,
        unit_id="pump-room",
        severity=severity,
        category=Category.EQUIPMENT,
        title=f"{rule} on {device}",
        started_ms=started_ms,
        detected_ms=started_ms + 30_000,
    )


def history(store: WorkOrderStore, order_id: int) -> list[tuple[str, str, str | None, str | None]]:
    return [(e.event, e.actor, e.from_status, e.to_status) for e in store.history(order_id)]


def only_order(store: WorkOrderStore) -> WorkOrder:
    orders = store.list_work_orders()
    assert len(orders) == 1, orders
    return orders[0]


# -- lifecycle -------------------------------------------------------------------------------


def test_the_whole_lifecycle_is_in_the_history(store: WorkOrderStore, clock: FakeClock) -> None:
    store.open_for_faults("s1", [fault()])
    created = clock.now
    steps = [
        ("acknowledged", "ana", None),
        ("in_progress", "ana", "on site"),
        ("on_hold", "ana", "waiting for a seal kit"),
        ("in_progress", "ben", None),
        ("resolved", "ben", "seal replaced"),
        ("closed", "carla", "checked"),
    ]
    extra: dict[str, dict[str, Any]] = {
        "on_hold": {"hold_until_ms": created + DAY_MS},
        "resolved": {"resolution_code": "part_replaced", "confirm_active": True},
    }
    for step, (to, actor, note) in enumerate(steps, start=1):
        clock.now = created + step * MIN_MS
        order = store.transition(1, to, actor=actor, note=note, **extra.get(to, {}))
        assert (order.status, order.updated_ms) == (to, clock.now)
    confirmed = "seal replaced (resolved while the fault was still active, confirmed)"
    steps[4] = ("resolved", "ben", confirmed)

    assert (order.responded_ms, order.resolved_ms, order.closed_ms) == (
        created + MIN_MS,
        created + 5 * MIN_MS,
        created + 6 * MIN_MS,
    )
    assert (order.assignee, order.resolution_code) == ("ana", "part_replaced")
    events = [e for e in store.history(1) if e.event != "assigned"]
    assert [(e.event, e.from_status, e.to_status) for e in events] == [
        ("created", None, "open"),
        ("transition", "open", "acknowledged"),
        ("transition", "acknowledged", "in_progress"),
        ("transition", "in_progress", "on_hold"),
        ("transition", "on_hold", "in_progress"),
        ("transition", "in_progress", "resolved"),
        ("transition", "resolved", "closed"),
    ]
    assert [(e.actor, e.note, e.at_ms) for e in events[1:]] == [
        (actor, note, created + i * MIN_MS) for i, (_, actor, note) in enumerate(steps, start=1)
    ]
    assert (events[0].actor, events[0].at_ms) == ("system", created)


def test_an_invalid_transition_changes_nothing(store: WorkOrderStore) -> None:
    store.open_for_faults("s1", [fault()])
    store.transition(1, "cancelled", actor="ana", note="not needed")
    before = store.get(1)

    with pytest.raises(InvalidTransitionError, match="'cancelled' to 'open'"):
        store.transition(1, "open", actor="ana", note="not needed")
    with pytest.raises(InvalidTransitionError):
        store.transition(1, "fixed", actor="ana")

    assert store.get(1) == before
    assert [e.event for e in store.history(1)] == ["created", "transition"]


def test_the_first_response_is_kept(store: WorkOrderStore, clock: FakeClock) -> None:
    store.open_for_faults("s1", [fault()])
    store.transition(1, "in_progress", actor="ana")
    first = clock.now
    clock.now += HOUR_MS

    order = store.transition(
        1, "on_hold", actor="ana", note="parts", hold_until_ms=clock.now + HOUR_MS
    )

    assert order.responded_ms == first


def test_unknown_ids_are_refused(store: WorkOrderStore) -> None:
    for call in (
        lambda: store.get(99),
        lambda: store.transition(99, "acknowledged", actor="ana"),
        lambda: store.assign(99, actor="ana", assignee="ben"),
        lambda: store.comment(99, actor="ana", text="hello"),
        lambda: store.history(99),
    ):
        with pytest.raises(WorkOrderNotFoundError, match="no work order 99"):
            call()


def test_every_change_needs_an_actor_and_a_comment_text(store: WorkOrderStore) -> None:
    store.open_for_faults("s1", [fault()])

    with pytest.raises(ValueError, match="actor"):
        store.transition(1, "acknowledged", actor=" ")
    with pytest.raises(ValueError, match="actor"):
        store.assign(1, actor="", assignee="ben")
    with pytest.raises(ValueError, match="text"):
        store.comment(1, actor="ana", text="  ")
    assert [e.event for e in store.history(1)] == ["created"]


def test_comments_are_kept_in_order(store: WorkOrderStore, clock: FakeClock) -> None:
    store.open_for_faults("s1", [fault()])
    first = store.comment(1, actor="ana", text="noise from the bearing")
    clock.now += MIN_MS
    store.comment(1, actor="resident-3-12", text="still noisy")

    comments = store.comments(1)
    assert comments[0] == first
    assert [(c.actor, c.note, c.at_ms) for c in comments] == [
        ("ana", "noise from the bearing", clock.now - MIN_MS),
        ("resident-3-12", "still noisy", clock.now),
    ]
    assert store.get(1).updated_ms == clock.now


# -- assignment ------------------------------------------------------------------------------


def test_a_new_order_goes_to_the_team_of_its_kind_and_building(
    db_url: str, clock: FakeClock
) -> None:
    policy = WorkOrderPolicy(
        assignment=(AssignmentRule("pumps-plant", frozenset({"pump"}), "plant"),),
        default_team="caretaker",
    )
    engine = make_engine(db_url)
    try:
        store = WorkOrderStore(engine, clock_ms=clock, policy=policy)
        store.migrate()
        store.open_for_faults(
            "s1", [fault(), fault(device="p9", building="b1"), fault(device="g1", kind="gate")]
        )
        teams = {o.device_id: o.team for o in store.list_work_orders()}
    finally:
        engine.dispose()

    assert teams == {"p1": "pumps-plant", "p9": "caretaker", "g1": "caretaker"}


def test_assign_records_who_and_which_team(store: WorkOrderStore) -> None:
    store.open_for_faults("s1", [fault()])
    assert store.get(1).team == "plumbing"

    order = store.assign(1, actor="dispatcher", assignee="ben", note="nearest")
    assert (order.assignee, order.team) == ("ben", "plumbing")
    with pytest.raises(UnknownTeamError, match=r"no team 'contractor-x' \(known: access-control"):
        store.assign(1, actor="dispatcher", assignee=None, team="contractor-x")
    store.add_team("contractor-x")
    order = store.assign(1, actor="dispatcher", assignee=None, team="contractor-x")
    assert (order.assignee, order.team) == (None, "contractor-x")

    assigned = [e for e in store.history(1) if e.event == "assigned"]
    assert [(e.actor, e.note) for e in assigned] == [
        ("dispatcher", "assignee: ben, team: plumbing; nearest"),
        ("dispatcher", "assignee: -, team: contractor-x"),
    ]


def test_a_final_order_cannot_be_assigned(store: WorkOrderStore) -> None:
    store.open_for_faults("s1", [fault()])
    store.transition(1, "cancelled", actor="ana", note="not needed")

    with pytest.raises(WorkOrderError, match="final"):
        store.assign(1, actor="ana", assignee="ben")


# -- clears, recurrence, cool-down -----------------------------------------------------------


def test_a_clear_is_recorded_on_the_order(store: WorkOrderStore) -> None:
    store.open_for_faults("s1", [fault()])

    store.record_clears([FaultCleared("pump.dry_run", "p1", T0 + 5 * MIN_MS)])
    store.record_clears([FaultCleared("pump.dry_run", "p1", T0 + 9 * MIN_MS)])

    assert store.get(1).cleared_ms == T0 + 5 * MIN_MS
    assert [e.event for e in store.history(1)] == ["created", "cleared"]


def test_a_recurrence_while_open_annotates_the_order(store: WorkOrderStore) -> None:
    store.open_for_faults("s1", [fault()])
    store.record_clears([FaultCleared("pump.dry_run", "p1", T0 + 5 * MIN_MS)])

    assert store.open_for_faults("s1", [fault(T0 + 10 * MIN_MS)]) == 0
    store.record_clears([FaultCleared("pump.dry_run", "p1", T0 + 12 * MIN_MS)])

    order = only_order(store)
    assert (order.recurrences, order.last_fault_ms, order.cleared_ms) == (
        1,
        T0 + 10 * MIN_MS,
        T0 + 12 * MIN_MS,
    )
    assert order.fault_started_ms == T0  # the SLA still runs from the first episode
    assert [e.event for e in store.history(1)] == ["created", "cleared", "recurred", "cleared"]


def test_a_recurrence_within_the_cooldown_reopens_the_resolved_order(
    store: WorkOrderStore, clock: FakeClock
) -> None:
    store.open_for_faults("s1", [fault()])
    clock.now = T0 + HOUR_MS
    store.transition(1, "resolved", actor="ben", resolution_code="repaired", confirm_active=True)

    # critical: the cool-down is a day
    assert store.open_for_faults("s1", [fault(T0 + 20 * HOUR_MS)]) == 0

    order = only_order(store)
    assert (order.status, order.resolved_ms, order.recurrences) == ("open", None, 1)
    assert history(store, 1)[-1] == ("reopened", "system", "resolved", "open")


def test_after_the_cooldown_a_recurrence_opens_a_new_order(
    store: WorkOrderStore, clock: FakeClock
) -> None:
    store.open_for_faults("s1", [fault()])
    clock.now = T0 + HOUR_MS
    store.transition(1, "resolved", actor="ben", resolution_code="repaired", confirm_active=True)

    assert store.open_for_faults("s1", [fault(T0 + HOUR_MS + DAY_MS)]) == 1

    assert [(o.id, o.status) for o in store.list_work_orders()] == [(2, "open"), (1, "resolved")]


@pytest.mark.parametrize("final", ["closed", "cancelled"])
def test_a_closed_or_cancelled_order_is_not_reopened(
    store: WorkOrderStore, clock: FakeClock, final: str
) -> None:
    store.open_for_faults("s1", [fault()])
    store.transition(
        1, "resolved", actor="ben", resolution_code="repaired", confirm_active=True
    ) if final == "closed" else None
    store.transition(1, final, actor="ben", note="done with")

    assert store.open_for_faults("s1", [fault(T0 + HOUR_MS)]) == 1
    assert store.get(1).status == final


def test_reopening_by_hand_while_a_newer_order_is_open_is_a_conflict(
    store: WorkOrderStore, clock: FakeClock
) -> None:
    store.open_for_faults("s1", [fault()])
    store.transition(1, "resolved", actor="ben", resolution_code="repaired", confirm_active=True)
    store.open_for_faults("s1", [fault(T0 + 2 * DAY_MS)])

    with pytest.raises(WorkOrderConflictError, match="newer order"):
        store.transition(1, "open", actor="ben", note="not needed")
    assert store.get(1).status == "resolved"


def test_a_replayed_episode_after_resolution_files_nothing(
    store: WorkOrderStore, clock: FakeClock
) -> None:
    store.open_for_faults("s1", [fault()])
    store.transition(1, "resolved", actor="ben", resolution_code="repaired", confirm_active=True)
    clock.now = T0 + 10 * DAY_MS  # long after: a replay must not open a new order either

    assert store.open_for_faults("s1", [fault()]) == 0

    order = only_order(store)
    assert (order.status, order.recurrences) == ("resolved", 0)


# -- root cause ------------------------------------------------------------------------------


def test_repeated_episodes_within_30_days_raise_one_root_cause_order(
    store: WorkOrderStore,
) -> None:
    store.open_for_faults("s1", [fault(T0)])
    store.transition(1, "resolved", actor="ben", resolution_code="repaired", confirm_active=True)
    store.open_for_faults("s1", [fault(T0 + 3 * DAY_MS)])
    store.transition(2, "resolved", actor="ben", resolution_code="repaired", confirm_active=True)

    assert store.open_for_faults("s1", [fault(T0 + 20 * DAY_MS)]) == 2  # order 3 + root cause
    assert store.open_for_faults("s1", [fault(T0 + 21 * DAY_MS)]) == 0  # annotates order 3

    root = store.get(4)
    assert (root.source, root.device_id, root.rule_id, root.status) == (
        "root_cause",
        "p1",
        "pump.dry_run",
        "open",
    )
    assert root.title.startswith("Recurring fault")
    assert store.history(4)[0].note == "3 episodes of pump.dry_run within 30 days"
    assert store.get(3).parent_id == 4
    assert [o.source for o in store.open_work_orders()] == ["root_cause", "fault"]


def test_episodes_spread_over_more_than_30_days_raise_no_root_cause(
    store: WorkOrderStore,
) -> None:
    for i, day in enumerate((0, 16, 32), start=1):
        store.open_for_faults("s1", [fault(T0 + day * DAY_MS)])
        store.transition(
            i, "resolved", actor="ben", resolution_code="repaired", confirm_active=True
        )

    assert {o.source for o in store.list_work_orders()} == {"fault"}


def test_episodes_filed_newest_first_still_raise_a_root_cause_order(
    store: WorkOrderStore,
) -> None:
    """Several gateways or a replay can file later episodes before earlier ones."""
    for minute in (5, 4, 3, 2, 1, 0):
        store.open_for_faults("s1", [fault(T0 + minute * MIN_MS)])

    roots = [o for o in store.list_work_orders() if o.source == "root_cause"]
    assert len(roots) == 1
    assert store.history(roots[0].id)[0].note == "3 episodes of pump.dry_run within 30 days"
    assert roots[0].fault_started_ms == T0 + 5 * MIN_MS  # the newest of the three counted

    # Minutes 3, 4, 5 raised it: one more episode (minute 6) is not three more.
    store.transition(
        roots[0].id, "resolved", actor="ben", resolution_code="repaired", confirm_active=True
    )
    store.open_for_faults("s1", [fault(T0 + 6 * MIN_MS)])
    assert [o.source for o in store.list_work_orders()].count(Source.ROOT_CAUSE) == 1


def test_episodes_filed_out_of_order_over_more_than_30_days_raise_no_root_cause(
    store: WorkOrderStore,
) -> None:
    for day in (32, 0, 16):
        store.open_for_faults("s1", [fault(T0 + day * DAY_MS)])
        for order in store.open_work_orders():
            store.transition(
                order.id, "resolved", actor="ben", resolution_code="repaired", confirm_active=True
            )

    assert {o.source for o in store.list_work_orders()} == {"fault"}
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(fault_episodes)).scalar_one() == 3


def test_a_root_cause_order_counts_only_episodes_after_the_last_one(
    store: WorkOrderStore,
) -> None:
    def episode(day: int) -> None:
        store.open_for_faults("s1", [fault(T0 + day * DAY_MS)])
        newest_fault_order = max(o.id for o in store.open_work_orders() if o.source == "fault")
        store.transition(
            newest_fault_order,
            "resolved",
            actor="ben",
            resolution_code="repaired",
            confirm_active=True,
        )

    def root_causes() -> list[WorkOrder]:
        return [o for o in store.list_work_orders() if o.source == "root_cause"]

    for day in (0, 2, 4):
        episode(day)
    assert len(root_causes()) == 1
    store.transition(root_causes()[0].id, "resolved", actor="ben", resolution_code="repaired")

    episode(6)
    episode(8)
    assert len(root_causes()) == 1  # 5 in the window, but only 2 since the last root cause
    episode(10)
    assert [o.status for o in root_causes()] == ["open", "resolved"]


# -- SLA and escalation ----------------------------------------------------------------------


def test_priority_and_sla_times_come_from_severity_and_the_fault_start(
    store: WorkOrderStore,
) -> None:
    store.open_for_faults(
        "s1", [fault(T0), fault(T0 + MIN_MS, device="p2", severity=Severity.MAJOR)]
    )

    by_device = {o.device_id: o for o in store.list_work_orders()}
    p1, p2 = by_device["p1"], by_device["p2"]
    assert (p1.priority, p1.respond_by_ms, p1.resolve_by_ms) == (
        1,
        T0 + 15 * MIN_MS,
        T0 + 4 * HOUR_MS,
    )
    assert (p2.priority, p2.respond_by_ms, p2.resolve_by_ms) == (
        2,
        T0 + MIN_MS + HOUR_MS,
        T0 + MIN_MS + DAY_MS,
    )


def test_overdue_orders_escalate_once_per_level(store: WorkOrderStore) -> None:
    store.open_for_faults("s1", [fault(T0), fault(T0, device="p2"), fault(T0, device="p3")])
    store.transition(2, "acknowledged", actor="ana")  # responded in time
    store.transition(
        3, "resolved", actor="ana", resolution_code="repaired", confirm_active=True
    )  # done

    assert store.escalate_overdue(T0 + 15 * MIN_MS) == []  # due, not yet overdue
    assert [(o.id, o.escalation_level) for o in store.escalate_overdue(T0 + 16 * MIN_MS)] == [
        (1, 1)
    ]
    assert store.escalate_overdue(T0 + 17 * MIN_MS) == []
    late = store.escalate_overdue(T0 + 4 * HOUR_MS + 1)
    assert [(o.id, o.escalation_level) for o in late] == [(1, 2), (2, 2)]
    assert store.escalate_overdue(T0 + 5 * HOUR_MS) == []

    notes = [e.note for e in store.history(1) if e.event == "escalated"]
    assert notes == ["level 1: respond-by time passed", "level 2: resolve-by time passed"]
    assert store.get(3).escalation_level == 0


def test_an_order_first_seen_late_goes_straight_to_level_two(
    store: WorkOrderStore, clock: FakeClock
) -> None:
    store.open_for_faults("s1", [fault(T0)])

    escalated = store.escalate_overdue(T0 + DAY_MS)

    assert [(o.id, o.escalation_level) for o in escalated] == [(1, 2)]
    assert [e.note for e in store.history(1) if e.event == "escalated"] == [
        "level 2: resolve-by time passed"
    ]


# -- exactly once ----------------------------------------------------------------------------


def test_duplicated_and_shuffled_faults_file_one_order_per_episode(
    store: WorkOrderStore,
) -> None:
    episodes = [fault(T0), fault(T0, device="p2"), fault(T0, rule="pump.leak")]
    deliveries = episodes * 3
    random.Random(5).shuffle(deliveries)

    created = store.open_for_faults("s1", deliveries[:4]) + store.open_for_faults(
        "s1", deliveries[4:]
    )
    created += store.open_for_faults("s1", list(reversed(deliveries)))

    assert created == 3
    orders = store.list_work_orders()
    assert sorted((o.device_id, o.rule_id, o.recurrences) for o in orders) == [
        ("p1", "pump.dry_run", 0),
        ("p1", "pump.leak", 0),
        ("p2", "pump.dry_run", 0),
    ]
    assert all([e.event for e in store.history(o.id)] == ["created"] for o in orders)


def _pump_messages(site: Site) -> list[Message]:
    """31 s of a booster pump running dry, one reading per message."""
    topic = "facility/v1/shangri-la/estate/pump/pump-1/telemetry"
    return [
        Message(
            topic,
            orjson.dumps({"ts": T0 + i * 1000, "seq": i + 1, "running": True, "suction_bar": 0.05}),
        )
        for i in range(32)
    ]


def test_the_same_readings_twice_and_shuffled_make_one_work_order(
    store: WorkOrderStore, demo_site: Site
) -> None:
    """Two gateways (their own rule state) each get the readings twice, in shuffled order."""
    messages = _pump_messages(demo_site) * 2
    for seed in (1, 2):
        random.Random(seed).shuffle(messages)
        sink = AlertsSink(demo_site, RuleEngine.from_rule_set(demo_site, default_rule_set()), store)
        result = Decoder(demo_site).decode(messages, now_ms=T0 + 40_000)
        sink.handle(result.batch)

    order = only_order(store)
    assert (order.device_id, order.rule_id, order.status, order.recurrences) == (
        "pump-1",
        "pump.dry_run",
        "open",
        0,
    )


def _at_once(count: int, work: Callable[[int], object]) -> list[BaseException]:
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            work(index)
        except BaseException as exc:  # the test reports it below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_many_writers_filing_the_same_fault_at_once_make_one_order(
    db_url: str, store: WorkOrderStore, clock: FakeClock
) -> None:
    """Each thread is a gateway of its own (own engine), so only the database can decide."""
    writers = 8
    engines = [make_engine(db_url) for _ in range(writers)]
    stores = [WorkOrderStore(engine, clock_ms=clock) for engine in engines]
    created: list[int] = []
    try:
        errors = _at_once(
            writers, lambda i: created.append(stores[i].open_for_faults("s1", [fault()]))
        )
    finally:
        for engine in engines:
            engine.dispose()

    assert errors == []
    assert sorted(created) == [0] * (writers - 1) + [1]
    order = only_order(store)
    assert (order.status, order.recurrences) == ("open", 0)
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(fault_episodes)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(work_orders)).scalar_one() == 1


def test_concurrent_new_episodes_of_one_fault_share_one_open_order(
    db_url: str, store: WorkOrderStore, clock: FakeClock
) -> None:
    writers = 6
    engines = [make_engine(db_url) for _ in range(writers)]
    stores = [WorkOrderStore(engine, clock_ms=clock) for engine in engines]
    try:
        errors = _at_once(
            writers, lambda i: stores[i].open_for_faults("s1", [fault(T0 + i * MIN_MS)])
        )
    finally:
        for engine in engines:
            engine.dispose()

    assert errors == []
    orders = store.list_work_orders()
    assert sorted(o.source for o in orders) == ["fault", "root_cause"]  # 6 episodes in 6 min
    order = next(o for o in orders if o.source == "fault")
    assert (order.recurrences, order.last_fault_ms) == (writers - 1, T0 + (writers - 1) * MIN_MS)
    events = [e.event for e in store.history(order.id)]
    assert sorted(events) == ["created"] + ["recurred"] * (writers - 1) + ["root_cause"]


def test_a_long_running_process_files_every_order_one_call_at_a_time(
    store: WorkOrderStore,
) -> None:
    """One fault per call, as the gateway files them, on one pooled connection: on PostgreSQL
    the filing statement gets prepared and then planned generically, and its `ON CONFLICT`
    must still find the one-open-order index (it failed from the 11th filing on)."""
    devices = [f"p{n}" for n in range(25)]
    for device in devices:
        store.open_for_faults("s1", [fault(device=device)])
    store.open_for_faults("s1", [fault(device="p3")])  # already open: no second order

    orders = store.list_work_orders()
    assert sorted(o.device_id or "" for o in orders) == sorted(devices)
