"""Owners' and residents' reports: no login, a unit's report code (behind a QR code),
rate-limited per client and per code (a code passed around cannot flood the board)."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from api.deps import Context, client_key, not_found, unprocessable
from api.errors import RateLimitedError
from api.schemas import ReportIn, ReportOut

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])


@router.post(
    "",
    response_model=ReportOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        404: {"description": "unknown report code"},
        429: {"description": "too many reports from this client, or with this code"},
    },
)
def create_report(body: ReportIn, request: Request, context: Context) -> ReportOut:
    retry_after = context.report_limiter.hit(client_key(request))
    if retry_after is not None:
        context.metrics.count("rate_limited")
        raise RateLimitedError("too many reports from this client", retry_after)
    unit = context.units.get(context.report_codes.unit_for(body.code) or "")
    if unit is None:
        raise not_found("unknown report code")
    retry_after = context.code_limiter.hit(unit.id)  # known codes only: bounded keys
    if retry_after is not None:
        context.metrics.count("rate_limited")
        raise RateLimitedError("too many reports with this unit's code", retry_after)
    kind = None
    if body.device_id is not None:
        device = context.site.by_id.get(body.device_id)
        if device is None or device.unit_id != unit.id:
            raise unprocessable(("body", "device_id"), "no such device in this unit")
        kind = device.kind
    order = context.store.create_report(
        site_id=context.site.id,
        building_id=unit.building_id,
        unit_id=unit.id,
        device_id=body.device_id,
        kind=kind,
        description=body.description,
        contact=body.contact or None,
    )
    context.metrics.count("reports")
    return ReportOut(
        work_order_id=order.id,
        status=order.status,
        building_id=order.building_id,
        unit_id=order.unit_id,
    )
