"""Response and query schemas of the API, in one place."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

StatusName = Literal["ok", "unknown", "warning", "offline", "alarm"]
WorkOrderStatus = Literal[
    "open", "acknowledged", "in_progress", "on_hold", "resolved", "closed", "cancelled"
]
Value = bool | int | float


class DeviceStatusOut(BaseModel):
    id: str
    name: str
    kind: str
    unit_id: str
    status: StatusName
    last_seen_ms: int | None
    values: dict[str, Value]
    open_work_orders: list[int]


class BuildingSummaryOut(BaseModel):
    id: str
    name: str
    status: StatusName
    counts: dict[str, dict[str, int]]
    open_work_orders: int


class BuildingStatusOut(BuildingSummaryOut):
    devices: list[DeviceStatusOut]


class WorkOrderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    site_id: str
    building_id: str
    unit_id: str | None
    device_id: str | None
    kind: str | None
    rule_id: str | None
    severity: str
    category: str
    title: str
    status: str
    fault_started_ms: int | None
    detected_ms: int | None
    created_ms: int
    updated_ms: int
    cleared_ms: int | None


class WorkOrderPage(BaseModel):
    items: list[WorkOrderOut]
    limit: int
    offset: int


class HealthOut(BaseModel):
    status: Literal["ok"]
    site: str
