"""The vectorised rules engine: per-kind state arrays, one pass of numpy per rule and batch.

State per kind and device: the newest reading and its time, when each field last had a value,
and since when silence counts (`watch_from`: the engine cannot claim a device was silent while
it was not listening). Per rule and device: since when the condition has held (`since_ms`,
NEVER = not holding), whether the fault is open, when it last cleared (cool-down), the times of
its last episodes (repeat) and the rule's window ring buffers (`alerts.rule_state`).

Readings are put in (device, time) order first; a reading not newer than the device's last one
(a replay, a late duplicate) does not move the state, which makes redelivery harmless. Only an
index is sorted (and not at all when the batch is already in order, or only a stable sort by
device when each device's readings arrived in time order, as they usually do); a column is
gathered into that order when a rule first reads it (`alerts.rule_rows.SortedRows`).

Per rule, the condition is evaluated over every reading of the kind, but the `for` timers,
open / clear transitions, cool-downs and repeats run only over the devices where something can
happen: a device whose condition never holds in the batch and that has no running timer, open
fault or repeat in its state keeps its state unchanged, so it is skipped.

When a fault opens and clears is the episode model (`alerts.rule_episodes`). A family's
clear is reported once none of its rules is open on the device; a rule with `asset` reports
one fault per shared asset (`alerts.assets`).

`tick(now_ms)` is the timer: it evaluates rules that read `age()` (offline) with no data
arriving, and raises ONE site incident instead of one fault per device when the whole site
goes silent. A portfolio (`facility.portfolio`) is judged estate by estate: each estate that
goes silent is one incident on that estate, and a rule's schedule is read in the time zone of
each device's own estate (`alerts.rule_schedule.KindZones`). `save` / `load` checkpoint every
state array (npz, written atomically), so a restart in the middle of a `for` keeps its timer,
windows and counters (`alerts.rule_checkpoint`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from alerts.assets import AssetFaults
from alerts.faults import FaultCleared, FaultOpened
from alerts.interface import Condition, Rule
from alerts.quarantine import Quarantine
from alerts.rule_checkpoint import (
    read_checkpoint,
    restore_sites,
    restore_states,
    state_arrays,
    write_checkpoint,
)
from alerts.rule_compiler import Expression
from alerts.rule_context import RuleContext
from alerts.rule_episodes import Episodes
from alerts.rule_faults import SITE_RULE_ID, rule_fault, site_fault
from alerts.rule_file import RuleSet
from alerts.rule_language import NEVER, truth
from alerts.rule_rows import DeviceGroups, SortedRows, time_order, true_rows
from alerts.rule_schedule import KindZones
from alerts.rule_state import KindState, RuleState
from alerts.rule_windows import commit_windows
from alerts.silence_clock import SilenceClock
from facility.batch import Array, Batch, BoolArray, FloatArray, Int64Array, IntpArray, KindBatch
from facility.catalog import KINDS
from facility.errors import FacilityError
from facility.site import Site

MIN_SITE_DEVICES = 2
"""A site incident needs at least this many devices (one silent device is just offline)."""


@dataclass(frozen=True, slots=True)
class Evaluation:
    opened: list[FaultOpened]
    cleared: list[FaultCleared]
    observed: list[FaultOpened] = field(default_factory=list)
    """Faults of a shared asset already open, seen by one more of its devices."""


def _reads_field_age(condition: Condition | None) -> bool:
    """Whether a condition may read age(field); a hand-written one might."""
    if condition is None:
        return False
    return not isinstance(condition, Expression) or condition.reads_field_age


class RuleEngine:
    def __init__(
        self,
        site: Site,
        rules: Sequence[Rule],
        *,
        params: Mapping[str, float] | None = None,
        site_silent_s: float | None = None,
        stall_after_s: float = 5.0,
    ) -> None:
        """`stall_after_s`: a gap this long between ticks means the process was stopped (set it
        to a few tick intervals)."""
        self.site = site
        self.rules = tuple(rules)
        self.zone = ZoneInfo(site.timezone)
        self.parts = site.sites
        """The estates judged one by one (site silence, time zones): a portfolio's parts."""
        part_index = {s.id: i for i, s in enumerate(self.parts)}
        self._part_of = {
            kind: np.array([part_index[d.site_id or site.id] for d in devices], np.intp)
            for kind, devices in site.by_kind.items()
        }
        """Per kind, each device's estate (an index into `parts`)."""
        zones = tuple(ZoneInfo(s.timezone) for s in self.parts)
        self._zones = {kind: KindZones(zones, part) for kind, part in self._part_of.items()}
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
        self._part_silent_ms = np.array(
            [
                round(1000 * site_silent_s)
                if site_silent_s is not None
                else round(1000 * min([KINDS[d.kind].heartbeat_s for d in p.devices] or [60.0]) / 2)
                for p in self.parts
            ],
            np.int64,
        )
        """How long each estate must be silent to be a site incident (half its devices'
        shortest heartbeat, or `site_silent_s`)."""
        self._part_devices = np.bincount(
            np.concatenate([np.zeros(0, np.intp), *self._part_of.values()]),
            minlength=len(self.parts),
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
        self.site_active = np.zeros(len(self.parts), np.bool_)
        """Per estate, whether its site incident is open."""
        self.site_started_ms = np.full(len(self.parts), NEVER, np.int64)
        self._watching = False
        self._assets = AssetFaults(site, self.rules)
        self.silence = SilenceClock(
            stall_after_ms=round(1000 * stall_after_s), grace_ms=round(2000 * stall_after_s)
        )
        """When the timer may judge silence: the stream's progress (`alerts.silence_clock`)."""
        self.quarantine = Quarantine()
        """Rules whose evaluation raised: skipped until restart, their open faults kept."""

    @classmethod
    def from_rule_set(
        cls,
        site: Site,
        rule_set: RuleSet,
        *,
        site_silent_s: float | None = None,
        stall_after_s: float = 5.0,
    ) -> RuleEngine:
        return cls(
            site,
            rule_set.rules,
            params=rule_set.params,
            site_silent_s=site_silent_s,
            stall_after_s=stall_after_s,
        )

    @property
    def arrival_lag_ms(self) -> int:
        """How far the newest reading lags its arrival (a gateway draining a backlog)."""
        return self.silence.arrival_lag_ms

    # -- readings -------------------------------------------------------------------------

    def evaluate(self, batch: Batch, *, arrived_ms: int | None = None) -> Evaluation:
        """Evaluate a batch; `arrived_ms` (the wall clock when it arrived) lets the timer tell
        a backlog being drained from a silent site (`arrival_lag_ms`)."""
        if arrived_ms is not None and len(batch):
            newest = max(int(kb.ts_ms.max()) for kb in batch if len(kb))
            self.silence.arrived(newest, arrived_ms, batch.message_start_ms)
        opened: list[FaultOpened] = []
        cleared: list[FaultCleared] = []
        before = self._assets.snapshot(self._reported) if self._assets else {}
        if self.site_active.any() and len(batch):
            self._sites_back(batch, cleared)
        for kb in batch:
            self._evaluate_kind(kb, self._by_kind.get(kb.kind.name, []), opened, cleared)
        return self._grouped(before, opened, cleared)

    def caught_up(self, as_of_ms: int) -> None:
        """The gateway had taken everything it had received by `as_of_ms` and this engine has
        seen it (`alerts.silence_clock`)."""
        self.silence.caught_up(as_of_ms)

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

    def _sites_back(self, batch: Batch, cleared: list[FaultCleared]) -> None:
        """Close the incident of each silent estate the batch has readings of."""
        back = np.full(len(self.parts), np.iinfo(np.int64).max, np.int64)
        for kb in batch:
            if len(kb):
                np.minimum.at(back, self._part_of[kb.kind.name][kb.device], kb.ts_ms)
        returned = self.site_active & (back > self.site_started_ms)
        returned &= back < np.iinfo(np.int64).max  # no reading of the estate in the batch
        for part in np.flatnonzero(returned).tolist():
            at_ms = int(back[part])
            cleared.append(FaultCleared(SITE_RULE_ID, self.parts[part].id, at_ms))
            self.site_active[part] = False
            self.site_started_ms[part] = NEVER
            for kind, state in self.state.items():  # stragglers get a heartbeat to come back
                mine = self._part_of[kind] == part
                state.watch_from[mine] = np.maximum(state.watch_from[mine], at_ms)

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
        g = DeviceGroups.of(dev)
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
                row_groups=g,
                previous_first=previous_first,
                memo=memo,
            )
            self._apply(rule, rs, context, g, None, opened, cleared)
            commit_windows(rs.windows, context.updates)
        last_rows = true_rows(g.last)
        ends = dev[last_rows]
        state.last_ts[ends] = ts[last_rows]
        state.last_values[ends] = rows.values_at(last_rows)
        if self._reads_field_age.get(kb.kind.name, False):
            present_ts = np.where(np.isnan(rows.values_at(g.rows)), NEVER, ts[:, None])
            newest = np.maximum.reduceat(present_ts, true_rows(g.first), axis=0)
            state.last_present_ts[ends] = np.maximum(state.last_present_ts[ends], newest)

    # -- one rule over time-ordered rows --------------------------------------------------

    def _apply(
        self,
        rule: Rule,
        rs: RuleState,
        context: RuleContext,
        g: DeviceGroups,
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
        g: DeviceGroups,
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
            DeviceGroups.of(rows.device[sub]),
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
        g: DeviceGroups,
        sub: IntpArray | None,
        eff: BoolArray,
        clear: BoolArray,
        extended: BoolArray | None,
        tick_start: Int64Array | None,
        opened: list[FaultOpened],
        cleared: list[FaultCleared],
        titled: dict[str, FloatArray] | None = None,
    ) -> None:
        """The rule's episodes (`alerts.rule_episodes`) over whole device groups of the ordered
        rows (`sub` picks them; None = all rows), reported as faults; `titled`: the rule's title
        values (every row). The state is committed once the faults are made."""
        dev = rows.device if sub is None else rows.device[sub]
        ts = rows.ts_ms if sub is None else rows.ts_ms[sub]
        zone = self._zones[rule.kind] if len(self.parts) > 1 else self.zone
        episodes = Episodes.of(rule, rs, dev, ts, g, eff, clear, extended, tick_start, zone)
        devices = self.site.by_kind[rule.kind]
        opens = episodes.opens
        if len(opens):
            full_rows = opens if sub is None else sub[opens]
            readings = rows.values_at(full_rows).tolist()
            extras = [
                {name: float(values[row]) for name, values in (titled or {}).items()}
                for row in full_rows.tolist()
            ]
            started = episodes.started.tolist()
            family = self._family_rules.get(rule.family, ()) if rule.family else ()
            for row, values, start, flap, extra in zip(
                opens.tolist(), readings, started, episodes.flaps.tolist(), extras, strict=True
            ):
                device = devices[int(dev[row])]
                opened.append(
                    rule_fault(
                        rule,
                        device,
                        self._assets.asset(rule, device.id),
                        rows.kind,
                        values,
                        start,
                        int(ts[row]),
                        family,
                        flap=flap,
                        extra=extra,
                    )
                )
        for row in episodes.clears.tolist():
            cleared.append(
                FaultCleared(rule.id, devices[int(dev[row])].id, int(ts[row]), rule.auto_resolve)
            )
        episodes.commit(rs)

    # -- the timer ------------------------------------------------------------------------

    def tick(self, now_ms: int) -> Evaluation:
        """Evaluate silence at `now_ms` with no data needed: rules that read age() (offline)
        and the site incident. Call it every second or so; it never moves reading state.

        Silence is judged by the stream's own progress, not the wall clock (arrival lag, the
        pipeline's "caught up", stalls: `alerts.silence_clock`)."""
        now_ms = self.silence.judge(now_ms)
        opened: list[FaultOpened] = []
        cleared: list[FaultCleared] = []
        before = self._assets.snapshot(self._reported) if self._assets else {}
        if not self._watching:
            for state in self.state.values():
                state.watch_from[state.watch_from == NEVER] = now_ms
            self._watching = True
        silent = self._silent_sites(now_ms, opened)
        if silent.all():
            return Evaluation(opened, cleared)
        for kind, rules in self._by_kind.items():
            timed = [r for r in rules if r.timed]
            state = self.state[kind]
            count = len(state.last_ts)
            if not timed or not count:
                continue
            listening = ~silent[self._part_of[kind]]  # a silent estate is one incident
            if not listening.any():
                continue
            last_values, last_ts = state.last_values, state.last_ts
            if listening.all():
                devices = np.arange(count, dtype=np.int32)
            else:
                devices = np.flatnonzero(listening).astype(np.int32)
                last_values, last_ts = last_values[devices], last_ts[devices]
            rows = SortedRows(
                KINDS[kind],
                devices,
                np.full(len(devices), now_ms, np.int64),
                last_values.copy(),
                None,
            )
            g = DeviceGroups.of(rows.device)
            seen_ms = state.seen_ms()
            memo: dict[str, Array] = {}
            for rule in timed:
                rs = state.rules[rule.id]
                context = RuleContext(
                    rows,
                    state.params,
                    last_values,
                    last_ts,
                    windows=rs.windows,
                    last_present_ts=state.last_present_ts,
                    now_ms=now_ms,
                    last_seen_ms=seen_ms,
                    row_groups=g,
                    memo=memo,
                )
                self._apply(rule, rs, context, g, seen_ms, opened, cleared)
        return self._grouped(before, opened, cleared)

    def _silent_sites(self, now_ms: int, opened: list[FaultOpened]) -> BoolArray:
        """Per estate, whether none of its devices reports; opens the incident of each that
        just went silent (one per estate, not one per device)."""
        seen = np.full(len(self.parts), NEVER, np.int64)
        for kind, state in self.state.items():
            if not len(state.last_ts):
                continue
            if len(seen) == 1:
                seen[0] = max(seen[0], state.seen_ms().max())
            else:
                np.maximum.at(seen, self._part_of[kind], state.seen_ms())
        silent: BoolArray = (now_ms - seen > self._part_silent_ms) & (
            self._part_devices >= MIN_SITE_DEVICES
        )
        for part in np.flatnonzero(silent & ~self.site_active).tolist():
            self.site_active[part] = True
            self.site_started_ms[part] = seen[part]
            opened.append(site_fault(self.parts[part], int(seen[part]), now_ms))
        return silent

    # -- checkpoints ----------------------------------------------------------------------

    def checkpoint_arrays(self) -> dict[str, Array]:
        """Every state array under its checkpoint name (`alerts.rule_checkpoint`)."""
        return state_arrays(
            self.site,
            self.state,
            self._windows,
            tuple(p.id for p in self.parts),
            self.site_active,
            self.site_started_ms,
        )

    def save(self, path: Path | str) -> None:
        """Write every state array to `path` (npz) atomically (`alerts.rule_checkpoint`)."""
        write_checkpoint(Path(path), self.checkpoint_arrays())

    def load(self, path: Path | str) -> bool:
        """Restore the state saved by `save`; False when there is no checkpoint."""
        path = Path(path)
        if not path.exists():
            return False
        self.restore(read_checkpoint(path))
        return True

    def restore(self, saved: Mapping[str, Array]) -> None:
        """Restore checkpointed arrays. Devices, fields and rules are matched by id and name,
        so a changed site or rule file keeps what still applies; silence is counted afresh
        from the first tick after loading."""
        self.site_active, self.site_started_ms = restore_sites(
            saved, tuple(p.id for p in self.parts)
        )
        restore_states(saved, self.site, self.state, self._windows)
        self._watching = False
        for state in self.state.values():
            state.watch_from[:] = NEVER
