"""One contract for history readers, run against every store in `ingest.registry`: the embedded
SQLite file, a real InfluxDB 1.x (influxd) and a real VictoriaMetrics standing in for the
InfluxDB 2.x/3.x-style store. The data goes in through the registry's writer, as the gateway
writes it, and comes back through the registry's reader, as the charts and the backtest read it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import numpy as np
import pytest

from facility.batch import Batch, KindBatch
from facility.catalog import PUMP
from facility.portfolio import load_portfolio
from facility.site import Site, parse_site
from ingest.errors import StoreUnavailableError
from ingest.history import HistoryQueryError, HistoryReader, SeriesQuery
from ingest.registry import open_history, open_writer
from ingest.settings import StoreKind, StoreSettings
from tests.portfolio_sites import ESTATES, write_estates
from tests.services import ServiceProcess, free_port, start_influxd, start_victoria_metrics

T0 = 1_789_999_980_000  # a multiple of 60 s, so buckets start at T0
N = 600


def pump_history(site: Site) -> Batch:
    """pump-1: suction_bar = (i % 60) / 10, running on for 10 s, off for 10 s; pump-2: 9.9."""
    rows = []
    for device_id, constant in (("pump-1", None), ("pump-2", 9.9)):
        index = site.by_id[device_id].kind_index
        i = np.arange(N)
        values = np.full((N, len(PUMP.fields)), np.nan)
        values[:, PUMP.col("suction_bar")] = (i % 60) / 10 if constant is None else constant
        values[:, PUMP.col("running")] = (i // 10) % 2 == 0
        rows.append(
            KindBatch(
                PUMP,
                np.full(N, index, np.int32),
                T0 + i.astype(np.int64) * 1000,
                i.astype(np.int64) + 1,
                values,
            )
        )
    return Batch(site.id, {"pump": KindBatch.concat(PUMP, rows)})


@dataclass
class Backend:
    kind: StoreKind
    settings: StoreSettings
    service: ServiceProcess | None = None


BACKENDS = [
    "sqlite",
    pytest.param("influx-v1", marks=pytest.mark.integration),
    pytest.param("influx-v2", marks=pytest.mark.integration),
]


@pytest.fixture(scope="module", params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, demo_site: Site
) -> Iterator[Backend]:
    """A store of each kind holding `pump_history`, written through the registry twice (a
    replay must not change what is read)."""
    kind: StoreKind = request.param
    workdir = tmp_path_factory.mktemp(kind)
    service = None
    if kind == "influx-v1":
        service = start_influxd(workdir / "influxd")
    elif kind == "influx-v2":
        service = start_victoria_metrics(workdir / "victoria-metrics")
    url = f"http://127.0.0.1:{service.port}" if service else "http://127.0.0.1:1"
    settings = StoreSettings(
        kind=kind, sqlite_path=workdir / "ts.sqlite3", influx_url=url, influx_db="h",
        influx_bucket="telemetry", influx_token="not-checked-by-victoria-metrics",
    )  # fmt: skip
    try:
        writer = open_writer(demo_site, settings)
        batch = pump_history(demo_site)
        for _replay in range(2):
            assert writer.write(batch).written == 2 * N
        writer.close()
        if service is not None and kind == "influx-v2":  # searchable now, not in a second
            httpx.get(f"{url}/internal/force_flush", timeout=10).raise_for_status()
        yield Backend(kind, settings, service)
    finally:
        if service is not None:
            service.stop()


@pytest.fixture
def store(backend: Backend, demo_site: Site) -> Iterator[HistoryReader]:
    history = open_history(demo_site, backend.settings)
    yield history
    history.close()


def q(
    field: str = "suction_bar", start: int = T0, end: int = T0 + N * 1000, device: str = "pump-1"
) -> SeriesQuery:
    return SeriesQuery("pump", device, field, start, end)


# -- raw points and buckets (the charts) ------------------------------------------------------


def test_raw_points_in_range_oldest_first(store: HistoryReader) -> None:
    points = store.raw(q(start=T0 + 5000, end=T0 + 9000))
    assert [(p.ts_ms, p.value) for p in points] == [
        (T0 + 5000, 0.5), (T0 + 6000, 0.6), (T0 + 7000, 0.7), (T0 + 8000, 0.8),
    ]  # fmt: skip


def test_raw_respects_limit_and_device(store: HistoryReader) -> None:
    first = store.raw(q(), limit=25)
    assert [p.ts_ms for p in first] == [T0 + i * 1000 for i in range(25)]
    assert {p.value for p in store.raw(q(device="pump-2"), limit=50)} == {9.9}
    assert store.raw(q(device="pump-3")) == []
    assert len(store.raw(q(), limit=10_000)) == N  # a replay is read once


def test_a_long_range_reads_the_first_points(store: HistoryReader) -> None:
    points = store.raw(q(start=T0 - 40 * 86_400_000, end=T0 + 86_400_000), limit=3)
    assert [(p.ts_ms, p.value) for p in points] == [(T0, 0.0), (T0 + 1000, 0.1), (T0 + 2000, 0.2)]


def test_booleans_come_back_as_0_and_1(store: HistoryReader) -> None:
    points = store.raw(q("running", T0 + 8000, T0 + 12_000))
    assert [p.value for p in points] == [1.0, 1.0, 0.0, 0.0]


def test_downsampled_mean_min_max_count_per_minute(store: HistoryReader) -> None:
    buckets = store.downsampled(q(end=T0 + 180_000), interval_ms=60_000)
    assert [(b.start_ms, b.count, b.min, b.max) for b in buckets] == [
        (T0, 60, 0.0, 5.9), (T0 + 60_000, 60, 0.0, 5.9), (T0 + 120_000, 60, 0.0, 5.9),
    ]  # fmt: skip
    assert [round(b.mean, 6) for b in buckets] == [2.95, 2.95, 2.95]


def test_downsampled_over_days_in_hours(store: HistoryReader) -> None:
    hour = 3_600_000
    buckets = store.downsampled(q(start=T0 - 2 * 86_400_000, end=T0 + 86_400_000), interval_ms=hour)
    assert [(b.start_ms, b.count, b.min, b.max) for b in buckets] == [
        (T0 // hour * hour, N, 0.0, 5.9)
    ]
    assert round(buckets[0].mean, 6) == 2.95


def test_downsampled_range_edges_cut_buckets(store: HistoryReader) -> None:
    buckets = store.downsampled(q(start=T0 + 30_000, end=T0 + 90_000), interval_ms=60_000)
    assert [(b.start_ms, b.count, b.min, b.max) for b in buckets] == [
        (T0, 30, 3.0, 5.9), (T0 + 60_000, 30, 0.0, 2.9),
    ]  # fmt: skip


def test_downsampled_booleans_give_the_on_fraction(store: HistoryReader) -> None:
    buckets = store.downsampled(q("running", T0, T0 + 40_000), interval_ms=20_000)
    assert [(b.start_ms, b.mean, b.min, b.max, b.count) for b in buckets] == [
        (T0, 0.5, 0.0, 1.0, 20), (T0 + 20_000, 0.5, 0.0, 1.0, 20),
    ]  # fmt: skip
    on, off = store.downsampled(q("running", T0, T0 + 20_000), interval_ms=10_000)
    assert (on.mean, on.min, on.max, off.mean, off.min, off.max) == (1, 1, 1, 0, 0, 0)


def test_empty_ranges_are_empty(store: HistoryReader) -> None:
    assert store.raw(q(start=T0 - 10_000, end=T0)) == []
    assert store.downsampled(q(start=T0 + N * 1000, end=T0 + N * 2000), interval_ms=60_000) == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (q("colour"), "no field 'colour'"),
        (q(start=T0, end=T0), "after its start"),
        (SeriesQuery("boiler", "pump-1", "x", T0, T0 + 1), "unknown kind"),
    ],
)
def test_bad_queries_are_refused(store: HistoryReader, query: SeriesQuery, message: str) -> None:
    with pytest.raises(HistoryQueryError, match=message):
        store.raw(query)
    with pytest.raises(HistoryQueryError, match=message):
        store.downsampled(query, interval_ms=60_000)


def test_bounds_on_points_and_buckets(store: HistoryReader) -> None:
    with pytest.raises(HistoryQueryError, match="limit"):
        store.raw(q(), limit=0)
    with pytest.raises(HistoryQueryError, match="buckets"):
        store.downsampled(q(end=T0 + 86_400_000), interval_ms=1000)
    with pytest.raises(HistoryQueryError, match="at least 1 s"):
        store.downsampled(q(), interval_ms=10)


# -- every reading of a range (the backtest) ---------------------------------------------------


def test_batch_holds_every_reading_in_the_range(
    store: HistoryReader, backend: Backend, demo_site: Site
) -> None:
    batch = store.batch(T0 + 5000, T0 + 15_000)
    assert batch.site_id == demo_site.id
    assert list(batch.kinds) == ["pump"]
    kb = batch.kinds["pump"]
    kb = kb.take(np.lexsort((kb.ts_ms, kb.device)))
    pump_1, pump_2 = (demo_site.by_id[d].kind_index for d in ("pump-1", "pump-2"))
    assert kb.device.tolist() == [pump_1] * 10 + [pump_2] * 10
    assert kb.ts_ms.tolist() == [T0 + i * 1000 for i in range(5, 15)] * 2
    suction = kb.column("suction_bar").tolist()
    assert suction == pytest.approx([i / 10 for i in range(5, 15)] + [9.9] * 10)
    assert kb.column("running").tolist() == ([1.0] * 5 + [0.0] * 5) * 2
    others = np.delete(kb.values, [PUMP.col("suction_bar"), PUMP.col("running")], axis=1)
    assert np.isnan(others).all()  # fields never reported stay empty
    seq = kb.seq.tolist()
    # only the embedded store keeps sequence numbers
    assert seq == (list(range(6, 16)) * 2 if backend.kind == "sqlite" else [0] * 20)


def test_batch_of_an_empty_range_is_empty(store: HistoryReader) -> None:
    assert len(store.batch(T0 - 60_000, T0)) == 0
    assert len(store.batch(T0 + N * 1000, T0 + N * 1000 + 60_000)) == 0
    with pytest.raises(HistoryQueryError, match="after its start"):
        store.batch(T0, T0)


def test_batch_leaves_out_devices_no_longer_in_the_site(backend: Backend, demo_site: Site) -> None:
    smaller = parse_site(f"""
[site]
id = "{demo_site.id}"
timezone = "Asia/Shanghai"

[[buildings]]
id = "b1"

[[buildings.units]]
id = "pump-room"
devices = [{{ id = "pump-2", kind = "pump", name = "Booster pump 2" }}]
""")
    history = open_history(smaller, backend.settings)
    try:
        kb = history.batch(T0, T0 + 10_000).kinds["pump"]
    finally:
        history.close()
    if backend.kind == "influx-v1":  # a server without the database: nothing written yet
        history = open_history(demo_site, replace(backend.settings, influx_db="never_written"))
        try:
            with pytest.raises(StoreUnavailableError, match="database not found"):
                history.raw(q())
            with pytest.raises(StoreUnavailableError, match="database not found"):
                history.batch(T0, T0 + 1000)
        finally:
            history.close()
    assert kb.device.tolist() == [0] * 10
    assert kb.column("suction_bar").tolist() == pytest.approx([9.9] * 10)


# -- a store that is not there ----------------------------------------------------------------


def test_an_unreachable_or_empty_store_is_a_clear_error(
    backend: Backend, demo_site: Site, tmp_path: Path
) -> None:
    settings = replace(
        backend.settings,
        sqlite_path=tmp_path / "never-written.sqlite3",
        influx_url=f"http://127.0.0.1:{free_port()}",
    )
    history = open_history(demo_site, settings)  # contacts nothing yet
    message = "no time-series store at" if backend.kind == "sqlite" else "unreachable"
    try:
        with pytest.raises(StoreUnavailableError, match=message):
            history.raw(q())
        with pytest.raises(StoreUnavailableError, match=message):
            history.downsampled(q(), interval_ms=60_000)
        with pytest.raises(StoreUnavailableError, match=message):
            history.batch(T0, T0 + 1000)
    finally:
        history.close()
    if backend.kind == "influx-v1":  # a server without the database: nothing written yet
        history = open_history(demo_site, replace(backend.settings, influx_db="never_written"))
        try:
            with pytest.raises(StoreUnavailableError, match="database not found"):
                history.raw(q())
            with pytest.raises(StoreUnavailableError, match="database not found"):
                history.batch(T0, T0 + 1000)
        finally:
            history.close()


def write(backend: Backend, site: Site, pumps: KindBatch) -> None:
    """Pump readings written as the gateway of `site` writes them, searchable at once."""
    writer = open_writer(site, backend.settings)
    assert writer.write(Batch(site.id, {"pump": pumps})).written == len(pumps)
    writer.close()
    if backend.service is not None and backend.kind == "influx-v2":
        url = f"http://127.0.0.1:{backend.service.port}"
        httpx.get(f"{url}/internal/force_flush", timeout=10).raise_for_status()


def test_a_portfolios_colliding_ids_are_read_back_each_on_its_estate(
    backend: Backend, tmp_path: Path
) -> None:
    """Three estates' `b03-pump`, written as the gateway writes a portfolio (`site` tag = the
    estate, scoped ids): each is read back by its scoped id, and the backtest's batch puts
    each reading on its own estate's row."""
    portfolio = load_portfolio(write_estates(tmp_path / "sites"))
    start = T0 + 10 * N * 1000  # after `pump_history`, which the store also holds
    rows = np.array([d.kind_index for d in portfolio.by_kind["pump"]], np.int32)
    values = np.full((len(rows), len(PUMP.fields)), np.nan)
    values[:, PUMP.col("suction_bar")] = [1.0, 2.0, 3.0]
    kb = KindBatch(
        PUMP, rows, np.full(len(rows), start, np.int64), np.ones(len(rows), np.int64), values
    )
    write(backend, portfolio, kb)
    history = open_history(portfolio, backend.settings)
    try:
        read = {
            s: [
                p.value
                for p in history.raw(q(start=start, end=start + 1000, device=f"{s}:b03-pump"))
            ]
            for s in ESTATES
        }
        batch = history.batch(start, start + 1000)
    finally:
        history.close()
    assert read == {"alpha": [1.0], "beta": [2.0], "gamma": [3.0]}
    pumps = batch.kinds["pump"]
    got = {
        portfolio.by_kind["pump"][int(d)].id: float(v)
        for d, v in zip(pumps.device, pumps.column("suction_bar"), strict=True)
    }
    assert got == {"alpha:b03-pump": 1.0, "beta:b03-pump": 2.0, "gamma:b03-pump": 3.0}


TAGGED = [  # the stores whose series carry the `site` tag (SQLite's table has no site column)
    pytest.param("influx-v1", marks=pytest.mark.integration),
    pytest.param("influx-v2", marks=pytest.mark.integration),
]


@pytest.mark.parametrize("backend", TAGGED, indirect=True)
def test_an_estates_history_from_before_the_portfolio_is_read_by_its_scoped_id(
    backend: Backend, tmp_path: Path
) -> None:
    """Each estate ran alone first (plain `b03-pump`, `site` tag = the estate), then joined
    a portfolio (`facility db scope-ids`; the gateway now writes `alpha:b03-pump`). The
    charts of `alpha:b03-pump` show both eras and no other estate's pump; the backtest's batch
    puts every reading, old or new, on its own estate's row."""
    directory = write_estates(tmp_path / "sites")
    portfolio = load_portfolio(directory)
    start = T0 + 20 * N * 1000  # after what the other tests wrote
    before = {s: float(i + 1) for i, s in enumerate(ESTATES)}  # alpha 1, beta 2, gamma 3
    for estate, value in before.items():
        alone = parse_site((directory / f"{estate}.toml").read_text(encoding="utf-8"))
        values = np.full((1, len(PUMP.fields)), np.nan)
        values[:, PUMP.col("suction_bar")] = value
        kb = KindBatch(
            PUMP,
            np.array([alone.by_id["b03-pump"].kind_index], np.int32),
            np.array([start], np.int64),
            np.ones(1, np.int64),
            values,
        )
        write(backend, alone, kb)
    rows = np.array([d.kind_index for d in portfolio.by_kind["pump"]], np.int32)
    values = np.full((len(rows), len(PUMP.fields)), np.nan)
    values[:, PUMP.col("suction_bar")] = [v + 10 for v in before.values()]  # 11, 12, 13
    kb = KindBatch(
        PUMP, rows, np.full(len(rows), start + 1000, np.int64), np.ones(len(rows), np.int64),
        values,
    )  # fmt: skip
    write(backend, portfolio, kb)
    history = open_history(portfolio, backend.settings)
    try:
        raw = {
            s: [p.value for p in history.raw(q(start=start, end=start + 2000,
                                               device=f"{s}:b03-pump"))]
            for s in ESTATES
        }  # fmt: skip
        buckets = history.downsampled(
            q(start=start // 60_000 * 60_000, end=start // 60_000 * 60_000 + 120_000,
              device="beta:b03-pump"),
            interval_ms=60_000,
        )  # fmt: skip
        batch = history.batch(start, start + 2000)
    finally:
        history.close()
    assert raw == {"alpha": [1.0, 11.0], "beta": [2.0, 12.0], "gamma": [3.0, 13.0]}
    assert [(b.min, b.max, b.count) for b in buckets] == [(2.0, 12.0, 2)]
    pumps = batch.kinds["pump"]
    got = sorted(
        (portfolio.by_kind["pump"][int(d)].id, int(ts), float(v))
        for d, ts, v in zip(pumps.device, pumps.ts_ms, pumps.column("suction_bar"), strict=True)
    )
    assert got == sorted(
        [(f"{s}:b03-pump", start, v) for s, v in before.items()]
        + [(f"{s}:b03-pump", start + 1000, v + 10) for s, v in before.items()]
    )
