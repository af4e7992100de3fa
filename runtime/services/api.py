"""The API service: the FastAPI app on uvicorn, over the work-order database and the store's
history (for charts)."""

from __future__ import annotations

import logging
import threading

import uvicorn

from alerts.maintenance.plans import load_plans
from alerts.maintenance.scheduler import MaintenanceScheduler
from alerts.maintenance.settings import MaintenanceSettings
from alerts.store import WorkOrderStore
from api.app import create_app
from api.settings import ApiSettings
from db.engine import make_engine
from db.id_scope import check_id_scope
from facility.periodic import PeriodicWorker
from facility.site import Site
from ingest.history import HistoryStore
from runtime.settings.tree import HttpSettings

log = logging.getLogger(__name__)


class ApiService:
    """`run(stop)` serves until `stop` is set (or uvicorn is told to stop by a signal)."""

    def __init__(
        self,
        site: Site,
        store: WorkOrderStore,
        settings: ApiSettings,
        http: HttpSettings,
        *,
        history: HistoryStore | None,
        log_level: str = "info",
        maintenance: MaintenanceSettings | None = None,
    ) -> None:
        self.store = store
        self.history = history
        maintenance = maintenance or MaintenanceSettings()
        plans = load_plans(maintenance.plans)  # a bad plan file stops the start here
        # A portfolio on a single-site database (or the reverse) would show nothing: refuse,
        # naming the command that moves the database (`facility db scope-ids`).
        check_id_scope(store.engine, site)
        app = create_app(
            site=site,
            store=store,
            settings=settings,
            history=history,
            maintenance_settings=maintenance,
            plans=plans,
        )
        # The API runs the scheduler: it holds the plans the logbook reads, and every replica
        # may run it (creating an order is idempotent in the database, docs/maintenance.md).
        scheduler = MaintenanceScheduler(
            site, store, plans, lead_ms=round(maintenance.lead_s * 1000)
        )
        self.scheduler: PeriodicWorker | None = (
            PeriodicWorker(
                "maintenance-scheduler",
                maintenance.interval_s,
                scheduler.run_once,
                run_at_start=True,
            )
            if maintenance.scheduler
            else None
        )
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=http.host,
                port=http.port,
                log_level=log_level,
                timeout_graceful_shutdown=max(1, round(http.graceful_shutdown_s)),
                server_header=False,
                # X-Forwarded-* only from the configured proxies (uvicorn's default trusts
                # 127.0.0.1): anyone else could pick their own address and scheme.
                proxy_headers=bool(settings.trusted_proxies),
                forwarded_allow_ips=list(settings.trusted_proxies),
            )
        )

    @classmethod
    def for_database(
        cls,
        site: Site,
        db_url: str,
        settings: ApiSettings,
        http: HttpSettings,
        *,
        history: HistoryStore | None,
        maintenance: MaintenanceSettings | None = None,
    ) -> ApiService:
        store = WorkOrderStore(make_engine(db_url))
        store.migrate()
        return cls(site, store, settings, http, history=history, maintenance=maintenance)

    def start(self) -> None:
        """The maintenance scheduler; uvicorn binds in `run` (its port was checked at start-up)."""
        if self.scheduler is not None:
            self.scheduler.start()

    def run(self, stop: threading.Event) -> None:
        watcher = threading.Thread(target=self._stop_when, args=(stop,), daemon=True)
        watcher.start()
        self.server.run()
        stop.set()  # uvicorn ended on its own (a signal it captured): the rest stops too

    def _stop_when(self, stop: threading.Event) -> None:
        stop.wait()
        self.server.should_exit = True

    def stop(self) -> None:
        self.server.should_exit = True
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.history is not None:
            close = getattr(self.history, "close", None)
            if callable(close):
                close()
