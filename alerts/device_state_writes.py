"""Each device's newest reading into `device_state`: at once while the gateway keeps up, merged
while it drains a backlog.

A write upserts one row per device of the batch, whatever its size: about 7 ms for a batch of
the 1,000-device benchmark site here, 1.4 µs of the gateway's CPU per one-reading message, the
largest single cost after the MQTT client. Draining a backlog, batches come back to back and
each replaces the rows the one before it wrote, so there the batches wait and are written
together, at most `every_s` apart: the rows then hold the newest reading of all of them, as
they would have. While the gateway keeps up (the pipeline says so: `behind` / `caught_up`),
every batch is written as it comes, as before. What waits is written by the timer's tick and
the checkpoint too, so it cannot wait longer than those run apart.

Only the dashboard's "last seen" and latest values read these rows; the readings themselves are
in the time-series store before their messages are acked, and the rules keep their own state.
A gateway that dies with rows waiting leaves those devices' rows up to `every_s` older, until
each device's next reading.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from facility.batch import Batch
from facility.site import Site

log = logging.getLogger(__name__)

WriteStates = Callable[[Site, Batch], None]


class DeviceStateWrites:
    def __init__(
        self,
        site: Site,
        write: WriteStates,
        *,
        every_s: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.site = site
        self._write = write
        self.every_s = every_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._waiting: list[Batch] = []
        self._written_at = float("-inf")
        self._behind = False

    def add(self, batch: Batch) -> None:
        """Write the batch's device states, or keep them for the next write while the gateway
        is behind and the last write is younger than `every_s`. Raises what the write raised
        (the batch waits, and the gateway's retry brings it again)."""
        with self._lock:
            if not self._waiting or self._waiting[-1] is not batch:  # a retry brings it again
                self._waiting.append(batch)
            if self._behind and self._monotonic() - self._written_at < self.every_s:
                return
            self._write_waiting()

    def behind(self) -> None:
        """The gateway is draining a backlog: merge the next batches' writes."""
        with self._lock:
            self._behind = True

    def caught_up(self) -> None:
        """The gateway has what it received: write what waits, and each batch at once again."""
        with self._lock:
            self._behind = False
        self.flush()

    def flush(self) -> None:
        """Write what waits; a failure is logged and it waits for the next try (the timer's
        tick, the checkpoint, the next batch)."""
        with self._lock:
            try:
                self._write_waiting()
            except Exception:
                log.exception("writing %d batch(es) of device states failed; kept for the next "
                              "try", len(self._waiting))  # fmt: skip

    @property
    def waiting(self) -> int:
        """Batches whose device states wait to be written."""
        with self._lock:
            return len(self._waiting)

    def _write_waiting(self) -> None:
        if not self._waiting:
            return
        waiting = self._waiting
        merged = waiting[0] if len(waiting) == 1 else Batch.concat(waiting[0].site_id, waiting)
        self._write(self.site, merged)
        self._waiting = []
        self._written_at = self._monotonic()
