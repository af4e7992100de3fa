"""What a compiled expression reads: `RuleContext`, one kind's time-ordered readings with the
devices' parameters, previous readings and window states, and the values derived from them
(delta, rate, age, windows).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from alerts.rule_language import NEVER
from alerts.rule_rows import DeviceGroups, Rows
from alerts.rule_windows import WindowSpec, WindowState, WindowUpdate, evaluate_window
from facility.batch import Array, BoolArray, FloatArray, Int64Array


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
    previous_ts_ms: Int64Array
    windows: Mapping[str, WindowState] = field(default_factory=dict)
    """The rule's window states (by `WindowSpec.key`), as of before this batch."""
    last_present_ts: Int64Array | None = None
    """(devices, fields): when each field last had a value, before this batch."""
    now_ms: int | None = None
    last_seen_ms: Int64Array | None = None
    """In a tick: per device, since when its silence counts."""
    updates: dict[str, WindowUpdate] = field(default_factory=dict)
    """New window states computed from this batch; the engine commits them."""
    row_groups: DeviceGroups | None = None
    """The batch's device groups, when the caller has them already (else made on first use)."""
    previous_first: FloatArray | None = None
    """(device groups, fields): the previous reading of each device's first row."""
    memo: dict[str, Array] = field(default_factory=dict)
    window_values: dict[WindowSpec, FloatArray] = field(default_factory=dict)
    """This rule's window results in this batch (a window used twice is computed once)."""

    @property
    def groups(self) -> DeviceGroups:
        if self.row_groups is None:
            self.row_groups = DeviceGroups.of(self.batch.device)
        return self.row_groups

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

    def window(self, spec: WindowSpec, values: FloatArray, only: BoolArray | None) -> FloatArray:
        """The window function `spec` at every row (`alerts.rule_windows.evaluate_window`); its
        new state goes into `updates`."""
        return evaluate_window(
            spec, self.batch, self.groups, self.windows.get(spec.key), self.updates, values, only
        )
