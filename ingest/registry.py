"""The time-series stores by name: one explicit table of name -> (writer, history reader).

The gateway writes through `open_writer`, the API's charts and the rules backtest read through
`open_history`, and the embedded store's pruning comes from `open_retention`; all three take
the one `StoreSettings`. A new store is one module per side and one row in `BACKENDS`.

    name        writer (ingest/...)             history reader (ingest/...)
    sqlite      sqlite_store.SQLiteTimeSeries   sqlite_history.SQLiteHistory
    influx-v1   influx_v1.InfluxV1Writer        influx_history.InfluxV1History (InfluxQL)
    influx-v2   influx_v2.InfluxV2Writer        vm_history.VictoriaMetricsHistory (export API)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from facility.clock import Clock, now_ms
from facility.site import Site
from ingest.errors import StoreUnavailableError
from ingest.history import HistoryReader
from ingest.influx_history import InfluxV1History
from ingest.influx_v1 import InfluxV1Settings, InfluxV1Writer
from ingest.influx_v2 import InfluxV2Settings, InfluxV2Writer
from ingest.interface import TimeSeriesWriter
from ingest.retention import SQLiteRetention
from ingest.settings import StoreKind, StoreSettings
from ingest.sqlite_history import SQLiteHistory
from ingest.sqlite_store import SQLiteTimeSeries
from ingest.vm_history import VictoriaMetricsHistory

log = logging.getLogger(__name__)

WriterFactory = Callable[[Site, StoreSettings], TimeSeriesWriter]
HistoryFactory = Callable[[Site, StoreSettings], HistoryReader]


@dataclass(frozen=True, slots=True)
class Backend:
    writer: WriterFactory
    history: HistoryFactory


def influx_v1_settings(settings: StoreSettings, *, timeout_s: float) -> InfluxV1Settings:
    return InfluxV1Settings(
        url=settings.influx_url,
        database=settings.influx_db,
        username=settings.influx_username,
        password=settings.influx_password,
        timeout_s=timeout_s,
        probe_timeout_s=settings.influx_probe_timeout_s,
        gzip_level=settings.gzip_level,
    )


def _sqlite_writer(site: Site, settings: StoreSettings) -> TimeSeriesWriter:
    return SQLiteTimeSeries(site, settings.sqlite_path)


def _sqlite_history(site: Site, settings: StoreSettings) -> HistoryReader:
    return SQLiteHistory(settings.sqlite_path, site)


def _influx_v1_writer(site: Site, settings: StoreSettings) -> TimeSeriesWriter:
    writer = InfluxV1Writer(
        site, influx_v1_settings(settings, timeout_s=settings.influx_write_timeout_s)
    )
    try:
        writer.ensure_database()
    except StoreUnavailableError as exc:  # created by the first write that needs it
        log.warning("InfluxDB not reachable at start (%s); spooling until it is", exc)
    return writer


def _influx_v1_history(site: Site, settings: StoreSettings) -> HistoryReader:
    return InfluxV1History(
        site, influx_v1_settings(settings, timeout_s=settings.influx_query_timeout_s)
    )


def _influx_v2_writer(site: Site, settings: StoreSettings) -> TimeSeriesWriter:
    return InfluxV2Writer(
        site,
        InfluxV2Settings(
            url=settings.influx_url,
            org=settings.influx_org,
            bucket=settings.influx_bucket,
            token=settings.influx_token,
            timeout_s=settings.influx_write_timeout_s,
            probe_timeout_s=settings.influx_probe_timeout_s,
            gzip_level=settings.gzip_level,
        ),
    )


def _influx_v2_history(site: Site, settings: StoreSettings) -> HistoryReader:
    return VictoriaMetricsHistory(
        site,
        url=settings.influx_query_url or settings.influx_url,
        token=settings.influx_token,
        timeout_s=settings.influx_query_timeout_s,
    )


BACKENDS: Mapping[StoreKind, Backend] = MappingProxyType({
    "sqlite": Backend(_sqlite_writer, _sqlite_history),
    "influx-v1": Backend(_influx_v1_writer, _influx_v1_history),
    "influx-v2": Backend(_influx_v2_writer, _influx_v2_history),
})  # fmt: skip
"""Every name in `STORE_KINDS` has a row (a unit test checks)."""


def open_writer(site: Site, settings: StoreSettings) -> TimeSeriesWriter:
    """The gateway's writer for the chosen store (an InfluxDB 1.x database is created)."""
    return BACKENDS[settings.kind].writer(site, settings)


def open_writers(site: Site, settings: StoreSettings) -> list[TimeSeriesWriter]:
    """One writer per store connection (`StoreSettings.connections`), each with its own
    connection or HTTP session, for `ingest.delivery.Delivery` to write through at once."""
    return [open_writer(site, settings) for _ in range(settings.connections)]


def open_history(site: Site, settings: StoreSettings) -> HistoryReader:
    """The history reader of the chosen store: charts (raw, downsampled) and backtest (batch).
    Nothing is contacted until the first query, so the API starts while the store is away."""
    return BACKENDS[settings.kind].history(site, settings)


def open_retention(
    writer: TimeSeriesWriter, settings: StoreSettings, *, clock_ms: Clock = now_ms
) -> SQLiteRetention | None:
    """The pruning task for `writer`, or None when there is nothing to prune here: another
    store (which keeps its own retention) or retention 0 (keep everything)."""
    retention_ms = settings.sqlite_retention_ms
    if not isinstance(writer, SQLiteTimeSeries) or retention_ms is None:
        return None
    return SQLiteRetention(
        writer,
        retention_ms=retention_ms,
        interval_s=settings.sqlite_prune_interval_s,
        clock_ms=clock_ms,
    )
