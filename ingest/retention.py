"""Retention of the embedded SQLite store: readings older than `sqlite_retention_days` go.

InfluxDB and VictoriaMetrics keep their own retention (a retention policy, `-retentionPeriod`;
docs/operations.md), so only the embedded store is pruned here. `run_once` is one pruning
pass; the composition root calls it every `interval_s` on its periodic worker.
"""

from __future__ import annotations

import logging

from facility.clock import Clock, now_ms
from ingest.errors import StoreUnavailableError
from ingest.sqlite_store import SQLiteTimeSeries

log = logging.getLogger(__name__)


class SQLiteRetention:
    def __init__(
        self,
        store: SQLiteTimeSeries,
        *,
        retention_ms: int,
        interval_s: float,
        clock_ms: Clock = now_ms,
    ) -> None:
        if retention_ms <= 0:
            raise ValueError("retention_ms must be positive")
        self.store = store
        self.retention_ms = retention_ms
        self.interval_s = interval_s
        self.clock_ms = clock_ms

    def run_once(self) -> int:
        """Delete what is past retention now; how many readings went. A busy or failing
        store is logged and tried again next time, not raised."""
        cutoff = self.clock_ms() - self.retention_ms
        try:
            deleted = self.store.prune(cutoff)
        except StoreUnavailableError as exc:
            log.warning("pruning %s failed, trying again later: %s", self.store.path, exc)
            return 0
        if deleted:
            log.info(
                "pruned %d readings older than %d ms from %s", deleted, cutoff, self.store.path
            )
        return deleted
