"""Parallel store writes that keep each device's order: one lane per store connection.

A lane is one writer (its own connection or HTTP session) and the one thread that writes
through it, one request at a time, in the order the work was given: live work first, then the
spool drainer's. A batch is split by a stable hash of (kind, device) into one part per lane, so
a device always goes through the same connection, and that connection writes its parts in
order. Why several connections: InfluxDB 1.x parses and indexes one request per connection at a
time, so one writer leaves its cores idle while the gateway encodes the next request (measured
in docs/benchmarks.md: about 61-91k of the gateway's points/s from one writer, 105-117k from
two). The price of the order: a write given up on a hung store keeps its lane until it ends
(at most the store's write timeout), and the lane's later work waits behind it.
"""

from __future__ import annotations

import threading
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import TypeVar

import numpy as np

from facility.batch import Batch, KindBatch
from ingest.interface import TimeSeriesWriter

T = TypeVar("T")
Work = Callable[[TimeSeriesWriter], T]

_Item = tuple["Future[object]", "Work[object]"]

_MIX = np.uint64(0x9E3779B97F4A7C15)
"""Fibonacci hashing: consecutive device rows spread evenly over the lanes."""


def lane_of(kb: KindBatch, lanes: int) -> np.ndarray:
    """Each reading's lane: a hash of its kind and device row, the same in every batch."""
    if lanes == 1:
        return np.zeros(len(kb), np.intp)
    salt = np.uint64(zlib.crc32(kb.kind.name.encode()))
    mixed = (kb.device.astype(np.uint64) + salt) * _MIX  # wraps modulo 2**64, on purpose
    return ((mixed >> np.uint64(32)) % np.uint64(lanes)).astype(np.intp)


def split(batch: Batch, lanes: int) -> list[tuple[int, Batch]]:
    """The batch cut into one part per lane (lanes without readings left out); each part keeps
    its readings in the batch's order."""
    if lanes == 1:
        return [(0, batch)] if len(batch) else []
    parts: list[dict[str, KindBatch]] = [{} for _ in range(lanes)]
    for name, kb in batch.kinds.items():
        lane = lane_of(kb, lanes)
        for index in range(lanes):
            rows = np.flatnonzero(lane == index)
            if len(rows) == len(kb):
                parts[index][name] = kb
            elif len(rows):
                parts[index][name] = kb.take(rows)
    return [(i, Batch(batch.site_id, kinds)) for i, kinds in enumerate(parts) if kinds]


class Lane:
    """One writer and its thread: work runs one at a time, live work before drain work, each
    in the order it was submitted. The thread starts with the first work."""

    def __init__(self, writer: TimeSeriesWriter, name: str) -> None:
        self.writer = writer
        self.name = name
        self._queues: tuple[deque[_Item], deque[_Item]] = (deque(), deque())
        """Live work, then the drainer's."""
        self._changed = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def submit(self, work: Work[T], *, live: bool) -> Future[T]:
        future: Future[T] = Future()
        with self._changed:
            if self._closed:
                _cancel(future)
                return future
            self._queues[0 if live else 1].append((future, work))  # type: ignore[arg-type]
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            self._changed.notify()
        return future

    def _run(self) -> None:
        while True:
            with self._changed:
                while not (self._queues[0] or self._queues[1] or self._closed):
                    self._changed.wait()
                if self._closed:
                    return
                future, work = (self._queues[0] or self._queues[1]).popleft()
            if not future.set_running_or_notify_cancel():
                continue  # given up on before it started
            try:
                result = work(self.writer)
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)
            else:
                future.set_result(result)

    def close(self) -> None:
        """Cancel what has not started; a write under way ends on its own (daemon thread)."""
        with self._changed:
            self._closed = True
            pending = [*self._queues[0], *self._queues[1]]
            for queue in self._queues:
                queue.clear()
            self._changed.notify_all()
        for future, _ in pending:
            _cancel(future)


def _cancel(future: Future[T]) -> None:
    """Cancel a future no thread has started, so that `wait` sees it done."""
    if future.cancel():
        future.set_running_or_notify_cancel()  # CANCELLED -> CANCELLED_AND_NOTIFIED


def lanes_for(writers: Sequence[TimeSeriesWriter]) -> list[Lane]:
    return [Lane(w, f"store-write-{i}") for i, w in enumerate(writers)]
