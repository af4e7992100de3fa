"""The store named in the settings: its writer, and its history for charts (until the registry)."""

from __future__ import annotations

import logging

from facility.site import Site
from ingest.errors import StoreUnavailableError
from ingest.history import HistoryStore
from ingest.influx_v1 import InfluxV1Settings, InfluxV1Writer
from ingest.influx_v2 import InfluxV2Settings, InfluxV2Writer
from ingest.interface import TimeSeriesWriter
from ingest.settings import StoreSettings
from ingest.sqlite_history import SQLiteHistory
from ingest.sqlite_store import SQLiteTimeSeries

log = logging.getLogger(__name__)


def open_writer(site: Site, settings: StoreSettings) -> TimeSeriesWriter:
    if settings.kind == "influx-v1":
        writer = InfluxV1Writer(
            site,
            InfluxV1Settings(
                url=settings.influx_url,
                database=settings.influx_db,
                username=settings.influx_username,
                password=settings.influx_password,
            ),
        )
        try:
            writer.ensure_database()
        except StoreUnavailableError as exc:  # it is created on the first write that needs it
            log.warning("InfluxDB not reachable at start (%s); spooling until it is", exc)
        return writer
    if settings.kind == "influx-v2":
        return InfluxV2Writer(
            site,
            InfluxV2Settings(
                url=settings.influx_url,
                org=settings.influx_org,
                bucket=settings.influx_bucket,
                token=settings.influx_token,
            ),
        )
    return SQLiteTimeSeries(site, settings.sqlite_path)


def open_history(settings: StoreSettings) -> HistoryStore | None:
    if settings.kind == "sqlite":
        if not settings.sqlite_path.exists():
            log.warning("no telemetry file %s: the dashboard shows no charts", settings.sqlite_path)
            return None
        return SQLiteHistory(settings.sqlite_path)
    log.warning("charts from %s arrive with the store registry", settings.kind)
    return None
