"""The FastAPI application factory: everything is built here, nothing at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

from alerts.store import WorkOrderStore
from alerts.workorders import (
    InvalidTransitionError,
    WorkOrderConflictError,
    WorkOrderError,
    WorkOrderNotFoundError,
)
from api.auth.backoff import BackoffPolicy
from api.auth.passwords import Passwords
from api.auth.ratelimit import SlidingWindowLimiter
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
from api.logmask import mask_tokens_in_logs
from api.metrics import ApiMetrics, MetricsMiddleware
from api.monitor import ChangeMonitor
from api.routes import auth, buildings, dashboard, events, reports, work_orders
from api.routes import site as site_routes
from api.routes import users as user_routes
from api.settings import ApiSettings
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
) -> FastAPI:
    """The app over a migrated work-order store. `monitor=False` leaves the change monitor
    (statuses and work-order events -> live streams) to the caller: `app.state.monitor`."""
    settings = settings or ApiSettings()
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
        hub=hub,
        metrics=ApiMetrics(),
        login_limiter=SlidingWindowLimiter(
            limit=settings.login_attempts_per_client,
            window_s=settings.login_window_s,
            clock_ms=clock_ms,
        ),
        report_limiter=SlidingWindowLimiter(
            limit=settings.reports_per_client, window_s=settings.report_window_s, clock_ms=clock_ms
        ),
        code_limiter=SlidingWindowLimiter(
            limit=settings.reports_per_code, window_s=settings.report_window_s, clock_ms=clock_ms
        ),
        units=units,
        history=history,
        inline_reads=(
            settings.inline_reads
            if settings.inline_reads is not None
            else store.engine.dialect.name == "sqlite"
        ),
    )
    change_monitor = ChangeMonitor(
        site, store, hub, clock_ms=clock_ms, interval_s=settings.status_interval_s
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
        reports,
        events,
        dashboard,
    ):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _offline_docs(app)
    app.add_middleware(MetricsMiddleware, metrics=context.metrics)
    return app


def _offline_docs(app: FastAPI) -> None:
    """Swagger UI at /docs with its scripts from the installed `swagger-ui-bundle-v2` package:
    no CDN, and Swagger UI 5, because 4.x cannot read the OpenAPI 3.1 schema FastAPI serves."""
    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )


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

    async def unavailable(_r: Request, exc: Exception) -> JSONResponse:
        return answer(503, exc)

    for exc_type, handler in (
        (AuthenticationError, unauthenticated),
        (PermissionDeniedError, forbidden),
        (RateLimitedError, rate_limited),
        (WorkOrderNotFoundError, not_found),
        (UserNotFoundError, not_found),
        (InvalidTransitionError, conflict),
        (WorkOrderConflictError, conflict),
        (WorkOrderError, conflict),
        (UserError, invalid),
        (HistoryQueryError, invalid),
        (StoreUnavailableError, unavailable),
    ):
        app.add_exception_handler(exc_type, handler)
