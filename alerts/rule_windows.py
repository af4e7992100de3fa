"""Window functions' state and evaluation: per rule window, a ring buffer per device of its
newest readings (or, for `stuck`, the current flat run), and the window's value at every row
of a batch over that history and the batch.

The engine keeps the states between batches (`commit_windows`) and checkpoints them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from alerts.rule_language import NEVER, STUCK_MIN_READINGS
from alerts.rule_reducers import EMPTY_VALUE, counted, reduce_rows, window_slopes
from alerts.rule_rows import DeviceGroups, Rows, true_rows
from alerts.rule_windows_walked import COMPILED, WALKED_FUNCTIONS, walked_stuck, walked_window
from facility.batch import BoolArray, FloatArray, Int32Array, Int64Array, IntpArray

WindowUpdate = tuple[Any, ...]
"""A window's new state for some devices, computed from a batch: ("ring", devices, ts,
values, current or None) or ("stuck", devices, run_value, run_start, run_count)."""


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
            np.full(devices, EMPTY_VALUE[spec.function]),
        )


def evaluate_window(
    spec: WindowSpec,
    rows: Rows,
    groups: DeviceGroups,
    state: WindowState | None,
    updates: dict[str, WindowUpdate],
    values: FloatArray,
    only: BoolArray | None,
    *,
    compiled: bool = COMPILED,
) -> FloatArray:
    """The window function `spec` at every row, over the device's history (`state`, None
    when the rule has none yet) and this batch; the new state goes into `updates`.

    Where it is built (`compiled`), alerts/_windows.c walks every window device by device: the
    same values and states as the numpy layout below, without its fixed cost of some 20-40
    numpy calls per window and batch.

    Only devices whose window can change are laid out: for a last-n window those with a
    new entry (the others keep the value the state holds, `WindowState.current`), for a
    time window also those whose ring still holds an entry inside some row's window (the
    others read an empty window). A row before its device's first new entry reads the
    state's value; a last-n window changes only at an entry, so it is reduced there and
    carried to the rows after it.
    """
    n = len(rows)
    if n == 0:
        return np.zeros(0)
    if compiled and state is not None:
        if spec.function == "stuck":
            return walked_stuck(spec, rows, state, updates, values)
        if spec.function in WALKED_FUNCTIONS:
            return walked_window(spec, rows, state, updates, values, only)
    if spec.function == "stuck":
        return _stuck(spec, rows, groups, state, updates, values)
    entry = ~np.isnan(values)
    if only is not None:
        entry &= only
    entry_rows = true_rows(entry)
    group_of_row = groups.group_index()
    if spec.last_n is not None:
        result: FloatArray = (
            state.current[rows.device]
            if state is not None
            else np.full(n, EMPTY_VALUE[spec.function])
        )
        if len(entry_rows) == 0:
            return result
        at_entry = _last_n(
            updates,
            spec,
            state,
            rows.device[entry_rows],
            rows.ts_ms[entry_rows],
            values[entry_rows],
        )
        latest = np.maximum.accumulate(np.where(entry, groups.rows, -1))
        inside = latest >= groups.start
        carried = np.cumsum(entry) - 1  # the entry's number among entry_rows
        result[inside] = at_entry[carried[inside]]
        return result
    # a time window: devices with new entries or with an entry young enough to count
    devices = rows.device[groups.first]
    live = np.zeros(len(devices), np.bool_)
    live[group_of_row[entry_rows]] = True
    if state is not None:
        newest = state.ts[devices, -1]
        live |= (newest != NEVER) & (newest > rows.ts_ms[groups.first] - int(spec.window_ms or 0))
    result = np.full(n, EMPTY_VALUE[spec.function])
    if not live.any():
        return result
    picked = true_rows(live[group_of_row])
    result[picked] = _time_window(
        updates, spec, state, rows.device[picked], rows.ts_ms[picked], values[picked],
        entry[picked],
    )  # fmt: skip
    return result


def _stuck(
    spec: WindowSpec,
    rows: Rows,
    groups: DeviceGroups,
    state: WindowState | None,
    updates: dict[str, WindowUpdate],
    values: FloatArray,
) -> FloatArray:
    """stuck(field, W) at every row: the field's current flat run, carried over from the
    state, has lasted W and STUCK_MIN_READINGS readings."""
    dev = rows.device
    before_value = state.run_value[dev] if state is not None else np.full(len(rows), np.nan)
    before_start = (
        state.run_start[dev] if state is not None else np.full(len(rows), NEVER, np.int64)
    )
    previous = np.empty_like(values)
    if len(values):
        previous[1:] = values[:-1]
    previous[groups.first] = before_value[groups.first]
    same = values == previous  # NaN never equals: a missing value breaks the run
    marker = ~same | groups.first
    run_row = np.maximum.accumulate(np.where(marker, groups.rows, 0)) if len(rows) else groups.rows
    carried = groups.first[run_row] & same[run_row]
    run_start = np.where(carried, before_start[run_row], rows.ts_ms[run_row])
    before_count = state.run_count[dev] if state is not None else np.zeros(len(rows), np.int64)
    run_count = groups.rows - run_row + 1 + np.where(carried, before_count[run_row], 0)
    window_ms = int(spec.window_ms or 0)
    stuck = (
        ~np.isnan(values)
        & (run_start != NEVER)
        & (rows.ts_ms - run_start >= window_ms)
        & (run_count >= STUCK_MIN_READINGS)
    )
    last = groups.last
    updates[spec.key] = (
        "stuck",
        dev[last],
        values[last],
        run_start[last],
        run_count[last],
    )
    result: FloatArray = stuck.astype(np.float64)
    return result


def commit_windows(windows: Mapping[str, WindowState], updates: Mapping[str, WindowUpdate]) -> None:
    """Write the new states a batch computed (`evaluate_window`) into the rule's windows."""
    for key, update in updates.items():
        window = windows[key]
        if update[0] == "ring":
            _, devices, ts, values, current = update
            window.ts[devices] = ts
            window.values[devices] = values
            if current is not None:
                window.current[devices] = current
        else:
            _, devices, run_value, run_start, run_count = update
            window.run_value[devices] = run_value
            window.run_start[devices] = run_start
            window.run_count[devices] = run_count


def _time_window(
    updates: dict[str, WindowUpdate],
    spec: WindowSpec,
    state: WindowState | None,
    dev: Int32Array,
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
    g = DeviceGroups.of(dev)
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
        result = counted(spec.function, flat_val, start, end)
    elif spec.function == "slope":
        flat_ms = np.empty(len(flat_val), np.int64)
        flat_ms[hist_pos] = hist_ts
        flat_ms[new_pos] = ts[entry_rows]
        used = np.ones(len(flat_val), np.bool_)
        used[hist_pos] = hist_ok
        origin = np.repeat(np.minimum(valid_start, len(flat_val) - 1), slots + new_count)
        result = window_slopes(flat_ms, flat_val, used, origin, start, end)
    else:  # each window's values side by side, NaN padding the shorter ones
        width = max(int((end - start).max()) if len(start) else 0, 1)
        index = start[:, None] + np.arange(width)[None, :]
        window = np.where(
            index < end[:, None], flat_val[np.minimum(index, len(flat_val) - 1)], np.nan
        )
        result = reduce_rows(spec.function, window)
    # the new ring of each device with new entries: its last `capacity` entries
    changed = true_rows(new_count)
    if len(changed) and state is not None:
        ring = _new_rings(
            state, devices[changed], new_count[changed], before[changed],
            ts[entry_rows], entry_val,
        )  # fmt: skip
        updates[spec.key] = (*ring, None)  # a time window keeps no current value
    return result


def _young_slots(ring_ts: Int64Array, devices: Int32Array, cutoff: Int64Array) -> int:
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
    updates: dict[str, WindowUpdate],
    spec: WindowSpec,
    state: WindowState | None,
    dev: Int32Array,
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
        result = reduce_rows(spec.function, row_val[:, 1:])
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
        result = counted(spec.function, flat_val, at - (n - 1), at + 1)
    else:
        result = reduce_rows(spec.function, _ending_at(flat_val, at, n))
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


def _ending_at(flat: npt.NDArray[Any], at: IntpArray, n: int) -> npt.NDArray[Any]:
    """The n slots of `flat` ending at each `at`, one row each: rows of a sliding view (a
    copy of each row) when there are many, an index matrix when few (the view costs more to
    make than a small gather)."""
    rows: npt.NDArray[Any]
    if len(at) * n < 20_000:
        rows = flat[at[:, None] + np.arange(1 - n, 1)[None, :]]
    else:
        rows = np.lib.stride_tricks.sliding_window_view(flat, n)[at - (n - 1)]
    return rows


def ring_current(spec: WindowSpec, ts: Int64Array, values: FloatArray) -> FloatArray:
    """Each device's last-n window over its ring alone (what `WindowState.current` holds)."""
    if spec.last_n is None or len(ts) == 0:
        return np.full(len(ts), EMPTY_VALUE[spec.function])
    return reduce_rows(spec.function, values[:, -spec.last_n :])


def _new_rings(
    state: WindowState,
    devices: npt.NDArray[np.integer[Any]],
    count: IntpArray,
    first: IntpArray,
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
