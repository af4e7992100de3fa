"""The owners' meeting report as a file: PDF or CSV, English or 中文, of a period of the estate
(a steward's: of their buildings). The figures and the rendering are `alerts.owners_*`.

A report is of one estate: in a portfolio, of the site `site=` names (needed when the user sees
buildings of several sites), with that site's name, and its months and dates in its own time
zone. Owners meet per estate; one report over estates in different zones would have no one
calendar month to be of."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from alerts.owners_files import MEDIA_TYPES, file_name, render
from alerts.owners_report import owners_report, previous_month_ms
from api.auth.scope import Principal
from api.auth.users import Role
from api.deps import AppContext, Context, CurrentUser, not_found, site_or_404, unprocessable
from api.http.openapi import errors
from api.period import check_period
from api.schemas import MAX_MS, Id
from facility.site import Site

router = APIRouter(prefix="/api/v1/reports", tags=["owners' report"])
REPORT_ROLES = (Role.ADMIN, Role.DISPATCHER, Role.STEWARD)


@router.get(
    "/owners",
    response_class=Response,
    responses={
        200: {
            "content": {media: {} for media in MEDIA_TYPES.values()},
            "description": "the report as a file (Content-Disposition names it)",
        },
        403: {"description": "technicians do not get the report"},
        **errors(404),
    },
)
def owners_report_file(
    context: Context,
    principal: CurrentUser,
    start_ms: Annotated[
        int | None, Query(ge=0, le=MAX_MS, description="default: last month")
    ] = None,
    end_ms: Annotated[int | None, Query(ge=0, le=MAX_MS)] = None,
    lang: Literal["en", "zh"] = "en",
    fmt: Annotated[Literal["pdf", "csv"], Query(alias="format")] = "pdf",
    site_id: Annotated[
        Id | None,
        Query(alias="site", description="the estate (needed when the user sees several)"),
    ] = None,
) -> Response:
    principal.require_role(*REPORT_ROLES)
    site, now = _estate(context, principal, site_id), context.clock_ms()
    if (start_ms is None) != (end_ms is None):
        missing = "end_ms" if end_ms is None else "start_ms"
        raise unprocessable(("query", missing), "start_ms and end_ms go together")
    start, end = (
        (start_ms, end_ms)
        if start_ms is not None and end_ms is not None
        else previous_month_ms(now, site.timezone)
    )
    check_period(context, start, end)
    merged = context.site.building_by_id
    buildings = [merged[b.id] for b in site.buildings if principal.can_see(b.id)]
    report = owners_report(
        site, context.store, start_ms=start, end_ms=end, now_ms=now, buildings=buildings,
        plans=context.plans, lead_ms=round(context.maintenance.lead_s * 1000),
    )  # fmt: skip
    name = file_name(report, lang, fmt)
    return Response(
        render(report, lang, fmt),
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _estate(context: AppContext, principal: Principal, site_id: str | None) -> Site:
    """The site the report is of: the one named (404 unknown or unseen), else the only one
    the user sees; 422 when they see several and named none."""
    if site_id is not None:
        return site_or_404(context, principal, site_id)
    seen = [s for s in context.site.sites if principal.can_see_site(s.id)]
    if len(seen) == 1:
        return seen[0]
    if not seen:
        raise not_found("no site with a building this user sees")
    names = ", ".join(s.id for s in seen)
    raise unprocessable(("query", "site"), f"a report is of one site: choose one of {names}")
