"""History queries over the embedded SQLite time-series store."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from ingest.history import (
    Bucket,
    Point,
    SeriesQuery,
    check_buckets,
    check_limit,
)
from ingest.sqlite_store import table_name


class SQLiteHistory:
    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self._lock = threading.Lock()

    def raw(self, query: SeriesQuery, *, limit: int = 1000) -> list[Point]:
        query.validate()
        check_limit(limit)
        sql = (
            f'SELECT ts_ms, "{query.field}" FROM {table_name(query.kind)} '
            f'WHERE device = ? AND ts_ms >= ? AND ts_ms < ? AND "{query.field}" IS NOT NULL '
            "ORDER BY ts_ms LIMIT ?"
        )
        with self._lock:
            rows = self._db.execute(
                sql, (query.device_id, query.start_ms, query.end_ms, limit)
            ).fetchall()
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
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return [
            Bucket(int(b), float(mean), float(lo), float(hi), int(n)) for b, mean, lo, hi, n in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._db.close()
