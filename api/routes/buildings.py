"""Buildings and their equipment status."""

from __future__ import annotations

from fastapi import APIRouter

from alerts.status import BuildingStatus, building_status
from api.deps import BuildingDep, Context
from api.schemas import BuildingStatusOut, BuildingSummaryOut, DeviceStatusOut

router = APIRouter(prefix="/api/v1/buildings", tags=["buildings"])


def _summary(bs: BuildingStatus) -> dict[str, object]:
    return {
        "id": bs.building.id,
        "name": bs.building.name,
        "status": str(bs.status),
        "counts": bs.counts,
        "open_work_orders": sum(len(d.open_work_orders) for d in bs.devices),
    }


@router.get("", response_model=list[BuildingSummaryOut])
def list_buildings(context: Context) -> list[BuildingSummaryOut]:
    states = context.store.device_states()
    orders = context.store.open_work_orders()
    now = context.clock_ms()
    return [
        BuildingSummaryOut.model_validate(_summary(building_status(b, states, orders, now)))
        for b in context.site.buildings
    ]


@router.get("/{building_id}/status", response_model=BuildingStatusOut)
def get_building_status(building: BuildingDep, context: Context) -> BuildingStatusOut:
    states = context.store.device_states(d.id for d in building.devices)
    orders = context.store.open_work_orders([building.id])
    bs = building_status(building, states, orders, context.clock_ms())
    devices = [
        DeviceStatusOut(
            id=d.device.id,
            name=d.device.name,
            kind=d.device.kind,
            unit_id=d.device.unit_id,
            status=str(d.status),  # type: ignore[arg-type]
            last_seen_ms=d.last_seen_ms,
            values=dict(d.values),
            open_work_orders=[o.id for o in d.open_work_orders],
        )
        for d in bs.devices
    ]
    return BuildingStatusOut.model_validate({**_summary(bs), "devices": devices})
