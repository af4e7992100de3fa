"""The residents' side as staff see it: a building's reports with their state and notes,
the photos residents sent, and the links and QR codes printed for the stairwells.

A steward reads these for their buildings only (404 for any other, as everywhere); adding a
note to a report is the work order's comment (`POST /api/v1/work-orders/{id}/comments`).
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Path, Query, Request, Response

from alerts.store import StoredPhoto
from api.auth.scope import Principal
from api.auth.users import Role
from api.deps import MAX_ID, BuildingDep, Context, CurrentUser, UnitDep, WorkOrderDep, not_found
from api.http.openapi import errors
from api.qr import qr_svg
from api.resident_schemas import (
    PhotoOut,
    PublicLinksOut,
    ReportItemOut,
    ReportPageOut,
    ReportState,
    UnitLinkOut,
)
from api.views import events_out
from facility.images import PHOTO_TYPES
from facility.site import Building, Unit

router = APIRouter(prefix="/api/v1", tags=["reports"])
PRINTERS: Final = (Role.ADMIN, Role.DISPATCHER, Role.STEWARD)
"""Who may print a building's codes (as who may read a unit's report code)."""
SVG: Final = "image/svg+xml"


def photo_out(photo: StoredPhoto) -> PhotoOut:
    return PhotoOut(
        id=photo.id,
        media_type=photo.media_type,
        size_bytes=photo.size_bytes,
        created_ms=photo.created_ms,
        url=f"/api/v1/work-orders/{photo.work_order_id}/photos/{photo.id}",
    )


@router.get("/buildings/{building_id}/reports", response_model=ReportPageOut)
def list_reports(
    building: BuildingDep,
    context: Context,
    state: Annotated[ReportState, Query(description="open ones, or every state")] = "open",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ReportPageOut:
    records, total = context.store.building_reports(
        building.id, open_only=state == "open", limit=limit, offset=offset
    )
    photos = context.store.photos_of(r.order.id for r in records)
    units = context.units
    items = []
    for r in records:
        o = r.order
        unit = units.get(o.unit_id or "")
        device = context.site.by_id.get(o.device_id or "")
        items.append(
            ReportItemOut(
                work_order_id=o.id,
                status=o.status,  # type: ignore[arg-type]
                unit_id=o.unit_id,
                unit_name=unit.name if unit else None,
                device_id=o.device_id,
                device_name=device.name if device else None,
                created_ms=o.created_ms,
                updated_ms=o.updated_ms,
                text=r.text,
                notes=events_out(r.notes),
                photos=[photo_out(p) for p in photos.get(o.id, ())],
            )
        )
    return ReportPageOut(
        building_id=building.id, items=items, total=total, limit=limit, offset=offset
    )


@router.get("/work-orders/{work_order_id}/photos", response_model=list[PhotoOut])
def list_photos(order: WorkOrderDep, context: Context) -> list[PhotoOut]:
    return [photo_out(p) for p in context.store.photos_of([order.id]).get(order.id, ())]


@router.get(
    "/work-orders/{work_order_id}/photos/{photo_id}",
    response_class=Response,
    responses={200: {"content": {t: {} for t in PHOTO_TYPES}}},
)
def get_photo(
    order: WorkOrderDep,
    context: Context,
    photo_id: Annotated[int, Path(ge=1, le=MAX_ID)],
) -> Response:
    found = context.store.photo(order.id, photo_id)
    if found is None:
        raise not_found(f"no photo {photo_id} of work order {order.id}")
    photo, data = found
    name = f"report-{order.id}-photo-{photo.id}.{PHOTO_TYPES.get(photo.media_type, 'bin')}"
    return Response(
        data,
        media_type=photo.media_type,
        headers={
            "Content-Disposition": f'inline; filename="{name}"',
            "Cache-Control": "private, max-age=3600",
        },
    )


def base_url(request: Request, public_url: str | None) -> str:
    return (public_url or str(request.base_url)).rstrip("/")


def _printer(principal: Principal) -> None:
    principal.require_role(*PRINTERS)


def unit_link(unit: Unit, code: str, base: str) -> UnitLinkOut:
    return UnitLinkOut(
        unit_id=unit.id,
        unit_name=unit.name,
        code=code,
        report_url=f"{base}/r/{code}",
        qr_svg_path=f"/api/v1/units/{unit.id}/qr.svg",
    )


def public_links(context: Context, building: Building, base: str) -> PublicLinksOut:
    status_code = context.status_codes.code_for(building.id)
    return PublicLinksOut(
        building_id=building.id,
        building_name=building.name,
        status_code=status_code,
        status_url=f"{base}/s/{status_code}",
        status_qr_svg_path=f"/api/v1/buildings/{building.id}/status-qr.svg",
        units=[unit_link(u, context.report_codes.code_for(u.id), base) for u in building.units],
    )


@router.get(
    "/buildings/{building_id}/public-links", response_model=PublicLinksOut, responses=errors(403)
)
def get_public_links(
    building: BuildingDep, context: Context, principal: CurrentUser, request: Request
) -> PublicLinksOut:
    """The links the printed QR codes point at: each unit's report form, the building's
    status page."""
    _printer(principal)
    return public_links(context, building, base_url(request, context.settings.public_url))


@router.get(
    "/units/{unit_id}/qr.svg",
    response_class=Response,
    responses={**errors(403), 200: {"content": {SVG: {}}}},
)
def get_unit_qr(
    unit: UnitDep, context: Context, principal: CurrentUser, request: Request
) -> Response:
    """The unit's report form as a QR code."""
    _printer(principal)
    base = base_url(request, context.settings.public_url)
    url = unit_link(unit, context.report_codes.code_for(unit.id), base).report_url
    return Response(qr_svg(url, title=unit.name), media_type=SVG)


@router.get(
    "/buildings/{building_id}/status-qr.svg",
    response_class=Response,
    responses={**errors(403), 200: {"content": {SVG: {}}}},
)
def get_status_qr(
    building: BuildingDep, context: Context, principal: CurrentUser, request: Request
) -> Response:
    """The building's public status page as a QR code."""
    _printer(principal)
    base = base_url(request, context.settings.public_url)
    url = f"{base}/s/{context.status_codes.code_for(building.id)}"
    return Response(qr_svg(url, title=building.name), media_type=SVG)
