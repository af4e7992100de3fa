"""What a work-order query can ask for, and when an order is overdue (in SQL and in Python)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, func, or_

from alerts.interface import Severity
from alerts.orderstore.models import WorkOrder
from alerts.workorders import Source, WorkOrderStatus
from db.schema import OPEN_EPISODE_WHERE, OPEN_STATUSES, work_order_events, work_orders


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
    created_from_ms: int | None = None
    """Only orders created at or after this time."""
    created_to_ms: int | None = None
    """Only orders created before this time."""
    text: str | None = None
    """Only orders whose title, device, assignee or team, or a note of their history
    (comments, reasons), holds this text (case-insensitive)."""

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
        if self.created_from_ms is not None:
            out.append(c.created_ms >= self.created_from_ms)
        if self.created_to_ms is not None:
            out.append(c.created_ms < self.created_to_ms)
        if self.text is not None:
            out.append(text_clause(self.text))
        return out


def text_clause(text: str) -> Any:
    """The text in the order's own words or any note of its history; `%` and `_` are
    matched as themselves."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped.lower()}%"
    c = work_orders.c
    e = work_order_events.c

    def like(column: Any) -> Any:
        return func.lower(column).like(pattern, escape="\\")

    in_notes = exists().where(e.work_order_id == c.id, like(e.note))
    return or_(like(c.title), like(c.device_id), like(c.assignee), like(c.team), in_notes)


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


def fault_active(order: WorkOrder) -> bool:
    """An open fault order whose condition has not cleared: resolving it needs a confirmation."""
    return (
        order.source is Source.FAULT and order.cleared_ms is None and order.status in OPEN_STATUSES
    )
