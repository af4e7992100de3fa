"""The owners' meeting report's figures for an estate over [start, end), as one typed value.

Every KPI comes from `alerts.service.service_figures`, the function behind the API's service
figures of a building, applied to the right subset of orders: per building (the very figures
`GET /buildings/{id}/service` gives), over the whole estate, per elevator car (its
availability: the car alone, one elevator) and per severity (response and repair against the
SLA). What the service figures do not cover is counted here: how residents' reports ended and
which issues were still open at the end of the period. Maintenance-plan compliance comes from
the buildings' logbooks (`alerts.owners_maintenance`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Final, Protocol
from zoneinfo import ZoneInfo

from alerts.compliance import ComplianceSource
from alerts.interface import Severity
from alerts.maintenance.plans import PlanSet
from alerts.orderstore.models import WorkOrder
from alerts.owners_maintenance import MaintenanceFigures, maintenance_figures
from alerts.service import ServiceFigures, service_figures
from alerts.workorders import Source, WorkOrderStatus
from facility.site import Building, Site

ESTATE_ID: Final = "*"
"""The building id of the estate-wide figures (every building of the report together)."""
MAX_RANGE_DAYS: Final = 366
"""Longest period of one report from the command line (the API has `service_max_range_s`)."""
STILL_OPEN: Final = "still_open"
CANCELLED: Final = "cancelled"
RESOLVED: Final = "resolved"
"""Outcomes of a resident's report besides its resolution code."""


class OrderSource(Protocol):
    """What the report reads from the order store (`WorkOrderStore.orders_for_period`)."""

    def orders_for_period(
        self, building_id: str, start_ms: int, end_ms: int
    ) -> list[WorkOrder]: ...


class ReportSource(OrderSource, ComplianceSource, Protocol):
    """Everything the report reads: the orders and the maintenance logbook (`WorkOrderStore`)."""


@dataclass(frozen=True, slots=True)
class BuildingFigures:
    name: str
    figures: ServiceFigures


@dataclass(frozen=True, slots=True)
class CarFigures:
    """One elevator car: how much of the period it was in service, and its faults."""

    device_id: str
    building_id: str
    name: str
    """Unit and car, e.g. `Building 1 Unit 1 / Elevator 2`."""
    availability: float | None
    down_s: float
    faults: int


@dataclass(frozen=True, slots=True)
class SeverityFigures:
    severity: str
    figures: ServiceFigures


@dataclass(frozen=True, slots=True)
class ReportOutcomes:
    """Residents' reports filed in the period and how each stood at its end."""

    total: int
    outcomes: dict[str, int] = field(default_factory=dict)
    """A resolution code (`repaired`, `no_fault_found`, ...), `resolved` without one,
    `cancelled`, or `still_open`."""


@dataclass(frozen=True, slots=True)
class OpenIssue:
    id: int
    building_id: str
    device_id: str | None
    severity: str
    title: str
    title_zh: str | None
    status: str
    """Its status now (the report may be of a past period)."""
    age_s: float
    """From the fault's start (a report's filing) to the end of the period."""


@dataclass(frozen=True, slots=True)
class OwnersReport:
    site_id: str
    site_name: str
    timezone: str
    start_ms: int
    end_ms: int
    generated_ms: int
    estate: ServiceFigures
    """Over every building of the report (`building_id` is `ESTATE_ID`)."""
    buildings: tuple[BuildingFigures, ...]
    cars: tuple[CarFigures, ...]
    severities: tuple[SeverityFigures, ...]
    reports: ReportOutcomes
    open_issues: tuple[OpenIssue, ...]
    """Orders not finished at the end of the period, most severe and oldest first; routine
    visits are not issues (the maintenance section counts them)."""
    maintenance: MaintenanceFigures
    """Maintenance-plan compliance over the period."""


def _report_outcome(order: WorkOrder, end_ms: int) -> str:
    if order.resolved_ms is not None and order.resolved_ms < end_ms:
        return order.resolution_code or RESOLVED
    if order.status == WorkOrderStatus.CANCELLED and order.updated_ms < end_ms:
        return CANCELLED
    if order.status == WorkOrderStatus.CLOSED and (order.closed_ms or end_ms) < end_ms:
        return order.resolution_code or RESOLVED
    return STILL_OPEN


def _open_at(order: WorkOrder, end_ms: int) -> bool:
    """Filed before the end and neither resolved, closed nor cancelled by then."""
    if order.created_ms >= end_ms:
        return False
    finished = [t for t in (order.resolved_ms, order.closed_ms) if t is not None]
    if finished and min(finished) < end_ms:
        return False
    return not (order.status == WorkOrderStatus.CANCELLED and order.updated_ms < end_ms)


_SEVERITY_RANK: Final = {s.value: i for i, s in enumerate(Severity)}


def owners_report(
    site: Site,
    store: ReportSource,
    *,
    start_ms: int,
    end_ms: int,
    now_ms: int,
    plans: PlanSet,
    lead_ms: int,
    buildings: Sequence[Building] | None = None,
) -> OwnersReport:
    """The report of `buildings` (default: every building of the site) over [start, end);
    `plans` and `lead_ms` (the maintenance settings' lead) as the compliance logbook has them."""
    if end_ms <= start_ms:
        raise ValueError("the period must end after it starts")
    chosen = tuple(site.buildings if buildings is None else buildings)
    per_building: list[BuildingFigures] = []
    cars: list[CarFigures] = []
    everything: list[WorkOrder] = []
    until = min(end_ms, now_ms)
    for building in chosen:
        orders = store.orders_for_period(building.id, start_ms, end_ms)
        everything.extend(orders)
        elevators = [d for d in building.devices if d.kind == "elevator"]
        figures = service_figures(
            building.id, orders, elevators=len(elevators),
            start_ms=start_ms, end_ms=end_ms, now_ms=now_ms,
        )  # fmt: skip
        per_building.append(BuildingFigures(building.name, figures))
        units = {u.id: u.name for u in building.units}
        for car in elevators:
            own = [o for o in orders if o.device_id == car.id]
            one = service_figures(
                building.id, own, elevators=1, start_ms=start_ms, end_ms=end_ms, now_ms=now_ms
            )
            down = (
                0.0
                if one.elevator_availability is None
                else (1 - one.elevator_availability) * max(0, until - start_ms) / 1000
            )
            cars.append(
                CarFigures(
                    device_id=car.id,
                    building_id=building.id,
                    name=f"{units.get(car.unit_id, car.unit_id)} / {car.name}",
                    availability=one.elevator_availability,
                    down_s=down,
                    faults=sum(one.faults_by_kind.values()),
                )
            )
    elevator_count = sum(d.kind == "elevator" for b in chosen for d in b.devices)
    estate = service_figures(
        ESTATE_ID, everything, elevators=elevator_count,
        start_ms=start_ms, end_ms=end_ms, now_ms=now_ms,
    )  # fmt: skip
    severities = tuple(
        SeverityFigures(
            s.value,
            service_figures(
                ESTATE_ID,
                [o for o in everything if o.severity == s],
                elevators=0,
                start_ms=start_ms,
                end_ms=end_ms,
                now_ms=now_ms,
            ),
        )
        for s in Severity
    )
    maintenance = maintenance_figures(
        store, site, plans, chosen,
        start_ms=start_ms, end_ms=end_ms, now_ms=now_ms, lead_ms=lead_ms,
    )  # fmt: skip
    filed = [o for o in everything if start_ms <= o.created_ms < end_ms]
    reports = [o for o in filed if o.source == Source.REPORT]
    outcomes = Counter(_report_outcome(o, end_ms) for o in reports)
    open_orders = sorted(
        (o for o in everything if _open_at(o, end_ms) and o.source != Source.SCHEDULED),
        key=lambda o: (_SEVERITY_RANK.get(o.severity, 99), _started(o), o.id),
    )
    return OwnersReport(
        site_id=site.id,
        site_name=site.name,
        timezone=site.timezone,
        start_ms=start_ms,
        end_ms=end_ms,
        generated_ms=now_ms,
        estate=estate,
        buildings=tuple(per_building),
        cars=tuple(cars),
        severities=severities,
        reports=ReportOutcomes(len(reports), dict(sorted(outcomes.items()))),
        open_issues=tuple(
            OpenIssue(
                id=o.id,
                building_id=o.building_id,
                device_id=o.device_id,
                severity=str(o.severity),
                title=o.title,
                title_zh=o.title_zh,
                status=str(o.status),
                age_s=max(0, end_ms - _started(o)) / 1000,
            )
            for o in open_orders
        ),
        maintenance=maintenance,
    )


def _started(order: WorkOrder) -> int:
    return order.fault_started_ms if order.fault_started_ms is not None else order.created_ms


# -- periods -----------------------------------------------------------------------------------


def _midnight_ms(day: date, zone: ZoneInfo) -> int:
    return int(datetime.combine(day, time(0), tzinfo=zone).timestamp() * 1000)


def day_range_ms(first: date, last: date, timezone: str) -> tuple[int, int]:
    """[first day 00:00, the day after `last` 00:00) in the site's time zone (`last` is in)."""
    if last < first:
        raise ValueError(f"the period ends ({last}) before it starts ({first})")
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise ValueError(f"the period may be at most {MAX_RANGE_DAYS} days")
    zone = ZoneInfo(timezone)
    return _midnight_ms(first, zone), _midnight_ms(last + timedelta(days=1), zone)


def month_range_ms(year: int, month: int, timezone: str) -> tuple[int, int]:
    """The calendar month in the site's time zone."""
    first = date(year, month, 1)
    after = date(year + month // 12, month % 12 + 1, 1)
    return day_range_ms(first, after - timedelta(days=1), timezone)


def previous_month_ms(now_ms: int, timezone: str) -> tuple[int, int]:
    """The calendar month before the one `now_ms` falls in, in the site's time zone."""
    today = datetime.fromtimestamp(now_ms / 1000, ZoneInfo(timezone)).date()
    last = today.replace(day=1) - timedelta(days=1)
    return month_range_ms(last.year, last.month, timezone)
