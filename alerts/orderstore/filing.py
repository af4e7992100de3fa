"""Faults into work orders: file, annotate, reopen, join a family, root causes, clears."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, func, select, update
from sqlalchemy.exc import IntegrityError

from alerts.faults import FaultCleared, FaultOpened
from alerts.orderstore.base import StoreCore, add_event
from alerts.workorders import (
    SYSTEM_ACTOR,
    EventKind,
    Source,
    WorkOrderConflictError,
    WorkOrderStatus,
    fullest_window,
)
from db.schema import (
    OPEN_EPISODE_WHERE,
    OPEN_INDEX_PREDICATE,
    OPEN_ORDER_KEY,
    fault_episodes,
    work_orders,
)


class FaultFiling(StoreCore):
    """Filing fault episodes (idempotent, race-free: see `alerts.store`)."""

    def open_for_faults(self, site_id: str, faults: Sequence[FaultOpened]) -> int:
        """File each new fault episode; returns how many new work orders that made. An order
        is on the fault's own site (`FaultOpened.site_id`: a portfolio's estate), else `site_id`.

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
        add_event(
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
                title=fault.title, title_zh=fault.title_zh,
                respond_by_ms=min(respond_by, row.respond_by_ms or respond_by),
                resolve_by_ms=min(resolve_by, row.resolve_by_ms or resolve_by),
            )  # fmt: skip
            event = EventKind.ESCALATED
            note = f"severity {row.severity} -> {fault.severity}: {fault.rule_id}, {fault.title}"
        else:
            event = EventKind.FINDING
            note = f"{fault.rule_id} ({fault.severity}) from {fault.started_ms}: {fault.title}"
        conn.execute(update(work_orders).where(c.id == row.id).values(**values))
        add_event(conn, row.id, now, SYSTEM_ACTOR, event, note=note)
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
        add_event(
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
                site_id=fault.site_id or site_id,
                building_id=fault.building_id,
                unit_id=fault.unit_id,
                device_id=fault.device_id,
                kind=fault.kind,
                rule_id=fault.rule_id,
                severity=severity,
                category=str(fault.category),
                title=title or fault.title,
                title_zh=fault.title_zh,
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
                index_elements=list(OPEN_ORDER_KEY), index_where=OPEN_INDEX_PREDICATE
            )
            .returning(work_orders.c.id)
        ).scalar_one_or_none()
        if order_id is not None:
            add_event(
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
            fault, started_ms=newest, detected_ms=max(fault.detected_ms, newest),
            title_zh=f"故障反复出现，请查明根本原因：{fault.title_zh or fault.title}",
        )  # fmt: skip
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
        add_event(
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
                    add_event(
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
                    add_event(
                        conn, order_id, now, SYSTEM_ACTOR, EventKind.CLEARED,
                        note=f"fault cleared at {clear.cleared_ms}",
                    )  # fmt: skip
