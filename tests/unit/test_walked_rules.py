"""alerts/_windows.c and alerts/_episodes.c: the rules' windows and a plain rule's episodes
walked in C give the numpy paths' values, faults and states, bit for bit (a slope to 1e-9: its
prefix sums start elsewhere), batch after batch
from the same state (random rows: several readings per device, gaps, missing values, repeated
values, `only=` masks, states carried over). Bad arguments raise instead of reading memory
they do not own."""

from __future__ import annotations

import copy
import dataclasses
import random
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from alerts import rule_episodes, rule_windows_walked
from alerts.interface import Rule, Schedule, Severity
from alerts.rule_episodes import Episodes
from alerts.rule_language import NEVER
from alerts.rule_rows import DeviceGroups, SortedRows
from alerts.rule_state import RuleState
from alerts.rule_windows import WindowSpec, WindowState, commit_windows, evaluate_window
from facility.catalog import KINDS
from tests.rule_reference import least_squares_slope
from tests.services import require_services

if not (rule_windows_walked.COMPILED and rule_episodes.COMPILED):
    message = "alerts._windows / alerts._episodes are not built (a C compiler at pip install)"
    if require_services():
        pytest.fail(f"FACILITY_REQUIRE_SERVICES=1 and {message}", pytrace=False)
    pytest.skip(message, allow_module_level=True)

import alerts._episodes as c_episodes
import alerts._windows as c_windows

T0 = 1_790_000_000_000
DEVICES = 12
PUMP = KINDS["pump"]
UTC = ZoneInfo("UTC")


def _rows(rng: random.Random, start_ms: list[int]) -> tuple[SortedRows, DeviceGroups]:
    """Random readings of some of the devices, in (device, time) order, each device's after
    its last; `start_ms` (per device) moves on."""
    dev: list[int] = []
    ts: list[int] = []
    for d in range(DEVICES):
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3, 7, 20])):
            start_ms[d] += rng.choice([1, 1000, 1000, 5000, 60_000, 900_000])
            dev.append(d)
            ts.append(start_ms[d])
    device = np.array(dev, np.int32)
    rows = SortedRows(
        PUMP, device, np.array(ts, np.int64), np.zeros((len(dev), len(PUMP.fields))), None
    )
    return rows, DeviceGroups.of(device)


def _values(rng: random.Random, n: int) -> np.ndarray:
    """Values with runs, repeats, zeros and gaps (NaN)."""
    out: list[float] = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.15:
            out.append(float("nan"))
        elif roll < 0.45 and out:
            out.append(out[-1])
        elif roll < 0.6:
            out.append(0.0)
        else:
            out.append(rng.choice([1.0, 2.0, -3.5, 0.1, 0.2, 1e300, -1e300, 7.25]))
    return np.array(out, np.float64)


SPECS = [
    WindowSpec("w", function, None, n, n, "t")
    for function in ("count", "changes", "mean", "median")
    for n in (1, 3, 8, 40)
] + [
    WindowSpec("w", function, window_ms, None, capacity, "t")
    for function in ("count", "changes", "mean", "median")
    for window_ms, capacity in ((60_000, 64), (1_800_000, 5), (0, 4), (3_600_000, 64))
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.function}-{s.last_n}-{s.window_ms}")
def test_windows_walked_in_c_are_the_numpy_windows(spec: WindowSpec) -> None:
    for seed in range(12):
        rng = random.Random(seed)
        start_ms = [T0 + rng.randrange(10**6) for _ in range(DEVICES)]
        numpy_state = WindowState.new(spec, DEVICES)
        c_state = copy.deepcopy(numpy_state)
        for _ in range(10):
            rows, groups = _rows(rng, start_ms)
            values = _values(rng, len(rows))
            only = np.array([rng.random() < 0.7 for _ in range(len(rows))], np.bool_)
            mask = only if rng.random() < 0.7 else None
            got: dict[str, tuple[object, ...]] = {}
            want: dict[str, tuple[object, ...]] = {}
            walked = evaluate_window(spec, rows, groups, c_state, got, values, mask)
            plain = evaluate_window(
                spec, rows, groups, numpy_state, want, values, mask, compiled=False
            )
            np.testing.assert_array_equal(walked, plain, err_msg=f"seed {seed}")
            assert got.keys() == want.keys()
            commit_windows({"w": c_state}, got)
            commit_windows({"w": numpy_state}, want)
            np.testing.assert_array_equal(c_state.ts, numpy_state.ts)
            np.testing.assert_array_equal(c_state.values, numpy_state.values)
            if spec.last_n is not None:
                np.testing.assert_array_equal(c_state.current, numpy_state.current)


@pytest.mark.parametrize(("window_ms", "capacity"), [(60_000, 64), (900_000, 256), (3_600_000, 8)])
def test_slope_walked_in_c_is_each_windows_least_squares_fit(window_ms: int, capacity: int) -> None:
    """A slope's prefix sums start elsewhere in C than in the numpy layout, so the two are
    compared with a two-pass fit of each row's window (the last `capacity` entries newer than
    t - W, kept here per device in plain lists): C within 1e-9, numpy within 1e-8 (its sums
    start further back); each fits in two passes where its sums would cancel digits (entries
    a millisecond apart). The rings the same."""
    spec = WindowSpec("w", "slope", window_ms, None, capacity, "t")
    for seed in range(12):
        rng = random.Random(seed)
        start_ms = [T0 + rng.randrange(10**6) for _ in range(DEVICES)]
        numpy_state = WindowState.new(spec, DEVICES)
        c_state = copy.deepcopy(numpy_state)
        history: list[list[tuple[int, float]]] = [[] for _ in range(DEVICES)]
        for _ in range(10):
            rows, groups = _rows(rng, start_ms)
            values = np.array([rng.uniform(-50, 150) for _ in range(len(rows))])
            values[[rng.random() < 0.1 for _ in range(len(rows))]] = np.nan
            mask = np.array([rng.random() < 0.8 for _ in range(len(rows))], np.bool_)
            expected = []
            for d, t, v, m in zip(rows.device, rows.ts_ms, values, mask, strict=True):
                if m and not np.isnan(v):
                    history[d].append((int(t), float(v)))
                inside = [(u, x) for u, x in history[d] if u > t - window_ms][-capacity:]
                expected.append(least_squares_slope(inside))
            got: dict[str, tuple[object, ...]] = {}
            want: dict[str, tuple[object, ...]] = {}
            walked = evaluate_window(spec, rows, groups, c_state, got, values, mask)
            plain = evaluate_window(
                spec, rows, groups, numpy_state, want, values, mask, compiled=False
            )
            np.testing.assert_allclose(walked, expected, rtol=1e-9, atol=1e-9)
            np.testing.assert_allclose(plain, expected, rtol=1e-8, atol=1e-9)
            commit_windows({"w": c_state}, got)
            commit_windows({"w": numpy_state}, want)
            np.testing.assert_array_equal(c_state.ts, numpy_state.ts)
            np.testing.assert_array_equal(c_state.values, numpy_state.values)


def test_a_falling_tank_written_by_hand() -> None:
    """A tank losing 0.5 % a minute, read at uneven times: slope(level, '15m') is -0.5/60 % a
    second from the third reading on, NaN before."""
    spec = WindowSpec("w", "slope", 900_000, None, 256, "t")
    seconds = np.array([0, 7, 30, 31, 95, 200, 601, 1000, 1500], np.int64)
    level = 80.0 - 0.5 * seconds / 60
    device = np.zeros(len(seconds), np.int32)
    rows = SortedRows(
        PUMP, device, T0 + 1000 * seconds, np.zeros((len(seconds), len(PUMP.fields))), None
    )
    state = WindowState.new(spec, 1)
    result = evaluate_window(spec, rows, DeviceGroups.of(device), state, {}, level, None)
    assert np.isnan(result[:2]).all()
    np.testing.assert_allclose(result[2:], -0.5 / 60, rtol=1e-12)


def test_stuck_walked_in_c_is_the_numpy_stuck() -> None:
    spec = WindowSpec("w", "stuck", 10_000, None, 0, "t")
    for seed in range(20):
        rng = random.Random(seed)
        start_ms = [T0 + rng.randrange(10**6) for _ in range(DEVICES)]
        numpy_state = WindowState.new(spec, DEVICES)
        c_state = copy.deepcopy(numpy_state)
        for _ in range(8):
            rows, groups = _rows(rng, start_ms)
            values = _values(rng, len(rows))
            got: dict[str, tuple[object, ...]] = {}
            want: dict[str, tuple[object, ...]] = {}
            walked = evaluate_window(spec, rows, groups, c_state, got, values, None)
            plain = evaluate_window(
                spec, rows, groups, numpy_state, want, values, None, compiled=False
            )
            np.testing.assert_array_equal(walked, plain)
            commit_windows({"w": c_state}, got)
            commit_windows({"w": numpy_state}, want)
            for field in ("run_value", "run_start", "run_count"):
                np.testing.assert_array_equal(getattr(c_state, field), getattr(numpy_state, field))


def test_a_stuck_sensor_written_by_hand() -> None:
    """Readings 1 s apart: the value stays 5.0 from the second reading; stuck(x, '3s') holds
    from the reading 3 s into the run (and three readings), a missing value breaks it."""
    spec = WindowSpec("w", "stuck", 3_000, None, 0, "t")
    state = WindowState.new(spec, 1)
    values = np.array([4.0, 5.0, 5.0, 5.0, 5.0, 5.0, np.nan, 5.0, 5.0])
    device = np.zeros(len(values), np.int32)
    ts = T0 + 1000 * np.arange(len(values), dtype=np.int64)
    rows = SortedRows(PUMP, device, ts, np.zeros((len(values), len(PUMP.fields))), None)
    result = evaluate_window(spec, rows, DeviceGroups.of(device), state, {}, values, None)
    assert result.tolist() == [0, 0, 0, 0, 1, 1, 0, 0, 0]


def _plain_rules() -> list[Rule]:
    base = Rule(
        id="r",
        kind="pump",
        severity=Severity.MAJOR,
        title="r",
        condition=lambda c: np.zeros(len(c.batch), np.bool_),
    )
    schedules = (Schedule(), Schedule(minutes=((860, 875), (880, 1000)), weekdays=frozenset({0})))
    return [
        dataclasses.replace(
            base, for_s=for_s, clear_for_s=clear_for_s, gap_s=gap_s, schedule=schedule
        )
        for for_s in (0.0, 5.0, 60.0)
        for clear_for_s in (0.0, 3.0)
        for gap_s in (0.0, 1800.0)
        for schedule in schedules
    ]


@pytest.mark.parametrize(
    "rule",
    _plain_rules(),
    ids=lambda r: (
        f"{r.for_s}-{r.clear_for_s}-{r.gap_s}-{'always' if r.schedule.always else 'sched'}"
    ),
)
def test_plain_episodes_walked_in_c_are_the_numpy_episodes(rule: Rule) -> None:
    for seed in range(25):
        rng = random.Random(seed)
        start_ms = [T0 + rng.randrange(10**6) for _ in range(DEVICES)]
        numpy_state = RuleState.new(rule, DEVICES)
        c_state = copy.deepcopy(numpy_state)
        for _ in range(6):
            rows, groups = _rows(rng, start_ms)
            n = len(rows)
            holding = rng.random()
            eff = np.array([rng.random() < holding for _ in range(n)], np.bool_)
            clear = ~eff if rng.random() < 0.5 else np.array([rng.random() < 0.3] * n)
            walked = Episodes.of(
                rule, c_state, rows.device, rows.ts_ms, groups, eff, clear, None, None, UTC
            )
            plain = Episodes.of(
                rule, numpy_state, rows.device, rows.ts_ms, groups, eff, clear, None, None, UTC,
                compiled=False,
            )  # fmt: skip
            assert isinstance(walked, rule_episodes.WalkedEpisodes)
            assert isinstance(plain, Episodes)
            assert walked.opens.tolist() == plain.opens.tolist(), f"seed {seed}"
            assert walked.started.tolist() == plain.started.tolist()
            assert walked.flaps.tolist() == plain.flaps.tolist()
            assert walked.clears.tolist() == plain.clears.tolist()
            walked.commit(c_state)
            plain.commit(numpy_state)
            for field in ("since_ms", "active", "reported", "last_clear_ms", "clear_since_ms"):
                np.testing.assert_array_equal(
                    getattr(c_state, field), getattr(numpy_state, field), err_msg=field
                )


def test_a_dry_run_timer_written_by_hand() -> None:
    """for 30 s: a pump dry from t=0 opens at the reading 30 s later, not before; the fault
    clears at the first wet reading; dry again 10 s later within the gap is a flap."""
    rule = dataclasses.replace(_plain_rules()[0], for_s=30.0, gap_s=1800.0)
    state = RuleState.new(rule, 1)
    seconds = [0, 10, 20, 29, 30, 40, 50, 60, 90]
    dry = [True, True, True, True, True, False, True, True, True]
    ts = np.array([T0 + 1000 * s for s in seconds], np.int64)
    eff = np.array(dry, np.bool_)
    dev = np.zeros(len(ts), np.int32)
    episodes = Episodes.of(rule, state, dev, ts, DeviceGroups.of(dev), eff, ~eff, None, None, UTC)
    assert isinstance(episodes, rule_episodes.WalkedEpisodes)
    assert episodes.opens.tolist() == [4, 8]  # 30 s dry; 50 -> 90 s is dry for 40 s
    assert episodes.started.tolist() == [T0, T0 + 50_000]
    assert episodes.flaps.tolist() == [False, True]  # 10 s after the clear at 40 s
    assert episodes.clears.tolist() == [5]
    episodes.commit(state)
    assert state.active.tolist() == [True]
    assert state.since_ms.tolist() == [T0 + 50_000]
    assert state.last_clear_ms.tolist() == [T0 + 40_000]


def test_c_and_python_agree_on_never() -> None:
    assert c_windows.NEVER == NEVER
    assert c_episodes.NEVER == NEVER


def test_bad_arguments_raise() -> None:
    spec = WindowSpec("w", "mean", None, 3, 3, "t")
    state = WindowState.new(spec, 2)
    ts = np.array([T0, T0 + 1], np.int64)
    values = np.array([1.0, 2.0])
    result = np.empty(2)
    args = (ts, values, None, state.ts, state.values, state.current, result)
    with pytest.raises(IndexError):  # a device the state does not have
        c_windows.last_n(2, np.array([0, 2], np.int32), *args)
    with pytest.raises(ValueError, match="device order"):
        c_windows.last_n(2, np.array([1, 0], np.int32), *args)
    with pytest.raises(ValueError, match="expected"):  # ts shorter than the rows
        c_windows.last_n(2, np.array([0, 1, 1], np.int32), *args)
    with pytest.raises(ValueError, match="function"):
        c_windows.last_n(9, np.array([0, 1], np.int32), *args)
    with pytest.raises(ValueError, match="int32 or int64"):
        c_windows.last_n(2, np.array([0, 1], np.int16), *args)
    with pytest.raises(ValueError, match="rings"):
        c_windows.time_window(0, 1000, 3, np.array([0, 1], np.int32), ts, values, None,
                              state.ts[:, :0], state.values[:, :0], result)  # fmt: skip
    rs = RuleState.new(_plain_rules()[0], 2)
    with pytest.raises(IndexError, match="outside the state"):
        c_episodes.episodes(
            0, -1, 0, np.array([0, 5], np.int32), ts, np.ones(2, np.bool_), np.zeros(2, np.bool_),
            None, rs.since_ms, rs.since_ms, rs.active, rs.reported, rs.last_clear_ms,
        )  # fmt: skip
    with pytest.raises(ValueError, match="expected"):  # a state of another size
        c_episodes.episodes(
            0, -1, 0, np.array([0, 1], np.int32), ts, np.ones(2, np.bool_), np.zeros(2, np.bool_),
            None, rs.since_ms, rs.since_ms[:1], rs.active, rs.reported, rs.last_clear_ms,
        )  # fmt: skip
