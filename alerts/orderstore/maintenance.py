"""A device's or a building's maintenance history: its orders with who did what, how many
faults it had, and how long responding and repairing took."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select

from alerts.orderstore.base import StoreCore
from alerts.orderstore.filters import WorkOrderFilter
from alerts.orderstore.models import WorkOrder, WorkOrderEvent, event_from_row, work_order_from_row
from db.schema import fault_episodes, work_order_events, work_orders


@dataclass(frozen=True, slots=True)
class MaintenanceRecord:
    order: WorkOrder
    actions: list[WorkOrderEvent]
    """Its whole audit history, oldest first."""


@dataclass(frozen=True, slots=True)
class MaintenanceHistory:
    records: list[MaintenanceRecord]
    """One page, newest first."""
    total: int
    """Orders in the range, on every page."""
    faults: int
    """Fault episodes that began on the devices in the range (flaps and recurrences too)."""
    mean_time_to_respond_s: float | None
    """Fault start to first response, over the range's orders that had one."""
    mean_time_to_repair_s: float | None
    """Fault start to resolution, over the range's orders that were resolved."""


def response_times(order: WorkOrder) -> tuple[float | None, float | None]:
    """(time to respond, time to repair) of one order in seconds, from its fault's start."""
    start = order.fault_started_ms if order.fault_started_ms is not None else order.created_ms
    respond = None if order.responded_ms is None else (order.responded_ms - start) / 1000
    repair = None if order.resolved_ms is None else (order.resolved_ms - start) / 1000
    return respond, repair


class MaintenanceLog(StoreCore):
    def maintenance_history(
        self,
        where: WorkOrderFilter,
        device_ids: Sequence[str],
        *,
        limit: int,
        offset: int,
    ) -> MaintenanceHistory:
        """`where` picks the orders (a device or building and a created range); the faults
        are counted on `device_ids` over the same range."""
        c = work_orders.c
        start = func.coalesce(c.fault_started_ms, c.created_ms)
        clauses = where.clauses()
        page = select(work_orders).where(*clauses).order_by(c.id.desc()).limit(limit)
        figures = select(
            func.count(),
            func.avg(c.responded_ms - start),
            func.avg(c.resolved_ms - start),
        ).where(*clauses)
        faults = select(func.count()).where(fault_episodes.c.device_id.in_(list(device_ids)))
        if where.created_from_ms is not None:
            faults = faults.where(fault_episodes.c.started_ms >= where.created_from_ms)
        if where.created_to_ms is not None:
            faults = faults.where(fault_episodes.c.started_ms < where.created_to_ms)
        with self.engine.connect() as conn:
            orders = [work_order_from_row(r) for r in conn.execute(page.offset(offset))]
            total, respond_ms, repair_ms = conn.execute(figures).one()
            fault_count = int(conn.execute(faults).scalar_one()) if device_ids else 0
            actions: dict[int, list[WorkOrderEvent]] = {o.id: [] for o in orders}
            if orders:
                events = (
                    select(work_order_events)
                    .where(work_order_events.c.work_order_id.in_(list(actions)))
                    .order_by(work_order_events.c.id)
                )
                for row in conn.execute(events):
                    event = event_from_row(row)
                    actions[event.work_order_id].append(event)
        return MaintenanceHistory(
            records=[MaintenanceRecord(o, actions[o.id]) for o in orders],
            total=int(total),
            faults=fault_count,
            mean_time_to_respond_s=None if respond_ms is None else float(respond_ms) / 1000,
            mean_time_to_repair_s=None if repair_ms is None else float(repair_ms) / 1000,
        )
