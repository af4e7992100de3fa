"""Answers of the compliance logbook (GET /buildings/{id}/compliance): each device's plans,
done / due / overdue, with their evidence."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from api.schemas import Kind

ComplianceStatusName = Literal["done", "due", "overdue"]


class ComplianceEvidenceOut(BaseModel):
    """What shows the plan's work was done: a reading, or a technician's resolved order."""

    done_ms: int
    evidence: Literal["telemetry", "record"]
    field: str | None
    """Telemetry: the field that reported the test passing, and its value."""
    value: float | None
    work_order_id: int | None
    """A technician's record: the scheduled order, who resolved it, and the code."""
    by: str | None
    code: str | None


class CompliancePlanOut(BaseModel):
    id: str
    title: str
    every_s: float
    evidence: Literal["telemetry", "record"]
    field: str | None


class ComplianceRowOut(BaseModel):
    device_id: str
    device_name: str
    unit_id: str
    kind: Kind
    plan: CompliancePlanOut
    status: ComplianceStatusName
    last_done: ComplianceEvidenceOut | None
    next_due_ms: int
    tracked_since_ms: int | None
    open_work_order_id: int | None
    done: list[ComplianceEvidenceOut]
    """Evidence within the range, newest first."""


class ComplianceOut(BaseModel):
    building_id: str
    start_ms: int
    end_ms: int
    """Statuses are as of this time; `done` lists evidence from start_ms to it."""
    lead_s: float
    counts: dict[ComplianceStatusName, int]
    rows: list[ComplianceRowOut]
