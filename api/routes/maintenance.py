"""Maintenance history of a device or a building: its orders (finished ones too) with who did
what, its faults, and how long responding and repairing took."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from alerts.store import WorkOrderFilter
from api.deps import AppContext, BuildingDep, Context, DeviceDep, unprocessable
from api.schemas import MAX_MS, MaintenanceOut
from api.views import maintenance_out

router = APIRouter(prefix="/api/v1", tags=["maintenance"])
DEFAULT_PERIOD_MS = 365 * 86_400_000
Start = Annotated[int | None, Query(ge=0, le=MAX_MS, description="default: a year before end")]
End = Annotated[int | None, Query(ge=0, le=MAX_MS, description="default: now")]
Limit = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


def _range(
    context: AppContext, start_ms: int | None, end_ms: int | None
) -> tuple[int, int, int | None]:
    """(start, end, the end to filter by): without `end_ms` the range is open-ended, so an
    order filed a moment ago by a process whose clock runs ahead is not left out."""
    end = end_ms if end_ms is not None else context.clock_ms()
    start = start_ms if start_ms is not None else end - DEFAULT_PERIOD_MS
    if end <= start:
        raise unprocessable(("query", "end_ms"), "end_ms must be after start_ms")
    if end - start > context.settings.service_max_range_s * 1000:
        days = context.settings.service_max_range_s // 86_400
        raise unprocessable(("query", "end_ms"), f"the period may be at most {days} days")
    return start, end, end_ms


@router.get("/devices/{device_id}/maintenance", response_model=MaintenanceOut)
def device_maintenance(
    device: DeviceDep,
    context: Context,
    start_ms: Start = None,
    end_ms: End = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> MaintenanceOut:
    start, end, until = _range(context, start_ms, end_ms)
    where = WorkOrderFilter(device_id=device.id, created_from_ms=start, created_to_ms=until)
    history = context.store.maintenance_history(where, [device.id], limit=limit, offset=offset)
    return maintenance_out(history, start, end, limit, offset, context.clock_ms())


@router.get("/buildings/{building_id}/maintenance", response_model=MaintenanceOut)
def building_maintenance(
    building: BuildingDep,
    context: Context,
    start_ms: Start = None,
    end_ms: End = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> MaintenanceOut:
    start, end, until = _range(context, start_ms, end_ms)
    where = WorkOrderFilter(building_ids=[building.id], created_from_ms=start, created_to_ms=until)
    devices = [d.id for d in building.devices]
    history = context.store.maintenance_history(where, devices, limit=limit, offset=offset)
    return maintenance_out(history, start, end, limit, offset, context.clock_ms())
