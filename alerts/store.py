"""Work orders and device state in SQL (SQLAlchemy Core; SQLite default, PostgreSQL).

Filing is idempotent and race-free because the database, not a check-then-insert, decides:

- `fault_episodes` is unique per (device, rule, start): the insert of an episode's row does
  nothing when the episode was seen before, so a replayed or doubly delivered fault files
  nothing, even after its order was resolved;
- a partial unique index allows one open order per (source, device, rule): two gateways filing
  a new episode at once make one order, and the loser annotates it instead.

Writes go through `db.engine.begin_write`: on SQLite they take the write lock first, so a
transaction that reads and then writes waits for another writer instead of failing with
SQLITE_BUSY. The rules (lifecycle, SLA, cool-down, assignment) live in `alerts.workorders`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import orjson
from sqlalchemy import Connection, Engine, Row, func, select, update
from sqlalchemy.exc import IntegrityError

from alerts.faults import FaultCleared, FaultOpened
from alerts.interface import Severity
from alerts.workorders import (
    RESPONDED_STATUSES,
    SYSTEM_ACTOR,
    EventKind,
    Source,
    WorkOrderConflictError,
    WorkOrderError,
    WorkOrderNotFoundError,
    WorkOrderPolicy,
    WorkOrderStatus,
    check_transition,
    fullest_window,
)
from db.engine import begin_write, upsert_for
from db.migrate import migrate
from db.rows import row_reader
from db.schema import (
    OPEN_EPISODE_WHERE,
    OPEN_ORDER_KEY,
    OPEN_STATUSES,
    device_state,
    fault_episodes,
    work_order_events,
    work_orders,
)
from facility.batch import Batch
from facility.clock import Clock, now_ms
from facility.columns import json_objects
from facility.site import Site


@dataclass(frozen=True, slots=True)
class WorkOrder:
    id: int
    site_id: str
    building_id: str
    unit_id: str | None
    device_id: str | None
    kind: str | None
    rule_id: str | None
    severity: Severity
    category: str
    """A rule's `alerts.interface.Category`, or `report` for a resident's report."""
    title: str
    status: WorkOrderStatus
    fault_started_ms: int | None
    detected_ms: int | None
    created_ms: int
    updated_ms: int
    cleared_ms: int | None
    source: Source
    priority: int
    respond_by_ms: int | None
    resolve_by_ms: int | None
    responded_ms: int | None
    resolved_ms: int | None
    closed_ms: int | None
    team: str | None
    assignee: str | None
    escalation_level: int
    """0 on time, 1 respond-by missed, 2 resolve-by missed."""
    recurrences: int
    """Fault episodes after the first that this order took (annotated or reopened)."""
    last_fault_ms: int | None
    parent_id: int | None
    """The root-cause order this fault's order was rolled up into, if any."""
    # The fields are named as the columns of `work_orders` (`work_order_from_row` reads rows
    # by those names).


@dataclass(frozen=True, slots=True)
class WorkOrderEvent:
    """One line of a work order's audit history."""

    id: int
    work_order_id: int
    at_ms: int
    actor: str
    event: EventKind
    from_status: WorkOrderStatus | None
    to_status: WorkOrderStatus | None
    note: str | None


work_order_from_row: Final = row_reader(
    work_orders,
    WorkOrder,
    convert={"severity": Severity, "status": WorkOrderStatus, "source": Source},
)
"""A work order from a row holding the `work_orders` columns (alone or in a join)."""
_event_from_row: Final = row_reader(
    work_order_events,
    WorkOrderEvent,
    convert={"event": EventKind, "from_status": WorkOrderStatus, "to_status": WorkOrderStatus},
)


@dataclass(frozen=True, slots=True)
class _DeviceColumns:
    """A kind's device ids and buildings by kind_index, for building rows in bulk."""

    ids: npt.NDArray[np.object_]
    buildings: npt.NDArray[np.object_]


@dataclass(frozen=True, slots=True)
class DeviceState:
    device_id: str
    kind: str
    building_id: str
    last_seen_ms: int
    last_seq: int
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class WorkOrderFilter:
    """What a work-order list asks for; None means any. Sequences match any of their items
    (an empty one matches nothing)."""

    statuses: Sequence[WorkOrderStatus] | None = None
    severities: Sequence[Severity] | None = None
    building_ids: Sequence[str] | None = None
    kinds: Sequence[str] | None = None
    device_id: str | None = None
    assignee: str | None = None
    team: str | None = None
    overdue_at_ms: int | None = None
    """Only orders open and past their respond-by (without a response) or resolve-by then."""
    not_overdue_at_ms: int | None = None
    """Only orders that are not overdue then (the complement of `overdue_at_ms`)."""

    def clauses(self) -> list[Any]:
        c = work_orders.c
        out: list[Any] = []
        for column, values in (
            (c.status, self.statuses),
            (c.severity, self.severities),
            (c.building_id, self.building_ids),
            (c.kind, self.kinds),
        ):
            if values is not None:
                out.append(column.in_(list(values)))
        for column, value in ((c.device_id, self.device_id), (c.assignee, self.assignee),
                              (c.team, self.team)):  # fmt: skip
            if value is not None:
                out.append(column == value)
        if self.overdue_at_ms is not None:
            out.append(overdue_clause(self.overdue_at_ms))
        if self.not_overdue_at_ms is not None:
            out.append(~overdue_clause(self.not_overdue_at_ms))
        return out


def overdue_clause(now_ms: int) -> Any:
    """Open, and past its resolve-by, or past its respond-by without a response."""
    c = work_orders.c
    never = 2**62
    return OPEN_EPISODE_WHERE & (
        (func.coalesce(c.resolve_by_ms, never) < now_ms)
        | ((func.coalesce(c.respond_by_ms, never) < now_ms) & c.responded_ms.is_(None))
    )


def is_overdue(order: WorkOrder, now_ms: int) -> bool:
    """The same test as `overdue_clause`, on one order."""
    if order.status not in OPEN_STATUSES:
        return False
    if order.resolve_by_ms is not None and order.resolve_by_ms < now_ms:
        return True
    return (
        order.respond_by_ms is not None
        and order.respond_by_ms < now_ms
        and order.responded_ms is None
    )


class WorkOrderStore:
    """Work orders (filing, lifecycle, SLA, audit) and device state over one SQL engine."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock_ms: Clock = now_ms,
        policy: WorkOrderPolicy | None = None,
    ) -> None:
        self.engine = engine
        self.clock_ms = clock_ms
        self.policy = policy if policy is not None else WorkOrderPolicy()
        self._columns: dict[str, tuple[Site, _DeviceColumns]] = {}
        is_pg = engine.dialect.name == "postgresql"
        self._upsert = upsert_for(engine)
        # SQLite has one writer anyway; waiting here is cheaper than in its busy handler.
        self._write_lock: contextlib.AbstractContextManager[Any] = (
            contextlib.nullcontext() if is_pg else threading.Lock()
        )

    def create_schema(self) -> None:
        """Kept for callers from before migrations: runs them."""
        self.migrate()

    def migrate(self, revision: str = "head") -> None:
        migrate(self.engine, revision)

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._write_lock, begin_write(self.engine) as conn:
            yield conn

    # -- faults -> work orders -------------------------------------------------------------

    def open_for_faults(self, site_id: str, faults: Sequence[FaultOpened]) -> int:
        """File each new fault episode; returns how many new work orders that made.

        An episode seen before does nothing. A new episode annotates the open order of its
        device and rule, or reopens the last one if it was resolved within the cool-down, or
        opens a new order; enough episodes within the window also raise a root-cause order.
        Faults are handled in key order so concurrent writers lock rows in the same order.
        """
        if not faults:
            return 0
        now = self.clock_ms()
        ordered = sorted(faults, key=lambda f: (f.device_id, f.rule_id, f.started_ms))
        created = 0
        with self._write() as conn:
            for fault in ordered:
                created += self._file(conn, site_id, fault, now)
        return created

    def _file(self, conn: Connection, site_id: str, fault: FaultOpened, now: int) -> int:
        episode = conn.execute(
            self._upsert(fault_episodes)
            .values(
                device_id=fault.device_id,
                rule_id=fault.rule_id,
                started_ms=fault.started_ms,
                recorded_ms=now,
                flap=fault.flap,
            )
            .on_conflict_do_nothing(
                index_elements=[
                    fault_episodes.c.device_id,
                    fault_episodes.c.rule_id,
                    fault_episodes.c.started_ms,
                ]
            )
            .returning(fault_episodes.c.id)
        ).scalar_one_or_none()
        if episode is None:
            return 0  # this episode was filed before (a replay, or another gateway)
        created = 0
        order_id: int | None = None
        # A second pass only happens when a concurrent writer opened the order in between.
        for _ in range(2):
            order_id = self._annotate_open(conn, fault, now)
            if order_id is None and fault.family_rules:
                order_id = self._join_family(conn, fault, now)
            if order_id is None:
                order_id = self._reopen_within_cooldown(conn, fault, now)
            if order_id is None:
                seen = f"seen by {', '.join(fault.observed_by)}" if fault.observed_by else None
                order_id = self._insert_order(conn, site_id, fault, Source.FAULT, now, note=seen)
                created += order_id is not None
            if order_id is not None:
                break
        if order_id is None:
            raise WorkOrderConflictError(f"could not file {fault.rule_id} on {fault.device_id}")
        conn.execute(
            update(fault_episodes)
            .where(fault_episodes.c.id == episode)
            .values(work_order_id=order_id)
        )
        if fault.flap:  # the same event back within the rule's gap: no recurrence
            return created
        return created + self._maybe_root_cause(conn, site_id, fault, order_id, now)

    def _key(self, source: Source, fault: FaultOpened) -> Any:
        return (
            (work_orders.c.source == str(source))
            & (work_orders.c.device_id == fault.device_id)
            & (work_orders.c.rule_id == fault.rule_id)
        )

    def _annotate_open(self, conn: Connection, fault: FaultOpened, now: int) -> int | None:
        row = conn.execute(
            select(work_orders.c.id, work_orders.c.last_fault_ms, work_orders.c.cleared_ms)
            .where(self._key(Source.FAULT, fault), OPEN_EPISODE_WHERE)
            .with_for_update()
        ).first()
        if row is None:
            return None
        values: dict[str, Any] = {
            "recurrences": work_orders.c.recurrences + (0 if fault.flap else 1),
            "updated_ms": now,
            "last_fault_ms": max(row.last_fault_ms or 0, fault.started_ms),
        }
        if row.cleared_ms is not None and fault.started_ms >= row.cleared_ms:
            values["cleared_ms"] = None  # it is back: the next clear is this episode's
        conn.execute(update(work_orders).where(work_orders.c.id == row.id).values(**values))
        self._event(
            conn, row.id, now, SYSTEM_ACTOR, EventKind.RECURRED,
            note=(
                f"fault back from {fault.started_ms} after a short clear (within the rule's "
                "gap): the same episode, not a recurrence"
                if fault.flap
                else f"fault again from {fault.started_ms} (detected {fault.detected_ms})"
            ),
        )  # fmt: skip
        return int(row.id)

    def _join_family(self, conn: Connection, fault: FaultOpened, now: int) -> int | None:
        """An open order of another rule of the fault's family on its device takes the fault:
        a more severe one escalates it (severity, priority, SLA from the order's start, the
        rule and title it follows now), any other is recorded on it as a finding."""
        others = [r for r in fault.family_rules if r != fault.rule_id]
        c = work_orders.c
        row = conn.execute(
            select(c.id, c.severity, c.priority, c.fault_started_ms, c.respond_by_ms,
                   c.resolve_by_ms, c.last_fault_ms, c.cleared_ms)
            .where(c.source == str(Source.FAULT), c.device_id == fault.device_id,
                   c.rule_id.in_(others), OPEN_EPISODE_WHERE)
            .order_by(c.id)
            .limit(1)
            .with_for_update()
        ).first()  # fmt: skip
        if row is None:
            return None
        values: dict[str, Any] = {
            "updated_ms": now,
            "last_fault_ms": max(row.last_fault_ms or 0, fault.started_ms),
        }
        if row.cleared_ms is not None and fault.started_ms >= row.cleared_ms:
            values["cleared_ms"] = None
        start = row.fault_started_ms if row.fault_started_ms is not None else fault.started_ms
        priority, respond_by, resolve_by = self.policy.sla(str(fault.severity), start)
        if priority < row.priority:
            values.update(
                severity=str(fault.severity), priority=priority, rule_id=fault.rule_id,
                title=fault.title,
                respond_by_ms=min(respond_by, row.respond_by_ms or respond_by),
                resolve_by_ms=min(resolve_by, row.resolve_by_ms or resolve_by),
            )  # fmt: skip
            event = EventKind.ESCALATED
            note = f"severity {row.severity} -> {fault.severity}: {fault.rule_id}, {fault.title}"
        else:
            event = EventKind.FINDING
            note = f"{fault.rule_id} ({fault.severity}) from {fault.started_ms}: {fault.title}"
        conn.execute(update(work_orders).where(c.id == row.id).values(**values))
        self._event(conn, row.id, now, SYSTEM_ACTOR, event, note=note)
        return int(row.id)

    def _reopen_within_cooldown(self, conn: Connection, fault: FaultOpened, now: int) -> int | None:
        last = conn.execute(
            select(work_orders.c.id, work_orders.c.status, work_orders.c.resolved_ms)
            .where(self._key(Source.FAULT, fault))
            .order_by(work_orders.c.id.desc())
            .limit(1)
        ).first()
        if last is None or last.status != WorkOrderStatus.RESOLVED or last.resolved_ms is None:
            return None
        cooldown_ms = self.policy.for_severity(str(fault.severity)).cooldown_s * 1000
        if fault.started_ms - last.resolved_ms >= cooldown_ms:
            return None
        try:
            with conn.begin_nested():
                reopened = conn.execute(
                    update(work_orders)
                    .where(
                        work_orders.c.id == last.id,
                        work_orders.c.status == str(WorkOrderStatus.RESOLVED),
                    )
                    .values(
                        status=str(WorkOrderStatus.OPEN),
                        resolved_ms=None,
                        cleared_ms=None,
                        recurrences=work_orders.c.recurrences + 1,
                        last_fault_ms=fault.started_ms,
                        updated_ms=now,
                    )
                ).rowcount
        except IntegrityError:
            return None  # another writer opened a new order meanwhile: annotate that one
        if not reopened:
            return None
        self._event(
            conn, last.id, now, SYSTEM_ACTOR, EventKind.REOPENED,
            from_status=WorkOrderStatus.RESOLVED, to_status=WorkOrderStatus.OPEN,
            note=f"fault again from {fault.started_ms}, within the cool-down of the resolution",
        )  # fmt: skip
        return int(last.id)

    def _insert_order(
        self,
        conn: Connection,
        site_id: str,
        fault: FaultOpened,
        source: Source,
        now: int,
        *,
        title: str | None = None,
        note: str | None = None,
    ) -> int | None:
        severity = str(fault.severity)
        priority, respond_by, resolve_by = self.policy.sla(severity, fault.started_ms)
        order_id = conn.execute(
            self._upsert(work_orders)
            .values(
                site_id=site_id,
                building_id=fault.building_id,
                unit_id=fault.unit_id,
                device_id=fault.device_id,
                kind=fault.kind,
                rule_id=fault.rule_id,
                severity=severity,
                category=str(fault.category),
                title=title or fault.title,
                status=str(WorkOrderStatus.OPEN),
                fault_started_ms=fault.started_ms,
                detected_ms=fault.detected_ms,
                created_ms=now,
                updated_ms=now,
                source=str(source),
                priority=priority,
                respond_by_ms=respond_by,
                resolve_by_ms=resolve_by,
                team=self.policy.team_for(fault.kind, fault.building_id),
                last_fault_ms=fault.started_ms,
            )
            .on_conflict_do_nothing(
                index_elements=list(OPEN_ORDER_KEY), index_where=OPEN_EPISODE_WHERE
            )
            .returning(work_orders.c.id)
        ).scalar_one_or_none()
        if order_id is not None:
            self._event(
                conn, order_id, now, SYSTEM_ACTOR, EventKind.CREATED,
                to_status=WorkOrderStatus.OPEN, note=note,
            )  # fmt: skip
        return order_id

    def _maybe_root_cause(
        self, conn: Connection, site_id: str, fault: FaultOpened, order_id: int, now: int
    ) -> int:
        """Raise a root-cause order when this rule keeps firing on this device.

        Episodes are counted within the window and after the last root-cause order's trigger,
        so one root-cause order is raised per N episodes, not one per episode after N. Episodes
        may be filed out of order (several gateways, a replay), so the count is the fullest
        window that holds this episode, not only the window ending at it.
        """
        policy = self.policy
        window_ms = policy.root_cause_window_s * 1000
        last_trigger = conn.execute(
            select(func.max(work_orders.c.fault_started_ms)).where(
                self._key(Source.ROOT_CAUSE, fault)
            )
        ).scalar_one_or_none()
        episodes = select(fault_episodes.c.started_ms).where(
            fault_episodes.c.device_id == fault.device_id,
            fault_episodes.c.rule_id == fault.rule_id,
            fault_episodes.c.flap.is_(False),
            fault_episodes.c.started_ms > fault.started_ms - window_ms,
            fault_episodes.c.started_ms < fault.started_ms + window_ms,
        )
        if last_trigger is not None:
            episodes = episodes.where(fault_episodes.c.started_ms > last_trigger)
        starts = sorted(int(s) for s in conn.execute(episodes).scalars())
        count, newest = fullest_window(starts, fault.started_ms, window_ms)
        if count < policy.root_cause_after:
            return 0
        days = policy.root_cause_window_s / 86_400
        # Its fault start is the newest episode counted: the next root-cause order counts only
        # episodes after it, so none is counted twice however the episodes were filed.
        trigger = dataclasses.replace(
            fault, started_ms=newest, detected_ms=max(fault.detected_ms, newest)
        )
        root_id = self._insert_order(
            conn, site_id, trigger, Source.ROOT_CAUSE, now,
            title=f"Recurring fault, find the root cause: {fault.title}",
            note=f"{count} episodes of {fault.rule_id} within {days:g} days",
        )  # fmt: skip
        if root_id is None:
            return 0  # one is open already
        conn.execute(
            update(work_orders).where(work_orders.c.id == order_id).values(parent_id=root_id)
        )
        self._event(
            conn, order_id, now, SYSTEM_ACTOR, EventKind.ROOT_CAUSE,
            note=f"root-cause work order {root_id}",
        )  # fmt: skip
        return 1

    def record_observers(self, faults: Sequence[FaultOpened]) -> None:
        """Record on a shared asset's open order that one more of its devices saw the fault."""
        if not faults:
            return
        now = self.clock_ms()
        with self._write() as conn:
            for fault in sorted(faults, key=lambda f: (f.device_id, f.rule_id)):
                order_id = conn.execute(
                    select(work_orders.c.id)
                    .where(
                        work_orders.c.source == str(Source.FAULT),
                        work_orders.c.device_id == fault.device_id,
                        work_orders.c.rule_id.in_(fault.family_rules or (fault.rule_id,)),
                        OPEN_EPISODE_WHERE,
                    )
                    .order_by(work_orders.c.id)
                    .limit(1)
                ).scalar_one_or_none()
                if order_id is not None:
                    seen = ", ".join(fault.observed_by)
                    self._event(
                        conn, order_id, now, SYSTEM_ACTOR, EventKind.FINDING,
                        note=f"also seen by {seen} from {fault.started_ms}: {fault.title}",
                    )  # fmt: skip

    def record_clears(self, clears: Sequence[FaultCleared]) -> None:
        """Note on each fault's open order when its condition stopped (the first clear wins)."""
        if not clears:
            return
        now = self.clock_ms()
        with self._write() as conn:
            for clear in sorted(clears, key=lambda c: (c.device_id, c.rule_id)):
                rules = clear.family_rules or (clear.rule_id,)
                order_id = conn.execute(
                    update(work_orders)
                    .where(
                        work_orders.c.source == str(Source.FAULT),
                        work_orders.c.device_id == clear.device_id,
                        work_orders.c.rule_id.in_(rules),
                        OPEN_EPISODE_WHERE,
                        work_orders.c.cleared_ms.is_(None),
                    )
                    .values(cleared_ms=clear.cleared_ms, updated_ms=now)
                    .returning(work_orders.c.id)
                ).scalar_one_or_none()
                if order_id is not None:
                    self._event(
                        conn, order_id, now, SYSTEM_ACTOR, EventKind.CLEARED,
                        note=f"fault cleared at {clear.cleared_ms}",
                    )  # fmt: skip

    # -- lifecycle -------------------------------------------------------------------------

    def get(self, order_id: int) -> WorkOrder:
        with self.engine.connect() as conn:
            return self._get(conn, order_id)

    def _get(self, conn: Connection, order_id: int, *, lock: bool = False) -> WorkOrder:
        query = select(work_orders).where(work_orders.c.id == order_id)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise WorkOrderNotFoundError(order_id)
        return work_order_from_row(row)

    def transition(
        self, order_id: int, to: str, *, actor: str, note: str | None = None
    ) -> WorkOrder:
        """Move an order along its lifecycle, recorded in its history; refuses what
        `alerts.workorders.TRANSITIONS` does not allow."""
        _require_actor(actor)
        now = self.clock_ms()
        with self._write() as conn:
            order = self._get(conn, order_id, lock=True)
            target = check_transition(order_id, order.status, to)
            values: dict[str, Any] = {"status": str(target), "updated_ms": now}
            if target in RESPONDED_STATUSES and order.responded_ms is None:
                values["responded_ms"] = now
            if target is WorkOrderStatus.RESOLVED:
                values["resolved_ms"] = now
            elif target in (WorkOrderStatus.CLOSED, WorkOrderStatus.CANCELLED):
                values["closed_ms"] = now
            elif target is WorkOrderStatus.OPEN:
                values["resolved_ms"] = None
            try:
                with conn.begin_nested():
                    conn.execute(
                        update(work_orders).where(work_orders.c.id == order_id).values(**values)
                    )
            except IntegrityError as exc:
                raise WorkOrderConflictError(
                    f"work order {order_id} cannot be reopened: a newer order of the same"
                    " fault is open"
                ) from exc
            self._event(
                conn, order_id, now, actor, EventKind.TRANSITION,
                from_status=order.status, to_status=target, note=note,
            )  # fmt: skip
            return self._get(conn, order_id)

    def assign(
        self,
        order_id: int,
        *,
        actor: str,
        assignee: str | None,
        team: str | None = None,
        note: str | None = None,
    ) -> WorkOrder:
        """Give the order to a person (None: unassign) and, if given, move it to a team."""
        _require_actor(actor)
        now = self.clock_ms()
        with self._write() as conn:
            order = self._get(conn, order_id, lock=True)
            if order.status in (WorkOrderStatus.CLOSED, WorkOrderStatus.CANCELLED):
                raise WorkOrderError(f"work order {order_id} is {order.status}: final")
            values: dict[str, Any] = {"assignee": assignee, "updated_ms": now}
            if team is not None:
                values["team"] = team
            conn.execute(update(work_orders).where(work_orders.c.id == order_id).values(**values))
            what = f"assignee: {assignee or '-'}, team: {values.get('team', order.team) or '-'}"
            self._event(
                conn, order_id, now, actor, EventKind.ASSIGNED,
                note=f"{what}; {note}" if note else what,
            )  # fmt: skip
            return self._get(conn, order_id)

    def comment(self, order_id: int, *, actor: str, text: str) -> WorkOrderEvent:
        _require_actor(actor)
        if not text.strip():
            raise ValueError("a comment needs text")
        now = self.clock_ms()
        with self._write() as conn:
            self._get(conn, order_id)
            event_id = self._event(conn, order_id, now, actor, EventKind.COMMENT, note=text)
            conn.execute(
                update(work_orders).where(work_orders.c.id == order_id).values(updated_ms=now)
            )
            return self._events(conn, order_id, event_id=event_id)[0]

    def history(self, order_id: int) -> list[WorkOrderEvent]:
        """The audit history, oldest first."""
        with self.engine.connect() as conn:
            self._get(conn, order_id)
            return self._events(conn, order_id)

    def comments(self, order_id: int) -> list[WorkOrderEvent]:
        return [e for e in self.history(order_id) if e.event == EventKind.COMMENT]

    def escalate_overdue(self, now_ms: int | None = None) -> list[WorkOrder]:
        """Raise the escalation level of open orders past their respond-by (1) or
        resolve-by (2) time, once per level, and return the orders escalated now."""
        now = self.clock_ms() if now_ms is None else now_ms
        escalated: list[int] = []
        is_open = work_orders.c.status.in_(OPEN_STATUSES)
        with self._write() as conn:
            for level, overdue, what in (
                (2, work_orders.c.resolve_by_ms < now, "resolve-by"),
                (
                    1,
                    (work_orders.c.respond_by_ms < now) & work_orders.c.responded_ms.is_(None),
                    "respond-by",
                ),
            ):
                rows = conn.execute(
                    update(work_orders)
                    .where(is_open, overdue, work_orders.c.escalation_level < level)
                    .values(escalation_level=level, updated_ms=now)
                    .returning(work_orders.c.id)
                ).all()
                for order_id in sorted(row.id for row in rows):
                    self._event(
                        conn, order_id, now, SYSTEM_ACTOR, EventKind.ESCALATED,
                        note=f"level {level}: {what} time passed",
                    )  # fmt: skip
                    escalated.append(order_id)
            return [self._get(conn, order_id) for order_id in sorted(escalated)]

    def _event(
        self,
        conn: Connection,
        order_id: int,
        at_ms: int,
        actor: str,
        kind: EventKind,
        *,
        from_status: str | None = None,
        to_status: str | None = None,
        note: str | None = None,
    ) -> int:
        return int(
            conn.execute(
                work_order_events.insert()
                .values(
                    work_order_id=order_id,
                    at_ms=at_ms,
                    actor=actor,
                    event=str(kind),
                    from_status=None if from_status is None else str(from_status),
                    to_status=None if to_status is None else str(to_status),
                    note=note,
                )
                .returning(work_order_events.c.id)
            ).scalar_one()
        )

    def _events(
        self, conn: Connection, order_id: int, *, event_id: int | None = None
    ) -> list[WorkOrderEvent]:
        query = (
            select(work_order_events)
            .where(work_order_events.c.work_order_id == order_id)
            .order_by(work_order_events.c.id)
        )
        if event_id is not None:
            query = query.where(work_order_events.c.id == event_id)
        return [_event_from_row(row) for row in conn.execute(query)]

    # -- queries ---------------------------------------------------------------------------

    def list_work_orders(
        self,
        where: WorkOrderFilter | None = None,
        *,
        statuses: Iterable[str] | None = None,
        building_ids: Iterable[str] | None = None,
        device_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[WorkOrder]:
        """Newest first. `where` takes every filter; the keywords are the common ones."""
        where = _merge(where, statuses, building_ids, device_id)
        query = select(work_orders).order_by(work_orders.c.id.desc()).limit(limit).offset(offset)
        query = query.where(*where.clauses())
        with self.engine.connect() as conn:
            return [work_order_from_row(row) for row in conn.execute(query)]

    def count_work_orders(self, where: WorkOrderFilter | None = None) -> int:
        query = select(func.count()).select_from(work_orders)
        query = query.where(*(where or WorkOrderFilter()).clauses())
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def open_work_orders(self, building_ids: Iterable[str] | None = None) -> list[WorkOrder]:
        return self.list_work_orders(
            statuses=OPEN_STATUSES, building_ids=building_ids, limit=10_000
        )

    def open_order_marks(self) -> list[tuple[str | None, str, str]]:
        """(device_id, building_id, severity) of every open order: what status needs, without
        building whole orders (the live-update monitor reads this every second)."""
        query = select(
            work_orders.c.device_id, work_orders.c.building_id, work_orders.c.severity
        ).where(OPEN_EPISODE_WHERE)
        with self.engine.connect() as conn:
            return [(r.device_id, r.building_id, r.severity) for r in conn.execute(query)]

    def orders_for_period(self, building_id: str, start_ms: int, end_ms: int) -> list[WorkOrder]:
        """The building's orders that were alive at some time in [start, end): created before
        its end and not resolved/closed before its start (service figures)."""
        finished = func.coalesce(work_orders.c.resolved_ms, work_orders.c.closed_ms)
        query = (
            select(work_orders)
            .where(
                work_orders.c.building_id == building_id,
                work_orders.c.created_ms < end_ms,
                finished.is_(None) | (finished >= start_ms),
            )
            .order_by(work_orders.c.id)
        )
        with self.engine.connect() as conn:
            return [work_order_from_row(row) for row in conn.execute(query)]

    # -- residents' reports ----------------------------------------------------------------

    def create_report(
        self,
        *,
        site_id: str,
        building_id: str,
        unit_id: str | None,
        device_id: str | None,
        kind: str | None,
        description: str,
        contact: str | None = None,
        actor: str = "resident",
        severity: Severity = Severity.MINOR,
    ) -> WorkOrder:
        """A work order from an owner's or resident's report (source `report`)."""
        _require_actor(actor)
        text = description.strip()
        if not text:
            raise ValueError("a report needs a description")
        now = self.clock_ms()
        priority, respond_by, resolve_by = self.policy.sla(severity, now)
        first_line = " ".join(text.split())
        title = "Resident report: " + (
            first_line if len(first_line) <= 80 else first_line[:79] + "…"
        )
        note = text if not contact else f"{text}\n\ncontact: {contact.strip()}"
        with self._write() as conn:
            order_id = conn.execute(
                work_orders.insert()
                .values(
                    site_id=site_id,
                    building_id=building_id,
                    unit_id=unit_id,
                    device_id=device_id,
                    kind=kind,
                    rule_id=None,
                    severity=severity,
                    category="report",
                    title=title,
                    status=str(WorkOrderStatus.OPEN),
                    fault_started_ms=now,
                    detected_ms=now,
                    created_ms=now,
                    updated_ms=now,
                    source=str(Source.REPORT),
                    priority=priority,
                    respond_by_ms=respond_by,
                    resolve_by_ms=resolve_by,
                    team=self.policy.team_for(kind, building_id),
                    last_fault_ms=now,
                )
                .returning(work_orders.c.id)
            ).scalar_one()
            self._event(
                conn, order_id, now, actor, EventKind.CREATED,
                to_status=WorkOrderStatus.OPEN, note=note,
            )  # fmt: skip
            return self._get(conn, order_id)

    # -- change feed -----------------------------------------------------------------------

    def last_event_id(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(work_order_events.c.id))).scalar() or 0)

    def events_after(
        self, after_id: int, *, limit: int = 500
    ) -> list[tuple[WorkOrderEvent, WorkOrder]]:
        """Audit events newer than `after_id`, oldest first, each with its order as it is now
        (what a live feed of changes needs; works across processes sharing the database)."""
        query = (
            select(work_order_events, work_orders)
            .join(work_orders, work_orders.c.id == work_order_events.c.work_order_id)
            .where(work_order_events.c.id > after_id)
            .order_by(work_order_events.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [(_event_from_row(row), work_order_from_row(row)) for row in conn.execute(query)]

    # -- device state ----------------------------------------------------------------------

    def update_device_state(self, site: Site, batch: Batch) -> None:
        """Upsert each device's newest reading in the batch (one row per device, not reading).

        On the gateway's hot path: values become JSON a column at a time, and the rows go to
        the driver as tuples (SQLAlchemy's per-row parameter handling cost as much as the rest).
        """
        rows: list[tuple[str, str, str, str, int, int, str]] = []
        for kb in batch:
            ordered = kb.time_ordered()
            last = np.ones(len(ordered), np.bool_)
            last[:-1] = ordered.device[:-1] != ordered.device[1:]
            newest = np.flatnonzero(last)
            devices = self._device_columns(site, kb.kind.name)
            index = ordered.device[newest]
            rows += zip(
                devices.ids[index].tolist(),
                repeat(site.id),
                repeat(kb.kind.name),
                devices.buildings[index].tolist(),
                ordered.ts_ms[newest].tolist(),
                ordered.seq[newest].tolist(),
                [j.decode() for j in json_objects(kb.kind, ordered.values[newest])],
                strict=False,
            )
        if not rows:
            return
        with self._write() as conn:
            mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
            conn.exec_driver_sql(
                "INSERT INTO device_state (device_id, site_id, kind, building_id, last_seen_ms,"
                f" last_seq, values_json) VALUES ({', '.join([mark] * 7)})"
                " ON CONFLICT (device_id) DO UPDATE SET last_seen_ms = excluded.last_seen_ms,"
                " last_seq = excluded.last_seq, values_json = excluded.values_json"
                " WHERE excluded.last_seen_ms >= device_state.last_seen_ms",
                rows,
            )

    def _device_columns(self, site: Site, kind: str) -> _DeviceColumns:
        cached = self._columns.get(kind)
        if cached is not None and cached[0] is site:
            return cached[1]
        devices = site.by_kind[kind]
        columns = _DeviceColumns(
            np.array([d.id for d in devices], dtype=object),
            np.array([d.building_id for d in devices], dtype=object),
        )
        self._columns[kind] = (site, columns)
        return columns

    def devices_last_seen(self) -> dict[str, int]:
        """Every device's last reading time (no values): what status by silence needs."""
        # Through the driver's cursor: 10k rows a second cost a third of what Core rows do.
        with self.engine.connect() as conn:
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.execute("SELECT device_id, last_seen_ms FROM device_state")
                return {device_id: int(ts) for device_id, ts in cursor.fetchall()}
            finally:
                cursor.close()

    def device_states(self, device_ids: Iterable[str] | None = None) -> dict[str, DeviceState]:
        query = select(device_state)
        if device_ids is not None:
            query = query.where(device_state.c.device_id.in_(list(device_ids)))
        with self.engine.connect() as conn:
            return {row.device_id: _device_state(row) for row in conn.execute(query)}


def _merge(
    where: WorkOrderFilter | None,
    statuses: Iterable[str] | None,
    building_ids: Iterable[str] | None,
    device_id: str | None,
) -> WorkOrderFilter:
    where = where or WorkOrderFilter()
    changes: dict[str, Any] = {}
    if statuses is not None:
        changes["statuses"] = tuple(map(WorkOrderStatus, statuses))
    if building_ids is not None:
        changes["building_ids"] = tuple(building_ids)
    if device_id is not None:
        changes["device_id"] = device_id
    return dataclasses.replace(where, **changes) if changes else where


def _device_state(row: Row[Any]) -> DeviceState:
    return DeviceState(
        device_id=row.device_id,
        kind=row.kind,
        building_id=row.building_id,
        last_seen_ms=row.last_seen_ms,
        last_seq=row.last_seq,
        values=orjson.loads(row.values_json),
    )


def _require_actor(actor: str) -> None:
    if not actor.strip():
        raise ValueError("every change of a work order needs an actor (who made it)")
