"""History queries over InfluxDB 1.x, in InfluxQL.

InfluxQL cannot take mean/min/max of a boolean field, so boolean fields are fetched raw (the
range is bounded) and bucketed here with numpy; numeric fields are aggregated by InfluxDB.
"""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np

from facility.catalog import KINDS, FieldType
from ingest.errors import StoreUnavailableError
from ingest.history import (
    MAX_RAW_POINTS,
    Bucket,
    HistoryQueryError,
    Point,
    SeriesQuery,
    check_buckets,
    check_limit,
)


def _identifier(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _where(query: SeriesQuery) -> str:
    return (
        f"WHERE {_identifier('device')} = {_literal(query.device_id)} "
        f"AND time >= {query.start_ms}ms AND time < {query.end_ms}ms"
    )


def _as_float(value: Any) -> float:
    return float(value) if not isinstance(value, bool) else float(value is True)


class InfluxV1History:
    def __init__(self, url: str, database: str, *, timeout_s: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:  # fmt: skip
        self.database = database
        self._http = httpx.Client(base_url=url, timeout=timeout_s, transport=transport)

    def _select(self, influxql: str) -> list[list[Any]]:
        try:
            response = self._http.get(
                "/query", params={"db": self.database, "q": influxql, "epoch": "ms"}
            )
        except httpx.HTTPError as exc:
            raise StoreUnavailableError(f"InfluxDB query failed: {exc}") from exc
        if response.status_code >= 500:
            raise StoreUnavailableError("InfluxDB query failed", status=response.status_code)
        body = response.json()
        result = (body.get("results") or [{}])[0]
        if "error" in result or "error" in body:
            raise HistoryQueryError(f"InfluxDB: {result.get('error') or body.get('error')}")
        series = result.get("series") or []
        return list(series[0].get("values", [])) if series else []

    def raw(self, query: SeriesQuery, *, limit: int = 1000) -> list[Point]:
        query.validate()
        check_limit(limit)
        rows = self._select(
            f"SELECT {_identifier(query.field)} FROM {_identifier(query.kind)} {_where(query)} "
            f"ORDER BY time ASC LIMIT {limit}"
        )
        return [Point(int(ts), _as_float(value)) for ts, value in rows if value is not None]

    def downsampled(self, query: SeriesQuery, *, interval_ms: int) -> list[Bucket]:
        query.validate()
        check_buckets(query, interval_ms)
        field_spec = KINDS[query.kind].fields[KINDS[query.kind].col(query.field)]
        if field_spec.type is FieldType.BOOL:
            return self._bucket_locally(query, interval_ms)
        f = _identifier(query.field)
        rows = self._select(
            f"SELECT mean({f}), min({f}), max({f}), count({f}) FROM {_identifier(query.kind)} "
            f"{_where(query)} GROUP BY time({interval_ms}ms) fill(none)"
        )
        return [
            Bucket(int(ts), float(mean), float(lo), float(hi), int(n))
            for ts, mean, lo, hi, n in rows
            if n
        ]

    def _bucket_locally(self, query: SeriesQuery, interval_ms: int) -> list[Bucket]:
        points = self.raw(query, limit=MAX_RAW_POINTS)
        if not points:
            return []
        ts = np.array([p.ts_ms for p in points], np.int64)
        values = np.array([p.value for p in points], np.float64)
        starts = (ts // interval_ms) * interval_ms
        buckets, first, counts = np.unique(starts, return_index=True, return_counts=True)
        sums = np.add.reduceat(values, first)
        lows = np.minimum.reduceat(values, first)
        highs = np.maximum.reduceat(values, first)
        return [
            Bucket(int(b), float(s / n), float(lo), float(hi), int(n))
            for b, s, lo, hi, n in zip(buckets, sums, lows, highs, counts, strict=True)
        ]

    def close(self) -> None:
        self._http.close()
