"""An order through its lifecycle: transitions, assignment, comments, history, SLA escalation."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from alerts.orderstore.base import StoreCore, add_event, fetch_order, order_events, require_actor
from alerts.orderstore.models import WorkOrder, WorkOrderEvent
from alerts.workorders import (
    RESPONDED_STATUSES,
    SYSTEM_ACTOR,
    EventKind,
    WorkOrderConflictError,
    WorkOrderError,
    WorkOrderStatus,
    check_transition,
)
from db.schema import OPEN_STATUSES, work_orders


class OrderLifecycle(StoreCore):
    """Changes people (and the SLA clock) make to one order, each recorded in its history."""

    def get(self, order_id: int) -> WorkOrder:
        with self.engine.connect() as conn:
            return fetch_order(conn, order_id)

    def transition(
        self, order_id: int, to: str, *, actor: str, note: str | None = None
    ) -> WorkOrder:
        """Move an order along its lifecycle, recorded in its history; refuses what
        `alerts.workorders.TRANSITIONS` does not allow."""
        require_actor(actor)
        now = self.clock_ms()
        with self._write() as conn:
            order = fetch_order(conn, order_id, lock=True)
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
            add_event(
                conn, order_id, now, actor, EventKind.TRANSITION,
                from_status=order.status, to_status=target, note=note,
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
