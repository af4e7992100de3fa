"""The vectorised rules engine: per-kind state arrays, one pass of numpy per rule and batch.

State per kind and device: the newest reading and its time, when each field last had a value,
and since when silence counts (`watch_from`: the engine cannot claim a device was silent while
it was not listening). Per rule and device: since when the condition has held (`since_ms`,
NEVER = not holding), whether the fault is open, when it last cleared (cool-down), the times of
its last episodes (repeat) and the rule's window ring buffers.

Readings are put in (device, time) order first; a reading not newer than the device's last one
(a replay, a late duplicate) does not move the state, which makes redelivery harmless. Only an
index is sorted (and not at all when the batch is already in order, or only a stable sort by
device when each device's readings arrived in time order, as they usually do); a column is
gathered into that order when a rule first reads it (`SortedRows`).

Per rule, the condition is evaluated over every reading of the kind, but the `for` timers,
open / clear transitions, cool-downs and repeats run only over the devices where something can
happen: a device whose condition never holds in the batch and that has no running timer, open
fault or repeat in its state keeps its state unchanged, so it is skipped.

A rule's fault opens at a reading where its `when` has held for `for` (continuously, by
reading time), inside its schedule, and, with a cool-down, not within the cool-down of the
last clear; it clears at a reading where `clear` holds (default: where `when` does not). Rules
with `repeat` report a fault only at the episode that makes `count` within `within`.

The episode model (docs/rules.md#episodes): a rule's `hold` keeps an episode `when` started
going (its `for` timer runs on, no clear counts while it holds); with `clear_for` a clear
counts once it has held that long (`clear_since_ms`); an episode that starts within the rule's
`gap` of the last clear is a flap (`FaultOpened.flap`: no recurrence, `repeat` skips it). A
family's clear is reported once none of its rules is open on the device; a rule with `asset`
reports one fault per shared asset (`alerts.assets`). All of it is numpy over the batch, or
Python over the few transitions.

`tick(now_ms)` is the timer: it evaluates rules that read `age()` (offline) with no data
arriving, and raises ONE site incident instead of one fault per device when the whole site
goes silent. `save` / `load` checkpoint every state array (npz, written atomically), so a
restart in the middle of a `for` keeps its timer, windows and counters.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from alerts.assets import AssetFaults
from alerts.faults import FaultCleared, FaultOpened
from alerts.interface import Category, Condition, Rule, Schedule, Severity
from alerts.quarantine import Quarantine
from alerts.rule_file import RuleSet
from alerts.rule_language import (
    NEVER,
    Array,
    Expression,
    RuleContext,
    WindowState,
    _Groups,
    ring_current,
    true_rows,
    truth,
)
from facility.batch import Batch, BoolArray, FloatArray, Int32Array, Int64Array, KindBatch
from facility.catalog import KINDS, KindSpec
from facility.errors import FacilityError
from facility.site import Device, Site

SITE_RULE_ID = "site.silent"
CHECKPOINT_VERSION = 1
MIN_SITE_DEVICES = 2
"""A site incident needs at least this many devices (one silent device is just offline)."""


class CheckpointError(FacilityError):
    pass


@dataclass(slots=True)
class RuleState:
    since_ms: Int64Array
    active: BoolArray
    reported: BoolArray
    """The fault as reported; differs from `active` only for repeat rules."""
    last_clear_ms: Int64Array
    occurrences: Int64Array
    """(devices, repeat count - 1): the times of the last episodes, oldest first."""
    windows: dict[str, WindowState] = field(default_factory=dict)
    clear_since_ms: Int64Array = field(default_factory=lambda: np.zeros(0, np.int64))
    """Since when an open fault's clear has held (`clear_for`); NEVER = not clearing."""

    @staticmethod
    def new(rule: Rule, devices: int) -> RuleState:
        width = max(rule.repeat.count - 1, 0) if rule.repeat else 0
        return RuleState(
            np.full(devices, NEVER, np.int64),
            np.zeros(devices, np.bool_),
            np.zeros(devices, np.bool_),
            np.full(devices, NEVER, np.int64),
            np.full((devices, width), NEVER, np.int64),
            {w.key: WindowState.new(w, devices) for w in rule.windows},
            np.full(devices, NEVER, np.int64),
        )


@dataclass(slots=True)
class KindState:
    last_ts: Int64Array
    last_values: FloatArray
    """Each device's newest reading (for delta / rate and the timer)."""
    last_present_ts: Int64Array
    """(devices, fields): when each field last had a value (for age(field)); kept up to date
    only for kinds whose rules read age(field)."""
    watch_from: Int64Array
    """Silence counts from max(last_ts, watch_from)."""
    params: dict[str, FloatArray] = field(default_factory=dict)
    """Each parameter the kind's rules read, per device, after the site's overrides."""
    rules: dict[str, RuleState] = field(default_factory=dict)

    def seen_ms(self) -> Int64Array:
        result: Int64Array = np.maximum(self.last_ts, self.watch_from)
        return result


IntpArray = npt.NDArray[np.intp]


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


@dataclass(frozen=True, slots=True)
class Evaluation:
    opened: list[FaultOpened]
    cleared: list[FaultCleared]
    observed: list[FaultOpened] = field(default_factory=list)
    """Faults of a shared asset already open, seen by one more of its devices."""


def _shift(values: np.ndarray, first: BoolArray, fill: np.ndarray) -> np.ndarray:
    """values moved down one row within each device; a device's first row gets `fill`."""
    out = np.empty_like(values)
    if len(out):
        out[1:] = values[:-1]
        out[first] = fill
    return out


def _held_on(start: BoolArray, extended: BoolArray, g: _Groups, running: BoolArray) -> BoolArray:
    """Rows of an episode that `start` opens and `extended` keeps going: an extended row
    belongs to an episode when a start row lies after the last row that was not extended (in
    its device's rows), or none was and the episode was running before the batch (`running`,
    per row)."""
    last_break = np.maximum.accumulate(np.where(~extended, g.rows, -1))
    last_start = np.maximum.accumulate(np.where(start, g.rows, -1))
    started = (last_start > last_break) & (last_start >= g.start)
    carried = running & (last_break < g.start)
    result: BoolArray = extended & (started | carried)
    return result


def _last_close(
    active: BoolArray, before: BoolArray, ts: Int64Array, g: _Groups, state_ms: Int64Array
) -> Int64Array:
    """Per row, when the rule's fault last cleared at or before it (`state_ms`: before the
    batch, per row; NEVER: never)."""
    at = np.maximum.accumulate(np.where(~active & before, g.rows, -1))
    result: Int64Array = np.where(at >= g.start, ts[np.maximum(at, 0)], state_ms)
    return result


def _run_start(mask: BoolArray, g: _Groups, since_before: Int64Array, ts: Int64Array) -> Int64Array:
    """Per row where `mask` holds, since when it has held without a break (a run that began
    before the batch starts at `since_before`, per row); NEVER elsewhere."""
    first = g.first
    before = _shift(mask, first, since_before[first] != NEVER)
    marker = mask & (~before | first)
    run_row = np.maximum.accumulate(np.where(marker, g.rows, 0))
    start = np.where(first[run_row] & before[run_row], since_before[run_row], ts[run_row])
    result: Int64Array = np.where(mask, start, NEVER)
    return result


def _reads_field_age(condition: Condition | None) -> bool:
    """Whether a condition may read age(field); a hand-written one might."""
    if condition is None:
        return False
    return not isinstance(condition, Expression) or condition.reads_field_age


def local_time(ts_ms: Int64Array, zone: ZoneInfo) -> tuple[Int64Array, Int64Array]:
    """(minute of the local day, weekday 0 = Monday) of each timestamp; offsets are looked up
    once per distinct hour, so daylight-saving changes are honoured."""
    hours = ts_ms // 3_600_000
    unique, inverse = np.unique(hours, return_inverse=True)
    offsets = np.array(
        [
            int(zone.utcoffset(datetime.fromtimestamp(int(h) * 3600, UTC)).total_seconds())  # type: ignore[union-attr]
            for h in unique
        ],
        np.int64,
    )
    local_ms = ts_ms + offsets[inverse] * 1000
    minutes = (local_ms // 60_000) % 1440
    weekday = (local_ms // 86_400_000 + 3) % 7  # 1970-01-01 was a Thursday
    return minutes, weekday


def in_schedule(schedule: Schedule, ts_ms: Int64Array, zone: ZoneInfo) -> BoolArray:
    if schedule.always:
        return np.ones(len(ts_ms), np.bool_)
    minutes, weekday = local_time(ts_ms, zone)
    ok = np.isin(weekday, list(schedule.weekdays))
    if schedule.minutes:
        inside = np.zeros(len(ts_ms), np.bool_)
        for start, end in schedule.minutes:
            if start <= end:
                inside |= (minutes >= start) & (minutes < end)
            else:  # past midnight
                inside |= (minutes >= start) | (minutes < end)
        ok &= inside
    return ok


class RuleEngine:
    def __init__(
        self,
        site: Site,
        rules: Sequence[Rule],
        *,
        params: Mapping[str, float] | None = None,
        site_silent_s: float | None = None,
    ) -> None:
        self.site = site
        self.rules = tuple(rules)
        self.zone = ZoneInfo(site.timezone)
        defaults = dict(params or {})
        overridden = {name for d in site.devices for name in d.params}
        unknown = sorted(overridden - set(defaults))
        if unknown:
            raise FacilityError(
                f"site {site.id!r} sets parameter(s) {', '.join(unknown)} that no rule declares"
            )
        self._windows = {r.id: {w.key: w for w in r.windows} for r in self.rules}
        """Each rule's window specs by state key (a checkpoint is matched against them)."""
        families: dict[str, list[str]] = {}
        for rule in self.rules:
            if rule.family and rule.id not in families.setdefault(rule.family, []):
                families[rule.family].append(rule.id)
        self._family_rules = {f: tuple(ids) for f, ids in families.items()}
        """Each family's rule ids: their faults on one device share one work order."""
        self._rule_by_id = {r.id: r for r in self.rules}
        self._by_kind: dict[str, list[Rule]] = {}
        for rule in self.rules:
            self._by_kind.setdefault(rule.kind, []).append(rule)
        present = [KINDS[k].heartbeat_s for k, devices in site.by_kind.items() if devices]
        self.site_silent_ms = round(
            1000 * (site_silent_s if site_silent_s is not None else min(present or [60.0]) / 2)
        )
        self.state = {
            kind: KindState(
                last_ts=np.full(len(devices), NEVER, np.int64),
                last_values=np.full((len(devices), len(KINDS[kind].fields)), np.nan),
                last_present_ts=np.full((len(devices), len(KINDS[kind].fields)), NEVER, np.int64),
                watch_from=np.full(len(devices), NEVER, np.int64),
                params={
                    name: np.array([d.params.get(name, defaults[name]) for d in devices])
                    for name in {p for r in self._by_kind.get(kind, []) for p in r.params}
                },
                rules={r.id: RuleState.new(r, len(devices)) for r in self._by_kind.get(kind, [])},
            )
            for kind, devices in site.by_kind.items()
        }
        self._reads_field_age = {
            kind: any(
                _reads_field_age(r.condition)
                or _reads_field_age(r.clear)
                or _reads_field_age(r.hold)
                for r in rules
            )
            for kind, rules in self._by_kind.items()
        }
        """Kinds whose rules read age(field): only they keep when each field last reported
        up to date (a pass over the whole value matrix per batch)."""
        self.site_active = False
        self.site_started_ms = NEVER
        self._watching = False
        self._assets = AssetFaults(site, self.rules)
        self.arrival_lag_ms = 0
        """How far the newest reading lags its arrival (a gateway draining a backlog): the timer
        judges silence by the readings' own time, so a replayed buffer is not a silent site."""
        self._arrived_ms: int | None = None
        self._stream_ms = NEVER
        """The newest reading's time seen so far."""
        self.quarantine = Quarantine()
        """Rules whose evaluation raised: skipped until restart, their open faults kept."""

    @classmethod
    def from_rule_set(
        cls, site: Site, rule_set: RuleSet, *, site_silent_s: float | None = None
    ) -> RuleEngine:
        return cls(site, rule_set.rules, params=rule_set.params, site_silent_s=site_silent_s)

    # -- readings -------------------------------------------------------------------------

    def evaluate(self, batch: Batch, *, arrived_ms: int | None = None) -> Evaluation:
        """Evaluate a batch; `arrived_ms` (the wall clock when it arrived) lets the timer tell
        a backlog being drained from a silent site (`arrival_lag_ms`)."""
        if arrived_ms is not None and len(batch):
            newest = max(int(kb.ts_ms.max()) for kb in batch if len(kb))
            self._stream_ms = max(self._stream_ms, newest)
            self._arrived_ms = arrived_ms
            self.arrival_lag_ms = max(arrived_ms - self._stream_ms, 0)
        opened: list[FaultOpened] = []
        cleared: list[FaultCleared] = []
        before = self._assets.snapshot(self._reported) if self._assets else {}
        if self.site_active and len(batch):
            back = min(int(kb.ts_ms.min()) for kb in batch if len(kb))
            if back > self.site_started_ms:
                self._site_back(back, cleared)
        for kb in batch:
            self._evaluate_kind(kb, self._by_kind.get(kb.kind.name, []), opened, cleared)
        return self._grouped(before, opened, cleared)

    def _reported(self, rule: Rule) -> BoolArray:
        return self.state[rule.kind].rules[rule.id].reported

    def _grouped(
        self,
        before: dict[tuple[str, str], bool],
        opened: list[FaultOpened],
        cleared: list[FaultCleared],
    ) -> Evaluation:
        """Faults of shared assets: one per asset, not one per device that sees it."""
        if self._assets:
            after = self._assets.snapshot(self._reported)
            opened, cleared, observed = self._assets.regroup(before, after, opened, cleared)
        else:
            observed = []
        if self._family_rules:
            cleared = [c for c in (self._family_clear(c) for c in cleared) if c is not None]
        return Evaluation(opened, cleared, observed)

    def _family_clear(self, clear: FaultCleared) -> FaultCleared | None:
        """A clear of a family's rule counts once no rule of the family is open on the device
        (or the shared asset); it then ends the family's order."""
        rule = self._rule_by_id.get(clear.rule_id)
        if rule is None or not rule.family:
            return clear
        members = self._family_rules[rule.family]
        state = self.state[rule.kind]
        device = self.site.by_id.get(clear.device_id)
        if device is not None:
            rows = np.array([device.kind_index], np.intp)
        else:  # a shared asset: every device that observes it
            rows = self._assets.rows_of(clear.device_id, rule.kind)
        if any(bool(state.rules[r].reported[rows].any()) for r in members):
            return None
        return dataclasses.replace(clear, family_rules=members)

    def _site_back(self, at_ms: int, cleared: list[FaultCleared]) -> None:
        cleared.append(FaultCleared(SITE_RULE_ID, self.site.id, at_ms))
        self.site_active = False
        self.site_started_ms = NEVER
        for state in self.state.values():  # stragglers get a whole heartbeat to come back
            np.maximum(state.watch_from, at_ms, out=state.watch_from)

    def _evaluate_kind(
        self,
        kb: KindBatch,
        rules: list[Rule],
        opened: list[FaultOpened],
        cleared: list[FaultCleared],
    ) -> None:
        state = self.state[kb.kind.name]
        order = time_order(kb)
        dev = kb.device if order is None else kb.device[order]
        ts = kb.ts_ms if order is None else kb.ts_ms[order]
        keep = ts > state.last_ts[dev]
        # Two readings of one device with the same timestamp: keep the last (highest seq).
        keep[:-1] &= (dev[1:] != dev[:-1]) | (ts[1:] != ts[:-1])
        if not keep.all():
            picked = true_rows(keep)
            order = picked if order is None else order[picked]
            dev, ts = dev[picked], ts[picked]
        if len(dev) == 0:
            return
        rows = SortedRows(kb.kind, dev, ts, kb.values, order)
        g = _Groups.of(dev)
        first_devices = dev[g.first]
        previous_ts = np.empty_like(ts)
        previous_ts[1:] = ts[:-1]
        previous_ts[g.first] = state.last_ts[first_devices]
        previous_first = state.last_values[first_devices]
        memo: dict[str, Array] = {}
        for rule in rules:
            rs = state.rules[rule.id]
            context = RuleContext(
                rows,
                state.params,
                None,
                previous_ts,
                windows=rs.windows,
                last_present_ts=state.last_present_ts,
                previous_first=previous_first,
                memo=memo,
            )
            context._groups = g
            self._apply(rule, rs, context, g, None, opened, cleared)
            self._commit_windows(rs, context)
        last_rows = true_rows(g.last)
        ends = dev[last_rows]
        state.last_ts[ends] = ts[last_rows]
        state.last_values[ends] = rows.values_at(last_rows)
        if self._reads_field_age.get(kb.kind.name, False):
            present_ts = np.where(np.isnan(rows.values_at(g.rows)), NEVER, ts[:, None])
            newest = np.maximum.reduceat(present_ts, true_rows(g.first), axis=0)
            state.last_present_ts[ends] = np.maximum(state.last_present_ts[ends], newest)

    @staticmethod
    def _commit_windows(rs: RuleState, context: RuleContext) -> None:
        for key, update in context.updates.items():
            window = rs.windows[key]
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

    # -- one rule over time-ordered rows --------------------------------------------------

    def _apply(
        self,
        rule: Rule,
        rs: RuleState,
        context: RuleContext,
        g: _Groups,
        tick_start: Int64Array | None,
        opened: list[FaultOpened],
        cleared: list[FaultCleared],
    ) -> None:
        """`_apply_rule`, isolated: a rule that raises is quarantined (`alerts.quarantine`)
        and what it reported in this batch is dropped, its windows left uncommitted; the other
        rules, and the readings' state, go on. A quarantined rule is skipped."""
        if rule.id in self.quarantine:
            return
        marks = len(opened), len(cleared)
        try:
            self._apply_rule(rule, rs, context, g, tick_start, opened, cleared)
        except Exception as exc:
            del opened[marks[0] :], cleared[marks[1] :]
            context.updates.clear()
            self.quarantine.add(rule.id, exc)

    def _apply_rule(
        self,
        rule: Rule,
        rs: RuleState,
        context: RuleContext,
        g: _Groups,
        tick_start: Int64Array | None,
        opened: list[FaultOpened],
        cleared: list[FaultCleared],
    ) -> None:
        rows = context.batch
        assert isinstance(rows, SortedRows)
        cond = np.asarray(truth(np.asarray(rule.condition(context))), dtype=np.bool_)
        if rule.clear is not None:
            clear = np.asarray(truth(np.asarray(rule.clear(context))), dtype=np.bool_)
        else:
            clear = ~cond
        extended: BoolArray | None = None
        if rule.hold is not None:
            hold = np.asarray(truth(np.asarray(rule.hold(context))), dtype=np.bool_)
            clear &= ~hold
            extended = (cond | hold) & ~clear
        eff = cond & ~clear if rule.clear is not None or rule.hold is not None else cond
        titled = {name: value(context) for name, value in rule.title_values}
        # Only devices where the condition holds somewhere, or with a timer, an open fault or
        # a reported repeat in their state, can change: the others are left as they are.
        busy = (rs.since_ms != NEVER) | rs.active | rs.reported
        hits = true_rows(eff)
        if len(hits):
            busy[rows.device[hits]] = True
        if not busy.any():
            return
        picked = busy[rows.device]
        if picked.all():
            self._transitions(
                rule, rs, rows, g, None, eff, clear, extended, tick_start, opened, cleared, titled
            )
            return
        sub = true_rows(picked)
        self._transitions(
            rule,
            rs,
            rows,
            _Groups.of(rows.device[sub]),
            sub,
            eff[sub],
            clear[sub],
            None if extended is None else extended[sub],
            tick_start,
            opened,
            cleared,
            titled,
        )

    def _transitions(
        self,
        rule: Rule,
        rs: RuleState,
        rows: SortedRows,
        g: _Groups,
        sub: IntpArray | None,
        eff: BoolArray,
        clear: BoolArray,
        extended: BoolArray | None,
        tick_start: Int64Array | None,
        opened: list[FaultOpened],
        cleared: list[FaultCleared],
        titled: dict[str, FloatArray] | None = None,
    ) -> None:
        """Timers, open / clear, cool-down and repeat over whole device groups of the ordered
        rows (`sub` picks them; None = all rows); `titled`: the rule's title values (every
        row). `extended` (rules with `hold`): where the
        condition or its hold holds; an episode `eff` started goes on over it."""
        dev = rows.device if sub is None else rows.device[sub]
        ts = rows.ts_ms if sub is None else rows.ts_ms[sub]
        grows, first, last = g.rows, g.first, g.last
        since_before = rs.since_ms[dev]
        if extended is not None:
            eff = _held_on(eff, extended, g, since_before != NEVER)
        prev_eff = _shift(eff, first, since_before[first] != NEVER)
        marker = eff & (~prev_eff | first)
        run_row = np.maximum.accumulate(np.where(marker, grows, 0))
        fresh_start = ts[run_row] if tick_start is None else tick_start[dev[run_row]]
        run_start = np.where(first[run_row] & prev_eff[run_row], since_before[run_row], fresh_start)
        held = eff & (ts - run_start >= round(rule.for_s * 1000))
        if not rule.schedule.always:
            inside = true_rows(held)
            held[inside] = in_schedule(rule.schedule, ts[inside], self.zone)
        clear_start: Int64Array | None = None
        if rule.clear_for_s > 0:
            clear_start = _run_start(clear, g, rs.clear_since_ms[dev], ts)
            clear = clear & (ts - clear_start >= round(rule.clear_for_s * 1000))
        active0 = rs.active[dev]
        if rule.cooldown_s > 0:
            active_row = self._resolve_cooldown(
                held, clear, ts, dev, g, rs, round(rule.cooldown_s * 1000)
            )
        else:
            event = held | clear
            last_event = np.maximum.accumulate(np.where(event, grows, -1))
            within = last_event >= g.start
            active_row = np.where(within, held[np.maximum(last_event, 0)], active0)
        active_before = _shift(active_row, first, active0[first])
        gap_ms = round(rule.gap_s * 1000)
        if rule.repeat is not None:
            last_close = _last_close(active_row, active_before, ts, g, rs.last_clear_ms[dev])
            flaps = (last_close != NEVER) & (run_start - last_close < gap_ms)
            reported_row = self._repeat(rule, rs, active_row, active_before, flaps, ts, dev, g)
        else:
            reported_row = active_row
        reported_before = _shift(reported_row, first, rs.reported[dev[first]])
        devices = self.site.by_kind[rule.kind]
        opens = true_rows(reported_row & ~reported_before)
        if len(opens):
            full_rows = opens if sub is None else sub[opens]
            readings = rows.values_at(full_rows).tolist()
            extras = [
                {name: float(values[row]) for name, values in (titled or {}).items()}
                for row in full_rows.tolist()
            ]
            closed = _last_close(active_row, active_before, ts, g, rs.last_clear_ms[dev])[opens]
            for row, values, close, extra in zip(
                opens.tolist(), readings, closed.tolist(), extras, strict=True
            ):
                start = int(run_start[row])
                opened.append(
                    self._fault(
                        rule,
                        devices[int(dev[row])],
                        rows.kind,
                        values,
                        start,
                        int(ts[row]),
                        flap=close != NEVER and start - close < gap_ms,
                        extra=extra,
                    )
                )
        for row in true_rows(~reported_row & reported_before).tolist():
            cleared.append(
                FaultCleared(rule.id, devices[int(dev[row])].id, int(ts[row]), rule.auto_resolve)
            )
        ends = dev[last]
        rs.since_ms[ends] = np.where(eff[last], run_start[last], NEVER)
        if clear_start is not None:  # a clear in progress matters only to an open fault
            rs.clear_since_ms[ends] = np.where(
                active_row[last] & (clear_start[last] != NEVER), clear_start[last], NEVER
            )
        rs.active[ends] = active_row[last]
        rs.reported[ends] = reported_row[last]
        closes = np.where(~active_row & active_before, ts, NEVER)
        last_close = np.maximum.reduceat(closes, true_rows(first))
        rs.last_clear_ms[ends] = np.maximum(rs.last_clear_ms[ends], last_close)

    @staticmethod
    def _resolve_cooldown(
        held: BoolArray,
        clear: BoolArray,
        ts: Int64Array,
        dev: np.ndarray,
        g: _Groups,
        rs: RuleState,
        cooldown_ms: int,
    ) -> BoolArray:
        """Open / clear transitions when a clear holds the rule off for a while.

        This one is sequential by nature (a suppressed opening depends on the last clear), so
        it walks the runs of held / clear rows, not the readings: a run of held rows costs one
        binary search for its first row past the cool-down.
        """
        first, last = g.first, g.last
        held_start = held & ~(_shift(held, first, np.zeros(first.sum(), np.bool_)))
        clear_start = clear & ~(_shift(clear, first, np.zeros(first.sum(), np.bool_)))
        after = np.empty_like(held)
        if len(held):
            after[:-1] = held[1:]
            after[last] = False
        held_end = true_rows(held & ~after)
        flip_rows: list[int] = []
        flip_values: list[bool] = []
        device = -1
        active = False
        last_clear = NEVER
        for start in true_rows(held_start | clear_start).tolist():
            d = int(dev[start])
            if d != device:
                device, active, last_clear = d, bool(rs.active[d]), int(rs.last_clear_ms[d])
            if clear[start]:
                if active:
                    active, last_clear = False, int(ts[start])
                    flip_rows.append(start)
                    flip_values.append(False)
            elif not active:
                end = int(held_end[np.searchsorted(held_end, start)])
                boundary = last_clear + cooldown_ms if last_clear != NEVER else NEVER
                at = start + int(np.searchsorted(ts[start : end + 1], boundary, side="left"))
                if at <= end:
                    active = True
                    flip_rows.append(at)
                    flip_values.append(True)
        value_at = np.zeros(len(held), np.bool_)
        event = np.zeros(len(held), np.bool_)
        event[flip_rows] = True
        value_at[flip_rows] = flip_values
        last_event = np.maximum.accumulate(np.where(event, g.rows, -1))
        inside = last_event >= g.start
        result: BoolArray = np.where(inside, value_at[np.maximum(last_event, 0)], rs.active[dev])
        return result

    @staticmethod
    def _repeat(
        rule: Rule,
        rs: RuleState,
        active_row: BoolArray,
        active_before: BoolArray,
        flaps: BoolArray,
        ts: Int64Array,
        dev: np.ndarray,
        g: _Groups,
    ) -> BoolArray:
        """The fault as reported: on at an episode that is the count-th within the window,
        off when that episode ends. An episode that starts within the rule's gap of the last
        clear (`flaps`) is the same event again: not counted, not reported. Episodes are few,
        so they are walked one by one."""
        assert rule.repeat is not None
        need = rule.repeat.count - 1
        within_ms = round(rule.repeat.within_s * 1000)
        starts = active_row & ~active_before
        fires = np.zeros(len(active_row), np.bool_)
        history: dict[int, list[int]] = {}
        for row in true_rows(starts & ~flaps).tolist():
            d = int(dev[row])
            past = history.get(d)
            if past is None:
                past = [int(t) for t in rs.occurrences[d] if t != NEVER]
                history[d] = past
            t = int(ts[row])
            fires[row] = need == 0 or (len(past) >= need and t - past[-need] <= within_ms)
            past.append(t)
        for d, past in history.items():
            if need:
                kept = past[-need:]
                rs.occurrences[d] = [NEVER] * (need - len(kept)) + kept
        episode = np.maximum.accumulate(np.where(starts, g.rows, -1))
        inside = episode >= g.start
        carried = rs.reported[dev]
        result: BoolArray = active_row & np.where(inside, fires[np.maximum(episode, 0)], carried)
        return result

    def _fault(
        self,
        rule: Rule,
        device: Device,
        kind: KindSpec,
        reading: list[float],
        started_ms: int,
        at_ms: int,
        *,
        flap: bool = False,
        extra: Mapping[str, float] | None = None,
    ) -> FaultOpened:
        values = {f.name: float(v) for f, v in zip(kind.fields, reading, strict=True)}
        values.update(extra or {})
        asset = self._assets.asset(rule, device.id)
        # a fault of a shared asset is named after the asset, and lists who saw it
        name, ident, building, unit = (
            (asset.name, asset.id, asset.building_id, asset.unit_id)
            if asset is not None
            else (device.name, device.id, device.building_id, device.unit_id)
        )
        try:
            title = rule.title.format(
                device=name, device_id=ident, building=building, unit=unit, **values
            )
        except (ValueError, KeyError, IndexError):
            title = rule.title
        return FaultOpened(
            rule_id=rule.id,
            kind=rule.kind,
            device_id=ident,
            building_id=building,
            unit_id=unit,
            observed_by=(device.id,) if asset is not None else (),
            severity=rule.severity,
            category=rule.category,
            title=title,
            started_ms=started_ms,
            detected_ms=at_ms,
            family_rules=self._family_rules.get(rule.family, ()) if rule.family else (),
            flap=flap,
        )

    # -- the timer ------------------------------------------------------------------------

    def tick(self, now_ms: int) -> Evaluation:
        """Evaluate silence at `now_ms` with no data needed: rules that read age() (offline)
        and the site incident. Call it every second or so; it never moves reading state.

        While readings arrive late (`arrival_lag_ms`: a gateway draining a backlog), `now_ms`
        is taken back by that lag: silence is judged by the readings' own time, the newest
        reading's time plus the wall time since it arrived."""
        if self.arrival_lag_ms:
            now_ms -= self.arrival_lag_ms
        opened: list[FaultOpened] = []
        cleared: list[FaultCleared] = []
        before = self._assets.snapshot(self._reported) if self._assets else {}
        if not self._watching:
            for state in self.state.values():
                state.watch_from[state.watch_from == NEVER] = now_ms
            self._watching = True
        seen = [s.seen_ms() for s in self.state.values() if len(s.last_ts)]
        site_seen = max((int(s.max()) for s in seen), default=now_ms)
        silent = (
            now_ms - site_seen > self.site_silent_ms and len(self.site.devices) >= MIN_SITE_DEVICES
        )
        if silent:
            if not self.site_active:
                self.site_active = True
                self.site_started_ms = site_seen
                opened.append(self._site_fault(site_seen, now_ms))
            return Evaluation(opened, cleared)
        for kind, rules in self._by_kind.items():
            timed = [r for r in rules if r.timed]
            state = self.state[kind]
            count = len(state.last_ts)
            if not timed or not count:
                continue
            rows = SortedRows(
                KINDS[kind],
                np.arange(count, dtype=np.int32),
                np.full(count, now_ms, np.int64),
                state.last_values.copy(),
                None,
            )
            g = _Groups.of(rows.device)
            seen_ms = state.seen_ms()
            memo: dict[str, Array] = {}
            for rule in timed:
                rs = state.rules[rule.id]
                context = RuleContext(
                    rows,
                    state.params,
                    state.last_values,
                    state.last_ts,
                    windows=rs.windows,
                    last_present_ts=state.last_present_ts,
                    now_ms=now_ms,
                    last_seen_ms=seen_ms,
                    memo=memo,
                )
                context._groups = g
                self._apply(rule, rs, context, g, seen_ms, opened, cleared)
        return self._grouped(before, opened, cleared)

    def _site_fault(self, started_ms: int, now_ms: int) -> FaultOpened:
        return FaultOpened(
            rule_id=SITE_RULE_ID,
            kind="site",
            device_id=self.site.id,
            building_id=self.site.id,
            unit_id="",
            severity=Severity.CRITICAL,
            category=Category.SITE,
            title=f"Site silent: no device of {self.site.name} reports (power, network or gateway)",
            started_ms=started_ms,
            detected_ms=now_ms,
        )

    # -- checkpoints ----------------------------------------------------------------------

    def _arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {
            "version": np.array(CHECKPOINT_VERSION),
            "site.active": np.array(self.site_active),
            "site.started_ms": np.array(self.site_started_ms, np.int64),
        }
        for kind, state in self.state.items():
            p = f"{kind}."
            out[p + "devices"] = np.array(self.site.device_ids(kind), dtype=str)
            out[p + "fields"] = np.array(KINDS[kind].field_names, dtype=str)
            out[p + "last_ts"] = state.last_ts
            out[p + "last_values"] = state.last_values
            out[p + "last_present_ts"] = state.last_present_ts
            out[p + "watch_from"] = state.watch_from
            for rule_id, rs in state.rules.items():
                r = f"{p}rule.{rule_id}."
                out[r + "since_ms"] = rs.since_ms
                out[r + "active"] = rs.active
                out[r + "reported"] = rs.reported
                out[r + "last_clear_ms"] = rs.last_clear_ms
                out[r + "occurrences"] = rs.occurrences
                out[r + "clear_since_ms"] = rs.clear_since_ms
                specs = self._windows[rule_id]
                for key, w in rs.windows.items():
                    out[f"{r}window.{key}.spec"] = np.array(specs[key].text)
                    out[f"{r}window.{key}.ts"] = w.ts
                    out[f"{r}window.{key}.values"] = w.values
                    out[f"{r}window.{key}.run_value"] = w.run_value
                    out[f"{r}window.{key}.run_start"] = w.run_start
                    out[f"{r}window.{key}.run_count"] = w.run_count
        return out

    def save(self, path: Path | str) -> None:
        """Write every state array to `path` (npz) atomically: a temporary file in the same
        folder, fsynced, then renamed over the old checkpoint."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                np.savez(out, **self._arrays())  # type: ignore[arg-type]
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def load(self, path: Path | str) -> bool:
        """Restore the state saved by `save`; False when there is no checkpoint. Devices,
        fields and rules are matched by id and name, so a changed site or rule file keeps
        what still applies; silence is counted afresh from the first tick after loading."""
        path = Path(path)
        if not path.exists():
            return False
        try:
            with np.load(path, allow_pickle=False) as data:
                saved = {name: data[name] for name in data.files}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise CheckpointError(f"rules checkpoint {path}: cannot be read ({exc})") from exc
        if int(saved.get("version", -1)) != CHECKPOINT_VERSION:
            raise CheckpointError(
                f"rules checkpoint {path}: not a version {CHECKPOINT_VERSION} file"
            )
        self.site_active = bool(saved["site.active"])
        self.site_started_ms = int(saved["site.started_ms"])
        for kind, state in self.state.items():
            p = f"{kind}."
            if p + "devices" not in saved:
                continue
            old_ids = [str(x) for x in saved[p + "devices"].tolist()]
            index = {d: i for i, d in enumerate(old_ids)}
            new_rows, old_rows = [], []
            for row, device_id in enumerate(self.site.device_ids(kind)):
                if device_id in index:
                    new_rows.append(row)
                    old_rows.append(index[device_id])
            new = np.array(new_rows, np.intp)
            old = np.array(old_rows, np.intp)
            old_fields = [str(x) for x in saved[p + "fields"].tolist()]
            pairs = [
                (KINDS[kind].col(name), j)
                for j, name in enumerate(old_fields)
                if name in KINDS[kind].index
            ]
            cols_new = np.array([a for a, _ in pairs], np.intp)
            cols_old = np.array([b for _, b in pairs], np.intp)
            state.last_ts[new] = saved[p + "last_ts"][old]
            state.last_values[np.ix_(new, cols_new)] = saved[p + "last_values"][
                np.ix_(old, cols_old)
            ]
            state.last_present_ts[np.ix_(new, cols_new)] = saved[p + "last_present_ts"][
                np.ix_(old, cols_old)
            ]
            for rule_id, rs in state.rules.items():
                r = f"{p}rule.{rule_id}."
                if r + "since_ms" not in saved:
                    continue
                rs.since_ms[new] = saved[r + "since_ms"][old]
                rs.active[new] = saved[r + "active"][old]
                rs.reported[new] = saved[r + "reported"][old]
                rs.last_clear_ms[new] = saved[r + "last_clear_ms"][old]
                if r + "clear_since_ms" in saved:
                    rs.clear_since_ms[new] = saved[r + "clear_since_ms"][old]
                if saved[r + "occurrences"].shape[1:] == rs.occurrences.shape[1:]:
                    rs.occurrences[new] = saved[r + "occurrences"][old]
                specs = self._windows[rule_id]
                for key, w in rs.windows.items():
                    k = f"{r}window.{key}."
                    if k + "ts" not in saved or saved[k + "ts"].ndim != 2:
                        continue
                    if k + "spec" in saved and str(saved[k + "spec"]) != specs[key].text:
                        continue  # the rule's text changed: another window under this key
                    # a ring of another width (its capacity changed): its newest entries
                    width = min(w.ts.shape[1], saved[k + "ts"].shape[1])
                    w.ts[new] = NEVER
                    w.values[new] = np.nan
                    if width:
                        w.ts[new, -width:] = saved[k + "ts"][old, -width:]
                        w.values[new, -width:] = saved[k + "values"][old, -width:]
                    w.run_value[new] = saved[k + "run_value"][old]
                    w.run_start[new] = saved[k + "run_start"][old]
                    w.run_count[new] = saved[k + "run_count"][old]
                    w.current[:] = ring_current(specs[key], w.ts, w.values)
        self._watching = False
        for state in self.state.values():
            state.watch_from[:] = NEVER
        return True
