"""Rule expressions: a small language over one device kind's fields, compiled to numpy.

An expression is parsed once with Python's `ast` and turned into a tree of numpy operations;
nothing is ever passed to `eval`. What is allowed (anything else is a `RuleSyntaxError` naming
the column):

    numbers, true / false                      1.5, 20, true
    fields of the rule's kind                  suction_bar, running
    parameters                                 dry_run_suction_bar (see rule files)
    built-in per-device values                 heartbeat_s (the kind's heartbeat window)
    arithmetic                                 + - * / %   and unary -
    comparisons, chained                       a < b,  0 < x <= 5,  ==, !=
    logic                                      and, or, not
    functions                                  abs(x), min(a, b, ...), max(a, b, ...)
                                               rail(field)   the reading sits at the bottom or
                                                             top of the field's catalog range
    temporal                                   delta(field)  change since the device's
                                                              previous reading
                                               rate(field)   that change per second
                                               age()         seconds since the device last
                                                             reported (0 at a reading; grows
                                                             between readings, see the engine's
                                                             tick)
                                               age(field)    seconds since the field last had
                                                             a value
                                               stuck(field, "10m")
                                                             the field has read exactly the
                                                             same value for at least 10 min
                                                             (and in at least 3 readings)
    windows                                    count(cond, W)    readings in W where cond holds
                                               changes(x, W)     times x changed within W
                                               mean(x, W)        mean of x over W
                                               median(x, W)      median of x over W

A window W is a duration ("10m", "30s", "2h", "7d"; readings with ts in (t - W, t]) or a
whole number n (the device's last n readings). Window functions take two keywords:
`only=cond` records a reading in the window only where cond holds (e.g. only at elevator
stops), and `capacity=N` (default 64, at most 4096) bounds how many readings a time window
keeps per device: it never holds more than the newest N readings (a last-n window keeps
just its n; capacity must be at least n). Windows are
per-device ring buffers that the engine keeps between batches (and checkpoints).

A field the reading did not report is NaN: arithmetic with it gives NaN and every comparison
with NaN is false (`!=` too), so a missing field never fires a rule. In `and` / `or` / `not`,
a number is true when it is non-zero and not NaN. Window functions skip readings whose value
is NaN; `mean` / `median` of an empty window is NaN.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt

from facility.batch import BoolArray, FloatArray, Int64Array
from facility.catalog import KindSpec
from facility.errors import FacilityError

Array = npt.NDArray[Any]

NEVER = np.iinfo(np.int64).min // 4
"""Timestamp of 'no such reading' in state arrays (far enough from int64's end to subtract)."""
DEFAULT_CAPACITY = 64
MAX_CAPACITY = 4096
STUCK_MIN_READINGS = 3
"""stuck() also needs this many equal readings in a row: two sparse readings that happen to
agree are not a flat line."""
BUILTINS = ("heartbeat_s",)
"""Names every expression knows besides fields and parameters (per device)."""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration_s(value: object) -> float | None:
    """Seconds from a number or a text like '30', '30s', '10m', '2h', '7d'; None if neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if value >= 0 else None
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match[1]) * _UNIT_S[match[2]]
    return None


def true_rows(mask: npt.NDArray[Any]) -> npt.NDArray[np.intp]:
    """The indices where a 1-d array is true (np.flatnonzero without its Python wrapper,
    which costs more than the work on a gateway-sized batch)."""
    rows: npt.NDArray[np.intp] = mask.nonzero()[0]
    return rows


class RuleSyntaxError(FacilityError):
    def __init__(self, message: str, column: int) -> None:
        self.message = message
        self.column = column
        """1-based column in the expression text."""
        super().__init__(f"column {column}: {message}")


# -- window state ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """One window function of a compiled expression; `key` names its state in the engine."""

    key: str
    function: str
    """count | changes | mean | median | stuck"""
    window_ms: int | None
    """A time window (ts in (t - window, t]); None for a last-n window."""
    last_n: int | None
    capacity: int
    text: str
    """The call as written, without its capacity: a checkpointed window loads only into a
    window written the same way (another capacity keeps the ring's newest entries)."""


@dataclass(slots=True)
class WindowState:
    """Per device: the window's newest readings, oldest first (ts NEVER = empty slot); for
    `stuck`, the value of the current flat run and since when it has lasted."""

    ts: Int64Array
    values: FloatArray
    run_value: FloatArray
    run_start: Int64Array
    run_count: Int64Array
    current: FloatArray
    """A last-n window's value over the ring (what a reading without a new entry reads)."""

    @staticmethod
    def new(spec: WindowSpec, devices: int) -> WindowState:
        width = spec.capacity if spec.function != "stuck" else 0
        return WindowState(
            np.full((devices, width), NEVER, np.int64),
            np.full((devices, width), np.nan),
            np.full(devices, np.nan),
            np.full(devices, NEVER, np.int64),
            np.zeros(devices, np.int64),
            np.full(devices, _EMPTY[spec.function]),
        )


@dataclass(slots=True)
class _Groups:
    """Row structure of a time-ordered batch: where each device's rows begin and end."""

    rows: npt.NDArray[np.intp]
    first: BoolArray
    last: BoolArray
    start: npt.NDArray[np.intp]
    """Per row, the index of its device's first row."""
    _index: npt.NDArray[np.intp] | None = None

    @staticmethod
    def of(device: npt.NDArray[np.int32]) -> _Groups:
        n = len(device)
        rows = np.arange(n)
        first = np.ones(n, np.bool_)
        first[1:] = device[1:] != device[:-1]
        last = np.ones(n, np.bool_)
        last[:-1] = device[:-1] != device[1:]
        start = np.maximum.accumulate(np.where(first, rows, 0)) if n else rows
        return _Groups(rows, first, last, start)

    def group_index(self) -> npt.NDArray[np.intp]:
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
    def device(self) -> npt.NDArray[np.int32]: ...

    @property
    def ts_ms(self) -> Int64Array: ...

    def __len__(self) -> int: ...

    def column(self, field: str) -> FloatArray: ...


@dataclass
class RuleContext:
    """What an expression sees: one kind's time-ordered readings and what they need.

    With `now_ms` set the context is a tick: one row per device at `now_ms` holding the
    device's last values, so `age()` can grow while nothing arrives. Window functions and
    delta / rate are not evaluated in a tick (rules that use `age` may not use them).

    `memo` holds the values of the expressions' pure sub-expressions (no window state); the
    engine shares one memo between the rules of one kind and batch, so a column, a parameter
    or a comparison that several rules read is computed once.
    """

    batch: Rows
    params: Mapping[str, FloatArray]
    """Per parameter, its value for each device of the kind (indexed by device row)."""
    previous_values: FloatArray | None
    """Each reading's device's previous reading, per field (NaN when there is none); None
    when `previous_first` gives it for each device's first row (the rest is the row above)."""
    previous_ts_ms: npt.NDArray[np.int64]
    windows: Mapping[str, WindowState] = field(default_factory=dict)
    """The rule's window states (by `WindowSpec.key`), as of before this batch."""
    last_present_ts: Int64Array | None = None
    """(devices, fields): when each field last had a value, before this batch."""
    now_ms: int | None = None
    last_seen_ms: Int64Array | None = None
    """In a tick: per device, since when its silence counts."""
    updates: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    """New window states computed from this batch; the engine commits them."""
    _groups: _Groups | None = None
    previous_first: FloatArray | None = None
    """(device groups, fields): the previous reading of each device's first row."""
    memo: dict[str, Array] = field(default_factory=dict)
    window_values: dict[WindowSpec, FloatArray] = field(default_factory=dict)
    """This rule's window results in this batch (a window used twice is computed once)."""

    @property
    def groups(self) -> _Groups:
        if self._groups is None:
            self._groups = _Groups.of(self.batch.device)
        return self._groups

    def column(self, name: str) -> FloatArray:
        return self.batch.column(name)

    def param(self, name: str) -> FloatArray:
        """The parameter per row; a 0-d array when every device has the same value (the
        usual case: a per-row gather would cost more than the rule)."""
        values = self.params[name]
        if len(values) and bool((values == values[0]).all()):
            return np.asarray(values[0])
        result: FloatArray = values[self.batch.device]
        return result

    def previous(self, name: str) -> FloatArray:
        """Each row's device's previous value of the field."""
        col = self.batch.kind.col(name)
        if self.previous_values is not None:
            before: FloatArray = self.previous_values[:, col]
            return before
        current = self.column(name)
        out = np.empty_like(current)
        if len(out):
            out[1:] = current[:-1]
            first = self.groups.first
            out[first] = self.previous_first[:, col] if self.previous_first is not None else np.nan
        return out

    def delta(self, name: str) -> FloatArray:
        result: FloatArray = self.column(name) - self.previous(name)
        return result

    def rate(self, name: str) -> FloatArray:
        seconds = (self.batch.ts_ms - self.previous_ts_ms).astype(np.float64) / 1000
        with np.errstate(divide="ignore", invalid="ignore"):
            result: FloatArray = np.where(seconds > 0, self.delta(name) / seconds, np.nan)
        return result

    def age(self, name: str | None) -> FloatArray:
        kb = self.batch
        n = len(kb)
        if self.now_ms is not None:  # a tick
            if name is None:
                seen = self.last_seen_ms
                if seen is None:
                    return np.zeros(n)
                since = seen[kb.device]
            else:
                if self.last_present_ts is None:
                    return np.full(n, np.nan)
                since = self.last_present_ts[kb.device, kb.kind.col(name)]
            out: FloatArray = np.where(
                since == NEVER, np.nan, (self.now_ms - since).astype(np.float64) / 1000
            )
            return out
        if name is None:
            return np.zeros(n)
        present = ~np.isnan(self.column(name))
        g = self.groups
        at = np.maximum.accumulate(np.where(present, g.rows, -1)) if n else g.rows
        inside = at >= g.start
        before = (
            self.last_present_ts[kb.device, kb.kind.col(name)]
            if self.last_present_ts is not None
            else np.full(n, NEVER, np.int64)
        )
        since = np.where(inside, kb.ts_ms[np.maximum(at, 0)], before)
        result: FloatArray = np.where(
            since == NEVER, np.nan, (kb.ts_ms - since).astype(np.float64) / 1000
        )
        return result

    # -- windows --------------------------------------------------------------------------

    def window(self, spec: WindowSpec, values: FloatArray, only: BoolArray | None) -> FloatArray:
        """The window function `spec` at every row, over the device's history and this batch.

        Only devices whose window can change are laid out: for a last-n window those with a
        new entry (the others keep the value the state holds, `WindowState.current`), for a
        time window also those whose ring still holds an entry inside some row's window (the
        others read an empty window). A row before its device's first new entry reads the
        state's value; a last-n window changes only at an entry, so it is reduced there and
        carried to the rows after it.
        """
        n = len(self.batch)
        if n == 0:
            return np.zeros(0)
        if spec.function == "stuck":
            return self._stuck(spec, values)
        kb, g = self.batch, self.groups
        state = self.windows.get(spec.key)
        entry = ~np.isnan(values)
        if only is not None:
            entry &= only
        entry_rows = true_rows(entry)
        group_of_row = g.group_index()
        if spec.last_n is not None:
            result: FloatArray = (
                state.current[kb.device] if state is not None else np.full(n, _EMPTY[spec.function])
            )
            if len(entry_rows) == 0:
                return result
            at_entry = _last_n(
                self.updates, spec, state, kb.device[entry_rows], kb.ts_ms[entry_rows],
                values[entry_rows],
            )  # fmt: skip
            latest = np.maximum.accumulate(np.where(entry, g.rows, -1))
            inside = latest >= g.start
            carried = np.cumsum(entry) - 1  # the entry's number among entry_rows
            result[inside] = at_entry[carried[inside]]
            return result
        # a time window: devices with new entries or with an entry young enough to count
        devices = kb.device[g.first]
        live = np.zeros(len(devices), np.bool_)
        live[group_of_row[entry_rows]] = True
        if state is not None:
            newest = state.ts[devices, -1]
            live |= (newest != NEVER) & (newest > kb.ts_ms[g.first] - int(spec.window_ms or 0))
        result = np.full(n, _EMPTY[spec.function])
        if not live.any():
            return result
        rows = true_rows(live[group_of_row])
        result[rows] = _time_window(
            self.updates, spec, state, kb.device[rows], kb.ts_ms[rows], values[rows],
            entry[rows],
        )  # fmt: skip
        return result

    def _stuck(self, spec: WindowSpec, values: FloatArray) -> FloatArray:
        kb, g = self.batch, self.groups
        state = self.windows.get(spec.key)
        dev = kb.device
        before_value = state.run_value[dev] if state is not None else np.full(len(kb), np.nan)
        before_start = (
            state.run_start[dev] if state is not None else np.full(len(kb), NEVER, np.int64)
        )
        previous = np.empty_like(values)
        if len(values):
            previous[1:] = values[:-1]
        previous[g.first] = before_value[g.first]
        same = values == previous  # NaN never equals: a missing value breaks the run
        marker = ~same | g.first
        run_row = np.maximum.accumulate(np.where(marker, g.rows, 0)) if len(kb) else g.rows
        carried = g.first[run_row] & same[run_row]
        run_start = np.where(carried, before_start[run_row], kb.ts_ms[run_row])
        before_count = state.run_count[dev] if state is not None else np.zeros(len(kb), np.int64)
        run_count = g.rows - run_row + 1 + np.where(carried, before_count[run_row], 0)
        window_ms = int(spec.window_ms or 0)
        stuck = (
            ~np.isnan(values)
            & (run_start != NEVER)
            & (kb.ts_ms - run_start >= window_ms)
            & (run_count >= STUCK_MIN_READINGS)
        )
        last = g.last
        self.updates[spec.key] = (
            "stuck",
            dev[last],
            values[last],
            run_start[last],
            run_count[last],
        )
        result: FloatArray = stuck.astype(np.float64)
        return result


_EMPTY: Final = {
    "count": 0.0, "changes": 0.0, "mean": np.nan, "median": np.nan, "stuck": 0.0, "slope": np.nan,
}  # fmt: skip
SLOPE_MIN_READINGS: Final = 3
"""slope() needs at least this many readings in its window (else NaN)."""
"""A window function's value over an empty window."""


def _time_window(
    updates: dict[str, tuple[Any, ...]],
    spec: WindowSpec,
    state: WindowState | None,
    dev: npt.NDArray[np.int32],
    ts: Int64Array,
    values: FloatArray,
    entry: BoolArray,
) -> FloatArray:
    """A time window at each of these rows (whole device groups in time order), and the new
    ring of each device with entries into `updates`.

    Per device group the window's entries are laid out flat, history first (the ring's young
    slots, empty ones included, so every position is known without a sort), then the new
    entries in time order: a row's window ends after its own entry and starts where its time
    and the capacity allow."""
    g = _Groups.of(dev)
    capacity = spec.capacity
    devices = dev[g.first]
    groups = len(devices)
    group_of_row = g.group_index()
    entry_rows = true_rows(entry)
    entry_group = group_of_row[entry_rows]
    new_count = np.bincount(entry_group, minlength=groups)
    before = np.zeros(groups, np.intp)
    np.cumsum(new_count[:-1], out=before[1:])
    window_ms = int(spec.window_ms or 0)
    if state is None:
        slots = 0
        hist_ts = np.full((groups, 0), NEVER, np.int64)
        hist_val = np.full((groups, 0), np.nan)
    else:
        slots = _young_slots(state.ts, devices, ts[g.first] - window_ms)
        hist_ts = state.ts[devices, capacity - slots :]
        hist_val = state.values[devices, capacity - slots :]
    hist_ok = hist_ts != NEVER
    group_base = np.arange(groups) * slots + before
    hist_pos = group_base[:, None] + np.arange(slots)[None, :]
    new_pos = (entry_group + 1) * slots + np.arange(len(entry_rows))
    flat_val = np.empty(groups * slots + len(entry_rows))
    flat_val[hist_pos] = np.where(hist_ok, hist_val, 0.0)
    entry_val = values[entry_rows]
    flat_val[new_pos] = entry_val
    valid_start = group_base + slots - hist_ok.sum(axis=1)
    end = (group_of_row + 1) * slots + np.cumsum(entry)
    base = int(ts.min()) - 1
    if hist_ok.any():
        base = min(base, int(hist_ts[hist_ok].min()) - 1)
    shift = np.int64(1) << np.int64(45)
    keys = np.empty(len(flat_val), np.int64)
    keys[hist_pos] = np.arange(groups)[:, None] * shift + np.where(hist_ok, hist_ts - base, 0)
    keys[new_pos] = entry_group * shift + (ts[entry_rows] - base)
    row_keys = group_of_row * shift + (ts - base)
    start = np.searchsorted(keys, row_keys - window_ms, side="right")
    start = np.maximum(np.maximum(start, end - capacity), valid_start[group_of_row])
    if spec.function in ("count", "changes"):
        result = _counted(spec.function, flat_val, start, end)
    elif spec.function == "slope":
        flat_s = np.empty(len(flat_val))
        flat_s[hist_pos] = np.where(hist_ok, (hist_ts - base) / 1000.0, 0.0)
        flat_s[new_pos] = (ts[entry_rows] - base) / 1000.0
        width = max(int((end - start).max()) if len(start) else 0, 1)
        index = start[:, None] + np.arange(width)[None, :]
        inside = index < end[:, None]
        take = np.minimum(index, len(flat_val) - 1)
        result = _slope(
            np.where(inside, flat_s[take], np.nan), np.where(inside, flat_val[take], np.nan)
        )
    else:  # each window's values side by side, NaN padding the shorter ones
        width = max(int((end - start).max()) if len(start) else 0, 1)
        index = start[:, None] + np.arange(width)[None, :]
        window = np.where(
            index < end[:, None], flat_val[np.minimum(index, len(flat_val) - 1)], np.nan
        )
        result = _reduce_rows(spec.function, window, padded=True)
    # the new ring of each device with new entries: its last `capacity` entries
    changed = true_rows(new_count)
    if len(changed) and state is not None:
        ring = _new_rings(
            state, devices[changed], new_count[changed], before[changed],
            ts[entry_rows], entry_val,
        )  # fmt: skip
        updates[spec.key] = (*ring, None)  # a time window keeps no current value
    return result


def _slope(seconds: FloatArray, values: FloatArray) -> FloatArray:
    """Per row, the least-squares slope (change per second) of values over time, NaN padding
    empty slots; NaN with fewer than SLOPE_MIN_READINGS readings or all at one time."""
    ok = ~np.isnan(values)
    n = ok.sum(axis=1)
    size = np.maximum(n, 1)
    mean_s = np.where(ok, seconds, 0.0).sum(axis=1) / size
    mean_v = np.where(ok, values, 0.0).sum(axis=1) / size
    ds = np.where(ok, seconds - mean_s[:, None], 0.0)
    dv = np.where(ok, values - mean_v[:, None], 0.0)
    sxx = (ds * ds).sum(axis=1)
    sxy = (ds * dv).sum(axis=1)
    fit = (n >= SLOPE_MIN_READINGS) & (sxx > 0)
    result: FloatArray = np.where(fit, sxy / np.where(fit, sxx, 1.0), np.nan)
    return result


def _young_slots(ring_ts: Int64Array, devices: npt.NDArray[np.int32], cutoff: Int64Array) -> int:
    """How many of the newest ring slots can hold an entry newer than each device's cutoff
    (rings are oldest first, so a slot at or before the cutoff has only older ones before it):
    a sparse time window lays out a few slots per device, not the whole ring."""
    capacity = int(ring_ts.shape[1])
    slots = 4
    while slots < capacity:
        if bool((ring_ts[devices, capacity - slots] <= cutoff).all()):
            return slots
        slots *= 2
    return capacity


def _last_n(
    updates: dict[str, tuple[Any, ...]],
    spec: WindowSpec,
    state: WindowState | None,
    dev: npt.NDArray[np.int32],
    ts: Int64Array,
    values: FloatArray,
) -> FloatArray:
    """A last-n window at each of its new entries (rows in (device, time) order, every one an
    entry), and the new ring of each device into `updates`.

    Per device its ring (the last n entries, oldest first) then its new entries, laid out flat
    one device after another; the window at an entry is the n slots ending there, and the new
    ring is the device's last n slots. count and changes (whole numbers) come from prefix sums,
    mean and median from the gathered windows, each summed in the same order whatever the
    batches, so a result never depends on how readings were batched. With one new entry per
    device (the gateway's batches) a device's ring and entry are its window."""
    n = int(spec.last_n or 1)
    first = np.empty(len(dev), np.bool_)
    first[0] = True
    np.not_equal(dev[1:], dev[:-1], out=first[1:])
    if first.all():
        row_val = np.empty((len(dev), n + 1))
        row_val[:, :n] = np.nan if state is None else state.values[dev]
        row_val[:, n] = values
        result = _reduce_rows(spec.function, row_val[:, 1:])
        if state is not None:
            row_ts = np.empty((len(dev), n + 1), np.int64)
            row_ts[:, :n] = state.ts[dev]
            row_ts[:, n] = ts
            updates[spec.key] = ("ring", dev, row_ts[:, 1:], row_val[:, 1:], result)
        return result
    starts = true_rows(first)
    devices = dev[starts]
    group = np.cumsum(first) - 1
    at = np.arange(len(dev)) + (group + 1) * n  # each entry's slot; a device's ring before it
    ring_at = (np.arange(len(devices)) * n + starts)[:, None] + np.arange(n)[None, :]
    flat_val = np.empty(len(dev) + len(devices) * n)
    flat_val[ring_at] = np.nan if state is None else state.values[devices]
    flat_val[at] = values
    if spec.function in ("count", "changes"):
        result = _counted(spec.function, flat_val, at - (n - 1), at + 1)
    else:
        result = _reduce_rows(spec.function, _ending_at(flat_val, at, n))
    if state is not None:
        flat_ts = np.empty(len(flat_val), np.int64)
        flat_ts[ring_at] = state.ts[devices]
        flat_ts[at] = ts
        ends = np.append(starts[1:], len(dev)) - 1
        newest = at[ends]
        updates[spec.key] = (
            "ring",
            devices,
            _ending_at(flat_ts, newest, n),
            _ending_at(flat_val, newest, n),
            result[ends],
        )
    return result


def _ending_at(flat: npt.NDArray[Any], at: npt.NDArray[np.intp], n: int) -> npt.NDArray[Any]:
    """The n slots of `flat` ending at each `at`, one row each: rows of a sliding view (a
    copy of each row) when there are many, an index matrix when few (the view costs more to
    make than a small gather)."""
    rows: npt.NDArray[Any]
    if len(at) * n < 20_000:
        rows = flat[at[:, None] + np.arange(1 - n, 1)[None, :]]
    else:
        rows = np.lib.stride_tricks.sliding_window_view(flat, n)[at - (n - 1)]
    return rows


def _counted(
    function: str,
    flat_val: FloatArray,
    start: npt.NDArray[np.intp],
    end: npt.NDArray[np.intp],
) -> FloatArray:
    """count or changes over each span [start, end) of `flat_val` (NaN = empty slot), by
    prefix sums of whole numbers, which are exact; a change pairs a slot with the one before
    it, both inside the span."""
    valid = ~np.isnan(flat_val)
    data = np.zeros(len(flat_val))
    if function == "changes":
        data[1:] = (flat_val[1:] != flat_val[:-1]) & valid[1:] & valid[:-1]
        start = np.minimum(start + 1, end)
    else:
        data[:] = (flat_val != 0) & valid
    prefix = np.zeros(len(flat_val) + 1)
    np.cumsum(data, out=prefix[1:])
    total: FloatArray = prefix[end] - prefix[start]
    return total


def _reduce_rows(function: str, window: FloatArray, *, padded: bool = False) -> FloatArray:
    """The window function over each row of `window`, entries oldest first, NaN = empty slot
    (the valid entries of a ring are its newest, so they sit together at the row's end).

    A mean is summed the same way whatever the batches, so a threshold on it never depends
    on them: a last-n window always has the same width and place in its row, so a plain row
    sum; windows padded to the longest (time windows) are summed in order, oldest first."""
    if function == "mean" and not padded:
        total = window.sum(axis=1)
        size = np.full(len(window), window.shape[1])
        partial = true_rows(np.isnan(total))  # an empty slot (or inf - inf): sum what is there
        if len(partial):
            some = window[partial]
            present = ~np.isnan(some)
            total[partial] = np.where(present, some, 0.0).sum(axis=1)
            size[partial] = present.sum(axis=1)
        full: FloatArray = np.where(size > 0, total / np.maximum(size, 1), np.nan)
        return full
    valid = ~np.isnan(window)
    size = valid.sum(axis=1)
    if function == "count":
        counted: FloatArray = ((window != 0) & valid).sum(axis=1).astype(np.float64)
        return counted
    if function == "changes":
        pairs = valid[:, 1:] & valid[:, :-1]
        changed: FloatArray = ((window[:, 1:] != window[:, :-1]) & pairs).sum(axis=1)
        return changed.astype(np.float64)
    if function == "mean":
        total = np.cumsum(np.where(valid, window, 0.0), axis=1)[:, -1]
        mean: FloatArray = np.where(size > 0, total / np.maximum(size, 1), np.nan)
        return mean
    ordered = np.sort(window, axis=1)  # NaN sorts last
    rows = np.arange(len(window))
    lo = ordered[rows, np.maximum((size - 1) // 2, 0)]
    hi = ordered[rows, np.minimum(size // 2, window.shape[1] - 1)]
    median: FloatArray = np.where(size > 0, (lo + hi) / 2, np.nan)
    return median


def ring_current(spec: WindowSpec, ts: Int64Array, values: FloatArray) -> FloatArray:
    """Each device's last-n window over its ring alone (what `WindowState.current` holds)."""
    if spec.last_n is None or len(ts) == 0:
        return np.full(len(ts), _EMPTY[spec.function])
    return _reduce_rows(spec.function, values[:, -spec.last_n :])


def _new_rings(
    state: WindowState,
    devices: npt.NDArray[np.integer[Any]],
    count: npt.NDArray[np.intp],
    first: npt.NDArray[np.intp],
    entry_ts: Int64Array,
    entry_val: FloatArray,
) -> tuple[str, npt.NDArray[np.integer[Any]], Int64Array, FloatArray]:
    """Each device's ring after its `count` new entries (at `first` in the entry arrays): the
    old ring shifted left by `count`, the new entries at its end.

    Devices are taken a few counts at a time (the gateway's batches bring one or two entries
    per device), with plain slices; many distinct counts (one large batch) go through one
    gather over every slot instead.
    """
    capacity = state.ts.shape[1]
    old_ts, old_val = state.ts[devices], state.values[devices]
    counts = true_rows(np.bincount(count))  # the distinct counts (np.unique sorts)
    if len(counts) > _FEW_COUNTS:
        index = np.arange(capacity)[None, :] + count[:, None]
        from_old = index < capacity
        kept = np.minimum(index, capacity - 1)
        fresh = np.clip(first[:, None] + index - capacity, 0, len(entry_ts) - 1)
        new_ts = np.where(from_old, np.take_along_axis(old_ts, kept, 1), entry_ts[fresh])
        new_val = np.where(from_old, np.take_along_axis(old_val, kept, 1), entry_val[fresh])
        return ("ring", devices, new_ts, new_val)
    for c in counts.tolist():
        rows = true_rows(count == c)
        take = min(c, capacity)
        at = first[rows][:, None] + np.arange(c - take, c)[None, :]
        if take < capacity:
            old_ts[rows, : capacity - take] = old_ts[rows, take:]
            old_val[rows, : capacity - take] = old_val[rows, take:]
        old_ts[rows, capacity - take :] = entry_ts[at]
        old_val[rows, capacity - take :] = entry_val[at]
    return ("ring", devices, old_ts, old_val)


_FEW_COUNTS: Final = 8

Node = Callable[[RuleContext], Array]


def truth(values: Array) -> BoolArray:
    """Non-zero and not NaN."""
    if values.dtype == np.bool_:
        return values
    if values.dtype != np.float64:
        values = values.astype(np.float64)
    result: BoolArray = (values != 0) & ~np.isnan(values)
    return result


def _number(values: Array) -> FloatArray:
    """As float64, without a copy when it already is (operands are never written to)."""
    result: FloatArray = values.astype(np.float64, copy=False)
    return result


def _not_equal(a: Array, b: Array) -> Array:
    return np.not_equal(a, b) & ~np.isnan(a) & ~np.isnan(b)


_COMPARE: dict[type[ast.cmpop], Callable[[Array, Array], Array]] = {
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Eq: np.equal,
    ast.NotEq: _not_equal,
}
_ARITHMETIC: dict[type[ast.operator], Callable[[Array, Array], Array]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.divide,
    ast.Mod: np.mod,
}
TEMPORAL = ("delta", "rate")
WINDOWED = ("count", "changes", "mean", "median", "slope")
FUNCTIONS = (
    "abs", "min", "max", "rail", "moving", "pinned", *TEMPORAL, "age", "stuck", *WINDOWED,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Expression:
    text: str
    fields: frozenset[str]
    params: frozenset[str]
    temporal: bool
    """Uses delta / rate: needs each device's previous reading."""
    _node: Node
    windows: tuple[WindowSpec, ...] = ()
    uses_age: bool = False
    """Uses age(): evaluated on the engine's timer as well as at readings."""
    reads_field_age: bool = False
    """Uses age(field): the engine must keep when each field last had a value."""

    def __call__(self, context: RuleContext) -> BoolArray:
        with np.errstate(divide="ignore", invalid="ignore"):
            result = self._node(context)
        if result.shape != (len(context.batch),):  # a constant expression
            result = np.broadcast_to(result, (len(context.batch),))
        return truth(result)

    def number(self, context: RuleContext) -> FloatArray:
        """The expression's value at each reading as a number (true = 1, NaN = none)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            result = _number(self._node(context))
        if result.shape != (len(context.batch),):  # a constant expression
            result = np.broadcast_to(result, (len(context.batch),)).astype(np.float64)
        return result


class _Compiler:
    def __init__(self, kind: KindSpec, params: frozenset[str], prefix: str) -> None:
        self.kind = kind
        self.known_params = params
        self.prefix = prefix
        self.fields: set[str] = set()
        self.params: set[str] = set()
        self.temporal = False
        self.uses_age = False
        self.reads_field_age = False
        self.windows: list[WindowSpec] = []
        self.window_texts: dict[str, WindowSpec] = {}

    def fail(self, node: ast.AST, message: str) -> RuleSyntaxError:
        return RuleSyntaxError(message, getattr(node, "col_offset", 0) + 1)

    def compile(self, node: ast.AST) -> Node:
        """The node's numpy function; a pure one (no window inside) is memoised in the
        context under its text, so rules of one kind share it within a batch."""
        windows = len(self.windows)
        compiled = self._compile(node)
        if isinstance(node, (ast.Expression, ast.Constant)) or len(self.windows) != windows:
            return compiled
        key = ast.unparse(node)

        def memoised(c: RuleContext) -> Array:
            value = c.memo.get(key)
            if value is None:
                value = c.memo[key] = compiled(c)
            return value

        return memoised

    def _compile(self, node: ast.AST) -> Node:
        if isinstance(node, ast.Expression):
            return self.compile(node.body)
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.BoolOp):
            return self.bool_op(node)
        if isinstance(node, ast.UnaryOp):
            return self.unary(node)
        if isinstance(node, ast.BinOp):
            op = _ARITHMETIC.get(type(node.op))
            if op is None:
                raise self.fail(node, f"operator {type(node.op).__name__} is not allowed")
            left, right = self.compile(node.left), self.compile(node.right)
            return lambda c: op(_number(left(c)), _number(right(c)))
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        raise self.fail(node, f"{type(node).__name__} is not allowed in a rule expression")

    def constant(self, node: ast.Constant) -> Node:
        value = node.value
        if isinstance(value, bool) or (isinstance(value, (int, float)) and value is not None):
            number = np.float64(float(value))
            return lambda c: np.asarray(number)
        if isinstance(value, str):
            raise self.fail(
                node,
                f"only numbers and true/false are allowed, not {value!r} "
                '(text only as a window, e.g. mean(x, "10m"))',
            )
        raise self.fail(node, f"only numbers and true/false are allowed, not {value!r}")

    def name(self, node: ast.Name) -> Node:
        ident = node.id
        if ident in ("true", "false"):
            number = np.float64(1.0 if ident == "true" else 0.0)
            return lambda c: np.asarray(number)
        if ident in self.kind.index:
            self.fields.add(ident)
            return lambda c: c.column(ident)
        if ident in self.known_params:
            self.params.add(ident)
            return lambda c: c.param(ident)
        if ident == "heartbeat_s":
            heartbeat = np.float64(self.kind.heartbeat_s)
            return lambda c: np.asarray(heartbeat)
        raise self.fail(
            node,
            f"unknown name {ident!r}: not a {self.kind.name} field nor a parameter "
            f"(fields: {', '.join(self.kind.field_names)})",
        )

    def bool_op(self, node: ast.BoolOp) -> Node:
        """`and` / `or` over every part; once the result is settled for every row, the
        remaining parts without window state are skipped (windows must see every batch)."""
        is_and = isinstance(node.op, ast.And)
        parts = []
        for value in node.values:
            windows = len(self.windows)
            parts.append((self.compile(value), len(self.windows) == windows))

        def evaluate(c: RuleContext) -> Array:
            result = truth(np.asarray(parts[0][0](c)))
            for part, pure in parts[1:]:
                settled = not result.any() if is_and else bool(result.all())
                if settled and pure:
                    continue
                value = truth(np.asarray(part(c)))
                result = (result & value) if is_and else (result | value)
            return result

        return evaluate

    def unary(self, node: ast.UnaryOp) -> Node:
        operand = self.compile(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda c: np.logical_not(truth(operand(c)))
        if isinstance(node.op, ast.USub):
            return lambda c: np.negative(_number(operand(c)))
        if isinstance(node.op, ast.UAdd):
            return lambda c: _number(operand(c))
        raise self.fail(node, f"operator {type(node.op).__name__} is not allowed")

    def compare(self, node: ast.Compare) -> Node:
        ops = []
        for op in node.ops:
            function = _COMPARE.get(type(op))
            if function is None:
                raise self.fail(node, f"comparison {type(op).__name__} is not allowed")
            ops.append(function)
        operands = [self.compile(node.left), *(self.compile(c) for c in node.comparators)]

        def evaluate(c: RuleContext) -> Array:
            values = [_number(o(c)) for o in operands]
            result = ops[0](values[0], values[1])
            for i in range(1, len(ops)):
                result = result & ops[i](values[i], values[i + 1])
            return result

        return evaluate

    def field_arg(self, node: ast.Call, name: str) -> str:
        if not node.args or not isinstance(node.args[0], ast.Name):
            raise self.fail(node, f"{name}() takes one field name, e.g. {name}(motor_temp_c)")
        ident = node.args[0].id
        if ident not in self.kind.index:
            raise self.fail(node.args[0], f"{name}() needs a {self.kind.name} field, not {ident!r}")
        self.fields.add(ident)
        return ident

    def call(self, node: ast.Call) -> Node:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise self.fail(node, f"unknown function; allowed: {', '.join(FUNCTIONS)}")
        name = node.func.id
        if name in (*WINDOWED, "stuck"):
            return self.windowed(node, name)
        if node.keywords:
            raise self.fail(node, f"{name}() takes no keyword arguments")
        if name == "age":
            self.uses_age = True
            if not node.args:
                return lambda c: c.age(None)
            if len(node.args) != 1:
                raise self.fail(node, "age() takes no argument or one field name")
            ident = self.field_arg(node, name)
            self.reads_field_age = True
            return lambda c: c.age(ident)
        if name in ("moving", "pinned"):
            if len(node.args) != 1:
                raise self.fail(node, f"{name}() takes one field name, e.g. {name}(lux)")
            return self.sensor(node, name, self.field_arg(node, name))
        if name in (*TEMPORAL, "rail"):
            if len(node.args) != 1:
                raise self.fail(node, f"{name}() takes one field name, e.g. {name}(motor_temp_c)")
            ident = self.field_arg(node, name)
            if name == "rail":
                spec = self.kind.fields[self.kind.col(ident)]
                lo, hi = spec.min, spec.max
                return lambda c: (c.column(ident) <= lo) | (c.column(ident) >= hi)
            self.temporal = True
            if name == "delta":
                return lambda c: c.delta(ident)
            return lambda c: c.rate(ident)
        args = [self.compile(a) for a in node.args]
        if name == "abs":
            if len(args) != 1:
                raise self.fail(node, "abs() takes one argument")
            return lambda c: np.abs(_number(args[0](c)))
        if len(args) < 2:
            raise self.fail(node, f"{name}() takes two or more arguments")
        pairwise = np.minimum if name == "min" else np.maximum

        def extreme(c: RuleContext) -> Array:
            result = _number(args[0](c))
            for a in args[1:]:
                result = pairwise(result, _number(a(c)))
            return result

        return extreme

    def sensor(self, node: ast.Call, name: str, ident: str) -> Node:
        """moving(field): the catalog's condition under which the signal must be live (true
        when it gives none). pinned(field): the reading sits at a rail that is not a value at
        rest: its top, or its bottom unless the catalog calls that a rest value and the
        signal need not move now."""
        spec = self.kind.fields[self.kind.col(ident)]
        if spec.moves_when:
            try:
                moving = self.compile(ast.parse(spec.moves_when, mode="eval").body)
            except (SyntaxError, RuleSyntaxError) as exc:  # the catalog is ours: a bug
                raise self.fail(
                    node, f"the catalog's moves_when of {ident} is broken: {exc}"
                ) from exc
        else:
            moving = None
        if name == "moving":
            if moving is None:
                return lambda c: np.ones(len(c.batch), np.bool_)
            return moving
        lo, hi = spec.min, spec.max
        if not spec.rest_at_rail:
            return lambda c: (c.column(ident) <= lo) | (c.column(ident) >= hi)
        if moving is None:
            return lambda c: c.column(ident) >= hi
        live = moving

        def pinned(c: RuleContext) -> Array:
            values = c.column(ident)
            result: Array = (values >= hi) | ((values <= lo) & truth(live(c)))
            return result

        return pinned

    def window_arg(
        self, node: ast.Call, name: str, *, time_only: bool
    ) -> tuple[int | None, int | None]:
        if len(node.args) != 2:
            raise self.fail(node, f'{name}() takes a value and a window, e.g. {name}(x, "10m")')
        arg = node.args[1]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            seconds = parse_duration_s(arg.value)
            if seconds is None or seconds <= 0:
                raise self.fail(
                    arg, f'window {arg.value!r} is not a duration like "30s", "10m", "2h"'
                )
            return round(seconds * 1000), None
        if (
            not time_only
            and isinstance(arg, ast.Constant)
            and isinstance(arg.value, int)
            and not isinstance(arg.value, bool)
        ):
            if not 1 <= arg.value <= MAX_CAPACITY:
                raise self.fail(
                    arg, f"a window of the last n readings needs 1 <= n <= {MAX_CAPACITY}"
                )
            return None, arg.value
        what = 'a duration like "10m"' if time_only else 'a duration like "10m" or a count like 5'
        raise self.fail(arg, f"{name}() window must be {what}")

    def windowed(self, node: ast.Call, name: str) -> Node:
        window_ms, last_n = self.window_arg(node, name, time_only=name in ("stuck", "slope"))
        only: Node | None = None
        capacity = max(DEFAULT_CAPACITY, last_n or 0)
        for keyword in node.keywords:
            if name == "stuck":
                raise self.fail(node, "stuck() takes no keyword arguments")
            if keyword.arg == "only":
                only = self.compile(keyword.value)
            elif keyword.arg == "capacity":
                value = keyword.value
                if not (
                    isinstance(value, ast.Constant)
                    and isinstance(value.value, int)
                    and not isinstance(value.value, bool)
                    and 1 <= value.value <= MAX_CAPACITY
                ):
                    raise self.fail(value, f"capacity must be a whole number 1..{MAX_CAPACITY}")
                capacity = value.value
                if last_n is not None and last_n > capacity:
                    raise self.fail(value, "capacity must hold the last n readings")
            else:
                raise self.fail(node, f"{name}() knows the keywords only= and capacity=")
        if name == "stuck":
            ident = self.field_arg(node, name)
            value_node: Node = lambda c: c.column(ident)  # noqa: E731
        else:
            value_node = self.compile(node.args[0])
        text = f"{ast.unparse(node)}/{capacity}"
        twin = self.window_texts.get(text)
        # the same window twice in one expression: one state, computed once per batch (the
        # twin still takes its number, so later windows keep their checkpointed keys)
        written = ast.Call(node.func, node.args, [k for k in node.keywords if k.arg != "capacity"])
        spec = twin or WindowSpec(  # a last-n window keeps just its n readings
            f"{self.prefix}w{len(self.windows)}",
            name,
            window_ms,
            last_n,
            last_n or capacity,
            ast.unparse(written),
        )
        self.windows.append(spec)
        self.window_texts[text] = spec
        as_bool = name == "count"

        def evaluate(c: RuleContext) -> Array:
            done = c.window_values.get(spec)
            if done is not None:
                return done
            values = value_node(c)
            values = truth(values).astype(np.float64) if as_bool else _number(values)
            if values.shape != (len(c.batch),):  # a constant
                values = np.full(len(c.batch), values, np.float64)
            mask = None if only is None else truth(only(c))
            if mask is not None and mask.shape != (len(c.batch),):  # a constant
                mask = np.full(len(c.batch), bool(mask), np.bool_)
            result = c.window_values[spec] = c.window(spec, values, mask)
            return result

        return evaluate


def compile_expression(
    text: str, kind: KindSpec, params: frozenset[str] = frozenset(), *, prefix: str = ""
) -> Expression:
    """Compile `text` for `kind`; parameters are the names in `params`; window state keys
    start with `prefix` (so a rule's `when` and `clear` keep theirs apart)."""
    if not text.strip():
        raise RuleSyntaxError("the expression is empty", 1)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        # Python reports "unexpected end" as offset 0 (or a later line): point past the end.
        column = exc.offset if exc.offset and (exc.lineno or 1) == 1 else len(text) + 1
        raise RuleSyntaxError(f"not a valid expression: {exc.msg}", column) from exc
    compiler = _Compiler(kind, params, prefix)
    node = compiler.compile(tree)
    if compiler.uses_age and (compiler.windows or compiler.temporal):
        raise RuleSyntaxError(
            "age() is evaluated on the timer as well as at readings: it cannot be combined "
            "with window functions or delta / rate in one expression",
            1,
        )
    return Expression(
        text,
        frozenset(compiler.fields),
        frozenset(compiler.params),
        compiler.temporal,
        node,
        tuple(compiler.windows),
        compiler.uses_age,
        compiler.reads_field_age,
    )
