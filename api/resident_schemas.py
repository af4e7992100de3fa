"""Answers of the residents' side: a building's reports for its steward, report photos, the
links behind the printed QR codes, and the public status page (which says nothing private:
no names, unit ids, order ids or residents' words)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from api.schemas import EventOut, WorkOrderStatus

ReportState = Literal["open", "all"]


class PhotoOut(BaseModel):
    id: int
    media_type: str
    size_bytes: int
    created_ms: int
    url: str
    """Where staff read it (with their login)."""


class ReportItemOut(BaseModel):
    work_order_id: int
    status: WorkOrderStatus
    unit_id: str | None
    unit_name: str | None
    device_id: str | None
    device_name: str | None
    created_ms: int
    updated_ms: int
    text: str
    """What the resident wrote (and the contact they left)."""
    notes: list[EventOut]
    """What staff added since (the order's comments), oldest first."""
    photos: list[PhotoOut]


class ReportPageOut(BaseModel):
    building_id: str
    items: list[ReportItemOut]
    total: int
    limit: int
    offset: int


class UnitLinkOut(BaseModel):
    unit_id: str
    unit_name: str
    code: str
    report_url: str
    qr_svg_path: str


class PublicLinksOut(BaseModel):
    building_id: str
    building_name: str
    status_code: str
    status_url: str
    status_qr_svg_path: str
    units: list[UnitLinkOut]


class OutageOut(BaseModel):
    kind: str
    text: dict[str, str]
    """Language ("en", "zh-CN") -> "Elevator 2 out of service since 10:05, technician on
    the way"."""


class PublicStatusOut(BaseModel):
    building: dict[str, str]
    """The building's name per language."""
    updated_ms: int
    outages: list[OutageOut]
