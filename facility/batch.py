"""The columnar batch every stage after decode shares.

A batch holds, per device kind, one row per reading: the device's row number in that kind's
arrays, the reading's timestamp and sequence number, and a float64 matrix with one column per
catalog field (NaN where the reading did not report the field). Nothing downstream iterates
over readings in Python; stages work on these arrays.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from facility.catalog import KINDS, KindSpec

Int32Array = npt.NDArray[np.int32]
Int64Array = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntpArray = npt.NDArray[np.intp]
Array = npt.NDArray[Any]
"""An array of any dtype (a rule expression's value: numbers or truth values)."""


@dataclass(frozen=True, slots=True)
class KindBatch:
    kind: KindSpec
    device: Int32Array
    """Row of each reading's device in this kind's arrays (`Device.kind_index`)."""
    ts_ms: Int64Array
    seq: Int64Array
    values: FloatArray
    """Shape (readings, fields of the kind); NaN = field not reported. The decoder makes it
    column-major (Fortran order), so each field is contiguous: the rules, the line-protocol
    writer and the validation read it a column at a time."""

    def __post_init__(self) -> None:
        n = self.device.shape[0]
        if self.ts_ms.shape != (n,) or self.seq.shape != (n,):
            raise ValueError("device, ts_ms and seq must have one entry per reading")
        if self.values.shape != (n, len(self.kind.fields)):
            raise ValueError(
                f"values must have shape ({n}, {len(self.kind.fields)}), got {self.values.shape}"
            )

    def __len__(self) -> int:
        return int(self.device.shape[0])

    def column(self, field: str) -> FloatArray:
        return self.values[:, self.kind.col(field)]

    def take(self, rows: npt.NDArray[np.intp] | BoolArray) -> KindBatch:
        """The given rows, in a column-major table when this one is."""
        values = self.values
        if values.flags.f_contiguous:
            index = np.flatnonzero(rows) if rows.dtype == np.bool_ else rows
            taken = np.take(values.T, index, axis=1).T
        else:
            taken = values[rows]
        return KindBatch(self.kind, self.device[rows], self.ts_ms[rows], self.seq[rows], taken)

    def time_ordered(self) -> KindBatch:
        """Rows sorted by (device, timestamp): readings that arrived out of order are put back."""
        order = np.lexsort((self.seq, self.ts_ms, self.device))
        return self.take(order)

    @staticmethod
    def empty(kind: KindSpec) -> KindBatch:
        return KindBatch(
            kind,
            np.empty(0, np.int32),
            np.empty(0, np.int64),
            np.empty(0, np.int64),
            np.empty((0, len(kind.fields)), np.float64),
        )

    @staticmethod
    def concat(kind: KindSpec, parts: Iterable[KindBatch]) -> KindBatch:
        items = [p for p in parts if len(p)]
        if not items:
            return KindBatch.empty(kind)
        if len(items) == 1:
            return items[0]
        return KindBatch(
            kind,
            np.concatenate([p.device for p in items]),
            np.concatenate([p.ts_ms for p in items]),
            np.concatenate([p.seq for p in items]),
            np.concatenate([p.values for p in items]),
        )


@dataclass(frozen=True, slots=True)
class Batch:
    """Readings of one site, grouped by kind; kinds without readings are absent."""

    site_id: str
    """The gateway's site (a portfolio: `portfolio`, its estates' readings together); nothing
    is filed by it: each device's own estate is its `Device.site_id`."""
    kinds: Mapping[str, KindBatch]
    message_start_ms: int | None = None
    """The latest time at which one message's readings begin (its oldest reading), set by the
    decoder; None when unknown. A message of many readings is published once its newest is
    taken: while a backlog drains, this, not the newest reading, says how far every device's
    messages have surely been read (`alerts.silence_clock`)."""

    def __len__(self) -> int:
        return sum(len(k) for k in self.kinds.values())

    def __iter__(self) -> Iterator[KindBatch]:
        return iter(self.kinds.values())

    def halves(self) -> tuple[Batch, Batch]:
        """Two batches with about half the readings each (for a store that said 413)."""
        first: dict[str, KindBatch] = {}
        second: dict[str, KindBatch] = {}
        remaining = len(self) // 2
        for name, kb in self.kinds.items():
            cut = min(remaining, len(kb))
            remaining -= cut
            if cut:
                first[name] = kb.take(np.arange(cut))
            if cut < len(kb):
                second[name] = kb.take(np.arange(cut, len(kb)))
        return Batch(self.site_id, first), Batch(self.site_id, second)

    def chunks(self, max_readings: int) -> list[Batch]:
        """The batch cut into pieces of at most `max_readings` readings."""
        if len(self) <= max_readings:
            return [self]
        first, rest = self.halves()
        return first.chunks(max_readings) + rest.chunks(max_readings)

    @property
    def newest_ts_ms(self) -> int | None:
        stamps = [int(kb.ts_ms.max()) for kb in self.kinds.values() if len(kb)]
        return max(stamps) if stamps else None

    @staticmethod
    def concat(site_id: str, batches: Iterable[Batch]) -> Batch:
        """The batches' readings, kind by kind in their order; the latest `message_start_ms`."""
        groups: dict[str, list[KindBatch]] = {}
        starts: list[int] = []
        for batch in batches:
            for name, part in batch.kinds.items():
                groups.setdefault(name, []).append(part)
            if batch.message_start_ms is not None:
                starts.append(batch.message_start_ms)
        kinds = {name: KindBatch.concat(KINDS[name], parts) for name, parts in groups.items()}
        return Batch(site_id, {k: v for k, v in kinds.items() if len(v)}, max(starts, default=None))


class BatchSink(Protocol):
    """A stage that takes decoded batches: the time-series writer, the rules engine.

    `handle` returns only when the batch is safe in that stage (for a writer: durable);
    it raises when it is not, and the caller must not ack the messages behind it.
    """

    def handle(self, batch: Batch) -> None: ...
