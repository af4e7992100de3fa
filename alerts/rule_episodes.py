"""A rule's episodes over time-ordered rows: when its fault opens, clears and is reported.

A rule's fault opens at a reading where its `when` has held for `for` (continuously, by
reading time), inside its schedule, and, with a cool-down, not within the cool-down of the
last clear; it clears at a reading where `clear` holds (default: where `when` does not). Rules
with `repeat` report a fault only at the episode that makes `count` within `within`.

The episode model (docs/rules.md#episodes): a rule's `hold` keeps an episode `when` started
going (its `for` timer runs on, no clear counts while it holds); with `clear_for` a clear
counts once it has held that long (`clear_since_ms`); an episode that starts within the rule's
`gap` of the last clear is a flap (`FaultOpened.flap`: no recurrence, `repeat` skips it).

All of it is numpy over whole device groups of the batch, or Python over the few transitions
that are sequential by nature (cool-downs, repeats). `Episodes.of` reads the rule's state and
`Episodes.commit` writes where each device ends back into it.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from zoneinfo import ZoneInfo

import numpy as np

from alerts.interface import Rule
from alerts.rule_language import NEVER
from alerts.rule_rows import DeviceGroups, true_rows
from alerts.rule_schedule import KindZones, in_schedule
from alerts.rule_state import RuleState
from facility.batch import Array, BoolArray, Int32Array, Int64Array, IntpArray

_walked: ModuleType | None
try:  # built from alerts/_episodes.c where the package was installed with a C compiler
    import alerts._episodes as _walked
except ImportError:  # pragma: no cover - `Episodes.of` computes the same with numpy
    _walked = None

COMPILED = _walked is not None
"""Whether a plain rule's episodes are walked in C (`WalkedEpisodes`)."""


def _shift(values: Array, first: BoolArray, fill: Array) -> Array:
    """values moved down one row within each device; a device's first row gets `fill`."""
    out = np.empty_like(values)
    if len(out):
        out[1:] = values[:-1]
        out[first] = fill
    return out


def _held_on(
    start: BoolArray, extended: BoolArray, g: DeviceGroups, running: BoolArray
) -> BoolArray:
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
    active: BoolArray, before: BoolArray, ts: Int64Array, g: DeviceGroups, state_ms: Int64Array
) -> Int64Array:
    """Per row, when the rule's fault last cleared at or before it (`state_ms`: before the
    batch, per row; NEVER: never)."""
    at = np.maximum.accumulate(np.where(~active & before, g.rows, -1))
    result: Int64Array = np.where(at >= g.start, ts[np.maximum(at, 0)], state_ms)
    return result


def _run_start(
    mask: BoolArray, g: DeviceGroups, since_before: Int64Array, ts: Int64Array
) -> Int64Array:
    """Per row where `mask` holds, since when it has held without a break (a run that began
    before the batch starts at `since_before`, per row); NEVER elsewhere."""
    first = g.first
    before = _shift(mask, first, since_before[first] != NEVER)
    marker = mask & (~before | first)
    run_row = np.maximum.accumulate(np.where(marker, g.rows, 0))
    start = np.where(first[run_row] & before[run_row], since_before[run_row], ts[run_row])
    result: Int64Array = np.where(mask, start, NEVER)
    return result


@dataclass(frozen=True, slots=True)
class Episodes:
    """A rule's episodes over whole device groups of ordered rows (`dev`, `ts`, `groups`), per
    row, and where its reported fault opens and clears."""

    dev: Int32Array
    ts: Int64Array
    groups: DeviceGroups
    eff: BoolArray
    """Where the condition holds (carried on by `hold`)."""
    run_start: Int64Array
    """Since when the condition has held, where it holds."""
    clear_start: Int64Array | None
    """Since when the clear has held (rules with `clear_for`)."""
    active: BoolArray
    active_before: BoolArray
    reported: BoolArray
    """The fault as reported; differs from `active` only for repeat rules."""
    opens: IntpArray
    """Rows where the reported fault opens."""
    flaps: BoolArray
    """Per row of `opens`: it opens within the rule's gap of the last clear."""
    clears: IntpArray
    """Rows where the reported fault clears."""

    @property
    def started(self) -> Int64Array:
        """Per row of `opens`: since when its condition had held."""
        started: Int64Array = self.run_start[self.opens]
        return started

    @staticmethod
    def of(
        rule: Rule,
        rs: RuleState,
        dev: Int32Array,
        ts: Int64Array,
        g: DeviceGroups,
        eff: BoolArray,
        clear: BoolArray,
        extended: BoolArray | None,
        tick_start: Int64Array | None,
        zone: ZoneInfo | KindZones,
        *,
        compiled: bool = COMPILED,
    ) -> Episodes | WalkedEpisodes:
        """Timers, open / clear, cool-down and repeat given the rule's state before the rows
        (only a repeat rule's past episodes are updated here). `extended` (rules with `hold`):
        where the condition or its hold holds; an episode `eff` started goes on over it.
        `tick_start`: in a tick, per device, since when a fresh run counts.

        A plain rule (no hold, cool-down or repeat) over a batch's readings is walked in C
        where it is built (`compiled`): the same opens, clears and state."""
        if compiled and extended is None and tick_start is None and _plain(rule):
            return WalkedEpisodes.of(rule, rs, dev, ts, eff, clear, zone)
        grows, first = g.rows, g.first
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
            held[inside] = in_schedule(rule.schedule, ts[inside], zone, dev[inside])
        clear_start: Int64Array | None = None
        if rule.clear_for_s > 0:
            clear_start = _run_start(clear, g, rs.clear_since_ms[dev], ts)
            clear = clear & (ts - clear_start >= round(rule.clear_for_s * 1000))
        active0 = rs.active[dev]
        if rule.cooldown_s > 0:
            active_row = _resolve_cooldown(
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
            reported_row = _repeat(rule, rs, active_row, active_before, flaps, ts, dev, g)
        else:
            reported_row = active_row
        reported_before = _shift(reported_row, first, rs.reported[dev[first]])
        opens = true_rows(reported_row & ~reported_before)
        open_flaps = np.zeros(0, np.bool_)
        if len(opens):
            closed = _last_close(active_row, active_before, ts, g, rs.last_clear_ms[dev])[opens]
            open_flaps = (closed != NEVER) & (run_start[opens] - closed < gap_ms)
        return Episodes(
            dev,
            ts,
            g,
            eff,
            run_start,
            clear_start,
            active_row,
            active_before,
            reported_row,
            opens,
            open_flaps,
            true_rows(~reported_row & reported_before),
        )

    def commit(self, rs: RuleState) -> None:
        """Write each device's state after its last row into the rule's state."""
        last, ts = self.groups.last, self.ts
        ends = self.dev[last]
        rs.since_ms[ends] = np.where(self.eff[last], self.run_start[last], NEVER)
        clear_start = self.clear_start
        if clear_start is not None:  # a clear in progress matters only to an open fault
            rs.clear_since_ms[ends] = np.where(
                self.active[last] & (clear_start[last] != NEVER), clear_start[last], NEVER
            )
        rs.active[ends] = self.active[last]
        rs.reported[ends] = self.reported[last]
        closes = np.where(~self.active & self.active_before, ts, NEVER)
        closed = np.maximum.reduceat(closes, true_rows(self.groups.first))
        rs.last_clear_ms[ends] = np.maximum(rs.last_clear_ms[ends], closed)


def _plain(rule: Rule) -> bool:
    return rule.cooldown_s <= 0 and rule.repeat is None and rule.hold is None


@dataclass(frozen=True, slots=True)
class WalkedEpisodes:
    """A plain rule's episodes (no hold, cool-down or repeat) as alerts/_episodes.c walks
    them: where the fault opens and clears, and each device's state after its last row, to
    commit."""

    opens: IntpArray
    started: Int64Array
    flaps: BoolArray
    clears: IntpArray
    ends: IntpArray
    since: Int64Array
    clear_since: Int64Array | None
    active: BoolArray
    last_clear: Int64Array

    @staticmethod
    def of(
        rule: Rule,
        rs: RuleState,
        dev: Int32Array,
        ts: Int64Array,
        eff: BoolArray,
        clear: BoolArray,
        zone: ZoneInfo | KindZones,
    ) -> WalkedEpisodes:
        assert _walked is not None
        clear_for = rule.clear_for_s > 0
        allowed: BoolArray | None = None
        if not rule.schedule.always:  # where the condition holds, whether it may open there
            allowed = np.zeros(len(eff), np.bool_)
            holds = true_rows(eff)
            allowed[holds] = in_schedule(rule.schedule, ts[holds], zone, dev[holds])
        out = _walked.episodes(
            round(rule.for_s * 1000),
            round(rule.clear_for_s * 1000) if clear_for else -1,
            round(rule.gap_s * 1000),
            np.ascontiguousarray(dev),
            np.ascontiguousarray(ts, np.int64),
            np.ascontiguousarray(eff, np.bool_),
            np.ascontiguousarray(clear, np.bool_),
            allowed,
            rs.since_ms,
            rs.clear_since_ms if clear_for else rs.since_ms,  # read only with clear_for
            rs.active,
            rs.reported,
            rs.last_clear_ms,
        )
        opens, started, flaps, clears, ends, since, clear_since, active, last_clear = out
        return WalkedEpisodes(
            np.frombuffer(opens, np.int64).astype(np.intp, copy=False),
            np.frombuffer(started, np.int64),
            np.frombuffer(flaps, np.bool_),
            np.frombuffer(clears, np.int64).astype(np.intp, copy=False),
            np.frombuffer(ends, np.int64).astype(np.intp, copy=False),
            np.frombuffer(since, np.int64),
            np.frombuffer(clear_since, np.int64) if clear_for else None,
            np.frombuffer(active, np.bool_),
            np.frombuffer(last_clear, np.int64),
        )

    def commit(self, rs: RuleState) -> None:
        """Write each device's state after its last row into the rule's state."""
        ends = self.ends
        rs.since_ms[ends] = self.since
        if self.clear_since is not None:
            rs.clear_since_ms[ends] = self.clear_since
        rs.active[ends] = self.active
        rs.reported[ends] = self.active
        rs.last_clear_ms[ends] = self.last_clear


def _resolve_cooldown(
    held: BoolArray,
    clear: BoolArray,
    ts: Int64Array,
    dev: Int32Array,
    g: DeviceGroups,
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


def _repeat(
    rule: Rule,
    rs: RuleState,
    active_row: BoolArray,
    active_before: BoolArray,
    flaps: BoolArray,
    ts: Int64Array,
    dev: Int32Array,
    g: DeviceGroups,
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
