"""Reading work orders: filtered lists and counts, open orders, periods, and the change feed."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select

from alerts.orderstore.base import StoreCore
from alerts.orderstore.filters import WorkOrderFilter
from alerts.orderstore.models import WorkOrder, WorkOrderEvent, event_from_row, work_order_from_row
from alerts.workorders import Source, WorkOrderStatus
from db.schema import OPEN_EPISODE_WHERE, OPEN_STATUSES, work_order_events, work_orders


class OrderQueries(StoreCore):
    """Read-only queries over work orders and their audit events."""

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
        building whole orders (the live-update monitor reads this every second). Planned
        maintenance is no sign of trouble: its orders are left out."""
        query = select(
            work_orders.c.device_id, work_orders.c.building_id, work_orders.c.severity
        ).where(OPEN_EPISODE_WHERE, work_orders.c.source != str(Source.SCHEDULED))
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
            return [(event_from_row(row), work_order_from_row(row)) for row in conn.execute(query)]


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
