"""A scalar reference of the rules engine: one reading at a time, plain Python floats.

It reads the same rule texts as the engine (`Rule.condition.text`, `Rule.clear.text`), parses
them with `ast` again and walks them per reading, with per-device Python state: a deque per
window, a dict of timers per rule. Nothing is shared with the engine's numpy code, so it is a
test oracle (tests/unit/test_rule_reference.py runs both over the same simulator readings) and
the per-reading loop that bench/rules.py sets beside the engine.

What it models (docs/rules.md): readings are taken per device in (time, seq) order; a reading
not newer than the device's last one before the batch is dropped, and of two with one
timestamp the later seq wins. A rule's `when` must hold (and its `clear` not) for `for`,
inside its schedule and past its cool-down, to open; `clear` (default: not `when`) closes;
with `repeat` only the count-th episode within the window is reported. A rule's `hold` keeps
an episode `when` started going (its `for` timer runs on, no clear counts while it holds);
with `clear_for` a clear must hold that long before it closes. An episode that starts within
the rule's `gap` of the last clear is a flap (`flaps`): `repeat` does not count it. A rule
with `asset` reports one fault of a shared asset: open while any device that observes it has
its fault open (reading by reading; the engine decides per batch, so the two differ only when
within one batch the last observer clears and another opens again). A family's clear counts
once none of the family's rules is open on the device (or asset) at the end of the batch. The timer
(`tick`: age() growing with no data, site incidents) is not modelled: at a reading age() is 0.
"""

from __future__ import annotations

import ast
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from math import isnan
from statistics import median
from zoneinfo import ZoneInfo

from alerts.interface import Condition, Rule
from alerts.rule_compiler import Expression
from alerts.rule_language import (
    DEFAULT_CAPACITY,
    SLOPE_MIN_READINGS,
    STUCK_MIN_READINGS,
    parse_duration_s,
)
from facility.batch import Batch
from facility.catalog import KINDS, KindSpec
from facility.site import Site

NAN = math.nan
Scalar = Callable[["Reading"], float]


@dataclass(slots=True)
class Reading:
    """What an expression sees at one reading of one device."""

    values: list[float]
    previous: list[float]
    ts_ms: int
    previous_ts_ms: int | None
    params: Mapping[str, float]
    present_ms: list[int | None]
    """When each field last had a value, this reading included."""
    windows: dict[int, object]
    """This rule and device's window states, by window number."""


def _truth(x: float) -> bool:
    return x != 0.0 and not isnan(x)


def _divide(a: float, b: float) -> float:
    if b == 0.0:
        if isnan(a) or a == 0.0:
            return NAN
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def _modulo(a: float, b: float) -> float:
    if b == 0.0 or math.isinf(a):
        return NAN
    return a % b


def _not_equal(a: float, b: float) -> bool:
    return a != b and not isnan(a) and not isnan(b)


def _extreme(values: list[float], pick: Callable[[float, float], float]) -> float:
    result = values[0]
    for v in values[1:]:
        result = NAN if isnan(result) or isnan(v) else pick(result, v)
    return result


_ARITHMETIC: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: _divide,
    ast.Mod: _modulo,
}
_COMPARE: dict[type[ast.cmpop], Callable[[float, float], bool]] = {
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: _not_equal,
}


class _Window:
    """One window function's per-device state: the newest `capacity` entries, oldest first."""

    def __init__(self, capacity: int) -> None:
        self.entries: deque[tuple[int, float]] = deque(maxlen=capacity)


class _Stuck:
    def __init__(self) -> None:
        self.value = NAN
        self.start = 0
        self.count = 0


def least_squares_slope(points: list[tuple[int, float]]) -> float:
    """Least-squares change per second of (ms, value) points; NaN below 3 points."""
    if len(points) < SLOPE_MIN_READINGS:
        return NAN
    seconds = [(t - points[0][0]) / 1000 for t, _ in points]  # exact differences of ms
    mean_s = sum(seconds) / len(points)
    mean_v = sum(v for _, v in points) / len(points)
    sxx = sum((s - mean_s) ** 2 for s in seconds)
    sxy = sum((s - mean_s) * (v - mean_v) for s, (_, v) in zip(seconds, points, strict=True))
    return sxy / sxx if sxx > 0 else NAN


def _reduce(function: str, values: list[float]) -> float:
    if function == "count":
        return float(sum(1 for v in values if v != 0.0))
    if function == "changes":
        return float(sum(1 for a, b in pairwise(values) if a != b))
    if not values:
        return NAN
    if function == "mean":
        return math.fsum(values) / len(values)
    return float(median(values))


class _Compiler:
    """Rule text to a tree of Python closures over one `Reading`."""

    def __init__(self, kind: KindSpec, first_window: int = 0) -> None:
        self.kind = kind
        self.windows = first_window

    def compile(self, node: ast.AST) -> Scalar:
        if isinstance(node, ast.Expression):
            return self.compile(node.body)
        if isinstance(node, ast.Constant):
            assert isinstance(node.value, (bool, int, float))
            number = float(node.value)
            return lambda r: number
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.BoolOp):
            parts = [self.compile(v) for v in node.values]
            if isinstance(node.op, ast.And):  # every part runs: windows see every reading
                return lambda r: float(all([_truth(p(r)) for p in parts]))
            return lambda r: float(any([_truth(p(r)) for p in parts]))
        if isinstance(node, ast.UnaryOp):
            operand = self.compile(node.operand)
            if isinstance(node.op, ast.Not):
                return lambda r: 0.0 if _truth(operand(r)) else 1.0
            if isinstance(node.op, ast.USub):
                return lambda r: -operand(r)
            return operand
        if isinstance(node, ast.BinOp):
            op = _ARITHMETIC[type(node.op)]
            left, right = self.compile(node.left), self.compile(node.right)
            return lambda r: op(left(r), right(r))
        if isinstance(node, ast.Compare):
            ops = [_COMPARE[type(o)] for o in node.ops]
            operands = [self.compile(node.left), *(self.compile(c) for c in node.comparators)]

            def compare(r: Reading) -> float:
                values = [o(r) for o in operands]
                return float(all([op(values[i], values[i + 1]) for i, op in enumerate(ops)]))

            return compare
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return self.call(node, node.func.id)
        raise ValueError(f"not a rule expression: {ast.unparse(node)}")

    def name(self, ident: str) -> Scalar:
        if ident in ("true", "false"):
            number = 1.0 if ident == "true" else 0.0
            return lambda r: number
        if ident in self.kind.index:
            col = self.kind.col(ident)
            return lambda r: r.values[col]
        if ident == "heartbeat_s":
            heartbeat = float(self.kind.heartbeat_s)
            return lambda r: heartbeat
        return lambda r: r.params[ident]

    def call(self, node: ast.Call, name: str) -> Scalar:
        if name in ("count", "changes", "mean", "median", "stuck", "slope"):
            return self.window(node, name)
        col = (
            self.kind.col(node.args[0].id)
            if node.args and isinstance(node.args[0], ast.Name)
            else -1
        )
        if name == "age":
            if not node.args:
                return lambda r: 0.0
            return lambda r: NAN if (at := r.present_ms[col]) is None else (r.ts_ms - at) / 1000
        if name == "delta":
            return lambda r: r.values[col] - r.previous[col]
        if name == "rate":

            def rate(r: Reading) -> float:
                if r.previous_ts_ms is None or r.ts_ms <= r.previous_ts_ms:
                    return NAN
                return (r.values[col] - r.previous[col]) / ((r.ts_ms - r.previous_ts_ms) / 1000)

            return rate
        if name == "rail":
            spec = self.kind.fields[col]
            lo, hi = spec.min, spec.max
            return lambda r: float(r.values[col] <= lo or r.values[col] >= hi)
        if name in ("moving", "pinned"):
            spec = self.kind.fields[col]
            live: Scalar = (
                self.compile(ast.parse(spec.moves_when, mode="eval"))
                if spec.moves_when
                else lambda r: 1.0
            )
            if name == "moving":
                return live
            lo, hi = spec.min, spec.max

            def pinned(r: Reading) -> float:
                value = r.values[col]
                if value >= hi:
                    return 1.0
                at_bottom = value <= lo
                if not spec.rest_at_rail:
                    return float(at_bottom)
                return float(at_bottom and bool(spec.moves_when) and _truth(live(r)))

            return pinned
        args = [self.compile(a) for a in node.args]
        if name == "abs":
            return lambda r: abs(args[0](r))
        pick: Callable[[float, float], float] = min if name == "min" else max
        return lambda r: _extreme([a(r) for a in args], pick)

    def window(self, node: ast.Call, name: str) -> Scalar:
        arg = node.args[1]
        assert isinstance(arg, ast.Constant)
        window_ms = None
        last_n = None
        if isinstance(arg.value, str):
            seconds = parse_duration_s(arg.value)
            assert seconds is not None
            window_ms = round(seconds * 1000)
        else:
            assert isinstance(arg.value, int)
            last_n = arg.value
        keywords = {k.arg: k.value for k in node.keywords}
        capacity = max(DEFAULT_CAPACITY, last_n or 0)
        if "capacity" in keywords:
            value = keywords["capacity"]
            assert isinstance(value, ast.Constant)
            assert isinstance(value.value, int)
            capacity = value.value
        only = self.compile(keywords["only"]) if "only" in keywords else None
        as_bool = name == "count"
        if name == "stuck":
            col = self.kind.col(node.args[0].id)  # type: ignore[attr-defined]
            value_of: Scalar = lambda r: r.values[col]  # noqa: E731
        else:
            value_of = self.compile(node.args[0])
        number = self.windows
        self.windows += 1

        if name == "stuck":
            flat_ms = window_ms or 0

            def stuck(r: Reading) -> float:
                state = r.windows.get(number)
                if not isinstance(state, _Stuck):
                    state = r.windows[number] = _Stuck()
                value = r.values[col]
                if value == state.value:
                    state.count += 1
                else:
                    state.value, state.start, state.count = value, r.ts_ms, 1
                return float(
                    not isnan(value)
                    and r.ts_ms - state.start >= flat_ms
                    and state.count >= STUCK_MIN_READINGS
                )

            return stuck

        def windowed(r: Reading) -> float:
            state = r.windows.get(number)
            if not isinstance(state, _Window):
                state = r.windows[number] = _Window(capacity)
            value = value_of(r)
            if as_bool:
                value = 1.0 if _truth(value) else 0.0
            recorded = not isnan(value) and (only is None or _truth(only(r)))
            if recorded:
                state.entries.append((r.ts_ms, value))
            entries = state.entries
            if last_n is not None:
                chosen = [v for _, v in list(entries)[-last_n:]]
            else:
                assert window_ms is not None
                floor = r.ts_ms - window_ms
                if name == "slope":
                    return least_squares_slope([(t, v) for t, v in entries if t > floor])
                chosen = [v for t, v in entries if t > floor]
            return _reduce(name, chosen)

        return windowed


def compile_scalar(text: str, kind: KindSpec, first_window: int = 0) -> Scalar:
    """`first_window` numbers the expression's windows apart from the rule's other ones."""
    return _Compiler(kind, first_window).compile(ast.parse(text, mode="eval"))


def _text(condition: Condition) -> str:
    if not isinstance(condition, Expression):
        raise TypeError("the reference reads rules from rule files (compiled expressions)")
    return condition.text


@dataclass(slots=True)
class _RuleState:
    since: int | None = None
    active: bool = False
    reported: bool = False
    last_clear: int | None = None
    clear_since: int | None = None
    episodes: list[int] = field(default_factory=list)
    windows: dict[int, object] = field(default_factory=dict)


@dataclass(slots=True)
class _DeviceState:
    last_ts: int | None = None
    last_values: list[float] = field(default_factory=list)
    present_ms: list[int | None] = field(default_factory=list)
    rules: dict[str, _RuleState] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _ScalarRule:
    rule: Rule
    when: Scalar
    clear: Scalar | None
    hold: Scalar | None
    for_ms: int
    clear_for_ms: int
    cooldown_ms: int
    repeat_need: int | None
    repeat_within_ms: int
    gap_ms: int


Opened = tuple[str, str, int, int]
"""(rule id, device id, started_ms, detected_ms)"""
Cleared = tuple[str, str, int]
"""(rule id, device id, cleared_ms)"""


class ReferenceEngine:
    """The engine's meaning, one reading at a time. Rules must come from rule files (their
    conditions carry their text)."""

    def __init__(self, site: Site, rules: Iterable[Rule], params: Mapping[str, float]) -> None:
        self.site = site
        self.zone = ZoneInfo(site.timezone)
        self.rules: dict[str, list[_ScalarRule]] = {}
        for rule in rules:
            kind = KINDS[rule.kind]
            self.rules.setdefault(rule.kind, []).append(
                _ScalarRule(
                    rule,
                    compile_scalar(_text(rule.condition), kind),
                    compile_scalar(_text(rule.clear), kind, 100)
                    if rule.clear is not None
                    else None,
                    compile_scalar(_text(rule.hold), kind, 200) if rule.hold is not None else None,
                    round(rule.for_s * 1000),
                    round(rule.clear_for_s * 1000),
                    round(rule.cooldown_s * 1000),
                    rule.repeat.count - 1 if rule.repeat else None,
                    round(rule.repeat.within_s * 1000) if rule.repeat else 0,
                    round(rule.gap_s * 1000),
                )
            )
        self.params = {
            kind: [{**params, **d.params} for d in devices]
            for kind, devices in site.by_kind.items()
        }
        self.devices = {
            kind: [_DeviceState() for _ in devices] for kind, devices in site.by_kind.items()
        }
        self.assets = {(a.type, d): a.id for a in site.assets for d in a.device_ids}
        """(asset type, device id) -> the shared asset the device observes."""
        self.observers: dict[tuple[str, str], set[str]] = {}
        """(rule id, asset id) -> the devices whose fault of the asset is open."""
        self.flaps: list[Opened] = []
        """Opened faults that began within their rule's gap of the last clear."""

    def evaluate(self, batch: Batch) -> tuple[list[Opened], list[Cleared]]:
        opened: list[Opened] = []
        cleared: list[Cleared] = []
        for kind, kb in batch.kinds.items():
            rules = self.rules.get(kind, [])
            states = self.devices[kind]
            per_device: dict[int, list[tuple[int, int, list[float]]]] = {}
            for device, ts, seq, values in zip(
                kb.device.tolist(), kb.ts_ms.tolist(), kb.seq.tolist(), kb.values.tolist(),
                strict=True,
            ):  # fmt: skip
                per_device.setdefault(device, []).append((ts, seq, values))
            for device, readings in per_device.items():
                state = states[device]
                floor = state.last_ts
                readings.sort(key=lambda r: (r[0], r[1]))
                for i, (ts, _, values) in enumerate(readings):
                    if (floor is not None and ts <= floor) or (
                        i + 1 < len(readings) and readings[i + 1][0] == ts
                    ):
                        continue  # not newer than before the batch, or the same ts again
                    self._reading(kind, device, state, rules, ts, values, opened, cleared)
        return opened, [c for c in cleared if not self._family_open(*c)]

    def _family_open(self, rule_id: str, device_id: str, _: int) -> bool:
        """After a batch: whether a rule of the cleared rule's family is still open on the
        device (or on any device observing the shared asset); then the clear does not count."""
        found = next(
            (r.rule for rs in self.rules.values() for r in rs if r.rule.id == rule_id), None
        )
        if found is None or not found.family:
            return False
        members = {r.rule.id for r in self.rules[found.kind] if r.rule.family == found.family}
        if device_id in self.site.by_id:
            rows = [self.site.by_id[device_id].kind_index]
        else:
            asset = next(a for a in self.site.assets if a.id == device_id)
            rows = [self.site.by_id[d].kind_index for d in asset.device_ids
                    if self.site.by_id[d].kind == found.kind]  # fmt: skip
        states = self.devices[found.kind]
        return any(
            states[row].rules[m].reported for row in rows for m in members if m in states[row].rules
        )

    def _reading(
        self,
        kind: str,
        device: int,
        state: _DeviceState,
        rules: list[_ScalarRule],
        ts: int,
        values: list[float],
        opened: list[Opened],
        cleared: list[Cleared],
    ) -> None:
        if not state.last_values:
            state.last_values = [NAN] * len(values)
            state.present_ms = [None] * len(values)
        for col, value in enumerate(values):
            if not isnan(value):
                state.present_ms[col] = ts
        reading = Reading(
            values, state.last_values, ts, state.last_ts, self.params[kind][device],
            state.present_ms, {},
        )  # fmt: skip
        device_id = self.site.by_kind[kind][device].id
        for scalar in rules:
            rule = scalar.rule
            rs = state.rules.get(rule.id)
            if rs is None:
                rs = state.rules[rule.id] = _RuleState()
            reading.windows = rs.windows
            cond = _truth(scalar.when(reading))
            clear = _truth(scalar.clear(reading)) if scalar.clear is not None else not cond
            if scalar.hold is not None:  # the hold keeps an episode going, and no clear counts
                hold = _truth(scalar.hold(reading))
                clear = clear and not hold
                eff = not clear and (cond or (hold and rs.since is not None))
            else:
                eff = cond and not clear
            if scalar.clear_for_ms:  # a clear counts once it has held for clear_for
                if not clear:
                    rs.clear_since = None
                elif rs.clear_since is None:
                    rs.clear_since = ts
                clear = (
                    clear
                    and rs.clear_since is not None
                    and ts - rs.clear_since >= scalar.clear_for_ms
                )
            if eff and rs.since is None:
                rs.since = ts
            held = eff and rs.since is not None and ts - rs.since >= scalar.for_ms
            if held and not rule.schedule.always:
                held = self._in_schedule(rule, ts)
            was_active, was_reported = rs.active, rs.reported
            if clear:
                rs.active = False
            elif held and not rs.active:
                boundary = rs.last_clear + scalar.cooldown_ms if rs.last_clear is not None else None
                rs.active = scalar.cooldown_ms == 0 or boundary is None or ts >= boundary
            flap = (
                rs.active
                and not was_active
                and rs.last_clear is not None
                and rs.since is not None
                and rs.since - rs.last_clear < scalar.gap_ms
            )
            if was_active and not rs.active:
                rs.last_clear = ts
            if scalar.repeat_need is None:
                rs.reported = rs.active
            elif flap:  # the same event back within the gap: not counted, not reported
                rs.reported = False
            elif rs.active and not was_active:
                need, past = scalar.repeat_need, rs.episodes
                rs.reported = need == 0 or (
                    len(past) >= need and ts - past[-need] <= scalar.repeat_within_ms
                )
                rs.episodes = [*past, ts][-need:] if need else []
            elif not rs.active:
                rs.reported = False
            asset = self.assets.get((rule.asset, device_id)) if rule.asset else None
            seen = self.observers.setdefault((rule.id, asset), set()) if asset else set()
            if rs.reported and not was_reported:
                assert rs.since is not None
                if asset is None or not seen:  # a shared asset's fault opens once
                    opened.append((rule.id, asset or device_id, rs.since, ts))
                    if flap:
                        self.flaps.append((rule.id, asset or device_id, rs.since, ts))
                seen.add(device_id)
            elif was_reported and not rs.reported:
                seen.discard(device_id)
                if asset is None or not seen:  # ... and clears when no device sees it
                    cleared.append((rule.id, asset or device_id, ts))
            if not eff:
                rs.since = None
        state.last_ts = ts
        state.last_values = values

    def _in_schedule(self, rule: Rule, ts: int) -> bool:
        local = datetime.fromtimestamp(ts / 1000, UTC).astimezone(self.zone)
        if local.weekday() not in rule.schedule.weekdays:
            return False
        if not rule.schedule.minutes:
            return True
        minute = local.hour * 60 + local.minute
        return any(
            (start <= minute < end) if start <= end else (minute >= start or minute < end)
            for start, end in rule.schedule.minutes
        )
