"""The vectorised rules engine: per-kind state arrays, one pass of numpy per rule and batch.

State per rule and device: since when the condition has held (`since_ms`, -1 = not holding),
whether a fault is open (`active`) and the newest reading time seen (`last_ts`). Readings are
put in (device, time) order first; a reading not newer than the device's last one (a replay,
a late duplicate) does not move the state, which makes redelivery harmless.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from alerts.faults import FaultCleared, FaultOpened
from alerts.interface import Rule
from alerts.rule_file import RuleSet
from alerts.rule_language import RuleContext
from facility.batch import Batch, BoolArray, FloatArray, Int64Array, KindBatch
from facility.catalog import KINDS
from facility.errors import FacilityError
from facility.site import Site


@dataclass(slots=True)
class RuleState:
    since_ms: Int64Array
    active: BoolArray

    @staticmethod
    def new(devices: int) -> RuleState:
        return RuleState(np.full(devices, -1, np.int64), np.zeros(devices, np.bool_))


@dataclass(slots=True)
class KindState:
    last_ts: Int64Array
    last_values: FloatArray
    """Each device's newest reading (for delta / rate)."""
    params: dict[str, FloatArray] = field(default_factory=dict)
    """Each parameter the kind's rules read, per device, after the site's overrides."""
    rules: dict[str, RuleState] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Evaluation:
    opened: list[FaultOpened]
    cleared: list[FaultCleared]


def _shift(values: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """values moved down one row; row 0 gets `fill[0]` (callers overwrite group starts)."""
    out = np.empty_like(values)
    out[1:] = values[:-1]
    if len(out):
        out[0] = fill[0]
    return out


class RuleEngine:
    def __init__(
        self, site: Site, rules: Sequence[Rule], *, params: Mapping[str, float] | None = None
    ) -> None:
        self.site = site
        self.rules = tuple(rules)
        defaults = dict(params or {})
        overridden = {name for d in site.devices for name in d.params}
        unknown = sorted(overridden - set(defaults))
        if unknown:
            raise FacilityError(
                f"site {site.id!r} sets parameter(s) {', '.join(unknown)} that no rule declares"
            )
        self._by_kind: dict[str, list[Rule]] = {}
        for rule in self.rules:
            self._by_kind.setdefault(rule.kind, []).append(rule)
        self.state = {
            kind: KindState(
                last_ts=np.full(len(devices), np.iinfo(np.int64).min, np.int64),
                last_values=np.full((len(devices), len(KINDS[kind].fields)), np.nan),
                params={
                    name: np.array([d.params.get(name, defaults[name]) for d in devices])
                    for name in {p for r in self._by_kind.get(kind, []) for p in r.params}
                },
                rules={r.id: RuleState.new(len(devices)) for r in self._by_kind.get(kind, [])},
            )
            for kind, devices in site.by_kind.items()
        }

    @classmethod
    def from_rule_set(cls, site: Site, rule_set: RuleSet) -> RuleEngine:
        return cls(site, rule_set.rules, params=rule_set.params)

    def evaluate(self, batch: Batch) -> Evaluation:
        opened: list[FaultOpened] = []
        cleared: list[FaultCleared] = []
        for kb in batch:
            rules = self._by_kind.get(kb.kind.name)
            if rules:
                self._evaluate_kind(kb, rules, opened, cleared)
            else:
                self._advance_time(kb)
        return Evaluation(opened, cleared)

    def _advance_time(self, kb: KindBatch) -> None:
        state = self.state[kb.kind.name]
        kb = kb.time_ordered()
        newest = np.ones(len(kb), np.bool_)
        newest[:-1] = kb.device[:-1] != kb.device[1:]
        fresh = newest & (kb.ts_ms > state.last_ts[kb.device])
        state.last_ts[kb.device[fresh]] = kb.ts_ms[fresh]
        state.last_values[kb.device[fresh]] = kb.values[fresh]

    def _evaluate_kind(
        self,
        kb: KindBatch,
        rules: list[Rule],
        opened: list[FaultOpened],
        cleared: list[FaultCleared],
    ) -> None:
        state = self.state[kb.kind.name]
        kb = kb.time_ordered()
        fresh = kb.ts_ms > state.last_ts[kb.device]
        if not fresh.all():
            kb = kb.take(fresh)
        # Two readings of one device with the same timestamp: keep the last.
        same = np.zeros(len(kb), np.bool_)
        same[:-1] = (kb.device[1:] == kb.device[:-1]) & (kb.ts_ms[1:] == kb.ts_ms[:-1])
        if same.any():
            kb = kb.take(~same)
        n = len(kb)
        if n == 0:
            return
        dev, ts = kb.device, kb.ts_ms
        rows = np.arange(n)
        first = np.ones(n, np.bool_)
        first[1:] = dev[1:] != dev[:-1]
        last = np.ones(n, np.bool_)
        last[:-1] = dev[:-1] != dev[1:]
        devices = self.site.by_kind[kb.kind.name]
        previous_values = np.empty_like(kb.values)
        previous_values[1:] = kb.values[:-1]
        previous_values[first] = state.last_values[dev[first]]
        previous_ts = np.empty_like(ts)
        previous_ts[1:] = ts[:-1]
        previous_ts[first] = state.last_ts[dev[first]]
        context = RuleContext(kb, state.params, previous_values, previous_ts)
        for rule in rules:
            rs = state.rules[rule.id]
            cond = np.asarray(rule.condition(context), dtype=np.bool_)
            since_before = rs.since_ms[dev]
            prev_cond = _shift(cond, cond)
            prev_cond[first] = since_before[first] >= 0
            marker = cond & (~prev_cond | first)
            run_row = np.maximum.accumulate(np.where(marker, rows, 0))
            start_at_marker = np.where(first & prev_cond, since_before, ts)
            run_start = start_at_marker[run_row]
            held = cond & (ts - run_start >= int(rule.for_s * 1000))
            last_held = np.maximum.accumulate(np.where(held, rows, -1))
            carried = cond & first[run_row] & prev_cond[run_row] & rs.active[dev[run_row]]
            active_row = cond & ((last_held >= run_row) | carried)
            active_before = _shift(active_row, active_row)
            active_before[first] = rs.active[dev[first]]
            for row in np.flatnonzero(active_row & ~active_before):
                device = devices[int(dev[row])]
                opened.append(
                    FaultOpened(
                        rule_id=rule.id,
                        kind=rule.kind,
                        device_id=device.id,
                        building_id=device.building_id,
                        unit_id=device.unit_id,
                        severity=rule.severity,
                        category=rule.category,
                        title=rule.title.format(
                            device=device.name,
                            device_id=device.id,
                            building=device.building_id,
                            unit=device.unit_id,
                        ),
                        started_ms=int(run_start[row]),
                        detected_ms=int(ts[row]),
                    )
                )
            for row in np.flatnonzero(~active_row & active_before):
                cleared.append(FaultCleared(rule.id, devices[int(dev[row])].id, int(ts[row])))
            end_dev = dev[last]
            rs.since_ms[end_dev] = np.where(cond[last], run_start[last], -1)
            rs.active[end_dev] = active_row[last]
        state.last_ts[dev[last]] = ts[last]
        state.last_values[dev[last]] = kb.values[last]
