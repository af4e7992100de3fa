"""Pages residents open without logging in: a unit's report form (`/r/{code}`, behind the
QR code in its stairwell) and a building's status page (`/s/{code}`), and the one read the
status page makes. An unknown code is a 404 page saying so in both languages. In a portfolio a
page names the unit's or building's own estate, and tells times in its time zone."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Final
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from api.deps import Context, not_found
from api.public_status import public_status
from api.resident_schemas import PublicStatusOut
from api.words import device_name

router = APIRouter(tags=["public"])
templates = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")
Code = Annotated[str, PathParam(max_length=64)]
NO_STORE: Final = {"Cache-Control": "no-store"}


@router.get("/r/{code}", response_class=HTMLResponse, include_in_schema=False)
def report_form(code: Code, request: Request, context: Context) -> HTMLResponse:
    unit = context.units.get(context.report_codes.unit_for(code) or "")
    if unit is None:
        return templates.TemplateResponse(
            request, "unknown-code.html", {"site": context.site}, status_code=404
        )
    devices = [(d.id, device_name(d.name)) for d in unit.devices]
    return templates.TemplateResponse(
        request,
        "report.html",
        {
            "site": context.site.site_of(unit.building_id) or context.site,
            "unit": unit,
            "code": context.report_codes.code_for(unit.id),
            "devices": devices,
            "photo_max_bytes": context.settings.report_photo_max_bytes,
        },
        headers=NO_STORE,
    )


@router.get("/s/{code}", response_class=HTMLResponse, include_in_schema=False)
def status_page(code: Code, request: Request, context: Context) -> HTMLResponse:
    building = context.site.building_by_id.get(context.status_codes.building_for(code) or "")
    if building is None:
        return templates.TemplateResponse(
            request, "unknown-code.html", {"site": context.site}, status_code=404
        )
    return templates.TemplateResponse(
        request,
        "status.html",
        {
            "site": context.site.site_of(building.id) or context.site,
            "code": context.status_codes.code_for(building.id),
            "name": device_name(building.name),
        },
        headers=NO_STORE,
    )


@router.get("/api/v1/public/status/{code}", response_model=PublicStatusOut)
async def get_public_status(code: Code, context: Context) -> PublicStatusOut:
    """A building's outages in plain words, for anyone with its status code."""
    building = context.site.building_by_id.get(context.status_codes.building_for(code) or "")
    if building is None:
        raise not_found("unknown status code")
    timezone = (context.site.site_of(building.id) or context.site).timezone  # its estate's
    return await context.read(
        public_status, context.store, building, ZoneInfo(timezone), context.clock_ms()
    )
