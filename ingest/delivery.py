"""Getting batches into the store: direct when it is up, through the spool when it is not.

This is the one place with batching, spooling and retries; writers only write. The gateway
calls `handle(batch)`, or `begin(batch)` and later `finish(batch, begun)`; when that returns,
the batch is durable — in the store (a 2xx) or in the fsynced spool — and the gateway may ack
the messages. The gateway begins its next batch's writes while it still waits for the batch
ahead, so a connection that finished its part goes on at once instead of idling until the
batch's slowest part is written.

- Live first. While the store is up, every live batch is written directly, also while the
  spool still holds a backlog: the spool is a fallback, never a queue live data waits in.
- Parallel writes (`ingest.lanes`): one writer per store connection. A batch is split by a
  stable device hash into one part per connection and the parts are written at once; a device
  always goes through the same connection, which writes its parts in order. The batch is
  durable once every part is written or spooled: a part that fails is spooled on its own, the
  parts written stay written. Should the batch be tried again (the spool full, the gateway's
  retry), the written parts are written again: the same points, which no store minds (below).
- The drainer writes the backlog behind it, on its own thread, merging spooled records into
  writes of `max_points_per_write` points per connection, through the same connections (a
  connection takes live work before the drainer's), as fast as the store takes them: the next
  lease is read, decoded and queued while the store takes the current one.
- Order: a device's spooled readings may reach the store after its newer live ones. No store
  minds: InfluxDB 1.x/2.x/3.x and VictoriaMetrics key a point by series + timestamp and take
  out-of-order writes, and SQLite upserts on (device, ts_ms). Nothing is overwritten except by
  the same reading again (a redelivery, a part written twice), with the same values, which is
  why writing a point twice is harmless and spooling a part that may have landed is safe.
- Health: a probe with its own short timeout runs every `health_interval_s`. When it fails,
  the store is down at once: a live write still waiting on a hung store is given up and its
  part spooled (should the write land after all, the store gets the same points twice,
  harmlessly), so acks go on. When the probe answers again, live writes resume and the
  drainer stops backing off.
- Back-pressure: when the spool is full (`when_full = "block"`), `handle` waits a little for
  room and then raises `SinkBusyError`; the gateway retries without acking, and the broker
  holds the stream. With `drop-oldest` the spool makes room instead (counted).

Store answers are handled per write: a 413 splits it, 429/5xx/timeouts mean the store is down,
points the store refused go to `on_rejected` (the gateway dead-letters them), never retried.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass
from functools import partial

from facility.batch import Batch
from facility.clock import Clock, now_ms
from facility.errors import SettingsError, SinkBusyError
from facility.periodic import PeriodicWorker
from facility.prometheus import Metric
from ingest import delivery_metrics
from ingest.delivery_metrics import IngestMetrics
from ingest.errors import (
    PayloadTooLargeError,
    SpoolFullError,
    StoreRejectedError,
    StoreUnavailableError,
)
from ingest.interface import RejectedPoints, TimeSeriesWriter
from ingest.lanes import Lane, lanes_for, split
from ingest.spool import Lease, Spool

log = logging.getLogger(__name__)

OnRejected = Callable[[Sequence[RejectedPoints]], None]
LIVE_POLL_S = 0.05


@dataclass(frozen=True, slots=True)
class LiveWrite:
    """A batch's parts given to the store connections (`Delivery.begin`), not waited for yet."""

    parts: dict[Future[None], Batch]


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverySettings:
    max_points_per_write: int = 50_000
    """Points per store request: live batches are cut to it, and the spool drainer merges
    records up to it for each store connection (InfluxDB likes 5k-50k points per request)."""
    retry_min_s: float = 0.5
    """First wait before the drainer tries a failed store write again; doubles up to the max
    (cut short when the health probe sees the store answer again)."""
    retry_max_s: float = 30.0
    """Longest wait between the drainer's store write attempts."""
    health_interval_s: float = 1.0
    """How often the store is probed; a hung store shows as down within this plus the
    store's probe timeout."""
    drain_poll_s: float = 0.2
    """How often the spool drainer looks for work while there is none."""
    backpressure_wait_s: float = 1.0
    """How long a batch waits for room in a full spool before the gateway retries it, still
    unacked (it stops taking new messages meanwhile)."""

    def __post_init__(self) -> None:
        if self.max_points_per_write < 1:
            raise SettingsError("delivery-max-points-per-write", "must be at least 1")
        for name in ("health_interval_s", "drain_poll_s", "backpressure_wait_s"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"delivery-{name.replace('_', '-')}", "must be more than 0")


class Delivery:
    """`writers`: one per store connection (see `ingest.registry.open_writers`); a single
    writer is one connection. The first one's name and probe stand for the store."""

    def __init__(
        self,
        writers: TimeSeriesWriter | Sequence[TimeSeriesWriter],
        spool: Spool,
        *,
        on_rejected: OnRejected,
        settings: DeliverySettings | None = None,
        clock_ms: Clock = now_ms,
    ) -> None:
        self.writers = list(writers) if isinstance(writers, Sequence) else [writers]
        if not self.writers:
            raise ValueError("delivery needs at least one writer")
        self.writer = self.writers[0]
        self.spool = spool
        self.on_rejected = on_rejected
        self.settings = settings or DeliverySettings()
        self.clock_ms = clock_ms
        self.metrics = IngestMetrics()
        self._stop = threading.Event()
        self._up = threading.Event()
        """Set while the store is taken to be up: the drainer works, live batches go direct."""
        self._up.set()
        self._threads: list[threading.Thread] = []
        self.lanes: list[Lane] = lanes_for(self.writers)
        self._health = PeriodicWorker("store-health", self.settings.health_interval_s, self._probe)

    # -- the gateway's side ------------------------------------------------------------------

    def handle(self, batch: Batch) -> None:
        """Make the batch durable: every part written to the store, or appended to the spool."""
        self.finish(batch, self.begin(batch))

    def begin(self, batch: Batch) -> LiveWrite | None:
        """Give the batch's parts to the connections, without waiting for them; None when the
        store is down (the batch goes to the spool in `finish`). The gateway begins its next
        batch while this one is still being written, so a connection that finished its part
        goes on at once instead of waiting for the slowest part of the batch; each connection
        still writes a device's parts in the order begun."""
        if not len(batch) or not self._up.is_set():
            return None
        return LiveWrite(self._submit_live(batch))

    def finish(self, batch: Batch, started: LiveWrite | None) -> None:
        """`handle` for a batch begun with `begin`: wait for its parts, spool those not
        written. When this returns the batch is durable."""
        if not len(batch):
            return
        waiting_since: float | None = None
        pending = batch
        """What is neither written nor spooled yet."""
        try:
            while True:
                if started is not None or self._up.is_set():
                    live = started.parts if started is not None else self._submit_live(pending)
                    started = None
                    unwritten = self._settle_live(pending, live)
                    if not unwritten:
                        break
                    pending = Batch.concat(batch.site_id, unwritten)
                try:
                    self.spool.append(pending)
                except SpoolFullError:
                    waiting_since = self._wait_for_room(waiting_since)
                    continue
                self.metrics.add(readings_spooled=len(pending))
                break
        finally:
            if waiting_since is not None:
                self.metrics.add(backpressure_s=time.monotonic() - waiting_since)
        with self.metrics._lock:
            was_full, self.metrics.spool_full = self.metrics.spool_full, False
        if was_full:
            log.info("the spool has room (or the store is back): acks resume")

    def _wait_for_room(self, since: float | None) -> float:
        now = time.monotonic()
        if since is None:
            since = now
            with self.metrics._lock:
                was_full, self.metrics.spool_full = self.metrics.spool_full, True
            if not was_full:
                log.warning("spool full (%d bytes): holding acks until there is room",
                            self.spool.disk_bytes)  # fmt: skip
        left = since + self.settings.backpressure_wait_s - now
        if left <= 0:
            raise SinkBusyError("the spool is full; the batch stays unacked")
        self.spool.wait(min(left, 0.1))
        return since

    def _submit_live(self, batch: Batch) -> dict[Future[None], Batch]:
        """The batch's parts queued on their connections, live work first."""
        return {
            self.lanes[lane].submit(partial(self.write_with, part), live=True): part
            for lane, part in split(batch, len(self.lanes))
        }

    def _settle_live(self, batch: Batch, futures: dict[Future[None], Batch]) -> list[Batch]:
        """Wait for the batch's parts; the parts not written because the store is or went
        down meanwhile (a part still under way then is given up on)."""
        unwritten: list[Batch] = []
        errors: list[BaseException] = []
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=LIVE_POLL_S)
            for future in done:
                if future.cancelled():  # stopping: the lanes are closed
                    unwritten.append(futures[future])
                    continue
                exc = future.exception()
                if isinstance(exc, StoreUnavailableError):
                    self.metrics.add(write_failures=1)
                    self._mark_down(exc)
                    unwritten.append(futures[future])
                elif exc is not None:
                    errors.append(exc)
            if pending and not self._up.is_set() and not self._stop.is_set():
                for future in pending:
                    future.cancel()  # not started yet: never runs; under way: lands or not
                    unwritten.append(futures[future])
                self.metrics.add(writes_abandoned=len(pending))
                log.warning("%s went down during a write: spooling %d part(s)",
                            self.writer.name, len(pending))  # fmt: skip
                break
        if errors:
            raise errors[0]  # unacked: the gateway tries the batch again
        if not unwritten:
            self._mark_up()
            newest = batch.newest_ts_ms
            if newest is not None:
                self.metrics.end_to_end_lag_s = max(self.clock_ms() - newest, 0) / 1000
        return unwritten

    # -- writing -----------------------------------------------------------------------------

    def write(self, batch: Batch) -> None:
        """Write a batch through the first connection, cut to size; raises
        StoreUnavailableError when the store is away."""
        self.write_with(batch, self.writer)

    def write_with(self, batch: Batch, writer: TimeSeriesWriter) -> None:
        """Write a batch (a part) through one connection, cut to `max_points_per_write`."""
        for chunk in batch.chunks(self.settings.max_points_per_write):
            self._write_splitting(writer, chunk)

    def _write_splitting(self, writer: TimeSeriesWriter, batch: Batch) -> None:
        try:
            result = writer.write(batch)
        except PayloadTooLargeError:
            if len(batch) <= 1:
                self._rejected([RejectedPoints("too_large", "a single point is too large", 1, "")])
                return
            first, second = batch.halves()
            log.info("%s said 413: splitting %d readings in two", writer.name, len(batch))
            self._write_splitting(writer, first)
            self._write_splitting(writer, second)
            return
        except StoreRejectedError as exc:
            self._rejected([RejectedPoints("store_rejected", str(exc), len(batch), "")])
            return
        self.metrics.add(points_written=result.written)
        if result.rejected:
            self._rejected(result.rejected)

    def _rejected(self, rejected: Sequence[RejectedPoints]) -> None:
        self.metrics.add(points_rejected=sum(r.count for r in rejected))
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
            self._up.clear()
        if was_up:
            log.error("%s is unavailable, spooling: %s", self.writer.name, exc)

    def _mark_up(self) -> None:
        with self.metrics._lock:
            was_down = not self.metrics.store_up
            self.metrics.store_up = True
            self.metrics.store_error = ""
            self._up.set()
        if was_down:
            log.info("%s is back; live batches go to it directly again", self.writer.name)
            self.spool.wake()  # batches waiting for spool room can go to the store now

    def prometheus(self) -> list[Metric]:
        return delivery_metrics.prometheus(self.metrics, self.spool)

    def health(self) -> dict[str, object]:
        return {
            "store": self.writer.name,
            "up": self.metrics.store_up,
            "error": self.metrics.store_error,
            "spool_records": len(self.spool),
            "spool_segments": self.spool.segments,
            "spool_readings": self.spool.readings,
            "spool_bytes": self.spool.disk_bytes,
            "spool_full": self.metrics.spool_full,
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
        self.spool.wake()
        self._health.stop(timeout_s)
        for thread in self._threads:
            thread.join(timeout_s)
        for lane in self.lanes:
            lane.close()
        if not any(thread.is_alive() for thread in self._threads):
            self.spool.close()  # a drainer still at work keeps it (the process is ending)

    def _drain(self) -> None:
        delay = self.settings.retry_min_s
        while not self._stop.is_set():
            if not self._up.wait(self.settings.drain_poll_s):
                continue  # the probe says when to try again
            try:
                if not self.drain_backlog():
                    continue
            except StoreUnavailableError as exc:
                self._mark_down(exc)
                if exc.retry_after_s is not None:
                    self._stop.wait(exc.retry_after_s)
                else:
                    self._back_off(delay * (0.5 + random.random()))
                delay = min(delay * 2, self.settings.retry_max_s)
                continue
            except Exception:
                log.exception("draining the spool failed; retrying in %.1f s", delay)
                self._stop.wait(delay)
                delay = min(delay * 2, self.settings.retry_max_s)
                continue
            self._mark_up()
            delay = self.settings.retry_min_s

    def drain_once(self) -> bool:
        """Write the oldest spooled records (merged, split by device over the connections, in
        writes of `max_points_per_write`, one per connection at once) and commit them; False if
        the spool is empty. Raises what a part raised once every part has ended; the records
        then stay and are taken again (the parts written meanwhile are written twice)."""
        lease = self.spool.take(self._lease_readings, self.settings.drain_poll_s)
        if lease is None:
            return False
        return self._settle(lease, self._submit(lease))

    def drain_backlog(self) -> bool:
        """`drain_once` until the spool is empty, with the next lease read from disk, decoded
        and queued on the connections while the store works on the current one: the store
        never waits for the spool. Each connection writes its parts in the order queued, so a
        device's readings keep their order; leases are committed in the order taken. False if
        the spool was empty; raises as `drain_once` (every lease not committed stays). Once
        stopping, it ends with the lease in hand."""
        lease = self.spool.take(self._lease_readings, self.settings.drain_poll_s)
        if lease is None:
            return False
        futures = self._submit(lease)
        while True:
            following = (
                None if self._stop.is_set() else self.spool.take(self._lease_readings, after=lease)
            )
            queued = self._submit(following) if following is not None else []
            try:
                settled = self._settle(lease, futures)
            except BaseException:
                for future in queued:  # not sent yet: sent again with the failed lease's retry
                    future.cancel()
                wait(queued)  # the others end before their records are taken again
                raise
            if not settled or following is None:
                wait(queued)
                return settled
            self._mark_up()
            lease, futures = following, queued

    @property
    def _lease_readings(self) -> int:
        return self.settings.max_points_per_write * len(self.lanes)

    def _submit(self, lease: Lease) -> list[Future[None]]:
        return [
            self.lanes[lane].submit(partial(self.write_with, part), live=False)
            for lane, part in split(lease.batch, len(self.lanes))
        ]

    def _settle(self, lease: Lease, futures: list[Future[None]]) -> bool:
        """Wait for a lease's writes; commit it when every part is written. False if they were
        cancelled (stopping: the records stay); raises what a part raised."""
        wait(futures)
        if any(f.cancelled() for f in futures):
            return False
        failures = [exc for f in futures if (exc := f.exception()) is not None]
        if failures:
            self.metrics.add(write_failures=len(failures))
            raise failures[0]
        self.spool.commit(lease)
        self.metrics.add(readings_drained=len(lease.batch))
        return True

    def _back_off(self, wait_s: float) -> None:
        """Wait, but only until the probe sees the store answer again."""
        deadline = time.monotonic() + wait_s
        while not self._stop.is_set() and (left := deadline - time.monotonic()) > 0:
            if self._up.wait(min(left, 0.1)):
                return

    def _probe(self) -> None:
        try:
            self.writer.ping()
        except StoreUnavailableError as exc:
            self._mark_down(exc)
        else:
            self._mark_up()
