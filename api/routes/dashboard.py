"""The first dashboard page and the health probe."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from api.deps import Context
from api.schemas import HealthOut

router = APIRouter()
templates = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index(request: Request, context: Context) -> HTMLResponse:
    return templates.TemplateResponse(request, "index.html", {"site": context.site})


@router.get("/health", response_model=HealthOut, tags=["operations"])
def health(context: Context) -> HealthOut:
    return HealthOut(status="ok", site=context.site.id)
