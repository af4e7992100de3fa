"""History for the InfluxDB 2.x/3.x-style store, read through the Prometheus-style export API
that VictoriaMetrics serves (`GET /api/v1/export`), where the gateway's line protocol
(`influx_v2`) lands as one series per field: `<kind>_<field>{site, building, unit, device}`,
booleans as 1/0.

Raw samples are read (a day at a time) and bucketed here, not with `query_range`: its
`avg_over_time` & co. count a replayed (duplicate) sample twice and may look past an empty
window, where the history contract wants exact buckets over [start, end) with empty ones left
out. Duplicate timestamps (at-least-once delivery) are read once. A raw query reads growing
time windows until it has its `limit` points, so a long range does not fetch everything for
the first thousand.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import orjson

from facility.batch import Batch, KindBatch
from facility.catalog import KINDS
from facility.site import Site
from ingest.errors import StoreUnavailableError
from ingest.history import (
    Bucket,
    HistoryQueryError,
    Point,
    SeriesQuery,
    bucket_points,
    check_buckets,
    check_limit,
    check_range,
    read_id,
    site_tag,
    site_tags,
    stored_ids,
)
from ingest.http_query import QueryClient, error_text

FIRST_WINDOW_MS = 3_600_000
"""A raw query's first export window; each next one is four times as long."""

BUCKET_WINDOW_MS = 86_400_000
"""A downsampled query's exports are about this long, cut at bucket edges."""

Samples = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]


def metric_name(kind: str, field: str) -> str:
    """What VictoriaMetrics calls a line-protocol field (measurement, '_', field)."""
    return f"{kind}_{field}"


def label_value(value: str) -> str:
    """A MetricsQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def vm_time(ms: int) -> str:
    """Seconds with milliseconds, as the export API takes a time (exactly, no float rounding)."""
    return f"{ms // 1000}.{ms % 1000:03d}"


class VictoriaMetricsHistory:
    name = "victoria-metrics"

    def __init__(
        self,
        site: Site,
        *,
        url: str,
        token: str | None = None,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.site = site
        self._client = QueryClient(
            "VictoriaMetrics",
            url.rstrip("/"),
            timeout_s=timeout_s,
            headers={"Authorization": f"Token {token}"} if token else None,
            transport=transport,
        )
        self._rows = {
            kind: {d.id: d.kind_index for d in devices} for kind, devices in site.by_kind.items()
        }

    def _export(self, selector: str, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        """Every series matching `selector` with its samples in [start_ms, end_ms)."""
        params = {"match[]": selector, "start": vm_time(start_ms), "end": vm_time(end_ms - 1)}
        response = self._client.get("/api/v1/export", params)
        if response.status_code == 404:
            raise StoreUnavailableError(
                f"VictoriaMetrics at {self._client.base_url} has no /api/v1/export: "
                "set influx-query-url to the store's Prometheus query API"
            )
        if response.status_code >= 400:
            raise HistoryQueryError(f"VictoriaMetrics refused the query: {error_text(response)}")
        try:
            lines = [orjson.loads(line) for line in response.content.splitlines() if line.strip()]
        except orjson.JSONDecodeError as exc:
            raise StoreUnavailableError(f"VictoriaMetrics answered no JSON lines: {exc}") from exc
        return [line for line in lines if isinstance(line, dict)]

    def _selector(self, name: str, site: str, device_id: str) -> str:
        ids = stored_ids(device_id)
        device = (f"device={label_value(device_id)}" if len(ids) == 1
                  else f"device=~{label_value('|'.join(map(re.escape, ids)))}")  # fmt: skip
        matchers = [f"__name__={label_value(name)}", f"site={label_value(site)}", device]
        return "{" + ",".join(matchers) + "}"

    def _samples(self, query: SeriesQuery, start_ms: int, end_ms: int) -> Samples:
        """One device's field in [start_ms, end_ms), time-ordered, duplicates read once."""
        lines = self._export(
            self._selector(
                metric_name(query.kind, query.field),
                site_tag(self.site, query.device_id),
                query.device_id,
            ),
            start_ms,
            end_ms,
        )
        if not lines:
            return np.empty(0, np.int64), np.empty(0, np.float64)
        ts = np.concatenate([np.asarray(line["timestamps"], np.int64) for line in lines])
        values = np.concatenate([np.asarray(line["values"], np.float64) for line in lines])
        ts, first = np.unique(ts, return_index=True)  # sorted, one sample per timestamp
        values = values[first]
        keep = (ts >= start_ms) & (ts < end_ms) & ~np.isnan(values)
        return ts[keep], values[keep]

    # -- charts -------------------------------------------------------------------------------

    def raw(self, query: SeriesQuery, *, limit: int = 1000) -> list[Point]:
        query.validate()
        check_limit(limit)
        points: list[Point] = []
        start, window = query.start_ms, FIRST_WINDOW_MS
        while start < query.end_ms and len(points) < limit:
            end = min(query.end_ms, start + window)
            ts, values = self._samples(query, start, end)
            points += map(Point, ts.tolist(), values.tolist())
            start, window = end, window * 4
        return points[:limit]

    def downsampled(self, query: SeriesQuery, *, interval_ms: int) -> list[Bucket]:
        """Bucketed a day's export at a time (whole buckets per export), so a month's chart
        never holds a month of raw samples at once."""
        query.validate()
        check_buckets(query, interval_ms)
        window = -(-BUCKET_WINDOW_MS // interval_ms) * interval_ms
        edge = query.start_ms // interval_ms * interval_ms
        buckets: list[Bucket] = []
        while edge < query.end_ms:
            start, end = max(edge, query.start_ms), min(edge + window, query.end_ms)
            buckets += bucket_points(*self._samples(query, start, end), interval_ms)
            edge += window
        return buckets

    # -- backtest -----------------------------------------------------------------------------

    def batch(self, start_ms: int, end_ms: int) -> Batch:
        """One export per kind; the samples of each device's fields joined into readings by
        timestamp. The gateway writes no sequence numbers, so readings carry seq 0."""
        check_range(start_ms, end_ms)
        kinds: dict[str, KindBatch] = {}
        for kind, spec in KINDS.items():
            index = self._rows[kind]
            if not index:
                continue
            columns = {metric_name(kind, f.name): i for i, f in enumerate(spec.fields)}
            names = "|".join(re.escape(f.name) for f in spec.fields)
            selector = (
                f"{{__name__=~{label_value(f'{re.escape(kind)}_({names})')},"
                f"site=~{label_value('|'.join(map(re.escape, site_tags(self.site))))}}}"
            )
            devices, stamps, cols, values = [], [], [], []
            for line in self._export(selector, start_ms, end_ms):
                labels = line.get("metric") or {}
                name = read_id(self.site, str(labels.get("site")), str(labels.get("device")))
                device = index.get(name, -1)
                column = columns.get(str(labels.get("__name__")), -1)
                if device < 0 or column < 0:  # devices no longer in the site
                    continue
                ts = np.asarray(line["timestamps"], np.int64)
                devices.append(np.full(len(ts), device, np.int32))
                stamps.append(ts)
                cols.append(np.full(len(ts), column, np.intp))
                values.append(np.asarray(line["values"], np.float64))
            if devices:
                kinds[kind] = _readings(
                    spec.name, np.concatenate(devices), np.concatenate(stamps),
                    np.concatenate(cols), np.concatenate(values), start_ms, end_ms,
                )  # fmt: skip
        return Batch(self.site.id, {k: kb for k, kb in kinds.items() if len(kb)})

    def close(self) -> None:
        self._client.close()


def _readings(
    kind: str,
    device: npt.NDArray[np.int32],
    ts: npt.NDArray[np.int64],
    column: npt.NDArray[np.intp],
    value: npt.NDArray[np.float64],
    start_ms: int,
    end_ms: int,
) -> KindBatch:
    """Samples (one per device, time, field) pivoted into readings (one per device and time)."""
    spec = KINDS[kind]
    keep = (ts >= start_ms) & (ts < end_ms)
    device, ts, column, value = device[keep], ts[keep], column[keep], value[keep]
    if not len(ts):
        return KindBatch.empty(spec)
    order = np.lexsort((ts, device))
    device, ts, column, value = device[order], ts[order], column[order], value[order]
    new = np.ones(len(ts), np.bool_)
    new[1:] = (device[1:] != device[:-1]) | (ts[1:] != ts[:-1])
    row = np.cumsum(new) - 1
    values = np.full((int(row[-1]) + 1, len(spec.fields)), np.nan)
    values[row, column] = value
    return KindBatch(spec, device[new], ts[new], np.zeros(len(values), np.int64), values)
