"""History queries for the API: raw points and downsampled buckets of one device's field.

One small interface, one implementation per store (`influx_history`, `sqlite_history`), and one
contract test suite run against each. Buckets are aligned to multiples of the interval since the
epoch (what InfluxQL's GROUP BY time() does); empty buckets are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from facility.catalog import KINDS
from ingest.errors import IngestError

MAX_RAW_POINTS = 10_000
MAX_BUCKETS = 2_000


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
        if self.end_ms <= self.start_ms:
            raise HistoryQueryError("the end of the range must be after its start")


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


class HistoryStore(Protocol):
    def raw(self, query: SeriesQuery, *, limit: int = 1000) -> list[Point]:
        """Points in [start, end), oldest first, at most `limit`."""

    def downsampled(self, query: SeriesQuery, *, interval_ms: int) -> list[Bucket]:
        """Mean / min / max / count per interval in [start, end), oldest first."""
