"""Owners' and residents' reports: no login, a unit's report code (behind a QR code),
rate-limited per client and per code (a code passed around cannot flood the board).

Two ways in: JSON (`POST /api/v1/reports`) and the phone form's multipart post
(`POST /api/v1/reports/form`), which may carry one photo. Both check the same things, in the
same order (`admit_report`: the limits, the code, the device — before a photo is decoded),
then `file_report`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Final

from anyio import to_thread
from fastapi import APIRouter, File, Form, Request, UploadFile, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from alerts.store import Photo
from api.deps import AppContext, Context, client_key, not_found, unprocessable
from api.errors import RateLimitedError
from api.schemas import ReportIn, ReportOut
from api.settings import ApiSettings
from api.uploads import too_large
from facility.site import Unit

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])
FORM_PATH: Final = "/api/v1/reports/form"
FORM_OVERHEAD_BYTES: Final = 64 * 1024
"""Room in the form's body for its text fields and multipart framing, besides the photo."""


def report_form_limits(settings: ApiSettings) -> Mapping[tuple[str, str], int]:
    """The form's body may hold a photo: its limit for `api.http.limits.RequestGuard`."""
    return {("POST", FORM_PATH): settings.report_photo_max_bytes + FORM_OVERHEAD_BYTES}


def admit_report(context: AppContext, client: str, body: ReportIn) -> tuple[Unit, str | None]:
    """Limits, the code, the device: everything checked before a photo is decoded (which costs
    CPU and memory an unknown code or a flood must not get). The unit and the device's kind."""
    retry_after = context.report_limiter.hit(client)
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
    return unit, kind


def file_report(
    context: AppContext,
    admitted: tuple[Unit, str | None],
    body: ReportIn,
    photo: Photo | None = None,
) -> ReportOut:
    """The order (and its photo, in one transaction), for what `admit_report` let in."""
    unit, kind = admitted
    order = context.store.create_report(
        site_id=context.site_map.get(unit.building_id, context.site.id),  # the unit's estate
        building_id=unit.building_id,
        unit_id=unit.id,
        device_id=body.device_id,
        kind=kind,
        description=body.description,
        contact=body.contact or None,
        photo=photo,
    )
    context.metrics.count("reports")
    return ReportOut(
        work_order_id=order.id,
        status=order.status,
        building_id=order.building_id,
        unit_id=order.unit_id,
    )


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
    return file_report(context, admit_report(context, client_key(request), body), body)


@router.post(
    "/form",
    response_model=ReportOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        404: {"description": "unknown report code"},
        415: {"description": "the photo is not a JPEG, PNG or WebP image"},
        429: {"description": "too many reports from this client, or with this code"},
    },
)
async def create_report_form(
    request: Request,
    context: Context,
    code: Annotated[str, Form(max_length=64)],
    description: Annotated[str, Form(max_length=2000)],
    device_id: Annotated[str, Form(max_length=64)] = "",
    contact: Annotated[str, Form(max_length=200)] = "",
    photo: Annotated[UploadFile | None, File(description="JPEG, PNG or WebP")] = None,
) -> ReportOut:
    """The residents' form (multipart/form-data): the JSON route's fields, empty ones left
    out, and an optional photo, whose type is read from its bytes."""
    try:
        body = ReportIn.model_validate(
            {"code": code, "description": description, "device_id": device_id or None,
             "contact": contact or None}
        )  # fmt: skip
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        ) from None
    data = None
    if photo is not None and (photo.filename or photo.size):  # an empty file input: none
        limit = context.settings.report_photo_max_bytes
        data = await photo.read(limit + 1)
        if len(data) > limit:
            raise too_large(limit)
    admitted = await to_thread.run_sync(admit_report, context, client_key(request), body)
    stored = None if data is None else Photo(*await context.photo_decodes.clean(data))
    return await to_thread.run_sync(file_report, context, admitted, body, stored)
