"""Preventive maintenance in SQL: tracking, scheduled orders (one per period), and evidence.

Creating a scheduled order is idempotent in the database, like filing a fault: the insert of
its `maintenance_orders` row, unique per (plan, device, the newest finished order of the
plan and device), is the gate. Any number of schedulers reading the same state plan the same
key, and only the first insert makes an order; after that order is finished (done, or
cancelled) the next period has a new key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, func, select, update

from alerts.orderstore.base import StoreCore, add_event
from alerts.workorders import SYSTEM_ACTOR, EventKind, Source, WorkOrderStatus
from db.schema import (
    OPEN_EPISODE_WHERE,
    OPEN_INDEX_PREDICATE,
    OPEN_ORDER_KEY,
    maintenance_evidence,
    maintenance_orders,
    maintenance_tracking,
    work_order_events,
    work_orders,
)

FINISHED: tuple[str, ...] = (
    str(WorkOrderStatus.RESOLVED),
    str(WorkOrderStatus.CLOSED),
    str(WorkOrderStatus.CANCELLED),
)
COMPLETED: tuple[str, ...] = (str(WorkOrderStatus.RESOLVED), str(WorkOrderStatus.CLOSED))
PairKey = tuple[str, str]
"""(plan id, device id)."""


@dataclass(frozen=True, slots=True)
class TelemetryPass:
    """A reading that showed a plan's test passing."""

    plan_id: str
    device_id: str
    done_ms: int
    value: float


@dataclass(frozen=True, slots=True)
class TechnicianRecord:
    """A scheduled order resolved (or closed) with a resolution code: who did it, and when."""

    plan_id: str
    device_id: str
    work_order_id: int
    done_ms: int
    code: str
    by: str


@dataclass(frozen=True, slots=True)
class PlanOrderState:
    """What the scheduler needs of one (plan, device): its scheduled orders so far."""

    newest_finished_id: int = 0
    """The newest finished (resolved, closed, cancelled) scheduled order; 0: none."""
    open_order_id: int | None = None


@dataclass(frozen=True, slots=True)
class NewScheduledOrder:
    site_id: str
    plan_id: str
    device_id: str
    building_id: str
    unit_id: str | None
    kind: str
    title: str
    severity: str
    due_ms: int
    after_order_id: int
    note: str


class ScheduledOrders(StoreCore):
    """The SQL side of `alerts.maintenance`: what the scheduler writes and the logbook reads."""

    # -- tracking --------------------------------------------------------------------------

    def start_tracking(self, pairs: Iterable[PairKey], since_ms: int) -> None:
        """Record `since_ms` for each pair not tracked yet (the first writer wins)."""
        rows = [{"plan_id": p, "device_id": d, "since_ms": since_ms} for p, d in pairs]
        if not rows:
            return
        with self._write() as conn:
            conn.execute(
                self._upsert(maintenance_tracking)
                .values(rows)
                .on_conflict_do_nothing(
                    index_elements=[
                        maintenance_tracking.c.plan_id,
                        maintenance_tracking.c.device_id,
                    ]
                )
            )

    def tracked_since(self, device_ids: Sequence[str]) -> dict[PairKey, int]:
        t = maintenance_tracking.c
        query = select(t.plan_id, t.device_id, t.since_ms).where(t.device_id.in_(list(device_ids)))
        with self.engine.connect() as conn:
            return {(r.plan_id, r.device_id): int(r.since_ms) for r in conn.execute(query)}

    # -- telemetry evidence ------------------------------------------------------------------

    def record_passes(self, passes: Sequence[TelemetryPass], every_ms: dict[str, int]) -> None:
        """Keep each pass as its plan's newest of its interval (an older one changes nothing)."""
        if not passes:
            return
        now = self.clock_ms()
        newest: dict[tuple[str, str, int], TelemetryPass] = {}
        for p in passes:
            key = (p.plan_id, p.device_id, p.done_ms // every_ms[p.plan_id])
            if key not in newest or newest[key].done_ms < p.done_ms:
                newest[key] = p
        e = maintenance_evidence
        with self._write() as conn:
            for (plan_id, device_id, period), p in sorted(newest.items()):
                insert = self._upsert(e).values(
                    plan_id=plan_id,
                    device_id=device_id,
                    period=period,
                    done_ms=p.done_ms,
                    value=p.value,
                    recorded_ms=now,
                )
                conn.execute(
                    insert.on_conflict_do_update(
                        index_elements=[e.c.plan_id, e.c.device_id, e.c.period],
                        set_={
                            "done_ms": insert.excluded.done_ms,
                            "value": insert.excluded.value,
                            "recorded_ms": insert.excluded.recorded_ms,
                        },
                        where=insert.excluded.done_ms > e.c.done_ms,
                    )
                )

    def telemetry_passes(self, device_ids: Sequence[str], *, until_ms: int) -> list[TelemetryPass]:
        """The recorded passes at or before `until_ms`, newest first."""
        e = maintenance_evidence.c
        query = (
            select(e.plan_id, e.device_id, e.done_ms, e.value)
            .where(e.device_id.in_(list(device_ids)), e.done_ms <= until_ms)
            .order_by(e.done_ms.desc())
        )
        with self.engine.connect() as conn:
            return [
                TelemetryPass(r.plan_id, r.device_id, int(r.done_ms), float(r.value))
                for r in conn.execute(query)
            ]

    # -- technicians' records ----------------------------------------------------------------

    def technician_records(
        self, device_ids: Sequence[str], *, until_ms: int
    ) -> list[TechnicianRecord]:
        """Scheduled orders resolved at or before `until_ms` with a resolution code, newest
        first; `by` is who resolved it (the resolve's actor)."""
        c = work_orders.c
        query = (
            select(c.id, c.rule_id, c.device_id, c.resolved_ms, c.resolution_code, c.assignee)
            .where(
                c.source == str(Source.SCHEDULED),
                c.device_id.in_(list(device_ids)),
                c.status.in_(COMPLETED),
                c.resolved_ms.is_not(None),
                c.resolved_ms <= until_ms,
                c.resolution_code.is_not(None),
            )
            .order_by(c.resolved_ms.desc(), c.id.desc())
        )
        with self.engine.connect() as conn:
            rows = list(conn.execute(query))
            actors = self._resolvers(conn, [int(r.id) for r in rows])
        return [
            TechnicianRecord(
                r.rule_id,
                r.device_id,
                int(r.id),
                int(r.resolved_ms),
                r.resolution_code,
                actors.get(int(r.id)) or r.assignee or "",
            )
            for r in rows
        ]

    def _resolvers(self, conn: Connection, order_ids: list[int]) -> dict[int, str]:
        if not order_ids:
            return {}
        ev = work_order_events.c
        newest = (
            select(ev.work_order_id, func.max(ev.id).label("event_id"))
            .where(ev.work_order_id.in_(order_ids), ev.to_status == str(WorkOrderStatus.RESOLVED))
            .group_by(ev.work_order_id)
            .subquery()
        )
        query = select(ev.work_order_id, ev.actor).join(newest, ev.id == newest.c.event_id)
        return {int(r.work_order_id): r.actor for r in conn.execute(query)}

    # -- scheduled orders --------------------------------------------------------------------

    def plan_order_states(self, device_ids: Sequence[str]) -> dict[PairKey, PlanOrderState]:
        """Per (plan, device) of these devices: the newest finished scheduled order and the
        open one."""
        c = work_orders.c
        scheduled = (c.source == str(Source.SCHEDULED)) & c.device_id.in_(list(device_ids))
        finished = (
            select(c.rule_id, c.device_id, func.max(c.id).label("newest"))
            .where(scheduled, c.status.in_(FINISHED))
            .group_by(c.rule_id, c.device_id)
        )
        open_orders = select(c.rule_id, c.device_id, c.id).where(scheduled, OPEN_EPISODE_WHERE)
        states: dict[PairKey, PlanOrderState] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(finished):
                states[(r.rule_id, r.device_id)] = PlanOrderState(newest_finished_id=int(r.newest))
            for r in conn.execute(open_orders):
                key = (r.rule_id, r.device_id)
                before = states.get(key, PlanOrderState())
                states[key] = PlanOrderState(before.newest_finished_id, int(r.id))
        return states

    def create_scheduled_order(self, new: NewScheduledOrder) -> int | None:
        """The plan's order for this period, or None when one was made for it already (by
        this or another process) or an order of the plan is open on the device."""
        now = self.clock_ms()
        m = maintenance_orders
        with self._write() as conn:
            gate = conn.execute(
                self._upsert(m)
                .values(
                    plan_id=new.plan_id,
                    device_id=new.device_id,
                    after_order_id=new.after_order_id,
                    due_ms=new.due_ms,
                    created_ms=now,
                )
                .on_conflict_do_nothing(
                    index_elements=[m.c.plan_id, m.c.device_id, m.c.after_order_id]
                )
                .returning(m.c.id)
            ).scalar_one_or_none()
            if gate is None:
                return None  # this period's order was made before
            order_id = conn.execute(
                self._upsert(work_orders)
                .values(
                    site_id=new.site_id,
                    building_id=new.building_id,
                    unit_id=new.unit_id,
                    device_id=new.device_id,
                    kind=new.kind,
                    rule_id=new.plan_id,
                    severity=new.severity,
                    category="maintenance",
                    title=new.title,
                    status=str(WorkOrderStatus.OPEN),
                    created_ms=now,
                    updated_ms=now,
                    source=str(Source.SCHEDULED),
                    priority=self.policy.for_severity(new.severity).priority,
                    resolve_by_ms=new.due_ms,
                    team=self.policy.team_for(new.kind, new.building_id),
                )
                .on_conflict_do_nothing(
                    index_elements=list(OPEN_ORDER_KEY), index_where=OPEN_INDEX_PREDICATE
                )
                .returning(work_orders.c.id)
            ).scalar_one_or_none()
            if order_id is None:  # an order of the plan is open on the device: keep that one
                conn.execute(m.delete().where(m.c.id == gate))
                return None
            conn.execute(update(m).where(m.c.id == gate).values(work_order_id=order_id))
            add_event(
                conn,
                order_id,
                now,
                SYSTEM_ACTOR,
                EventKind.CREATED,
                to_status=WorkOrderStatus.OPEN,
                note=new.note,
            )
            return int(order_id)
