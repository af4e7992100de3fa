"""Read models: the domain's objects turned into the API's answers, and the few reads that
combine stores (history series, a work order's trend). Handlers call these and stay thin."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from alerts.problems import worst_problems
from alerts.status import BuildingStatus, DeviceStatus
from alerts.status import building_statuses as rollup
from alerts.store import (
    MaintenanceHistory,
    WorkOrder,
    WorkOrderEvent,
    fault_active,
    is_overdue,
    response_times,
)
from alerts.workorders import Source
from api.deps import AppContext
from api.schemas import (
    BucketOut,
    DeviceOut,
    EventOut,
    MaintenanceOrderOut,
    MaintenanceOut,
    ProblemOut,
    SeriesOut,
    TrendOut,
    UnitOut,
    WorkOrderOut,
)
from api.words import problem_words
from facility.catalog import KINDS, FieldType
from facility.portfolio import site_for
from facility.site import Building, Device, Site, Unit
from ingest.errors import StoreUnavailableError
from ingest.history import HistoryStore, SeriesQuery

TREND_BEFORE_MS = 24 * 3600 * 1000
TREND_AFTER_MS = 15 * 60 * 1000
TREND_INTERVAL_S = 300
TREND_MAX_FIELDS = 8


PROBLEMS_PER_BUILDING = 3
"""How many problems a building's tile names (its worst)."""

DERIVED = frozenset(
    {"overdue", "fault_active", "time_to_respond_s", "time_to_repair_s", "site_id", "site_name"}
)
"""Fields of `WorkOrderOut` worked out from the order rather than read off it."""


def work_order_fields(order: WorkOrder, now_ms: int, site: Site | None = None) -> dict[str, Any]:
    """The order's fields; its site (id and name) is the one its building belongs to in
    `site` (a portfolio's estate), else the stored `site_id`."""
    respond_s, repair_s = response_times(order)
    part = None if site is None else site_for(site, order.building_id)
    return {
        **{name: getattr(order, name) for name in WorkOrderOut.model_fields if name not in DERIVED},
        "site_id": order.site_id if part is None else part.id,
        "site_name": "" if part is None else part.name,
        "overdue": is_overdue(order, now_ms),
        "fault_active": fault_active(order),
        "time_to_respond_s": respond_s,
        "time_to_repair_s": repair_s,
    }


def work_order_out(order: WorkOrder, now_ms: int, site: Site | None = None) -> WorkOrderOut:
    return WorkOrderOut.model_validate(work_order_fields(order, now_ms, site))


def maintenance_out(
    history: MaintenanceHistory,
    start_ms: int,
    end_ms: int,
    limit: int,
    offset: int,
    now_ms: int,
    site: Site | None = None,
) -> MaintenanceOut:
    return MaintenanceOut(
        start_ms=start_ms,
        end_ms=end_ms,
        orders=history.total,
        faults=history.faults,
        mean_time_to_respond_s=history.mean_time_to_respond_s,
        mean_time_to_repair_s=history.mean_time_to_repair_s,
        items=[
            MaintenanceOrderOut.model_validate(
                {**work_order_fields(r.order, now_ms, site), "actions": events_out(r.actions)}
            )
            for r in history.records
        ],
        limit=limit,
        offset=offset,
    )


def events_out(events: Iterable[WorkOrderEvent]) -> list[EventOut]:
    return [EventOut.model_validate(e) for e in events]


def device_out(device: Device) -> DeviceOut:
    return DeviceOut(
        id=device.id,
        name=device.name,
        kind=device.kind,
        building_id=device.building_id,
        unit_id=device.unit_id,
    )


def unit_out(unit: Unit) -> UnitOut:
    return UnitOut(
        id=unit.id,
        name=unit.name,
        building_id=unit.building_id,
        devices=[device_out(d) for d in unit.devices],
    )


def summary(bs: BuildingStatus, open_orders: Sequence[WorkOrder], site: Site) -> dict[str, Any]:
    part = site.site_of(bs.building.id) or site
    return {
        "id": bs.building.id,
        "name": bs.building.name,
        "site_id": part.id,
        "site_name": part.name,
        "status": str(bs.status),
        "counts": bs.counts,
        "open_work_orders": len(open_orders),
        "open_reports": sum(o.source is Source.REPORT for o in open_orders),
        "problems": problems_out(open_orders, site),
    }


def problems_out(open_orders: Sequence[WorkOrder], site: Site) -> list[ProblemOut]:
    out = []
    for order in worst_problems(open_orders, limit=PROBLEMS_PER_BUILDING):
        name = site.name_by_id.get(order.device_id or "")
        since = order.fault_started_ms if order.fault_started_ms is not None else order.created_ms
        out.append(
            ProblemOut(
                work_order_id=order.id,
                device_id=order.device_id,
                kind=order.kind,
                severity=order.severity,  # type: ignore[arg-type]
                source=str(order.source),
                status=order.status,  # type: ignore[arg-type]
                since_ms=since,
                text=problem_words(order, name),
            )
        )
    return out


def device_status_dict(ds: DeviceStatus) -> dict[str, Any]:
    return {
        "id": ds.device.id,
        "name": ds.device.name,
        "kind": ds.device.kind,
        "unit_id": ds.device.unit_id,
        "status": str(ds.status),
        "last_seen_ms": ds.last_seen_ms,
        "values": dict(ds.values),
        "open_work_orders": [o.id for o in ds.open_work_orders],
    }


def building_statuses(
    context: AppContext, buildings: Sequence[Building]
) -> list[tuple[BuildingStatus, list[WorkOrder]]]:
    """The status of each building and its open orders, from two queries whatever the number
    of buildings."""
    if not buildings:
        return []
    everything = len(buildings) == len(context.site.buildings)
    ids = None if everything else [b.id for b in buildings]
    devices = None if everything else [d.id for b in buildings for d in b.devices]
    states = context.store.device_states(devices)
    by_building: dict[str, list[WorkOrder]] = {}
    for order in context.store.open_work_orders(ids):
        by_building.setdefault(order.building_id, []).append(order)
    orders = [o for b in buildings for o in by_building.get(b.id, ())]
    statuses = rollup(buildings, states, orders, context.clock_ms())
    return [(bs, by_building.get(bs.building.id, [])) for bs in statuses]


def numeric_fields(kind: str) -> list[str]:
    return [f.name for f in KINDS[kind].fields if f.type is FieldType.FLOAT][:TREND_MAX_FIELDS]


def read_series(
    history: HistoryStore,
    device: Device,
    fields: Sequence[str],
    start_ms: int,
    end_ms: int,
    *,
    interval_s: int | None,
    limit: int,
) -> list[SeriesOut]:
    """Raw points (no interval) or buckets of each field; `HistoryQueryError` and
    `StoreUnavailableError` pass through."""
    spec = KINDS[device.kind]
    out = []
    for name in fields:
        query = SeriesQuery(device.kind, device.id, name, start_ms, end_ms)
        unit = spec.fields[spec.index[name]].unit
        if interval_s is None:
            points = [(p.ts_ms, p.value) for p in history.raw(query, limit=limit)]
            out.append(SeriesOut(field=name, unit=unit, points=points))
        else:
            buckets = history.downsampled(query, interval_ms=interval_s * 1000)
            out.append(
                SeriesOut(
                    field=name,
                    unit=unit,
                    buckets=[
                        BucketOut(
                            start_ms=b.start_ms, mean=b.mean, min=b.min, max=b.max, count=b.count
                        )
                        for b in buckets
                    ],
                )
            )
    return out


def trend(context: AppContext, order: WorkOrder) -> TrendOut | None:
    """The device's numeric fields from 24 h before the fault to 15 minutes after it."""
    device = context.site.by_id.get(order.device_id or "")
    if device is None or context.history is None:
        return None
    start = order.fault_started_ms if order.fault_started_ms is not None else order.created_ms
    lo, hi = start - TREND_BEFORE_MS, start + TREND_AFTER_MS
    try:
        series = read_series(
            context.history, device, numeric_fields(device.kind), lo, hi,
            interval_s=TREND_INTERVAL_S, limit=1,
        )  # fmt: skip
    except StoreUnavailableError:
        return None
    return TrendOut(start_ms=lo, end_ms=hi, interval_s=TREND_INTERVAL_S, series=series)
