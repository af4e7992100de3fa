"""The embedded time-series store: one SQLite table per kind, keyed by device and timestamp.

Used by the demo and by small installations without InfluxDB. `INSERT OR REPLACE` on the
(device, ts_ms) key makes replays harmless; WAL with synchronous=FULL makes a returned
`handle` durable, which is what lets the gateway ack. `prune` deletes what is past its
retention (`ingest.retention` calls it periodically).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import numpy as np

from facility.batch import Batch, KindBatch
from facility.catalog import KINDS, KindSpec
from facility.site import SCOPE_SEPARATOR, Site, scoped_id
from ingest.errors import StoreUnavailableError
from ingest.interface import WriteResult

PRUNE_CHUNK_ROWS = 5000
"""Rows one pruning transaction deletes at most: a write waits for one chunk, never a purge."""


def table_name(kind: str) -> str:
    return f"ts_{kind}"


def _create_sql(spec: KindSpec) -> str:
    columns = ", ".join(f'"{f.name}" REAL' for f in spec.fields)
    return (
        f"CREATE TABLE IF NOT EXISTS {table_name(spec.name)} "
        f"(device TEXT NOT NULL, ts_ms INTEGER NOT NULL, seq INTEGER NOT NULL, {columns}, "
        "PRIMARY KEY (device, ts_ms)) WITHOUT ROWID"
    )


class SQLiteTimeSeries:
    name = "sqlite"

    def __init__(self, site: Site, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        for spec in KINDS.values():
            self._db.execute(_create_sql(spec))
        self._device_ids = {
            name: np.array(site.device_ids(name) or ("",), dtype=object) for name in KINDS
        }
        self._insert = {
            spec.name: (
                f"INSERT OR REPLACE INTO {table_name(spec.name)} VALUES "
                f"(?, ?, ?, {', '.join('?' * len(spec.fields))})"
            )
            for spec in KINDS.values()
        }

    def _rows(self, kb: KindBatch) -> list[tuple[object, ...]]:
        values = kb.values.astype(object)
        values[np.isnan(kb.values)] = None
        columns = [
            self._device_ids[kb.kind.name][kb.device].tolist(),
            kb.ts_ms.tolist(),
            kb.seq.tolist(),
            *values.T.tolist(),
        ]
        return list(zip(*columns, strict=True))

    def write(self, batch: Batch) -> WriteResult:
        with self._lock:
            try:
                self._db.execute("BEGIN")
                try:
                    for kb in batch:
                        self._db.executemany(self._insert[kb.kind.name], self._rows(kb))
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.OperationalError as exc:  # locked, disk full, I/O error: retry later
                raise StoreUnavailableError(f"SQLite store {self.path}: {exc}") from exc
        return WriteResult(len(batch))

    def ping(self) -> None:
        with self._lock:
            try:
                self._db.execute("SELECT 1").fetchone()
            except sqlite3.Error as exc:
                raise StoreUnavailableError(f"SQLite store {self.path}: {exc}") from exc

    def prune(self, older_than_ms: int, *, chunk_rows: int = PRUNE_CHUNK_ROWS) -> int:
        """Delete every reading older than `older_than_ms`; how many were deleted.

        Device by device along the (device, ts_ms) key, at most `chunk_rows` rows per
        transaction, taking the writer's lock per chunk only, so writes go on in between.
        """
        if chunk_rows < 1:
            raise ValueError("chunk_rows must be at least 1")
        deleted = 0
        for spec in KINDS.values():
            table = table_name(spec.name)
            delete = (
                f"DELETE FROM {table} WHERE device = ?1 AND ts_ms < coalesce((SELECT ts_ms "
                f"FROM {table} WHERE device = ?1 AND ts_ms < ?2 ORDER BY ts_ms LIMIT 1 "
                "OFFSET ?3), ?2)"
            )
            for device in self._stored_devices(table):
                while True:
                    with self._lock:
                        try:
                            rows = self._db.execute(delete, (device, older_than_ms, chunk_rows))
                        except sqlite3.OperationalError as exc:
                            raise StoreUnavailableError(f"SQLite store {self.path}: {exc}") from exc
                    deleted += rows.rowcount
                    if rows.rowcount < chunk_rows:
                        break
        return deleted

    def _stored_devices(self, table: str) -> list[str]:
        """Every device with rows in `table`, by seeking the key (no table scan), including
        devices no longer in the site."""
        devices: list[str] = []
        while True:
            with self._lock:
                (device,) = self._db.execute(
                    f"SELECT min(device) FROM {table} WHERE device > ?",
                    (devices[-1] if devices else "",),
                ).fetchone()
            if device is None:
                return devices
            devices.append(str(device))

    def count(self, kind: str) -> int:
        with self._lock:
            row = self._db.execute(f"SELECT count(*) FROM {table_name(kind)}").fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def scope_device_ids(path: Path, site_id: str) -> dict[str, int]:
    """Rewrite a single site's plain device ids in the file as `site_id:id`, per kind's table:
    rows changed (`facility db scope-ids --sqlite-path`).

    InfluxDB and VictoriaMetrics keep each series' `site` tag, so a portfolio's readers find an
    estate's plain ids there (`ingest.history.stored_ids`); this table has no site column, so
    its readings are found under the portfolio's scoped ids only once rewritten. One
    transaction; scoped ids are left alone, so running it again changes nothing. A reading the
    portfolio's gateway already wrote under the scoped id at the same time is the same reading
    (a replay): it is kept once."""
    if not path.is_file():
        raise StoreUnavailableError(f"SQLite store {path}: no such file")
    prefix = scoped_id(site_id, "")
    db = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        tables = {
            str(row[0]) for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        changed: dict[str, int] = {}
        db.execute("BEGIN IMMEDIATE")
        for kind in KINDS:
            if table_name(kind) in tables:
                cursor = db.execute(
                    f"UPDATE OR REPLACE {table_name(kind)} SET device = ? || device "
                    "WHERE instr(device, ?) = 0",
                    (prefix, SCOPE_SEPARATOR),
                )
                changed[table_name(kind)] = cursor.rowcount
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise StoreUnavailableError(f"SQLite store {path}: {exc}") from exc
    finally:
        db.close()
    return changed
