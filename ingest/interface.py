"""What a time-series writer must do. One module per writer: influx_v1, sqlite_store, memory."""

from __future__ import annotations

from typing import Protocol

from facility.batch import Batch


class TimeSeriesWriter(Protocol):
    """Stores a batch durably. `handle` returns only once the store has it (a 2xx, a commit);
    it raises `ingest.errors.WriteError` otherwise. Writing the same readings twice is harmless:
    a point is keyed by kind + device + timestamp."""

    def handle(self, batch: Batch) -> None: ...

    def close(self) -> None: ...
