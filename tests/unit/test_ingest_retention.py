"""Retention of the embedded store: readings past their age are deleted in bounded chunks, newer
ones and other devices' are untouched, and the periodic pass prunes by the clock."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from facility.batch import Batch, KindBatch
from facility.catalog import KINDS, PUMP
from facility.site import Site, parse_site
from ingest.registry import open_retention
from ingest.retention import SQLiteRetention
from ingest.settings import StoreSettings
from ingest.sqlite_store import SQLiteTimeSeries, table_name
from tests.fakes import FakeClock

DAY_MS = 86_400_000
T0 = 1_789_999_980_000


def readings(site: Site, device_ids: list[str], ts_ms: list[int]) -> Batch:
    """One pump reading per device and timestamp (suction_bar = its timestamp in days)."""
    parts = []
    for device_id in device_ids:
        values = np.full((len(ts_ms), len(PUMP.fields)), np.nan)
        values[:, PUMP.col("suction_bar")] = np.array(ts_ms) / DAY_MS
        parts.append(
            KindBatch(
                PUMP,
                np.full(len(ts_ms), site.by_id[device_id].kind_index, np.int32),
                np.array(ts_ms, np.int64),
                np.arange(len(ts_ms), dtype=np.int64),
                values,
            )
        )
    return Batch(site.id, {"pump": KindBatch.concat(PUMP, parts)})


def stored(path: Path) -> dict[str, list[int]]:
    with sqlite3.connect(path) as db:
        rows = db.execute(f"SELECT device, ts_ms FROM {table_name('pump')} ORDER BY 1, 2")
        out: dict[str, list[int]] = {}
        for device, ts in rows:
            out.setdefault(device, []).append(ts)
    return out


@pytest.fixture
def store(demo_site: Site, tmp_path: Path) -> Iterator[SQLiteTimeSeries]:
    series = SQLiteTimeSeries(demo_site, tmp_path / "ts.sqlite3")
    yield series
    series.close()


def test_prune_deletes_only_what_is_older_in_chunks(
    store: SQLiteTimeSeries, demo_site: Site
) -> None:
    hours = [T0 + h * 3_600_000 for h in range(100)]
    store.write(readings(demo_site, ["pump-1", "pump-2", "pump-3"], hours))
    cutoff = hours[37]
    # 37 old readings per pump, 7 rows per transaction: six chunks each, the last one partial
    assert store.prune(cutoff, chunk_rows=7) == 3 * 37
    assert stored(store.path) == {d: hours[37:] for d in ("pump-1", "pump-2", "pump-3")}
    assert store.prune(cutoff, chunk_rows=7) == 0  # nothing left to do
    assert store.prune(hours[40], chunk_rows=3) == 3 * 3  # an exact multiple of the chunk
    assert store.count("pump") == 3 * 60
    for kind in KINDS:  # the other tables are empty and stay so
        assert kind == "pump" or store.count(kind) == 0


def test_prune_also_reaches_devices_no_longer_in_the_site(demo_site: Site, tmp_path: Path) -> None:
    path = tmp_path / "ts.sqlite3"
    old = SQLiteTimeSeries(demo_site, path)
    old.write(readings(demo_site, ["pump-3"], [T0, T0 + 1000]))
    old.close()
    smaller = parse_site(f"""
[site]
id = "{demo_site.id}"
timezone = "Asia/Shanghai"

[[buildings]]
id = "b1"

[[buildings.units]]
id = "pump-room"
devices = [{{ id = "pump-1", kind = "pump", name = "Booster pump 1" }}]
""")
    store = SQLiteTimeSeries(smaller, path)
    try:
        store.write(readings(smaller, ["pump-1"], [T0, T0 + 5000]))
        assert store.prune(T0 + 2000) == 3
        assert stored(path) == {"pump-1": [T0 + 5000]}
    finally:
        store.close()


def test_writes_go_on_between_and_after_prunes(store: SQLiteTimeSeries, demo_site: Site) -> None:
    store.write(readings(demo_site, ["pump-1"], [T0, T0 + 1000]))
    assert store.prune(T0 + 1000, chunk_rows=1) == 1
    store.write(readings(demo_site, ["pump-1"], [T0 + 2000]))
    assert stored(store.path) == {"pump-1": [T0 + 1000, T0 + 2000]}
    with pytest.raises(ValueError, match="at least 1"):
        store.prune(T0, chunk_rows=0)


def test_the_periodic_pass_prunes_what_the_clock_says_is_past_retention(
    store: SQLiteTimeSeries, demo_site: Site
) -> None:
    days = [T0 + d * DAY_MS for d in range(40)]
    store.write(readings(demo_site, ["pump-1"], days))
    clock = FakeClock(days[-1])
    retention = open_retention(
        store, StoreSettings(sqlite_path=store.path, sqlite_retention_days=30), clock_ms=clock
    )
    assert isinstance(retention, SQLiteRetention)
    assert retention.run_once() == 9  # days 0-8 are more than 30 days before day 39
    assert stored(store.path)["pump-1"][0] == days[9]
    assert retention.run_once() == 0
    clock.now += DAY_MS
    assert retention.run_once() == 1


def test_a_failing_pass_is_logged_and_tried_again(
    store: SQLiteTimeSeries, demo_site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    store.write(readings(demo_site, ["pump-1"], [T0]))
    retention = SQLiteRetention(
        store, retention_ms=DAY_MS, interval_s=60, clock_ms=FakeClock(T0 + 2 * DAY_MS)
    )
    blocker = sqlite3.connect(store.path, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the database
    try:
        with caplog.at_level("WARNING"):
            assert retention.run_once() == 0
    finally:
        blocker.rollback()
        blocker.close()
    assert "pruning" in caplog.text
    assert "trying again later" in caplog.text
    assert retention.run_once() == 1
