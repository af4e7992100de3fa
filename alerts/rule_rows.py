"""Time-ordered readings as the rules read them: the `Rows` protocol, the engine's sorted view
of a batch (`SortedRows`, `time_order`) and where each device's rows begin and end
(`DeviceGroups`).

Every rule computation works on rows in (device, time) order, so a device's readings sit
together and a running maximum over row numbers finds, per row, the last event of its device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from facility.batch import BoolArray, FloatArray, Int32Array, Int64Array, IntpArray, KindBatch
from facility.catalog import KindSpec


def true_rows(mask: npt.NDArray[Any]) -> IntpArray:
    """The indices where a 1-d array is true (np.flatnonzero without its Python wrapper,
    which costs more than the work on a gateway-sized batch)."""
    rows: IntpArray = mask.nonzero()[0]
    return rows


@dataclass(slots=True)
class DeviceGroups:
    """Row structure of a time-ordered batch: where each device's rows begin and end."""

    rows: IntpArray
    first: BoolArray
    last: BoolArray
    start: IntpArray
    """Per row, the index of its device's first row."""
    _index: IntpArray | None = None

    @staticmethod
    def of(device: Int32Array) -> DeviceGroups:
        n = len(device)
        rows = np.arange(n)
        first = np.ones(n, np.bool_)
        first[1:] = device[1:] != device[:-1]
        last = np.ones(n, np.bool_)
        last[:-1] = device[:-1] != device[1:]
        start = np.maximum.accumulate(np.where(first, rows, 0)) if n else rows
        return DeviceGroups(rows, first, last, start)

    def group_index(self) -> IntpArray:
        """Per row, the number of its device group (0 for the first device's rows)."""
        if self._index is None:
            self._index = np.cumsum(self.first) - 1
        return self._index


class Rows(Protocol):
    """Time-ordered readings of one kind as an expression reads them: a `KindBatch`, or the
    engine's sorted view of one (which gathers a column only when a rule reads it)."""

    @property
    def kind(self) -> KindSpec: ...

    @property
    def device(self) -> Int32Array: ...

    @property
    def ts_ms(self) -> Int64Array: ...

    def __len__(self) -> int: ...

    def column(self, field: str) -> FloatArray: ...


class SortedRows:
    """A kind's batch in (device, time) order without copying its value matrix: `rows` maps
    each ordered row to its row in `values` (None: the same row), and a column is gathered
    into that order once, when a rule first reads it."""

    __slots__ = ("_columns", "device", "kind", "rows", "ts_ms", "values")

    def __init__(
        self,
        kind: KindSpec,
        device: Int32Array,
        ts_ms: Int64Array,
        values: FloatArray,
        rows: IntpArray | None,
    ) -> None:
        self.kind = kind
        self.device = device
        self.ts_ms = ts_ms
        self.values = values
        self.rows = rows
        self._columns: dict[str, FloatArray] = {}

    def __len__(self) -> int:
        return len(self.device)

    def column(self, field: str) -> FloatArray:
        cached = self._columns.get(field)
        if cached is None:
            source = self.values[:, self.kind.col(field)]
            cached = np.ascontiguousarray(source if self.rows is None else source[self.rows])
            self._columns[field] = cached
        return cached

    def source_rows(self, rows: IntpArray) -> IntpArray:
        return rows if self.rows is None else self.rows[rows]

    def values_at(self, rows: IntpArray) -> FloatArray:
        """Whole readings (every field) of the given ordered rows."""
        result: FloatArray = self.values[self.source_rows(rows)]
        return result


def time_order(kb: KindBatch) -> IntpArray | None:
    """The rows of `kb` in (device, time, seq) order; None when they already are.

    Cheap first: a batch already in order costs one pass; one whose devices each arrived in
    time order (the gateway's batches, readings interleaved across devices) a stable sort by
    device (a radix sort when device rows fit 16 bits); readings out of order within the batch
    then one stable sort of a (device, time) key over nearly sorted rows; only devices with a
    timestamp twice are sorted by sequence number as well."""
    dev, ts = kb.device, kb.ts_ms
    if len(dev) < 2:
        return None
    same = dev[1:] == dev[:-1]
    if bool(((dev[1:] > dev[:-1]) | (same & (ts[1:] > ts[:-1]))).all()):
        return None
    keys = dev.astype(np.uint16) if int(dev.max()) < 1 << 16 else dev
    order: IntpArray = np.argsort(keys, kind="stable")
    d, t = dev[order], ts[order]
    late = (d[1:] == d[:-1]) & (t[1:] <= t[:-1])
    if not late.any():
        return order
    low = int(t.min())
    if int(t.max()) - low < 1 << 40 and int(dev.max()) < 1 << 22:
        # rows sorted by device are nearly in (device, time) order: a stable sort of one
        # combined key (timsort, which runs through sorted stretches) puts them right
        fix = np.argsort((d.astype(np.int64) << 40) | (t - low), kind="stable")
        order, d, t = order[fix], d[fix], t[fix]
        late = (d[1:] == d[:-1]) & (t[1:] == t[:-1])
        if not late.any():
            return order
    # only the devices with a reading out of order (or a timestamp twice) are sorted by time
    # and sequence number
    marked = np.zeros(int(dev.max()) + 1, np.bool_)
    marked[d[1:][late]] = True
    at = true_rows(marked[d])
    rows = order[at]
    order[at] = rows[np.lexsort((kb.seq[rows], ts[rows], dev[rows]))]
    return order
