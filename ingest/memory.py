"""An in-memory writer for tests and benchmarks: keeps every batch it was given."""

from __future__ import annotations

import threading

from facility.batch import Batch
from ingest.interface import WriteResult


class MemoryWriter:
    name = "memory"

    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self._lock = threading.Lock()

    def write(self, batch: Batch) -> WriteResult:
        with self._lock:
            self.batches.append(batch)
        return WriteResult(len(batch))

    def handle(self, batch: Batch) -> None:
        """Also usable directly as a gateway sink in tests."""
        self.write(batch)

    @property
    def readings(self) -> int:
        with self._lock:
            return sum(len(b) for b in self.batches)

    def ping(self) -> None:
        pass

    def close(self) -> None:
        pass
