"""The store registry and its settings: every name has a writer and a reader, bad settings are
refused naming the option, and the HTTP readers turn their store's answers into our errors
(the stores themselves are in tests/integration/test_history_contract.py)."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from facility.errors import SettingsError
from facility.site import Site
from ingest.errors import StoreUnavailableError
from ingest.history import HistoryQueryError, SeriesQuery
from ingest.influx_history import InfluxV1History
from ingest.influx_v1 import InfluxV1Settings, InfluxV1Writer
from ingest.influx_v2 import InfluxV2Writer
from ingest.registry import BACKENDS, open_history, open_retention, open_writer, open_writers
from ingest.retention import SQLiteRetention
from ingest.settings import STORE_KINDS, StoreSettings
from ingest.sqlite_history import SQLiteHistory
from ingest.sqlite_store import SQLiteTimeSeries
from ingest.vm_history import VictoriaMetricsHistory, vm_time

QUERY = SeriesQuery("pump", "pump-1", "suction_bar", 1_000_000, 2_000_000)


def test_every_store_name_has_a_writer_and_a_reader() -> None:
    assert set(BACKENDS) == set(STORE_KINDS) == {"sqlite", "influx-v1", "influx-v2"}


@pytest.mark.parametrize(
    ("kind", "writer_type", "reader_type"),
    [
        ("sqlite", SQLiteTimeSeries, SQLiteHistory),
        ("influx-v1", InfluxV1Writer, InfluxV1History),
        ("influx-v2", InfluxV2Writer, VictoriaMetricsHistory),
    ],
)
def test_the_registry_opens_the_chosen_store(
    kind: typing.Any, writer_type: type, reader_type: type, demo_site: Site, tmp_path: Path
) -> None:
    # nothing listens on port 1: the InfluxDB 1.x writer only warns (it spools until it can)
    settings = StoreSettings(
        kind=kind, sqlite_path=tmp_path / "ts.sqlite3", influx_url="http://127.0.0.1:1"
    )
    writer = open_writer(demo_site, settings)
    history = open_history(demo_site, settings)
    try:
        assert isinstance(writer, writer_type)
        assert isinstance(history, reader_type)
    finally:
        writer.close()
        history.close()


def test_the_settings_follow_the_settings_tree_conventions() -> None:
    """Defaults everywhere, simple types, a docstring per field (read by the settings tree)."""
    hints = typing.get_type_hints(StoreSettings)
    simple = {str, int, float, bool, Path, str | None, int | None}
    for field in dataclasses.fields(StoreSettings):
        assert field.default is not dataclasses.MISSING, field.name
        hint = hints[field.name]
        assert hint in simple or typing.get_origin(hint) is typing.Literal, field.name
    assert StoreSettings().kind == "sqlite"
    assert StoreSettings().sqlite_path == Path("var/telemetry.sqlite3")
    assert StoreSettings().sqlite_retention_days == 30
    with pytest.raises(dataclasses.FrozenInstanceError):
        StoreSettings().kind = "influx-v1"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "option", "message"),
    [
        ({"kind": "mongodb"}, "kind", "'mongodb' is not one of sqlite, influx-v1, influx-v2"),
        ({"sqlite_retention_days": -1}, "sqlite-retention-days", "0 \\(keep all\\) or more"),
        ({"sqlite_prune_interval_s": 0}, "sqlite-prune-interval-s", "more than 0"),
        ({"influx_url": "tsdb:8086"}, "influx-url", "must start with http"),
        ({"influx_query_url": "vmselect"}, "influx-query-url", "must start with http"),
        ({"influx_db": " "}, "influx-db", "must not be empty"),
        ({"influx_bucket": ""}, "influx-bucket", "must not be empty"),
        ({"influx_password": "x"}, "influx-password", "without influx-username"),
        ({"influx_query_timeout_s": 0.0}, "influx-query-timeout-s", "more than 0"),
        ({"influx_write_timeout_s": -1.0}, "influx-write-timeout-s", "more than 0"),
        ({"influx_gzip_level": -1}, "influx-gzip-level", "0 \\(not compressed\\)"),
        ({"influx_gzip_level": 10}, "influx-gzip-level", "1 \\(fastest\\) to 9"),
        ({"kind": "influx-v1", "write_connections": 0}, "write-connections", "at least 1"),
        ({"write_connections": 2}, "write-connections", "sqlite takes one writer at a time"),
    ],
)
def test_bad_settings_name_the_option(
    changes: dict[str, typing.Any], option: str, message: str
) -> None:
    with pytest.raises(SettingsError, match=f"setting {option}: .*{message}") as caught:
        StoreSettings(**changes)
    assert caught.value.setting == option


@pytest.mark.parametrize(
    ("kind", "connections", "expected"),
    [("sqlite", None, 1), ("influx-v1", None, 2), ("influx-v2", None, 2), ("influx-v2", 3, 3)],
)
def test_the_gateway_writes_through_one_writer_per_connection(
    kind: typing.Any, connections: int | None, expected: int, demo_site: Site, tmp_path: Path
) -> None:
    settings = StoreSettings(
        kind=kind, sqlite_path=tmp_path / "ts.sqlite3", influx_url="http://127.0.0.1:1",
        write_connections=connections,
    )  # fmt: skip
    writers = open_writers(demo_site, settings)
    try:
        assert len(writers) == settings.connections == expected
        assert len({id(w) for w in writers}) == expected  # each its own connection / session
    finally:
        for writer in writers:
            writer.close()


def test_retention_is_for_the_embedded_store_only(demo_site: Site, tmp_path: Path) -> None:
    settings = StoreSettings(sqlite_path=tmp_path / "ts.sqlite3", sqlite_prune_interval_s=60)
    sqlite = open_writer(demo_site, settings)
    influx = open_writer(
        demo_site, StoreSettings(kind="influx-v2", influx_url="http://127.0.0.1:1")
    )
    try:
        retention = open_retention(sqlite, settings)
        assert isinstance(retention, SQLiteRetention)
        assert (retention.retention_ms, retention.interval_s) == (30 * 86_400_000, 60)
        assert (
            open_retention(sqlite, dataclasses.replace(settings, sqlite_retention_days=0)) is None
        )
        assert open_retention(influx, settings) is None  # InfluxDB keeps its own
    finally:
        sqlite.close()
        influx.close()


@pytest.mark.parametrize("kind", ["influx-v1", "influx-v2"])
def test_the_gzip_level_reaches_the_line_protocol_writer(demo_site: Site, kind: str) -> None:
    settings = StoreSettings(kind=kind, influx_url="http://127.0.0.1:1", influx_gzip_level=6)  # type: ignore[arg-type]
    writer = open_writer(demo_site, settings)
    try:
        assert writer._gzip_level == 6  # type: ignore[attr-defined]
    finally:
        writer.close()


# -- the HTTP readers' answers, through httpx's MockTransport ----------------------------------

Handler = Callable[[httpx.Request], httpx.Response]


def _influx(demo_site: Site, handler: Handler) -> InfluxV1History:
    return InfluxV1History(
        demo_site,
        InfluxV1Settings(url="http://influx.test", database="facility", username="u", password="p"),
        transport=httpx.MockTransport(handler),
    )


def _vm(demo_site: Site, handler: Handler) -> VictoriaMetricsHistory:
    return VictoriaMetricsHistory(
        demo_site, url="http://vm.test", token="t", transport=httpx.MockTransport(handler)
    )


def test_influxql_is_scoped_to_the_site_and_sent_with_credentials(demo_site: Site) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"results": [{"statement_id": 0}]})

    assert _influx(demo_site, handler).raw(QUERY) == []
    (request,) = seen
    assert request.headers["Authorization"].startswith("Basic ")
    assert request.url.params["db"] == "facility"
    assert request.url.params["q"] == (
        'SELECT "suction_bar" FROM "pump" WHERE "site" = \'shangri-la\' AND "device" = '
        "'pump-1' AND time >= 1000000ms AND time < 2000000ms ORDER BY time ASC LIMIT 1000"
    )


@pytest.mark.parametrize(
    ("response", "error", "message"),
    [
        (httpx.Response(400, json={"error": "error parsing query"}), HistoryQueryError,
         "refused the query: error parsing query"),
        (httpx.Response(200, json={"results": [{"error": "field type conflict"}]}),
         HistoryQueryError, "field type conflict"),
        (httpx.Response(200, json={"results": [{"error": "database not found: facility"}]}),
         StoreUnavailableError, "database not found"),
        (httpx.Response(401, json={"error": "authorization failed"}), StoreUnavailableError,
         "refused our credentials: authorization failed"),
        (httpx.Response(503, text="busy"), StoreUnavailableError, "failed: busy"),
        (httpx.Response(200, text="<html>"), StoreUnavailableError, "no JSON"),
    ],
)  # fmt: skip
def test_influxdb_answers_become_our_errors(
    demo_site: Site, response: httpx.Response, error: type[Exception], message: str
) -> None:
    history = _influx(demo_site, lambda _request: response)
    with pytest.raises(error, match=message):
        history.raw(QUERY)


def test_the_export_api_is_asked_for_one_series_in_the_range(demo_site: Site) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        line = (
            '{"metric":{"__name__":"pump_suction_bar","device":"pump-1"},'
            '"values":[2.5,1.5,1.5,9],"timestamps":[1001000,1000000,1000000,2000000]}\n'
        )
        return httpx.Response(200, text=line)

    points = _vm(demo_site, handler).raw(QUERY)
    assert [(p.ts_ms, p.value) for p in points] == [(1_000_000, 1.5), (1_001_000, 2.5)]
    request = seen[0]
    assert request.url.path == "/api/v1/export"
    assert request.headers["Authorization"] == "Token t"
    assert request.url.params["match[]"] == (
        '{__name__="pump_suction_bar",site="shangri-la",device="pump-1"}'
    )
    assert (request.url.params["start"], request.url.params["end"]) == ("1000.000", "1999.999")


@pytest.mark.parametrize(
    ("response", "error", "message"),
    [
        (httpx.Response(400, text="cannot parse match[]"), HistoryQueryError,
         "refused the query: cannot parse match"),
        (httpx.Response(404, text="404 page not found"), StoreUnavailableError,
         "no /api/v1/export: set influx-query-url"),
        (httpx.Response(403, text="forbidden"), StoreUnavailableError, "refused our credentials"),
        (httpx.Response(502, text="bad gateway"), StoreUnavailableError, "failed: bad gateway"),
        (httpx.Response(200, text="<html>"), StoreUnavailableError, "no JSON lines"),
    ],
)  # fmt: skip
def test_export_answers_become_our_errors(
    demo_site: Site, response: httpx.Response, error: type[Exception], message: str
) -> None:
    history = _vm(demo_site, lambda _request: response)
    with pytest.raises(error, match=message):
        history.downsampled(QUERY, interval_ms=60_000)
    with pytest.raises(error, match=message):
        history.batch(QUERY.start_ms, QUERY.end_ms)


def test_export_times_are_exact_milliseconds() -> None:
    assert vm_time(1_789_999_980_001) == "1789999980.001"
    assert vm_time(999) == "0.999"


@pytest.mark.parametrize(
    ("url", "level"),
    [
        ("http://127.0.0.1:8086", 0),
        ("http://127.1.2.3:8086", 0),
        ("http://[::1]:8086", 0),
        ("http://localhost:8086", 0),
        ("https://influx.localhost", 0),
        ("http://10.0.0.5:8086", 1),
        ("https://influx.example.com", 1),
        ("http://[2001:db8::1]:8086", 1),
        ("http://localhost.example.com:8086", 1),
    ],
)
def test_without_a_gzip_level_bodies_to_this_host_go_plain_and_others_gzipped(
    url: str, level: int
) -> None:
    assert StoreSettings(kind="influx-v1", influx_url=url).gzip_level == level


def test_a_gzip_level_given_is_kept_for_this_host_too() -> None:
    given = StoreSettings(kind="influx-v1", influx_url="http://127.0.0.1:1", influx_gzip_level=1)
    assert given.gzip_level == 1
    remote = StoreSettings(kind="influx-v1", influx_url="http://10.0.0.5", influx_gzip_level=0)
    assert remote.gzip_level == 0


@pytest.mark.parametrize("kind", ["influx-v1", "influx-v2"])
def test_a_writer_to_this_host_sends_plain_bodies_by_default(demo_site: Site, kind: str) -> None:
    settings = StoreSettings(kind=kind, influx_url="http://127.0.0.1:1")  # type: ignore[arg-type]
    writer = open_writer(demo_site, settings)
    try:
        assert writer._gzip_level == 0  # type: ignore[attr-defined]
    finally:
        writer.close()
