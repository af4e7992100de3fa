"""A building's compliance logbook: every device's maintenance plans, last done (with the
evidence), next due, and done / due / overdue (logic: `alerts.compliance`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query

from alerts.compliance import ComplianceRow, DoneEvidence, compliance_for
from api.auth.users import Role
from api.compliance_schemas import ComplianceEvidenceOut, ComplianceOut, ComplianceRowOut
from api.deps import AppContext, BuildingDep, Context, CurrentUser
from api.period import check_period
from api.schemas import MAX_MS

router = APIRouter(prefix="/api/v1", tags=["maintenance"])
DEFAULT_PERIOD_MS = 90 * 86_400_000
Start = Annotated[int | None, Query(ge=0, le=MAX_MS, description="default: 90 days before end")]
End = Annotated[
    int | None, Query(ge=0, le=MAX_MS, description="statuses as of this time; default: now")
]


@router.get("/buildings/{building_id}/compliance", response_model=ComplianceOut)
def building_compliance(
    building: BuildingDep,
    context: Context,
    principal: CurrentUser,
    start_ms: Start = None,
    end_ms: End = None,
) -> ComplianceOut:
    principal.require_role(Role.ADMIN, Role.DISPATCHER, Role.STEWARD)
    start, end = _range(context, start_ms, end_ms)
    lead_ms = round(context.maintenance.lead_s * 1000)
    rows = compliance_for(
        context.store, context.site, context.plans, building.id,
        at_ms=end, start_ms=start, lead_ms=lead_ms,
    )  # fmt: skip
    counts = Counter(str(r.status) for r in rows)
    return ComplianceOut(
        building_id=building.id,
        start_ms=start,
        end_ms=end,
        lead_s=context.maintenance.lead_s,
        counts={s: counts.get(s, 0) for s in ("done", "due", "overdue")},
        rows=[_row(r) for r in rows],
    )


def _range(context: AppContext, start_ms: int | None, end_ms: int | None) -> tuple[int, int]:
    end = end_ms if end_ms is not None else context.clock_ms()
    start = start_ms if start_ms is not None else max(end - DEFAULT_PERIOD_MS, 0)
    check_period(context, start, end, too_long="start_ms")
    return start, end


def _evidence(e: DoneEvidence) -> ComplianceEvidenceOut:
    return ComplianceEvidenceOut.model_validate({**asdict(e), "evidence": str(e.evidence)})


def _row(r: ComplianceRow) -> ComplianceRowOut:
    return ComplianceRowOut.model_validate(
        {
            "device_id": r.device.id,
            "device_name": r.device.name,
            "unit_id": r.device.unit_id,
            "kind": r.device.kind,
            "plan": {
                "id": r.plan.id,
                "title": r.plan.title,
                "every_s": r.plan.every_s,
                "evidence": str(r.plan.evidence),
                "field": r.plan.field,
            },
            "status": str(r.status),
            "last_done": None if r.last_done is None else _evidence(r.last_done),
            "next_due_ms": r.next_due_ms,
            "tracked_since_ms": r.tracked_since_ms,
            "open_work_order_id": r.open_order_id,
            "done": [_evidence(e) for e in r.done],
        }
    )
