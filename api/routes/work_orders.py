"""Work orders: the list maintenance staff work from, one order's detail, and its changes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import StringConstraints

from alerts import interface, workorders
from alerts.store import WorkOrder, WorkOrderFilter
from api.auth.scope import user_sees
from api.auth.users import Role
from api.deps import (
    AppContext,
    Context,
    CurrentUser,
    WorkOrderDep,
    site_or_404,
    unprocessable,
    visible_or_404,
)
from api.http.openapi import errors
from api.schemas import (
    LINE,
    MAX_MS,
    Assignee,
    AssignIn,
    CommentIn,
    EventOut,
    Id,
    Kind,
    Name,
    Severity,
    TransitionIn,
    WorkOrderDetailOut,
    WorkOrderOut,
    WorkOrderPage,
    WorkOrderStatus,
)
from api.views import events_out, trend, work_order_out

router = APIRouter(prefix="/api/v1/work-orders", tags=["work orders"])
Search = Annotated[str, StringConstraints(pattern=LINE, strip_whitespace=True, min_length=1,
                                           max_length=200)]  # fmt: skip


@router.get("", response_model=WorkOrderPage, responses=errors(404))
async def list_work_orders(
    context: Context,
    principal: CurrentUser,
    status: Annotated[list[WorkOrderStatus] | None, Query()] = None,
    severity: Annotated[list[Severity] | None, Query()] = None,
    building: Annotated[list[Id] | None, Query()] = None,
    site_id: Annotated[
        Id | None, Query(alias="site", description="only this site's orders (a portfolio)")
    ] = None,
    kind: Annotated[list[Kind] | None, Query()] = None,
    device: Annotated[Id | None, Query()] = None,
    assignee: Annotated[Assignee | None, Query()] = None,
    team: Annotated[Name | None, Query()] = None,
    overdue: Annotated[bool | None, Query()] = None,
    q: Annotated[
        Search | None,
        Query(description="text in the title, device, assignee, team or a note of the history"),
    ] = None,
    start_ms: Annotated[
        int | None, Query(ge=0, le=MAX_MS, description="created at or after")
    ] = None,
    end_ms: Annotated[int | None, Query(ge=0, le=MAX_MS, description="created before")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> WorkOrderPage:
    site = context.site
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise unprocessable(("query", "end_ms"), "end_ms must be after start_ms")
    for b in building or ():
        visible_or_404(principal, b if b in site.building_by_id else None, f"no building {b!r}")
    if device is not None:
        found = site.by_id.get(device)
        visible_or_404(principal, found.building_id if found else None, f"no device {device!r}")
    asked = building
    if site_id is not None:
        part = site_or_404(context, principal, site_id)
        ids = {part.id, *(b.id for b in part.buildings)}  # its buildings' and its own orders
        asked = sorted(ids) if asked is None else [b for b in asked if b in ids]
    now = context.clock_ms()
    where = WorkOrderFilter(
        statuses=None if status is None else [workorders.WorkOrderStatus(s) for s in status],
        severities=None if severity is None else [interface.Severity(s) for s in severity],
        building_ids=principal.building_filter(asked),
        kinds=kind,
        device_id=device,
        assignee=assignee,
        team=team,
        overdue_at_ms=now if overdue is True else None,
        not_overdue_at_ms=now if overdue is False else None,
        created_from_ms=start_ms,
        created_to_ms=end_ms,
        text=q,
    )
    orders, total = await context.read(_page, context, where, limit, offset)
    return WorkOrderPage(
        items=[work_order_out(o, now, site) for o in orders],
        total=total,
        limit=limit,
        offset=offset,
    )


def _page(
    context: AppContext, where: WorkOrderFilter, limit: int, offset: int
) -> tuple[list[WorkOrder], int]:
    store = context.store
    return store.list_work_orders(where, limit=limit, offset=offset), store.count_work_orders(where)


@router.get("/{work_order_id}", response_model=WorkOrderDetailOut)
def get_work_order(order: WorkOrderDep, context: Context) -> WorkOrderDetailOut:
    history = events_out(context.store.history(order.id))
    return WorkOrderDetailOut(
        **work_order_out(order, context.clock_ms(), context.site).model_dump(),
        history=history,
        comments=[e for e in history if e.event == "comment"],
        trend=trend(context, order),
    )


@router.post(
    "/{work_order_id}/transitions", response_model=WorkOrderOut, responses=errors(403, 409, 422)
)
def transition(
    order: WorkOrderDep, body: TransitionIn, principal: CurrentUser, context: Context
) -> WorkOrderOut:
    principal.check_transition(order, body.to)
    changed = context.store.transition(
        order.id, body.to, actor=principal.username, note=body.note,
        hold_until_ms=body.hold_until_ms, resolution_code=body.resolution_code,
        confirm_active=body.confirm_active,
    )  # fmt: skip
    return work_order_out(changed, context.clock_ms(), context.site)


@router.post(
    "/{work_order_id}/assign", response_model=WorkOrderOut, responses=errors(403, 409, 422)
)
def assign(
    order: WorkOrderDep, body: AssignIn, principal: CurrentUser, context: Context
) -> WorkOrderOut:
    principal.check_assign(order, body.assignee, body.team)
    if body.assignee is not None:
        user = context.users.by_username(body.assignee)
        if user is None or user.disabled or user.role is Role.STEWARD:
            raise unprocessable(
                ("body", "assignee"), f"{body.assignee!r} is not a user who can take work orders"
            )
        if not user_sees(user, context.site_map, order.building_id):
            raise unprocessable(
                ("body", "assignee"),
                f"{body.assignee!r} is limited to site(s) {', '.join(sorted(user.sites))}: "
                "they would not see this work order",
            )
    changed = context.store.assign(
        order.id, actor=principal.username, assignee=body.assignee, team=body.team, note=body.note
    )
    return work_order_out(changed, context.clock_ms(), context.site)


@router.post(
    "/{work_order_id}/comments",
    response_model=EventOut,
    status_code=status.HTTP_201_CREATED,
    responses=errors(403),
)
def comment(
    order: WorkOrderDep, body: CommentIn, principal: CurrentUser, context: Context
) -> EventOut:
    principal.check_comment(order)
    event = context.store.comment(order.id, actor=principal.username, text=body.text)
    return EventOut.model_validate(event)
