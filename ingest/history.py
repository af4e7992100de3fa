"""History queries: raw points and downsampled buckets of one device's field (the API's
charts), and every reading of a time range as a `Batch` (the rules backtest).

One small interface, one implementation per store (`sqlite_history`, `influx_history`,
`vm_history`), chosen by `ingest.registry`, and one contract test suite run against each.
Buckets are aligned to multiples of the interval since the epoch (what InfluxQL's GROUP BY
time() does); empty buckets are left out. A store that cannot be reached raises
`StoreUnavailableError`; a query that is wrong raises `HistoryQueryError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from facility.batch import Batch
from facility.catalog import KINDS
from facility.site import Site, local_id, scoped_id, site_of_id
from ingest.errors import IngestError

MAX_RAW_POINTS = 10_000
MAX_BUCKETS = 2_000


def site_tag(site: Site, device_id: str) -> str:
    """The `site` tag a device's series carry: its own site (a portfolio's estate)."""
    device = site.by_id.get(device_id)
    return device.site_id if device is not None and device.site_id else site.id


def site_tags(site: Site) -> tuple[str, ...]:
    """Every `site` tag the site's series carry (a portfolio: one per estate)."""
    return tuple(s.id for s in site.sites)


def stored_ids(device_id: str) -> tuple[str, ...]:
    """The `device` tags a device's series carry within its `site` tag: its id, and for a
    portfolio's scoped id also the plain id it was written under before its estate joined the
    portfolio (`facility db scope-ids` moves the database's ids, not the telemetry's; the
    `site` tag keeps one estate's plain `b03-pump` apart from another's)."""
    local = local_id(device_id)
    return (device_id,) if local == device_id else (device_id, local)


def read_id(site: Site, tag: str, stored: str) -> str:
    """The id a series stored as `stored` under `site` tag `tag` is read as: a plain id under
    a portfolio's estate is that estate's scoped id (see `stored_ids`)."""
    if site.scoped and site_of_id(stored) is None:
        return scoped_id(tag, stored)
    return stored


class HistoryQueryError(IngestError):
    """The query itself is wrong (unknown field, bad range, too many points asked for)."""


@dataclass(frozen=True, slots=True)
class Point:
    ts_ms: int
    value: float


@dataclass(frozen=True, slots=True)
class Bucket:
    start_ms: int
    mean: float
    min: float
    max: float
    count: int


@dataclass(frozen=True, slots=True)
class SeriesQuery:
    kind: str
    device_id: str
    field: str
    start_ms: int
    end_ms: int

    def validate(self) -> None:
        spec = KINDS.get(self.kind)
        if spec is None:
            raise HistoryQueryError(f"unknown kind {self.kind!r}")
        if self.field not in spec.index:
            raise HistoryQueryError(f"{self.kind} has no field {self.field!r}")
        check_range(self.start_ms, self.end_ms)


def check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_RAW_POINTS:
        raise HistoryQueryError(f"limit must be between 1 and {MAX_RAW_POINTS}")


def check_buckets(query: SeriesQuery, interval_ms: int) -> None:
    if interval_ms < 1000:
        raise HistoryQueryError("the interval must be at least 1 s")
    buckets = (query.end_ms - query.start_ms) // interval_ms + 1
    if buckets > MAX_BUCKETS:
        raise HistoryQueryError(
            f"{buckets} buckets asked for; at most {MAX_BUCKETS}: widen the interval"
        )


def check_range(start_ms: int, end_ms: int) -> None:
    if end_ms <= start_ms:
        raise HistoryQueryError("the end of the range must be after its start")


def bucket_points(
    ts_ms: npt.NDArray[np.int64], values: npt.NDArray[np.float64], interval_ms: int
) -> list[Bucket]:
    """Points (in time order) bucketed here, for stores that cannot aggregate a field."""
    if not len(ts_ms):
        return []
    starts = (ts_ms // interval_ms) * interval_ms
    buckets, first, counts = np.unique(starts, return_index=True, return_counts=True)
    sums = np.add.reduceat(values, first)
    lows = np.minimum.reduceat(values, first)
    highs = np.maximum.reduceat(values, first)
    return [
        Bucket(int(b), float(s / n), float(lo), float(hi), int(n))
        for b, s, lo, hi, n in zip(
            buckets.tolist(), sums.tolist(), lows.tolist(), highs.tolist(), counts.tolist(),
            strict=True,
        )
    ]  # fmt: skip


class HistoryStore(Protocol):
    """What the API's charts read."""

    def raw(self, query: SeriesQuery, *, limit: int = 1000) -> list[Point]:
        """Points in [start, end), oldest first, at most `limit`."""

    def downsampled(self, query: SeriesQuery, *, interval_ms: int) -> list[Bucket]:
        """Mean / min / max / count per interval in [start, end), oldest first."""


class HistoryReader(HistoryStore, Protocol):
    """A store's history reader, as `ingest.registry.open_history` returns it."""

    def batch(self, start_ms: int, end_ms: int) -> Batch:
        """Every stored reading of the site's devices in [start_ms, end_ms), in no particular
        order (the backtest sorts). Stores that keep no sequence numbers give seq 0; devices
        no longer in the site are left out."""

    def close(self) -> None: ...
