"""One contract for history queries, run against every store that answers them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from facility.batch import Batch, KindBatch
from facility.catalog import PUMP
from facility.site import Site
from ingest.history import HistoryQueryError, HistoryStore, SeriesQuery
from ingest.influx_history import InfluxV1History
from ingest.influx_v1 import InfluxV1Settings, InfluxV1Writer
from ingest.sqlite_history import SQLiteHistory
from ingest.sqlite_store import SQLiteTimeSeries
from tests.services import start_influxd

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


Backend = Callable[[Batch], HistoryStore]


@pytest.fixture(params=["sqlite", pytest.param("influxdb", marks=pytest.mark.integration)])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, demo_site: Site
) -> Iterator[HistoryStore]:
    batch = pump_history(demo_site)
    if request.param == "sqlite":
        writer = SQLiteTimeSeries(demo_site, tmp_path / "ts.sqlite3")
        writer.write(batch)
        writer.close()
        history = SQLiteHistory(tmp_path / "ts.sqlite3")
        yield history
        history.close()
        return
    influxd = start_influxd(tmp_path / "influxd")
    try:
        influx = InfluxV1Writer(
            demo_site, InfluxV1Settings(url=f"http://127.0.0.1:{influxd.port}", database="h")
        )
        influx.ensure_database()
        assert influx.write(batch).written == 2 * N
        influx.close()
        influx_history = InfluxV1History(f"http://127.0.0.1:{influxd.port}", "h")
        yield influx_history
        influx_history.close()
    finally:
        influxd.stop()


def q(
    field: str = "suction_bar", start: int = T0, end: int = T0 + N * 1000, device: str = "pump-1"
) -> SeriesQuery:
    return SeriesQuery("pump", device, field, start, end)


def test_raw_points_in_range_oldest_first(store: HistoryStore) -> None:
    points = store.raw(q(start=T0 + 5000, end=T0 + 9000))
    assert [(p.ts_ms, p.value) for p in points] == [
        (T0 + 5000, 0.5), (T0 + 6000, 0.6), (T0 + 7000, 0.7), (T0 + 8000, 0.8),
    ]  # fmt: skip


def test_raw_respects_limit_and_device(store: HistoryStore) -> None:
    assert len(store.raw(q(), limit=25)) == 25
    assert {p.value for p in store.raw(q(device="pump-2"), limit=50)} == {9.9}
    assert store.raw(q(device="pump-3")) == []


def test_booleans_come_back_as_0_and_1(store: HistoryStore) -> None:
    points = store.raw(q("running", T0 + 8000, T0 + 12_000))
    assert [p.value for p in points] == [1.0, 1.0, 0.0, 0.0]


def test_downsampled_mean_min_max_count_per_minute(store: HistoryStore) -> None:
    buckets = store.downsampled(q(end=T0 + 180_000), interval_ms=60_000)
    assert [(b.start_ms, b.count, b.min, b.max) for b in buckets] == [
        (T0, 60, 0.0, 5.9), (T0 + 60_000, 60, 0.0, 5.9), (T0 + 120_000, 60, 0.0, 5.9),
    ]  # fmt: skip
    assert [round(b.mean, 6) for b in buckets] == [2.95, 2.95, 2.95]


def test_downsampled_range_edges_cut_buckets(store: HistoryStore) -> None:
    buckets = store.downsampled(q(start=T0 + 30_000, end=T0 + 90_000), interval_ms=60_000)
    assert [(b.start_ms, b.count, b.min, b.max) for b in buckets] == [
        (T0, 30, 3.0, 5.9), (T0 + 60_000, 30, 0.0, 2.9),
    ]  # fmt: skip


def test_downsampled_booleans_give_the_on_fraction(store: HistoryStore) -> None:
    buckets = store.downsampled(q("running", T0, T0 + 40_000), interval_ms=20_000)
    assert [(b.start_ms, b.mean, b.min, b.max, b.count) for b in buckets] == [
        (T0, 0.5, 0.0, 1.0, 20), (T0 + 20_000, 0.5, 0.0, 1.0, 20),
    ]  # fmt: skip


def test_empty_ranges_are_empty(store: HistoryStore) -> None:
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
def test_bad_queries_are_refused(store: HistoryStore, query: SeriesQuery, message: str) -> None:
    with pytest.raises(HistoryQueryError, match=message):
        store.raw(query)


def test_bounds_on_points_and_buckets(store: HistoryStore) -> None:
    with pytest.raises(HistoryQueryError, match="limit"):
        store.raw(q(), limit=0)
    with pytest.raises(HistoryQueryError, match="buckets"):
        store.downsampled(q(end=T0 + 86_400_000), interval_ms=1000)
    with pytest.raises(HistoryQueryError, match="at least 1 s"):
        store.downsampled(q(), interval_ms=10)
