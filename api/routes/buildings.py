"""Buildings: what is in them, their equipment status, and their service figures."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query

from alerts.service import service_figures
from api.deps import BuildingDep, Context, CurrentUser, site_or_404
from api.http.openapi import errors
from api.period import period
from api.schemas import (
    BuildingOut,
    BuildingStatusOut,
    BuildingSummaryOut,
    Id,
    ServiceFiguresOut,
)
from api.views import building_statuses, device_status_dict, summary, unit_out

router = APIRouter(prefix="/api/v1/buildings", tags=["buildings"])
MAX_MS = 2**53
DEFAULT_PERIOD_MS = 30 * 86_400_000


@router.get("", response_model=list[BuildingSummaryOut], responses=errors(404))
def list_buildings(
    context: Context,
    principal: CurrentUser,
    site_id: Annotated[
        Id | None, Query(alias="site", description="only this site's buildings (a portfolio)")
    ] = None,
) -> list[BuildingSummaryOut]:
    if site_id is not None:
        site_or_404(context, principal, site_id)
    visible = [
        b
        for b in context.site.buildings
        if principal.can_see(b.id) and (site_id is None or context.site_map.get(b.id) == site_id)
    ]
    return [
        BuildingSummaryOut.model_validate(summary(bs, orders, context.site))
        for bs, orders in building_statuses(context, visible)
    ]


@router.get("/{building_id}", response_model=BuildingOut)
async def get_building(building: BuildingDep) -> BuildingOut:
    return BuildingOut(
        id=building.id, name=building.name, units=[unit_out(u) for u in building.units]
    )


@router.get("/{building_id}/status", response_model=BuildingStatusOut)
async def get_building_status(building: BuildingDep, context: Context) -> BuildingStatusOut:
    ((bs, orders),) = await context.read(building_statuses, context, [building])
    devices = [device_status_dict(d) for d in bs.devices]
    return BuildingStatusOut.model_validate(
        {**summary(bs, orders, context.site), "devices": devices}
    )


@router.get("/{building_id}/service", response_model=ServiceFiguresOut)
def get_service_figures(
    building: BuildingDep,
    context: Context,
    start_ms: Annotated[int | None, Query(ge=0, le=MAX_MS)] = None,
    end_ms: Annotated[int | None, Query(ge=0, le=MAX_MS)] = None,
) -> ServiceFiguresOut:
    now = context.clock_ms()
    span = period(context, start_ms, end_ms, default_ms=DEFAULT_PERIOD_MS)
    figures = service_figures(
        building.id,
        context.store.orders_for_period(building.id, span.start_ms, span.end_ms),
        elevators=sum(d.kind == "elevator" for d in building.devices),
        start_ms=span.start_ms,
        end_ms=span.end_ms,
        now_ms=now,
    )
    sla = {**asdict(figures.sla), "compliance": figures.sla.compliance}
    return ServiceFiguresOut.model_validate({**asdict(figures), "sla": sla})
