"""Residents' and owners' reports, filed as work orders of source `report`."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from alerts.interface import Severity
from alerts.orderstore.base import StoreCore, add_event, fetch_order, require_actor
from alerts.orderstore.models import WorkOrder, WorkOrderEvent, event_from_row, work_order_from_row
from alerts.orderstore.photos import Photo, add_photo
from alerts.workorders import EventKind, Source, WorkOrderStatus
from db.schema import OPEN_STATUSES, work_order_events, work_orders


@dataclass(frozen=True, slots=True)
class ReportRecord:
    """A resident's report as a steward reads it: the order, what the resident wrote (the
    `created` event's note) and what staff added since (comments)."""

    order: WorkOrder
    text: str
    notes: tuple[WorkOrderEvent, ...]


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
        photo: Photo | None = None,
    ) -> WorkOrder:
        """A work order from an owner's or resident's report (source `report`), with its
        photo in the same transaction."""
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
            if photo is not None:
                add_photo(conn, order_id, photo, now)
            return fetch_order(conn, order_id)

    def building_reports(
        self, building_id: str, *, open_only: bool, limit: int, offset: int
    ) -> tuple[list[ReportRecord], int]:
        """The building's residents' reports, newest first (open ones only, or every state),
        and how many there are in all."""
        where = [work_orders.c.building_id == building_id, work_orders.c.source == Source.REPORT]
        if open_only:
            where.append(work_orders.c.status.in_(OPEN_STATUSES))
        page = select(work_orders).where(*where).order_by(work_orders.c.id.desc())
        with self.engine.connect() as conn:
            total = conn.execute(
                select(func.count()).select_from(work_orders).where(*where)
            ).scalar_one()
            orders = [
                work_order_from_row(r) for r in conn.execute(page.limit(limit).offset(offset))
            ]
            events: dict[int, list[WorkOrderEvent]] = {}
            if orders:
                query = (
                    select(work_order_events)
                    .where(
                        work_order_events.c.work_order_id.in_([o.id for o in orders]),
                        work_order_events.c.event.in_([EventKind.CREATED, EventKind.COMMENT]),
                    )
                    .order_by(work_order_events.c.id)
                )
                for row in conn.execute(query):
                    event = event_from_row(row)
                    events.setdefault(event.work_order_id, []).append(event)
        records = []
        for order in orders:
            mine = events.get(order.id, [])
            created = next((e for e in mine if e.event is EventKind.CREATED), None)
            text = created.note if created is not None and created.note else order.title
            notes = tuple(e for e in mine if e.event is EventKind.COMMENT)
            records.append(ReportRecord(order, text, notes))
        return records, int(total)
