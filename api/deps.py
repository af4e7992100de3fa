"""Dependencies shared by the routes: the application context and the building lookup."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from alerts.store import WorkOrderStore
from facility.site import Building, Site


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class AppContext:
    site: Site
    store: WorkOrderStore
    clock_ms: Callable[[], int] = now_ms


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
