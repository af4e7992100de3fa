"""Residents' and owners' reports, filed as work orders of source `report`."""

from __future__ import annotations

from alerts.interface import Severity
from alerts.orderstore.base import StoreCore, add_event, fetch_order, require_actor
from alerts.orderstore.models import WorkOrder
from alerts.workorders import EventKind, Source, WorkOrderStatus
from db.schema import work_orders


class ResidentReports(StoreCore):
    """Work orders that people, not rules, raise."""

    def create_report(
        self,
        *,
        site_id: str,
        building_id: str,
        unit_id: str | None,
        device_id: str | None,
        kind: str | None,
        description: str,
        contact: str | None = None,
        actor: str = "resident",
        severity: Severity = Severity.MINOR,
    ) -> WorkOrder:
        """A work order from an owner's or resident's report (source `report`)."""
        require_actor(actor)
        text = description.strip()
        if not text:
            raise ValueError("a report needs a description")
        now = self.clock_ms()
        priority, respond_by, resolve_by = self.policy.sla(severity, now)
        first_line = " ".join(text.split())
        excerpt = first_line if len(first_line) <= 80 else first_line[:79] + "…"
        title = "Resident report: " + excerpt
        note = text if not contact else f"{text}\n\ncontact: {contact.strip()}"
        with self._write() as conn:
            order_id = conn.execute(
                work_orders.insert()
                .values(
                    site_id=site_id,
                    building_id=building_id,
                    unit_id=unit_id,
                    device_id=device_id,
                    kind=kind,
                    rule_id=None,
                    severity=severity,
                    category="report",
                    title=title,
                    title_zh="住户报修：" + excerpt,
                    status=str(WorkOrderStatus.OPEN),
                    fault_started_ms=now,
                    detected_ms=now,
                    created_ms=now,
                    updated_ms=now,
                    source=str(Source.REPORT),
                    priority=priority,
                    respond_by_ms=respond_by,
                    resolve_by_ms=resolve_by,
                    team=self.policy.team_for(kind, building_id),
                    last_fault_ms=now,
                )
                .returning(work_orders.c.id)
            ).scalar_one()
            add_event(
                conn, order_id, now, actor, EventKind.CREATED,
                to_status=WorkOrderStatus.OPEN, note=note,
            )  # fmt: skip
            return fetch_order(conn, order_id)
