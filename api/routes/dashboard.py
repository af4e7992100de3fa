"""The dashboard page, the health probe and the metrics."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse
from fastapi.templating import Jinja2Templates

from api.deps import Context
from api.schemas import HealthOut
from facility import prometheus
from facility.prometheus import Metric

router = APIRouter()
templates = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index(request: Request, context: Context) -> HTMLResponse:
    return templates.TemplateResponse(request, "index.html", {"site": context.site})


@router.get("/health", response_model=HealthOut, tags=["operations"])
def health(context: Context) -> HealthOut:
    return HealthOut(status="ok", site=context.site.id)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    tags=["operations"],
    responses={200: {"content": {prometheus.CONTENT_TYPE: {}}}},
)
def metrics(context: Context) -> PlainTextResponse:
    open_orders = Counter(o.severity for o in context.store.open_work_orders())
    extra = [
        Metric(
            "facility_work_orders_open",
            "gauge",
            "Open work orders by severity.",
            {(("severity", s),): float(n) for s, n in sorted(open_orders.items())},
        ),
        Metric.single(
            "facility_api_sse_clients", "gauge", "Open event streams.", context.hub.subscribers
        ),
        Metric.single(
            "facility_api_events_published_total",
            "counter",
            "Events published to the live streams.",
            context.hub.published,
        ),
    ]
    body = prometheus.render([*context.metrics.prometheus(), *extra])
    return PlainTextResponse(body, media_type=prometheus.CONTENT_TYPE)
