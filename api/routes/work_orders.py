"""Work orders: the list maintenance staff work from."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from api.deps import Context
from api.schemas import WorkOrderOut, WorkOrderPage, WorkOrderStatus

router = APIRouter(prefix="/api/v1/work-orders", tags=["work orders"])


@router.get("", response_model=WorkOrderPage)
def list_work_orders(
    context: Context,
    status: Annotated[list[WorkOrderStatus] | None, Query()] = None,
    building: Annotated[str | None, Query(max_length=64)] = None,
    device: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> WorkOrderPage:
    if building is not None and building not in context.site.building_by_id:
        raise HTTPException(status_code=404, detail=f"no building {building!r}")
    orders = context.store.list_work_orders(
        statuses=status,
        building_ids=[building] if building is not None else None,
        device_id=device,
        limit=limit,
        offset=offset,
    )
    return WorkOrderPage(
        items=[WorkOrderOut.model_validate(o) for o in orders], limit=limit, offset=offset
    )
