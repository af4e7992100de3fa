"""A work order built in memory, for tests of what is computed from orders (no store)."""

from __future__ import annotations

import dataclasses

from alerts.interface import Severity
from alerts.store import WorkOrder
from alerts.workorders import Source, WorkOrderStatus

T0 = 1_790_000_000_000  # 2026-09-21 22:13:20 in Shanghai
MINUTE = 60_000


def order(id_: int = 1, **changes: object) -> WorkOrder:
    base = WorkOrder(
        id=id_, site_id="s", building_id="b03", unit_id="b03-u1", device_id="b03-u1-el2",
        kind="elevator", rule_id="elevator.entrapment", severity=Severity.CRITICAL,
        category="equipment", title="Passenger trapped: Elevator 2", status=WorkOrderStatus.OPEN,
        fault_started_ms=T0, detected_ms=T0, created_ms=T0, updated_ms=T0, cleared_ms=None,
        source=Source.FAULT, priority=1, respond_by_ms=None, resolve_by_ms=None,
        responded_ms=None, resolved_ms=None, closed_ms=None, team=None, assignee=None,
        escalation_level=0, recurrences=0, last_fault_ms=T0, parent_id=None, hold_reason=None,
        hold_until_ms=None, resolution_code=None,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]
