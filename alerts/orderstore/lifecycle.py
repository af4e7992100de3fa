"""An order through its lifecycle: transitions, assignment, comments, history, SLA escalation."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from alerts.orderstore.base import add_event, fetch_order, order_events, require_actor
from alerts.orderstore.filters import fault_active
from alerts.orderstore.models import WorkOrder, WorkOrderEvent
from alerts.orderstore.teams import TeamList
from alerts.workorders import (
    AUTO_ASSIGN,
    MAX_HOLD_MS,
    NEEDS_REASON,
    RESPONDED_STATUSES,
    SYSTEM_ACTOR,
    EventKind,
    FaultStillActiveError,
    ResolutionCode,
    WorkOrderConflictError,
    WorkOrderError,
    WorkOrderInputError,
    WorkOrderStatus,
    check_transition,
)
from db.schema import OPEN_STATUSES, work_orders

ACTIVE_MARK = "resolved while the fault was still active, confirmed"
"""Added to the note of a resolve that the actor confirmed over an active fault."""


class OrderLifecycle(TeamList):
    """Changes people (and the SLA clock) make to one order, each recorded in its history."""

    def get(self, order_id: int) -> WorkOrder:
        with self.engine.connect() as conn:
            return fetch_order(conn, order_id)

    def transition(
        self,
        order_id: int,
        to: str,
        *,
        actor: str,
        note: str | None = None,
        hold_until_ms: int | None = None,
        resolution_code: str | None = None,
        confirm_active: bool = False,
    ) -> WorkOrder:
        """Move an order along its lifecycle, recorded in its history; refuses what
        `alerts.workorders.TRANSITIONS` does not allow.

        Holding needs a reason (`note`) and `hold_until_ms`; cancelling and reopening a
        reason; resolving a `resolution_code`, and `confirm_active` while the fault is still
        on. Acknowledging or starting an unassigned order gives it to the actor.
        """
        require_actor(actor)
        now = self.clock_ms()
        with self._write() as conn:
            order = fetch_order(conn, order_id, lock=True)
            target = check_transition(order_id, order.status, to)
            text = (note or "").strip() or None
            code = _check_inputs(target, text, hold_until_ms, resolution_code, now)
            if target is WorkOrderStatus.RESOLVED and fault_active(order):
                if not confirm_active:
                    raise FaultStillActiveError(order_id)
                text = f"{text} ({ACTIVE_MARK})" if text else ACTIVE_MARK
            values = _transition_values(order, target, now, text, hold_until_ms, code)
            if target in AUTO_ASSIGN and order.assignee is None:
                values["assignee"] = actor
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
            add_event(
                conn, order_id, now, actor, EventKind.TRANSITION,
                from_status=order.status, to_status=target, note=text,
                code=code, due_ms=hold_until_ms,
            )  # fmt: skip
            if "assignee" in values:
                add_event(
                    conn, order_id, now, actor, EventKind.ASSIGNED,
                    note=f"assignee: {actor}, team: {order.team or '-'}; took it on",
                )  # fmt: skip
            return fetch_order(conn, order_id)

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
        require_actor(actor)
        now = self.clock_ms()
        with self._write() as conn:
            order = fetch_order(conn, order_id, lock=True)
            if order.status in (WorkOrderStatus.CLOSED, WorkOrderStatus.CANCELLED):
                raise WorkOrderError(f"work order {order_id} is {order.status}: final")
            if team is not None:
                self._check_team(conn, team)
            values: dict[str, Any] = {"assignee": assignee, "updated_ms": now}
            if team is not None:
                values["team"] = team
            conn.execute(update(work_orders).where(work_orders.c.id == order_id).values(**values))
            what = f"assignee: {assignee or '-'}, team: {values.get('team', order.team) or '-'}"
            add_event(
                conn, order_id, now, actor, EventKind.ASSIGNED,
                note=f"{what}; {note}" if note else what,
            )  # fmt: skip
            return fetch_order(conn, order_id)

    def comment(self, order_id: int, *, actor: str, text: str) -> WorkOrderEvent:
        require_actor(actor)
        if not text.strip():
            raise ValueError("a comment needs text")
        now = self.clock_ms()
        with self._write() as conn:
            fetch_order(conn, order_id)
            event_id = add_event(conn, order_id, now, actor, EventKind.COMMENT, note=text)
            conn.execute(
                update(work_orders).where(work_orders.c.id == order_id).values(updated_ms=now)
            )
            return order_events(conn, order_id, event_id=event_id)[0]

    def history(self, order_id: int) -> list[WorkOrderEvent]:
        """The audit history, oldest first."""
        with self.engine.connect() as conn:
            fetch_order(conn, order_id)
            return order_events(conn, order_id)

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
                    add_event(
                        conn, order_id, now, SYSTEM_ACTOR, EventKind.ESCALATED,
                        note=f"level {level}: {what} time passed",
                    )  # fmt: skip
                    escalated.append(order_id)
            return [fetch_order(conn, order_id) for order_id in sorted(escalated)]


def _check_inputs(
    target: WorkOrderStatus,
    note: str | None,
    hold_until_ms: int | None,
    resolution_code: str | None,
    now_ms: int,
) -> str | None:
    """What each step needs (a reason, a date, a code) and nothing it does not take; the
    resolution code if one is due."""
    if target in NEEDS_REASON and note is None:
        raise WorkOrderInputError(f"going to {target} needs a reason (note)", field="note")
    if target is WorkOrderStatus.ON_HOLD:
        if hold_until_ms is None:
            raise WorkOrderInputError(
                "a hold needs the date work is expected to go on (hold_until_ms)",
                field="hold_until_ms",
            )
        if not now_ms < hold_until_ms <= now_ms + MAX_HOLD_MS:
            raise WorkOrderInputError(
                "hold_until_ms must be in the future, at most 366 days ahead",
                field="hold_until_ms",
            )
    elif hold_until_ms is not None:
        raise WorkOrderInputError("hold_until_ms is only for on_hold", field="hold_until_ms")
    if target is not WorkOrderStatus.RESOLVED:
        if resolution_code is not None:
            raise WorkOrderInputError(
                "resolution_code is only for resolved", field="resolution_code"
            )
        return None
    known = [str(c) for c in ResolutionCode]
    if resolution_code not in known:
        raise WorkOrderInputError(
            f"resolving needs a resolution_code, one of {', '.join(known)}",
            field="resolution_code",
        )
    return resolution_code


def _transition_values(
    order: WorkOrder,
    target: WorkOrderStatus,
    now: int,
    note: str | None,
    hold_until_ms: int | None,
    code: str | None,
) -> dict[str, Any]:
    values: dict[str, Any] = {"status": str(target), "updated_ms": now}
    if target in RESPONDED_STATUSES and order.responded_ms is None:
        values["responded_ms"] = now
    if target is WorkOrderStatus.ON_HOLD:
        values.update(hold_reason=note, hold_until_ms=hold_until_ms)
    elif order.status is WorkOrderStatus.ON_HOLD:
        values.update(hold_reason=None, hold_until_ms=None)
    if target is WorkOrderStatus.RESOLVED:
        values.update(resolved_ms=now, resolution_code=code)
    elif target in (WorkOrderStatus.CLOSED, WorkOrderStatus.CANCELLED):
        values["closed_ms"] = now
    elif target is WorkOrderStatus.OPEN:
        values.update(resolved_ms=None, resolution_code=None)
    return values
