"""The site, its units and devices: what exists, each device's status and history."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from alerts.status import STATUS_RANK, Status, device_status
from alerts.workorders import Source
from api.auth.users import Role
from api.deps import (
    Context,
    CurrentUser,
    DeviceDep,
    UnitDep,
    site_or_404,
    unprocessable,
    visible_or_404,
)
from api.http.openapi import errors
from api.schemas import (
    ActiveFaultOut,
    BuildingRef,
    DeviceDetailOut,
    DevicePage,
    DeviceStatusDetailOut,
    FieldOut,
    HistoryOut,
    Id,
    Kind,
    ReportCodeOut,
    SiteOut,
    SiteSummaryOut,
    UnitOut,
)
from api.views import building_statuses, device_out, read_series, unit_out, work_order_out
from facility.catalog import KINDS
from ingest.history import MAX_BUCKETS

router = APIRouter(prefix="/api/v1", tags=["site"])
MAX_MS = 2**53
MAX_HISTORY_FIELDS = 8


@router.get("/sites", response_model=list[SiteSummaryOut])
def list_sites(context: Context, principal: CurrentUser) -> list[SiteSummaryOut]:
    """The sites the user sees (one of a single site file; a portfolio's estates): each with
    its visible buildings' count, worst status and open orders; worst first, then by name."""
    site, site_map = context.site, context.site_map
    visible = [b for b in site.buildings if principal.can_see(b.id)]
    statuses = building_statuses(context, visible)
    whole = [s.id for s in site.sites if principal.can_see(s.id)]
    site_wide = Counter(o.building_id for o in context.store.open_work_orders(whole))
    worst: dict[str, Status] = {}
    counts: Counter[str] = Counter()
    orders: Counter[str] = Counter()
    for bs, open_orders in statuses:
        sid = site_map.get(bs.building.id, site.id)
        counts[sid] += 1
        orders[sid] += len(open_orders)
        if sid not in worst or STATUS_RANK[bs.status] > STATUS_RANK[worst[sid]]:
            worst[sid] = bs.status
    out = [
        SiteSummaryOut(
            id=s.id,
            name=s.name,
            timezone=s.timezone,
            buildings=counts[s.id],
            status=str(worst[s.id]),  # type: ignore[arg-type]
            open_work_orders=orders[s.id] + site_wide[s.id],
        )
        for s in site.sites
        if counts[s.id]
    ]
    return sorted(out, key=lambda s: (-STATUS_RANK[Status(s.status)], s.name, s.id))


@router.get("/sites/{site_id}", response_model=SiteOut)
def get_site(
    site_id: Annotated[str, Path(max_length=64)], context: Context, principal: CurrentUser
) -> SiteOut:
    part = site_or_404(context, principal, site_id)
    buildings = [
        BuildingRef(id=b.id, name=b.name) for b in part.buildings if principal.can_see(b.id)
    ]
    return SiteOut(id=part.id, name=part.name, timezone=part.timezone, buildings=buildings)


@router.get("/units/{unit_id}", response_model=UnitOut)
async def get_unit(unit: UnitDep) -> UnitOut:
    return unit_out(unit)


@router.get(
    "/units/{unit_id}/report-code",
    response_model=ReportCodeOut,
    tags=["reports"],
    responses=errors(403),
)
def get_report_code(unit: UnitDep, context: Context, principal: CurrentUser) -> ReportCodeOut:
    principal.require_role(Role.ADMIN, Role.DISPATCHER, Role.STEWARD)
    return ReportCodeOut(
        unit_id=unit.id,
        building_id=unit.building_id,
        code=context.report_codes.code_for(unit.id),
        report_path="/api/v1/reports",
    )


@router.get("/devices", response_model=DevicePage, responses=errors(404))
def list_devices(
    context: Context,
    principal: CurrentUser,
    building: Annotated[Id | None, Query()] = None,
    unit: Annotated[Id | None, Query()] = None,
    kind: Annotated[Kind | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> DevicePage:
    site = context.site
    if building is not None:
        visible_or_404(
            principal, building if building in site.building_by_id else None,
            f"no building {building!r}",
        )  # fmt: skip
    if unit is not None:
        found = context.units.get(unit)
        visible_or_404(principal, found.building_id if found else None, f"no unit {unit!r}")
    devices = [
        d
        for d in site.devices
        if principal.can_see(d.building_id)
        and (building is None or d.building_id == building)
        and (unit is None or d.unit_id == unit)
        and (kind is None or d.kind == kind)
    ]
    return DevicePage(
        items=[device_out(d) for d in devices[offset : offset + limit]],
        total=len(devices),
        limit=limit,
        offset=offset,
    )


@router.get("/devices/{device_id}", response_model=DeviceDetailOut)
async def get_device(device: DeviceDep) -> DeviceDetailOut:
    spec = KINDS[device.kind]
    return DeviceDetailOut(
        **device_out(device).model_dump(),
        heartbeat_s=spec.heartbeat_s,
        fields=[
            FieldOut(
                name=f.name,
                type=str(f.type),
                unit=f.unit,
                min=f.min,
                max=f.max,
                labels=list(f.labels),
            )
            for f in spec.fields
        ],
    )


@router.get("/devices/{device_id}/status", response_model=DeviceStatusDetailOut)
def get_device_status(device: DeviceDep, context: Context) -> DeviceStatusDetailOut:
    state = context.store.device_states([device.id]).get(device.id)
    orders = [
        o for o in context.store.open_work_orders([device.building_id]) if o.device_id == device.id
    ]
    now = context.clock_ms()
    ds = device_status(device, state, orders, now)
    heartbeat_s = KINDS[device.kind].heartbeat_s
    return DeviceStatusDetailOut(
        **device_out(device).model_dump(),
        status=str(ds.status),  # type: ignore[arg-type]
        online=None if state is None else now - state.last_seen_ms <= heartbeat_s * 1000,
        last_seen_ms=ds.last_seen_ms,
        heartbeat_s=heartbeat_s,
        values=dict(ds.values),
        active_faults=[
            ActiveFaultOut(
                work_order_id=o.id,
                rule_id=o.rule_id,
                severity=o.severity,
                title=o.title,
                fault_started_ms=o.fault_started_ms,
            )
            for o in orders
            if o.source == Source.FAULT and o.cleared_ms is None
        ],
        open_work_orders=[work_order_out(o, now, context.site) for o in orders],
    )


@router.get("/devices/{device_id}/history", response_model=HistoryOut, responses=errors(503))
def get_device_history(
    device: DeviceDep,
    context: Context,
    field: Annotated[list[Id], Query(description="a field of the device's kind; repeatable")],
    start_ms: Annotated[int, Query(ge=0, le=MAX_MS)],
    end_ms: Annotated[int, Query(ge=0, le=MAX_MS)],
    interval_s: Annotated[
        int | None, Query(ge=1, le=86_400 * 31, description="buckets of this size; omit: raw")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="raw points per field")] = 1000,
) -> HistoryOut:
    spec = KINDS[device.kind]
    if not 1 <= len(field) <= MAX_HISTORY_FIELDS:
        raise unprocessable(("query", "field"), f"ask for 1 to {MAX_HISTORY_FIELDS} fields")
    unknown = [f for f in field if f not in spec.index]
    if unknown:
        raise unprocessable(
            ("query", "field"),
            f"{device.kind} has no field(s) {', '.join(map(repr, unknown))}; "
            f"it has {', '.join(spec.field_names)}",
        )
    if end_ms <= start_ms:
        raise unprocessable(("query", "end_ms"), "end_ms must be after start_ms")
    max_range_s = context.settings.history_max_range_s
    if end_ms - start_ms > max_range_s * 1000:
        raise unprocessable(
            ("query", "end_ms"), f"the range may be at most {max_range_s // 86_400} days"
        )
    if interval_s is not None:
        buckets = (end_ms - start_ms) // (interval_s * 1000) + 1
        if buckets > MAX_BUCKETS:
            raise unprocessable(
                ("query", "interval_s"),
                f"{buckets} buckets asked for; at most {MAX_BUCKETS}: widen the interval",
            )
    if context.history is None:
        raise HTTPException(status_code=503, detail="no history store is configured")
    series = read_series(
        context.history, device, list(dict.fromkeys(field)), start_ms, end_ms,
        interval_s=interval_s, limit=limit,
    )  # fmt: skip
    return HistoryOut(
        device_id=device.id,
        kind=device.kind,
        start_ms=start_ms,
        end_ms=end_ms,
        interval_s=interval_s,
        series=series,
    )
