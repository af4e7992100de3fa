"""Maintenance history of a device or a building: its orders (finished ones too) with who did
what, its faults, and how long responding and repairing took."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from alerts.store import WorkOrderFilter
from api.deps import BuildingDep, Context, DeviceDep
from api.period import period
from api.schemas import MAX_MS, MaintenanceOut
from api.views import maintenance_out

router = APIRouter(prefix="/api/v1", tags=["maintenance"])
DEFAULT_PERIOD_MS = 365 * 86_400_000
Start = Annotated[int | None, Query(ge=0, le=MAX_MS, description="default: a year before end")]
End = Annotated[int | None, Query(ge=0, le=MAX_MS, description="default: now")]
Limit = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


@router.get("/devices/{device_id}/maintenance", response_model=MaintenanceOut)
def device_maintenance(
    device: DeviceDep,
    context: Context,
    start_ms: Start = None,
    end_ms: End = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> MaintenanceOut:
    span = period(context, start_ms, end_ms, default_ms=DEFAULT_PERIOD_MS)
    where = WorkOrderFilter(
        device_id=device.id, created_from_ms=span.start_ms, created_to_ms=span.until_ms
    )
    history = context.store.maintenance_history(where, [device.id], limit=limit, offset=offset)
    return maintenance_out(
        history, span.start_ms, span.end_ms, limit, offset, context.clock_ms(), context.site
    )


@router.get("/buildings/{building_id}/maintenance", response_model=MaintenanceOut)
def building_maintenance(
    building: BuildingDep,
    context: Context,
    start_ms: Start = None,
    end_ms: End = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> MaintenanceOut:
    span = period(context, start_ms, end_ms, default_ms=DEFAULT_PERIOD_MS)
    where = WorkOrderFilter(
        building_ids=[building.id], created_from_ms=span.start_ms, created_to_ms=span.until_ms
    )
    devices = [d.id for d in building.devices]
    history = context.store.maintenance_history(where, devices, limit=limit, offset=offset)
    return maintenance_out(
        history, span.start_ms, span.end_ms, limit, offset, context.clock_ms(), context.site
    )
