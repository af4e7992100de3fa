"""Work orders, their audit events and device state as values, and how rows become them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from alerts.interface import Severity
from alerts.workorders import EventKind, Source, WorkOrderStatus
from db.rows import row_reader
from db.schema import work_order_events, work_orders


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
    hold_reason: str | None
    """Why it is on hold (while it is)."""
    hold_until_ms: int | None
    """When work is expected to go on (while it is on hold)."""
    resolution_code: str | None
    """How it was resolved (`alerts.workorders.ResolutionCode`); kept once closed."""
    title_zh: str | None = None
    """The title in 中文 (the rule's `title_zh`); None for orders filed before there was one."""
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
    code: str | None
    """A resolution's code."""
    due_ms: int | None
    """A hold's expected end."""


work_order_from_row: Final = row_reader(
    work_orders,
    WorkOrder,
    convert={"severity": Severity, "status": WorkOrderStatus, "source": Source},
)
"""A work order from a row holding the `work_orders` columns (alone or in a join)."""
event_from_row: Final = row_reader(
    work_order_events,
    WorkOrderEvent,
    convert={"event": EventKind, "from_status": WorkOrderStatus, "to_status": WorkOrderStatus},
)


@dataclass(frozen=True, slots=True)
class DeviceColumns:
    """A kind's device ids, buildings and sites by kind_index, for building rows in bulk."""

    ids: npt.NDArray[np.object_]
    buildings: npt.NDArray[np.object_]
    sites: npt.NDArray[np.object_]
    """Each device's own site (a portfolio's estate, else the site)."""


@dataclass(frozen=True, slots=True)
class DeviceState:
    device_id: str
    kind: str
    building_id: str
    last_seen_ms: int
    last_seq: int
    values: dict[str, Any]
