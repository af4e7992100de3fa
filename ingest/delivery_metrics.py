"""What the store delivery counts, and how /metrics shows it. Updated once per batch or write."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from facility.prometheus import Metric
from ingest.spool import Spool


@dataclass
class IngestMetrics:
    points_written: int = 0
    points_rejected: int = 0
    readings_spooled: int = 0
    readings_drained: int = 0
    backpressure_s: float = 0.0
    spool_full: bool = False
    writes_abandoned: int = 0
    write_failures: int = 0
    end_to_end_lag_s: float = 0.0
    store_up: bool = True
    store_error: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: float) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


def prometheus(m: IngestMetrics, spool: Spool) -> list[Metric]:
    with m._lock:
        return [
            Metric.single(
                "facility_points_written_total", "counter",
                "Points the time-series store accepted.", m.points_written,
            ),
            Metric.single(
                "facility_points_rejected_total", "counter",
                "Points the store refused (dead-lettered).", m.points_rejected,
            ),
            Metric.single(
                "facility_readings_spooled_total", "counter",
                "Readings written to the on-disk spool.", m.readings_spooled,
            ),
            Metric.single(
                "facility_readings_drained_total", "counter",
                "Spooled readings the store has taken since.", m.readings_drained,
            ),
            Metric.single(
                "facility_readings_dropped_total", "counter",
                "Readings dropped from a full spool (only with spool-when-full drop-oldest).",
                spool.dropped_readings,
            ),
            Metric.single(
                "facility_spool_backpressure_seconds_total", "counter",
                "Time batches waited, unacked, for room in a full spool (the broker held the "
                "stream meanwhile).", m.backpressure_s,
            ),
            Metric.single(
                "facility_spool_full", "gauge",
                "1 while the spool is at its cap and batches wait for room.", float(m.spool_full),
            ),
            Metric.single(
                "facility_spool_torn_records_total", "counter",
                "Torn or damaged records cut off spool segments at start (a crash mid-append).",
                spool.torn_records,
            ),
            Metric.single(
                "facility_spool_damaged_readings_total", "counter",
                "Spooled readings whose record was damaged on disk after it was written.",
                spool.corrupt_readings,
            ),
            Metric.single(
                "facility_spool_bytes", "gauge",
                "Bytes of the spool's segment files (what the cap counts).", spool.disk_bytes,
            ),
            Metric.single(
                "facility_spool_readings", "gauge", "Readings in the spool now.", spool.readings
            ),
            Metric.single(
                "facility_spool_segments", "gauge", "Segment files in the spool now.",
                spool.segments,
            ),
            Metric.single(
                "facility_store_up", "gauge", "1 when the store answers.", float(m.store_up)
            ),
            Metric.single(
                "facility_store_writes_abandoned_total", "counter",
                "Live writes given up (one per connection's part, spooled) because the store went "
                "down mid-write.", m.writes_abandoned,
            ),
            Metric.single(
                "facility_store_write_failures_total", "counter",
                "Store writes that failed (one per connection's part; live parts are spooled, "
                "spool parts retried).", m.write_failures,
            ),
            Metric.single(
                "facility_end_to_end_lag_seconds", "gauge",
                "Newest reading's age when its live batch reached the store.", m.end_to_end_lag_s,
            ),
        ]  # fmt: skip
