"""An in-memory writer for tests and benchmarks: keeps every batch it was given."""

from __future__ import annotations

import threading

from facility.batch import Batch


class MemoryWriter:
    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self._lock = threading.Lock()

    def handle(self, batch: Batch) -> None:
        with self._lock:
            self.batches.append(batch)

    @property
    def readings(self) -> int:
        with self._lock:
            return sum(len(b) for b in self.batches)

    def close(self) -> None:
        pass
