"""Getting batches into the store: direct when it is up, through the spool when it is not.

This is the one place with batching, spooling and retries; writers only write. The gateway
calls `handle(batch)`; when it returns, the batch is durable — in the store (a 2xx) or in the
fsynced spool — and the gateway may ack the messages. A drainer thread empties the spool at
full speed once the store answers again, merging small spooled batches into large writes.
Store answers are handled per batch: a 413 splits it, 429/5xx/timeouts retry with capped
exponential backoff and jitter (honouring Retry-After), points the store refused are handed
to `on_rejected` (the gateway dead-letters them) and never retried.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from facility.batch import Batch
from facility.clock import Clock, now_ms
from facility.periodic import PeriodicWorker
from facility.prometheus import Metric
from ingest.errors import PayloadTooLargeError, StoreRejectedError, StoreUnavailableError
from ingest.interface import RejectedPoints, TimeSeriesWriter
from ingest.spool import Spool

log = logging.getLogger(__name__)

OnRejected = Callable[[Sequence[RejectedPoints]], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverySettings:
    max_points_per_write: int = 50_000
    """Larger batches are cut before writing (InfluxDB likes 5k-50k points per request)."""
    retry_min_s: float = 0.5
    """First wait before a failed store write is tried again; doubles up to the max."""
    retry_max_s: float = 30.0
    """Longest wait between store write attempts."""
    health_interval_s: float = 1.0
    """How often the store is probed while it is down."""
    drain_poll_s: float = 0.2
    """How often the spool drainer looks for work."""


@dataclass
class IngestMetrics:
    points_written: int = 0
    points_rejected: int = 0
    readings_spooled: int = 0
    end_to_end_lag_s: float = 0.0
    store_up: bool = True
    store_error: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class Delivery:
    def __init__(
        self,
        writer: TimeSeriesWriter,
        spool: Spool,
        *,
        on_rejected: OnRejected,
        settings: DeliverySettings | None = None,
        clock_ms: Clock = now_ms,
    ) -> None:
        self.writer = writer
        self.spool = spool
        self.on_rejected = on_rejected
        self.settings = settings or DeliverySettings()
        self.clock_ms = clock_ms
        self.metrics = IngestMetrics()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._health = PeriodicWorker("store-health", self.settings.health_interval_s, self._probe)

    # -- the gateway's side ------------------------------------------------------------------

    def handle(self, batch: Batch) -> None:
        """Make the batch durable: written to the store, or appended to the spool."""
        if not len(batch):
            return
        if self.metrics.store_up and len(self.spool) == 0:
            try:
                self.write(batch)
            except StoreUnavailableError as exc:
                self._mark_down(exc)
            else:
                return
        self.spool.append(batch)
        with self.metrics._lock:
            self.metrics.readings_spooled += len(batch)

    # -- writing -----------------------------------------------------------------------------

    def write(self, batch: Batch) -> None:
        """Write a batch, cut to size; raises StoreUnavailableError when the store is away."""
        for chunk in batch.chunks(self.settings.max_points_per_write):
            self._write_splitting(chunk)
        self._mark_up()
        newest = batch.newest_ts_ms
        if newest is not None:
            self.metrics.end_to_end_lag_s = max(self.clock_ms() - newest, 0) / 1000

    def _write_splitting(self, batch: Batch) -> None:
        try:
            result = self.writer.write(batch)
        except PayloadTooLargeError:
            if len(batch) <= 1:
                self._rejected([RejectedPoints("too_large", "a single point is too large", 1, "")])
                return
            first, second = batch.halves()
            log.info("%s said 413: splitting %d readings in two", self.writer.name, len(batch))
            self._write_splitting(first)
            self._write_splitting(second)
            return
        except StoreRejectedError as exc:
            self._rejected([RejectedPoints("store_rejected", str(exc), len(batch), "")])
            return
        with self.metrics._lock:
            self.metrics.points_written += result.written
        if result.rejected:
            self._rejected(result.rejected)

    def _rejected(self, rejected: Sequence[RejectedPoints]) -> None:
        with self.metrics._lock:
            self.metrics.points_rejected += sum(r.count for r in rejected)
        log.warning(
            "%s refused %d point(s): %s",
            self.writer.name,
            sum(r.count for r in rejected),
            rejected[0].detail[:200],
        )
        self.on_rejected(rejected)

    def _mark_down(self, exc: Exception) -> None:
        with self.metrics._lock:
            was_up = self.metrics.store_up
            self.metrics.store_up = False
            self.metrics.store_error = str(exc)[:300]
        if was_up:
            log.error("%s is unavailable, spooling: %s", self.writer.name, exc)

    def _mark_up(self) -> None:
        with self.metrics._lock:
            was_down = not self.metrics.store_up
            self.metrics.store_up = True
            self.metrics.store_error = ""
        if was_down:
            log.info("%s is back", self.writer.name)

    def prometheus(self) -> list[Metric]:
        m, spool = self.metrics, self.spool
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
                    "facility_readings_dropped_total", "counter",
                    "Readings dropped because the spool was full.", spool.dropped_readings,
                ),
                Metric.single(
                    "facility_spool_bytes", "gauge", "Bytes in the spool now.", spool.bytes
                ),
                Metric.single(
                    "facility_spool_readings", "gauge", "Readings in the spool now.",
                    spool.readings,
                ),
                Metric.single(
                    "facility_store_up", "gauge", "1 when the store answers.", float(m.store_up)
                ),
                Metric.single(
                    "facility_end_to_end_lag_seconds", "gauge",
                    "Newest reading's age when its batch reached the store.", m.end_to_end_lag_s,
                ),
            ]  # fmt: skip

    def health(self) -> dict[str, object]:
        return {
            "store": self.writer.name,
            "up": self.metrics.store_up,
            "error": self.metrics.store_error,
            "spool_segments": len(self.spool),
            "spool_readings": self.spool.readings,
        }

    # -- background: drain the spool, watch the store ---------------------------------------

    def start(self) -> None:
        thread = threading.Thread(target=self._drain, name="spool-drainer", daemon=True)
        thread.start()
        self._threads.append(thread)
        self._health.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop draining and let go of the spool directory (what is spooled stays there)."""
        self._stop.set()
        self._health.stop(timeout_s)
        for thread in self._threads:
            thread.join(timeout_s)
        if not any(thread.is_alive() for thread in self._threads):
            self.spool.close()  # a drainer still at work keeps it (the process is ending)

    def _drain(self) -> None:
        delay = self.settings.retry_min_s
        while not self._stop.is_set():
            found = self.spool.oldest(self.settings.drain_poll_s)
            if found is None:
                continue
            segment, batch = found
            try:
                self.write(batch)
            except StoreUnavailableError as exc:
                self._mark_down(exc)
                wait = exc.retry_after_s if exc.retry_after_s is not None else delay
                wait *= 0.5 + random.random() if exc.retry_after_s is None else 1.0
                delay = min(delay * 2, self.settings.retry_max_s)
                self._stop.wait(wait)
                continue
            except Exception:
                log.exception("draining spool segment %s failed; retrying", segment.path.name)
                self._stop.wait(delay)
                delay = min(delay * 2, self.settings.retry_max_s)
                continue
            self.spool.remove(segment)
            delay = self.settings.retry_min_s

    def _probe(self) -> None:
        try:
            self.writer.ping()
        except StoreUnavailableError as exc:
            self._mark_down(exc)
        else:
            if len(self.spool) == 0:
                self._mark_up()
