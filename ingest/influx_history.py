"""History queries over InfluxDB 1.x, in InfluxQL: what the gateway wrote there (`influx_v1`).

Every query is scoped to the `site` tag (a device's own site; a portfolio's batch: any of its
estates). InfluxQL cannot take mean/min/max of a boolean
field, so a boolean's buckets come from two counts per interval (all values, true values),
still aggregated by InfluxDB. A missing database is an unavailable store (the gateway creates
it), not a bad query.
"""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import orjson

from facility.batch import Batch, KindBatch
from facility.catalog import KINDS, FieldType
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
    read_id,
    site_tag,
    site_tags,
    stored_ids,
)
from ingest.http_query import QueryClient, error_text
from ingest.influx_v1 import InfluxV1Settings


def identifier(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _any_of(tag: str, values: tuple[str, ...]) -> str:
    """`tag` is one of `values` (parenthesised when there are several)."""
    matches = " OR ".join(f"{identifier(tag)} = {literal(v)}" for v in values)
    return matches if len(values) == 1 else f"({matches})"


def _as_float(value: Any) -> float:
    return float(value) if not isinstance(value, bool) else float(value is True)


def _on_fraction(start_ms: int, on: int, count: int) -> Bucket:
    """A boolean's bucket from its counts: the mean is the fraction of readings that were on."""
    return Bucket(start_ms, on / count, float(on == count), float(on > 0), count)


class InfluxV1History:
    name = "influxdb-v1"
    CHUNK_POINTS = 10_000
    """Rows per chunk of a streamed (backtest) answer."""

    def __init__(
        self,
        site: Site,
        settings: InfluxV1Settings,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.site = site
        self.database = settings.database
        self._client = QueryClient(
            "InfluxDB 1.x",
            settings.url,
            timeout_s=settings.timeout_s,
            auth=(settings.username, settings.password or "") if settings.username else None,
            transport=transport,
        )
        self._rows = {
            kind: {d.id: d.kind_index for d in devices} for kind, devices in site.by_kind.items()
        }
        self._sites = _any_of("site", site_tags(site))

    # -- talking to InfluxDB ------------------------------------------------------------------

    def _params(self, influxql: str) -> dict[str, str]:
        return {"db": self.database, "q": influxql, "epoch": "ms"}

    def _results(self, body: Any) -> list[dict[str, Any]]:
        """Each statement's result; errors raised as ours."""
        if not isinstance(body, dict):
            raise StoreUnavailableError(f"InfluxDB 1.x answered {str(body)[:100]!r}")
        results: list[dict[str, Any]] = body.get("results") or []
        for error in [body.get("error"), *(r.get("error") for r in results)]:
            if not error:
                continue
            if "database not found" in str(error):
                raise StoreUnavailableError(
                    f"InfluxDB 1.x at {self._client.base_url}: {error} (nothing written yet?)"
                )
            raise HistoryQueryError(f"InfluxDB 1.x refused the query: {error}")
        return results

    def _select(self, influxql: str) -> list[list[list[Any]]]:
        """The rows of each statement's (single) series."""
        response = self._client.get("/query", self._params(influxql))
        if response.status_code >= 400:
            raise HistoryQueryError(f"InfluxDB 1.x refused the query: {error_text(response)}")
        try:
            body = response.json()
        except ValueError as exc:
            raise StoreUnavailableError(f"InfluxDB 1.x answered no JSON: {exc}") from exc
        out = []
        for result in self._results(body):
            series = result.get("series") or []
            out.append(list(series[0].get("values", [])) if series else [])
        return out

    def _where(self, query: SeriesQuery, *extra: str) -> str:
        return " AND ".join([
            f"WHERE {identifier('site')} = {literal(site_tag(self.site, query.device_id))}",
            _any_of("device", stored_ids(query.device_id)),
            f"time >= {query.start_ms}ms AND time < {query.end_ms}ms",
            *extra,
        ])  # fmt: skip

    # -- charts -------------------------------------------------------------------------------

    def raw(self, query: SeriesQuery, *, limit: int = 1000) -> list[Point]:
        query.validate()
        check_limit(limit)
        (rows,) = self._select(
            f"SELECT {identifier(query.field)} FROM {identifier(query.kind)} {self._where(query)} "
            f"ORDER BY time ASC LIMIT {limit}"
        )
        return [Point(int(ts), _as_float(value)) for ts, value in rows if value is not None]

    def downsampled(self, query: SeriesQuery, *, interval_ms: int) -> list[Bucket]:
        query.validate()
        check_buckets(query, interval_ms)
        spec = KINDS[query.kind]
        f, measurement = identifier(query.field), identifier(query.kind)
        group = f"GROUP BY time({interval_ms}ms) fill(none)"
        if spec.fields[spec.col(query.field)].type is FieldType.BOOL:
            totals, trues = self._select(
                f"SELECT count({f}) FROM {measurement} {self._where(query)} {group}; "
                f"SELECT count({f}) FROM {measurement} {self._where(query, f'{f} = true')} {group}"
            )
            on = {int(ts): int(n) for ts, n in trues}
            return [_on_fraction(int(ts), on.get(int(ts), 0), int(n)) for ts, n in totals if n]
        (rows,) = self._select(
            f"SELECT mean({f}), min({f}), max({f}), count({f}) FROM {measurement} "
            f"{self._where(query)} {group}"
        )
        return [
            Bucket(int(ts), float(mean), float(lo), float(hi), int(n))
            for ts, mean, lo, hi, n in rows
            if n
        ]

    # -- backtest -----------------------------------------------------------------------------

    def _streamed(self, influxql: str) -> list[list[Any]]:
        """Every row of a query, read in chunks as InfluxDB sends them."""
        params = {**self._params(influxql), "chunked": "true",
                  "chunk_size": str(self.CHUNK_POINTS)}  # fmt: skip
        rows: list[list[Any]] = []
        with self._client.stream("/query", params) as response:
            if response.status_code >= 400:
                raise HistoryQueryError(f"InfluxDB 1.x refused the query: {error_text(response)}")
            for line in response.iter_lines():
                if not line.strip():
                    continue
                for result in self._results(orjson.loads(line)):
                    for series in result.get("series", []):
                        if series["columns"][:3] != ["time", "device", "site"]:
                            raise StoreUnavailableError(
                                f"InfluxDB 1.x: unexpected columns {series['columns'][:3]}"
                            )
                        rows += series.get("values", [])
        return rows

    def batch(self, start_ms: int, end_ms: int) -> Batch:
        """One InfluxQL query per kind. The gateway writes no sequence numbers to InfluxDB, so
        the readings carry seq 0 (the rules do not read them)."""
        check_range(start_ms, end_ms)
        kinds: dict[str, KindBatch] = {}
        for kind, spec in KINDS.items():
            index = self._rows[kind]
            if not index:
                continue
            fields = ", ".join(identifier(f.name) for f in spec.fields)
            rows = self._streamed(
                f"SELECT {identifier('device')}, {identifier('site')}, {fields} "
                f"FROM {identifier(kind)} "
                f"WHERE {self._sites} AND time >= {start_ms}ms AND time < {end_ms}ms"
            )
            if not rows:
                continue
            block = np.array(rows, dtype=object)
            series = list(zip(block[:, 1].tolist(), block[:, 2].tolist(), strict=True))
            rows_of = {
                (name, tag): index.get(read_id(self.site, str(tag), str(name)), -1)
                for name, tag in set(series)
            }
            device = np.array([rows_of[key] for key in series], np.int32)
            known = device >= 0  # devices no longer in the site are left out
            if not known.any():
                continue
            block = block[known]
            kinds[kind] = KindBatch(
                spec,
                device[known],
                block[:, 0].astype(np.int64),
                np.zeros(len(block), np.int64),
                np.ascontiguousarray(block[:, 3:].astype(np.float64)),  # None -> NaN
            )
        return Batch(self.site.id, kinds)

    def close(self) -> None:
        self._client.close()
