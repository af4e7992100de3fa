"""History queries over the embedded SQLite time-series store (`ingest.sqlite_store`'s tables).

The file is opened read-only on the first query, not at start: the API may start before the
gateway has written anything, and its charts then come up as soon as there is data (until
then a query says plainly that there is no store yet).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import numpy as np

from facility.batch import Batch, KindBatch
from facility.catalog import KINDS
from facility.site import Site
from ingest.errors import StoreUnavailableError
from ingest.history import (
    Bucket,
    HistoryQueryError,
    Point,
    SeriesQuery,
    check_buckets,
    check_limit,
    check_range,
)
from ingest.sqlite_store import table_name


class SQLiteHistory:
    name = "sqlite"

    def __init__(self, path: Path, site: Site | None = None) -> None:
        """`site` is needed only by `batch` (the backtest maps device ids to the site's)."""
        self.path = Path(path)
        self.site = site
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            if not self.path.is_file():
                raise StoreUnavailableError(
                    f"no time-series store at {self.path} (yet: the gateway creates it)"
                )
            try:
                self._db = sqlite3.connect(
                    f"file:{self.path}?mode=ro", uri=True, check_same_thread=False
                )
            except sqlite3.Error as exc:
                raise StoreUnavailableError(f"SQLite store {self.path}: {exc}") from exc
        return self._db

    def _fetch(self, sql: str, params: tuple[object, ...]) -> list[Any]:
        with self._lock:
            try:
                return self._connection().execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:  # locked, I/O error, not our file
                raise StoreUnavailableError(f"SQLite store {self.path}: {exc}") from exc

    def raw(self, query: SeriesQuery, *, limit: int = 1000) -> list[Point]:
        query.validate()
        check_limit(limit)
        sql = (
            f'SELECT ts_ms, "{query.field}" FROM {table_name(query.kind)} '
            f'WHERE device = ? AND ts_ms >= ? AND ts_ms < ? AND "{query.field}" IS NOT NULL '
            "ORDER BY ts_ms LIMIT ?"
        )
        rows = self._fetch(sql, (query.device_id, query.start_ms, query.end_ms, limit))
        return [Point(int(ts), float(value)) for ts, value in rows]

    def downsampled(self, query: SeriesQuery, *, interval_ms: int) -> list[Bucket]:
        query.validate()
        check_buckets(query, interval_ms)
        column = f'"{query.field}"'
        sql = (
            f"SELECT (ts_ms / ?) * ? AS bucket, avg({column}), min({column}), max({column}), "
            f"count({column}) FROM {table_name(query.kind)} "
            f"WHERE device = ? AND ts_ms >= ? AND ts_ms < ? AND {column} IS NOT NULL "
            "GROUP BY bucket ORDER BY bucket"
        )
        params = (interval_ms, interval_ms, query.device_id, query.start_ms, query.end_ms)
        return [
            Bucket(int(b), float(mean), float(lo), float(hi), int(n))
            for b, mean, lo, hi, n in self._fetch(sql, params)
        ]

    def batch(self, start_ms: int, end_ms: int) -> Batch:
        """One query per kind; the store's sequence numbers come back too."""
        check_range(start_ms, end_ms)
        if self.site is None:
            raise HistoryQueryError("reading a batch needs the site: open with the site given")
        tables = {str(row[0]) for row in self._fetch(
            "SELECT name FROM sqlite_master WHERE type = 'table'", ())}  # fmt: skip
        kinds: dict[str, KindBatch] = {}
        for kind, spec in KINDS.items():
            index = {d.id: d.kind_index for d in self.site.by_kind[kind]}
            if not index or table_name(kind) not in tables:  # an older store, fewer kinds
                continue
            columns = ", ".join(f'"{f.name}"' for f in spec.fields)
            rows = self._fetch(
                f"SELECT device, ts_ms, seq, {columns} FROM {table_name(kind)} "
                "WHERE ts_ms >= ? AND ts_ms < ? ORDER BY device, ts_ms",
                (start_ms, end_ms),
            )
            rows = [r for r in rows if r[0] in index]  # devices no longer in the site
            if not rows:
                continue
            data = np.array([r[1:] for r in rows], dtype=np.float64)  # None -> nan
            kinds[kind] = KindBatch(
                spec,
                np.array([index[str(r[0])] for r in rows], np.int32),
                data[:, 0].astype(np.int64),
                data[:, 1].astype(np.int64),
                np.ascontiguousarray(data[:, 2:]),
            )
        return Batch(self.site.id, kinds)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
