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

The store is split by concern in `alerts.orderstore` (filing, lifecycle, teams, queries,
reports, device state, maintenance history, plans' scheduled orders); `WorkOrderStore` here
puts the parts together, and this module is where its callers import it and its values from.
"""

from __future__ import annotations

from alerts.orderstore.devices import DeviceStates
from alerts.orderstore.filing import FaultFiling
from alerts.orderstore.filters import WorkOrderFilter, fault_active, is_overdue, overdue_clause
from alerts.orderstore.lifecycle import OrderLifecycle
from alerts.orderstore.maintenance import MaintenanceHistory, MaintenanceLog, response_times
from alerts.orderstore.models import DeviceState, WorkOrder, WorkOrderEvent, work_order_from_row
from alerts.orderstore.photos import Photo, ReportPhotos, StoredPhoto
from alerts.orderstore.queries import OrderQueries
from alerts.orderstore.reports import ReportRecord, ResidentReports
from alerts.orderstore.scheduled import ScheduledOrders

__all__ = [
    "DeviceState",
    "MaintenanceHistory",
    "Photo",
    "ReportRecord",
    "StoredPhoto",
    "WorkOrder",
    "WorkOrderEvent",
    "WorkOrderFilter",
    "WorkOrderStore",
    "fault_active",
    "is_overdue",
    "overdue_clause",
    "response_times",
    "work_order_from_row",
]


class WorkOrderStore(
    FaultFiling,
    OrderLifecycle,
    OrderQueries,
    ResidentReports,
    ReportPhotos,
    DeviceStates,
    MaintenanceLog,
    ScheduledOrders,
):
    """Work orders (filing, lifecycle, SLA, audit, teams, maintenance history, plans'
    scheduled orders) and device state over one SQL engine."""
