"""The API service: the FastAPI app on uvicorn, over the work-order database and the store's
history (for charts)."""

from __future__ import annotations

import logging
import threading

import uvicorn

from alerts.store import WorkOrderStore
from api.app import create_app
from api.settings import ApiSettings
from db.engine import make_engine
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
    ) -> None:
        self.store = store
        self.history = history
        app = create_app(site=site, store=store, settings=settings, history=history)
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
    ) -> ApiService:
        store = WorkOrderStore(make_engine(db_url))
        store.migrate()
        return cls(site, store, settings, http, history=history)

    def start(self) -> None:
        """Nothing to start ahead: uvicorn binds in `run` (its port was checked at start-up)."""

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
        if self.history is not None:
            close = getattr(self.history, "close", None)
            if callable(close):
                close()
