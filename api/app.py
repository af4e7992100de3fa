"""The FastAPI application factory: everything is built here, nothing at import time."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

from alerts.maintenance.plans import PlanSet, load_plans
from alerts.maintenance.settings import MaintenanceSettings
from alerts.store import WorkOrderStore
from alerts.workorders import (
    InvalidTransitionError,
    WorkOrderConflictError,
    WorkOrderError,
    WorkOrderInputError,
    WorkOrderNotFoundError,
)
from api.auth.backoff import BackoffPolicy
from api.auth.passwords import Passwords
from api.auth.public_codes import StatusCodes
from api.auth.ratelimit import SqlRateLimiter
from api.auth.scope import site_map
from api.auth.sessions import Sessions
from api.auth.tokens import ReportCodes, TokenSigner
from api.auth.users import UserStore
from api.deps import AppContext
from api.errors import (
    AuthenticationError,
    PermissionDeniedError,
    RateLimitedError,
    UserError,
    UserNotFoundError,
)
from api.events import EventHub
from api.feed import LiveFeed
from api.http.headers import SecurityHeaders
from api.http.limits import ROUTE_BODY_LIMITS, RequestGuard
from api.http.openapi import document_errors
from api.logmask import mask_tokens_in_logs
from api.metrics import ApiMetrics, MetricsMiddleware
from api.monitor import ChangeMonitor
from api.routes import (
    auth,
    buildings,
    compliance,
    dashboard,
    events,
    maintenance,
    public,
    reports,
    residents,
    teams,
    work_orders,
)
from api.routes import owners as owners_report
from api.routes import site as site_routes
from api.routes import users as user_routes
from api.routes.reports import report_form_limits
from api.settings import ApiSettings
from api.uploads import PhotoDecodes
from facility.clock import Clock, now_ms
from facility.site import Site
from ingest.errors import StoreUnavailableError
from ingest.history import HistoryQueryError, HistoryStore

STATIC_DIR = Path(__file__).resolve().parent / "static"


def create_app(
    *,
    site: Site,
    store: WorkOrderStore,
    clock_ms: Clock = now_ms,
    settings: ApiSettings | None = None,
    history: HistoryStore | None = None,
    passwords: Passwords | None = None,
    hub: EventHub | None = None,
    monitor: bool = True,
    maintenance_settings: MaintenanceSettings | None = None,
    plans: PlanSet | None = None,
) -> FastAPI:
    """The app over a migrated work-order store. `monitor=False` leaves the change monitor
    (statuses and work-order events -> live streams) to the caller: `app.state.monitor`.
    `plans` default to those of `maintenance_settings` (the built-in ones, and its file)."""
    settings = settings or ApiSettings()
    maintenance_settings = maintenance_settings or MaintenanceSettings()
    users = UserStore(
        store.engine,
        passwords or Passwords(),
        clock_ms=clock_ms,
        backoff=BackoffPolicy(
            free_failures=settings.login_backoff_after,
            base_ms=int(settings.login_backoff_s * 1000),
            max_ms=int(settings.login_backoff_max_s * 1000),
            reset_ms=int(settings.login_backoff_reset_s * 1000),
        ),
    )
    hub = hub or EventHub()
    feed = LiveFeed(
        store.engine,
        lease_ms=int(settings.live_lease_s * 1000),
        keep=settings.live_events_keep,
        keep_ms=int(settings.live_events_keep_s * 1000),
    )
    units = {u.id: u for b in site.buildings for u in b.units}
    context = AppContext(
        site=site,
        store=store,
        clock_ms=clock_ms,
        settings=settings,
        users=users,
        sessions=Sessions(users, clock_ms=clock_ms, ttl_ms=int(settings.user_cache_s * 1000)),
        tokens=TokenSigner(
            settings.secret,
            ttl_s=settings.token_ttl_s,
            clock_ms=clock_ms,
            session_max_s=settings.session_max_s,
        ),
        report_codes=ReportCodes(settings.report_secret or settings.secret, site.id, list(units)),
        status_codes=StatusCodes(
            settings.report_secret or settings.secret, site.id, site.building_by_id
        ),
        hub=hub,
        feed=feed,
        metrics=ApiMetrics(),
        login_limiter=SqlRateLimiter(
            store.engine,
            scope="login",
            limit=settings.login_attempts_per_client,
            window_s=settings.login_window_s,
            clock_ms=clock_ms,
        ),
        report_limiter=SqlRateLimiter(
            store.engine,
            scope="report",
            limit=settings.reports_per_client,
            window_s=settings.report_window_s,
            clock_ms=clock_ms,
        ),
        code_limiter=SqlRateLimiter(
            store.engine,
            scope="code",
            limit=settings.reports_per_code,
            window_s=settings.report_window_s,
            clock_ms=clock_ms,
        ),
        units=units,
        history=history,
        inline_reads=(
            settings.inline_reads
            if settings.inline_reads is not None
            else store.engine.dialect.name == "sqlite"
        ),
        plans=plans if plans is not None else load_plans(maintenance_settings.plans),
        maintenance=maintenance_settings,
        site_map=site_map(site),
        photo_decodes=PhotoDecodes(settings.photo_threads),
    )
    change_monitor = ChangeMonitor(
        site, store, hub, clock_ms=clock_ms, interval_s=settings.status_interval_s, feed=feed
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Few threads for the blocking handlers: past a handful, threads only queue for the
        # GIL (and convoy behind each other), raising every request's latency.
        to_thread.current_default_thread_limiter().total_tokens = settings.worker_threads
        if monitor:
            change_monitor.start()
        try:
            yield
        finally:
            change_monitor.stop()
            hub.close()

    app = FastAPI(
        title="Facility Monitor",
        version="0.1.0",
        description="Status of the buildings' equipment and the work orders raised from faults. "
        "Log in with POST /api/v1/auth/login, then send `Authorization: Bearer <token>`.",
        lifespan=lifespan,
        docs_url=None,  # served below from the installed package, not a CDN: works offline
        redoc_url=None,
    )
    app.state.context = context
    app.state.monitor = change_monitor
    _error_answers(app)
    mask_tokens_in_logs()
    for module in (
        auth,
        user_routes,
        site_routes,
        buildings,
        work_orders,
        teams,
        maintenance,
        compliance,
        reports,
        residents,
        public,
        owners_report,
        events,
        dashboard,
    ):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _offline_docs(app)
    document_errors(app)
    # Added innermost first: headers on every answer (the guard's 413s too), then the count.
    app.add_middleware(
        RequestGuard,
        max_body_bytes=settings.max_body_bytes,
        max_json_depth=settings.max_json_depth,
        route_limits={**ROUTE_BODY_LIMITS, **report_form_limits(settings)},
    )
    app.add_middleware(MetricsMiddleware, metrics=context.metrics)
    app.add_middleware(SecurityHeaders)
    return app


def _offline_docs(app: FastAPI) -> None:
    """Swagger UI at /docs with its scripts from the installed `swagger-ui-bundle-v2` package:
    no CDN, and Swagger UI 5, because 4.x cannot read the OpenAPI 3.1 schema FastAPI serves."""
    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(
            DOCS_PAGE.format(
                title=html.escape(f"{app.title} API"),
                openapi_url=html.escape(app.openapi_url or "/openapi.json"),
            )
        )


DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/docs-assets/swagger-ui.css">
<link rel="icon" href="/docs-assets/favicon-32x32.png">
<title>{title}</title>
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
<script src="/docs-assets/swagger-ui-bundle.js"></script>
<script src="/static/docs.js"></script>
</body>
</html>
"""
"""Swagger UI started from `static/docs.js`, not an inline script (the CSP allows none)."""

MAX_ERRORS = 50
MAX_ERROR_TEXT = 200


def validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """FastAPI's validation errors without what the client sent: location, message and type
    only (no `input`, no `ctx`), every text cut short. A 200 kB bad field is not sent back,
    and nothing that cannot be encoded (a lone surrogate) can turn the 422 into a 500."""
    return [
        {
            "loc": [p if isinstance(p, int) else _short(p) for p in error.get("loc", ())],
            "msg": _short(error.get("msg", "")),
            "type": _short(error.get("type", "")),
        }
        for error in errors[:MAX_ERRORS]
    ]


def _short(value: object) -> str:
    text = str(value)[:MAX_ERROR_TEXT]
    return text.encode("utf-8", "replace").decode("utf-8")


def _error_answers(app: FastAPI) -> None:
    """Our exceptions -> HTTP answers, in one place."""

    def answer(status: int, exc: Exception, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)

    async def unauthenticated(_r: Request, exc: Exception) -> JSONResponse:
        return answer(401, exc, {"WWW-Authenticate": "Bearer"})

    async def forbidden(_r: Request, exc: Exception) -> JSONResponse:
        return answer(403, exc)

    async def rate_limited(_r: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RateLimitedError)
        return answer(429, exc, {"Retry-After": str(exc.retry_after_s)})

    async def not_found(_r: Request, exc: Exception) -> JSONResponse:
        return answer(404, exc)

    async def conflict(_r: Request, exc: Exception) -> JSONResponse:
        return answer(409, exc)

    async def invalid(_r: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": [{"loc": ["body"], "msg": str(exc), "type": "value_error"}]},
            status_code=422,
        )

    async def bad_input(_r: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, WorkOrderInputError)
        loc = ["body", exc.field]
        return JSONResponse(
            {"detail": [{"loc": loc, "msg": str(exc), "type": "value_error"}]}, status_code=422
        )

    async def unavailable(_r: Request, exc: Exception) -> JSONResponse:
        return answer(503, exc)

    async def bad_request(_r: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse({"detail": validation_errors(exc.errors())}, status_code=422)

    for exc_type, handler in (
        (AuthenticationError, unauthenticated),
        (PermissionDeniedError, forbidden),
        (RateLimitedError, rate_limited),
        (WorkOrderNotFoundError, not_found),
        (UserNotFoundError, not_found),
        (InvalidTransitionError, conflict),
        (WorkOrderConflictError, conflict),
        (WorkOrderInputError, bad_input),
        (WorkOrderError, conflict),
        (UserError, invalid),
        (HistoryQueryError, invalid),
        (StoreUnavailableError, unavailable),
        (RequestValidationError, bad_request),
    ):
        app.add_exception_handler(exc_type, handler)
