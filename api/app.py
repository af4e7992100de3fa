"""The FastAPI application factory: everything is built here, nothing at import time."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from alerts.store import WorkOrderStore
from api.deps import AppContext
from api.routes import buildings, dashboard, work_orders
from facility.clock import Clock, now_ms
from facility.site import Site

STATIC_DIR = Path(__file__).resolve().parent / "static"


def create_app(*, site: Site, store: WorkOrderStore, clock_ms: Clock = now_ms) -> FastAPI:
    app = FastAPI(
        title="Facility Monitor",
        version="0.1.0",
        description="Status of the buildings' equipment and the work orders raised from faults.",
    )
    app.state.context = AppContext(site=site, store=store, clock_ms=clock_ms)
    app.include_router(buildings.router)
    app.include_router(work_orders.router)
    app.include_router(dashboard.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
