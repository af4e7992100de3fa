"""Dependencies shared by the routes: the application context and the building lookup."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from alerts.store import WorkOrderStore
from facility.clock import Clock, now_ms
from facility.site import Building, Site


@dataclass(frozen=True, slots=True)
class AppContext:
    site: Site
    store: WorkOrderStore
    clock_ms: Clock = now_ms


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


Context = Annotated[AppContext, Depends(get_context)]


def get_building(building_id: str, context: Context) -> Building:
    building = context.site.building_by_id.get(building_id)
    if building is None:
        raise HTTPException(status_code=404, detail=f"no building {building_id!r}")
    return building


BuildingDep = Annotated[Building, Depends(get_building)]
