"""Maintenance-plan compliance for the owners' report: per plan, how many devices it covers,
how many had the work done within the period, and how many stood done / due / overdue at its
end; and which were overdue then.

Every count comes from `alerts.compliance.compliance_for`, the building's logbook (the same
rows `GET /buildings/{id}/compliance` gives), taken as of the period's last moment (or now, if
the period has not ended yet) with the evidence from the period's start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from alerts.compliance import ComplianceRow, ComplianceSource, compliance_for
from alerts.maintenance.plans import Plan, PlanSet
from alerts.maintenance.schedule import ComplianceStatus
from facility.site import Building, Site


@dataclass(frozen=True, slots=True)
class PlanCompliance:
    """One plan over the report's buildings."""

    plan_id: str
    title: str
    title_zh: str
    """Empty: the plan has no title in 中文 (the English one serves)."""
    every_s: float
    devices: int
    """Devices the plan covers."""
    done_in_period: int
    """Devices with evidence of the work (a record or a passing reading) within the period."""
    done: int
    due: int
    overdue: int
    """Devices in each status as of the report's `as_of_ms`."""


@dataclass(frozen=True, slots=True)
class OverduePlan:
    """A device whose plan was overdue as of the report's `as_of_ms`."""

    building_id: str
    device_id: str
    device_name: str
    plan_id: str
    title: str
    title_zh: str
    due_ms: int
    """When it fell due (overdue since)."""


@dataclass(frozen=True, slots=True)
class MaintenanceFigures:
    as_of_ms: int
    """The statuses' time: the period's last moment, or now if that is earlier."""
    lead_s: float
    """A plan counts as due this long before its due time (the logbook's lead)."""
    plans: tuple[PlanCompliance, ...]
    """In plan-file order; plans that cover none of the buildings' devices are left out."""
    overdue: tuple[OverduePlan, ...]
    """Longest overdue first."""


def maintenance_figures(
    store: ComplianceSource,
    site: Site,
    plans: PlanSet,
    buildings: Sequence[Building],
    *,
    start_ms: int,
    end_ms: int,
    now_ms: int,
    lead_ms: int,
) -> MaintenanceFigures:
    """The compliance of `buildings` over [start, end) (end exclusive)."""
    as_of = min(end_ms - 1, now_ms)
    rows: list[tuple[str, ComplianceRow]] = [
        (building.id, row)
        for building in buildings
        for row in compliance_for(
            store, site, plans, building.id, at_ms=as_of, start_ms=start_ms, lead_ms=lead_ms
        )
    ]
    per_plan = tuple(
        _plan_figures(plan, [r for _, r in rows if r.plan.id == plan.id])
        for plan in plans.plans
        if any(r.plan.id == plan.id for _, r in rows)
    )
    overdue = sorted(
        (
            OverduePlan(
                building_id=building_id,
                device_id=r.device.id,
                device_name=r.device.name,
                plan_id=r.plan.id,
                title=r.plan.title,
                title_zh=r.plan.title_zh,
                due_ms=r.next_due_ms,
            )
            for building_id, r in rows
            if r.status is ComplianceStatus.OVERDUE
        ),
        key=lambda o: (o.due_ms, o.building_id, o.device_id, o.plan_id),
    )
    return MaintenanceFigures(
        as_of_ms=as_of, lead_s=lead_ms / 1000, plans=per_plan, overdue=tuple(overdue)
    )


def _plan_figures(plan: Plan, rows: Sequence[ComplianceRow]) -> PlanCompliance:
    def count(status: ComplianceStatus) -> int:
        return sum(r.status is status for r in rows)

    return PlanCompliance(
        plan_id=plan.id,
        title=plan.title,
        title_zh=plan.title_zh,
        every_s=plan.every_s,
        devices=len(rows),
        done_in_period=sum(bool(r.done) for r in rows),
        done=count(ComplianceStatus.DONE),
        due=count(ComplianceStatus.DUE),
        overdue=count(ComplianceStatus.OVERDUE),
    )
