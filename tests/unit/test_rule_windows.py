"""Window and timer functions of the rule language against hand-computed values: count,
changes, mean, median, stuck, age, rail; window edges, batch boundaries, out-of-order rows."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from alerts import rule_reducers
from alerts.rule_compiler import compile_expression
from alerts.rule_context import RuleContext
from alerts.rule_file import parse_rule_file
from alerts.rule_language import NEVER, RuleSyntaxError
from alerts.rule_windows import WindowState, commit_windows, ring_current
from facility.batch import KindBatch
from facility.catalog import PUMP
from tests.rule_reference import least_squares_slope

NAN = math.nan
T0 = 1_790_000_000_000

Reading = tuple[int, float, float]
"""(device row, seconds after T0, discharge_bar)"""


class Probe:
    """One expression evaluated over successive batches, its window state kept like the engine
    keeps it (time order, fresh readings only)."""

    def __init__(self, text: str, devices: int = 2) -> None:
        self.expression = compile_expression(text, PUMP)
        self.windows = {w.key: WindowState.new(w, devices) for w in self.expression.windows}
        self.last_ts = np.full(devices, NEVER, np.int64)
        self.last_present = np.full((devices, len(PUMP.fields)), NEVER, np.int64)

    def __call__(self, *readings: Reading) -> list[tuple[int, float, float]]:
        values = np.full((len(readings), len(PUMP.fields)), NAN)
        values[:, PUMP.col("discharge_bar")] = [r[2] for r in readings]
        kb = KindBatch(
            PUMP,
            np.array([r[0] for r in readings], np.int32),
            np.array([T0 + round(r[1] * 1000) for r in readings], np.int64),
            np.zeros(len(readings), np.int64),
            values,
        ).time_ordered()
        kb = kb.take(kb.ts_ms > self.last_ts[kb.device])
        context = RuleContext(
            kb,
            {},
            np.full_like(kb.values, NAN),
            kb.ts_ms,
            windows=self.windows,
            last_present_ts=self.last_present,
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            result = np.broadcast_to(self.expression.node(context), (len(kb),)).astype(float)
        commit_windows(self.windows, context.updates)
        np.maximum.at(self.last_ts, kb.device, kb.ts_ms)
        col = PUMP.col("discharge_bar")
        present = ~np.isnan(kb.values[:, col])
        np.maximum.at(self.last_present[:, col], kb.device[present], kb.ts_ms[present])
        return [
            (int(d), (int(t) - T0) / 1000, float(v))
            for d, t, v in zip(kb.device, kb.ts_ms, result, strict=True)
        ]


def values(rows: list[tuple[int, float, float]]) -> list[float]:
    return [v for _, _, v in rows]


def same(got: list[float], expected: list[float]) -> bool:
    return len(got) == len(expected) and all(
        (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b)
        for a, b in zip(got, expected, strict=True)
    )


# -- count / changes / mean / median over a time window ---------------------------------------


def test_mean_over_a_time_window_includes_t_and_excludes_t_minus_w() -> None:
    probe = Probe('mean(discharge_bar, "10s")')
    got = values(probe((0, 0, 1.0), (0, 5, 3.0), (0, 10, 5.0), (0, 15, 7.0), (0, 20.5, 9.0)))
    # at 10 s the window is (0, 10]: 3 and 5; at 20.5 s it is (10.5, 20.5]: 7 and 9
    assert same(got, [1.0, 2.0, 4.0, 6.0, 8.0])


def test_windows_carry_over_batches() -> None:
    probe = Probe('mean(discharge_bar, "10s")')
    probe((0, 0, 1.0), (0, 5, 3.0))
    assert same(values(probe((0, 9, 5.0))), [3.0])  # 1, 3, 5
    assert same(values(probe((0, 12, 7.0))), [5.0])  # 3, 5, 7 (0 s fell out)


def test_out_of_order_readings_are_put_in_time_order_first() -> None:
    ordered = Probe('mean(discharge_bar, "10s")')
    shuffled = Probe('mean(discharge_bar, "10s")')
    readings = [(0, float(t), float(t)) for t in range(0, 30, 3)]
    readings += [(1, float(t), 2.0 * t) for t in range(0, 30, 4)]
    expected = sorted(ordered(*readings))
    mixed = list(readings)
    random.Random(7).shuffle(mixed)
    assert sorted(shuffled(*mixed)) == expected


def test_a_late_reading_older_than_the_last_one_is_not_recorded() -> None:
    probe = Probe('count(discharge_bar > 0, "1h")')
    probe((0, 10, 1.0))
    assert values(probe((0, 5, 1.0))) == []  # not newer than 10 s: dropped
    assert values(probe((0, 20, 1.0))) == [2.0]


def test_count_counts_readings_where_the_condition_holds() -> None:
    probe = Probe('count(discharge_bar > 2, "10s")')
    got = values(probe(*((0, float(t), v) for t, v in enumerate([1, 3, 3, 1, 3]))))
    assert got == [0.0, 1.0, 2.0, 2.0, 3.0]


def test_changes_counts_value_changes_between_readings_inside_the_window() -> None:
    probe = Probe('changes(discharge_bar, "3s")')
    got = values(probe(*((0, float(t), v) for t, v in enumerate([1, 1, 2, 2, 1, 3]))))
    # windows: {0} {0,1} {0,1,2} {1,2,3} {2,3,4} {3,4,5}
    assert got == [0.0, 0.0, 1.0, 1.0, 1.0, 2.0]


def test_median_of_odd_and_even_windows_and_nan_is_skipped() -> None:
    probe = Probe('median(discharge_bar, "100s")')
    got = values(probe((0, 0, 5.0), (0, 1, 1.0), (0, 2, NAN), (0, 3, 3.0), (0, 4, 10.0)))
    assert same(got, [5.0, 3.0, 3.0, 3.0, 4.0])


def test_last_n_readings_window() -> None:
    probe = Probe("mean(discharge_bar, 3)")
    got = values(probe(*((0, float(t * 100), float(t)) for t in range(6))))
    assert same(got, [0.0, 0.5, 1.0, 2.0, 3.0, 4.0])


def test_only_records_the_readings_where_it_holds() -> None:
    probe = Probe("mean(discharge_bar, 2, only=discharge_bar > 2)")
    got = values(probe(*((0, float(t), v) for t, v in enumerate([5, 1, 7, 0, 9]))))
    # recorded: 5, 7, 9; a row that is not recorded still sees the window
    assert same(got, [5.0, 5.0, 6.0, 6.0, 8.0])


def test_capacity_bounds_a_time_window() -> None:
    probe = Probe('count(discharge_bar > 0, "1h", capacity=4)')
    got = values(probe(*((0, float(t), 1.0) for t in range(6))))
    assert got == [1.0, 2.0, 3.0, 4.0, 4.0, 4.0]


def test_devices_keep_separate_windows() -> None:
    probe = Probe('mean(discharge_bar, "10s")')
    got = probe((0, 0, 1.0), (1, 0, 100.0), (0, 1, 3.0), (1, 1, 300.0))
    assert sorted(got) == [(0, 0.0, 1.0), (0, 1.0, 2.0), (1, 0.0, 100.0), (1, 1.0, 200.0)]


def test_an_empty_window_has_no_mean() -> None:
    probe = Probe('mean(discharge_bar, "10s")')
    assert same(values(probe((0, 0, NAN))), [NAN])


@pytest.mark.parametrize(
    "text",
    [
        "count(discharge_bar > 2, 4)",
        "changes(discharge_bar, 4)",
        "mean(discharge_bar, 4)",
        "median(discharge_bar, 4)",
        "median(discharge_bar, 3, only=discharge_bar > 2)",
        "count(discharge_bar > 2, 64)",
    ],
)
def test_a_last_n_window_fed_one_reading_per_batch_equals_one_whole_batch(text: str) -> None:
    """One new entry per device and batch (the gateway's case) takes its own path; rows
    without an entry read the value the state keeps."""
    rng = random.Random(3)
    readings = [
        (device, float(t), rng.choice([NAN, 1.0, 2.0, 3.0, 4.0, 5.0]))
        for t in range(40)
        for device in (0, 1)
    ]
    whole = Probe(text)(*readings)
    stepwise = Probe(text)
    one_by_one = [row for t in range(0, len(readings), 2) for row in stepwise(*readings[t : t + 2])]
    got, expected = sorted(one_by_one), sorted(whole)
    assert [r[:2] for r in got] == [r[:2] for r in expected]
    assert same([r[2] for r in got], [r[2] for r in expected])


@pytest.mark.parametrize("text", ["mean(discharge_bar, 7)", 'mean(discharge_bar, "9s")'])
def test_a_mean_is_the_same_to_the_last_bit_however_the_readings_were_batched(text: str) -> None:
    """A threshold on a mean must not flip because a replay cut the batches elsewhere."""
    rng = random.Random(11)
    readings = [(0, float(t), rng.uniform(-1e3, 1e3) / 7) for t in range(60)]
    whole = values(Probe(text)(*readings))
    stepwise = Probe(text)
    cut = [row for t in range(0, 60, 4) for row in stepwise(*readings[t : t + 4])]
    single = Probe(text)
    one_by_one = [row for reading in readings for row in single(reading)]
    assert values(cut) == whole
    assert values(one_by_one) == whole


def test_infinite_and_huge_values_stay_in_their_own_windows() -> None:
    # 1 / 0 is inf: it leaves the 2-reading window after two more readings
    assert same(
        values(
            Probe("mean(1 / discharge_bar, 2)")(
                *((0, float(t), v) for t, v in enumerate([0, 1, 1, 2]))
            )
        ),
        [math.inf, math.inf, 1.0, 0.75],
    )
    got = Probe("mean(discharge_bar, 1)")(*((0, float(t), v) for t, v in enumerate([1e17, 1, 3])))
    assert values(got) == [1e17, 1.0, 3.0]
    # an inf on one device does not reach another device's time window
    probe = Probe('mean(1 / discharge_bar, "10s")')
    got = probe((0, 0, 0.0), (1, 0, 2.0), (0, 1, 1.0), (1, 1, 4.0))
    assert sorted(got) == [(0, 0.0, math.inf), (0, 1.0, math.inf), (1, 0.0, 0.5), (1, 1.0, 0.375)]


def test_one_busy_device_among_many_quiet_ones() -> None:
    """A device flushing a backlog beside devices with one reading each."""
    probe = Probe("mean(discharge_bar, 3)", devices=50)
    readings = [(0, float(t), float(t % 5)) for t in range(300)]
    readings += [(d, 0.0, float(d)) for d in range(1, 50)]
    got = probe(*readings)
    busy = [v for d, _, v in sorted(got) if d == 0]
    expected = [float(np.mean([t % 5 for t in range(max(0, i - 2), i + 1)])) for i in range(300)]
    assert same(busy, expected)
    assert [v for d, _, v in sorted(got) if d != 0] == [float(d) for d in range(1, 50)]


def test_the_kept_value_of_a_last_n_window_is_its_ring_reduced() -> None:
    """What a restart recomputes from the checkpointed ring (`ring_current`) is what the
    engine kept up to date batch by batch."""
    for text in ("mean(discharge_bar, 3)", "median(discharge_bar, 4)", "changes(discharge_bar, 5)"):
        probe = Probe(text)
        probe(*((d, float(t), float(t % 4)) for t in range(7) for d in (0, 1)))
        probe((0, 7.0, 9.0))
        spec = probe.expression.windows[0]
        state = probe.windows[spec.key]
        assert same(list(ring_current(spec, state.ts, state.values)), list(state.current))


def test_a_time_window_forgets_old_entries_though_nothing_new_arrives() -> None:
    probe = Probe('count(discharge_bar > 0, "10s", only=discharge_bar > 0)')
    probe(*((0, float(t), 1.0) for t in range(8)))  # eight entries at 0..7 s
    assert values(probe((0, 12, 0.0), (0, 16, 0.0), (0, 18, 0.0))) == [5.0, 1.0, 0.0]
    assert values(probe((0, 100, 0.0))) == [0.0]
    assert values(probe((0, 101, 2.0))) == [1.0]


# -- stuck / age / rail -----------------------------------------------------------------------


def test_stuck_needs_the_same_value_for_the_whole_window() -> None:
    probe = Probe('stuck(discharge_bar, "10s")')
    got = values(
        probe(*((0, float(t), v) for t, v in zip(range(0, 30, 5), [2, 2, 2, 2, 3, 3], strict=True)))
    )
    # 2 from 0 s: flat for 10 s at 10 s and 15 s; 3 from 20 s: 5 s at 25 s
    assert got == [0.0, 0.0, 1.0, 1.0, 0.0, 0.0]


def test_stuck_runs_across_batches_and_a_missing_value_breaks_it() -> None:
    probe = Probe('stuck(discharge_bar, "10s")')
    probe((0, 0, 4.0), (0, 6, 4.0))
    assert values(probe((0, 10, 4.0))) == [1.0]
    assert values(probe((0, 12, NAN), (0, 14, 4.0), (0, 23, 4.0), (0, 24, 4.0))) == [
        0.0,
        0.0,
        0.0,
        1.0,
    ]


def test_age_of_a_field_at_readings() -> None:
    probe = Probe("age(discharge_bar)")
    probe((0, 0, 1.0))
    got = values(probe((0, 4, NAN), (0, 7, NAN), (0, 9, 2.0), (0, 12, NAN)))
    assert got == [4.0, 7.0, 0.0, 3.0]


def test_age_of_the_device_is_zero_at_a_reading() -> None:
    assert values(Probe("age()")((0, 3, 1.0))) == [0.0]


def test_rail_is_the_bottom_or_top_of_the_catalog_range() -> None:
    probe = Probe("rail(discharge_bar)")
    assert values(probe((0, 0, -1.0), (0, 1, 0.0), (0, 2, 25.0), (0, 3, NAN))) == [1, 0, 1, 0]


def test_not_equal_with_a_missing_value_is_false() -> None:
    assert values(Probe("discharge_bar != 0")((0, 0, NAN), (0, 1, 1.0))) == [0.0, 1.0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('mean(discharge_bar, "soon")', "not a duration"),
        ("mean(discharge_bar)", "takes a value and a window"),
        ("stuck(discharge_bar, 5)", "must be a duration"),
        ('mean(discharge_bar, "1m", colour=1)', "only= and capacity="),
        ('mean(discharge_bar, "1m", capacity=0)', "capacity must be"),
        ("mean(discharge_bar, 100, capacity=10)", "must hold the last n"),
        ('age() > 60 and mean(discharge_bar, "1m") > 1', "cannot be combined"),
        ("age(colour) > 1", "needs a pump field"),
    ],
)
def test_bad_window_calls_are_refused(text: str, message: str) -> None:
    with pytest.raises(RuleSyntaxError, match=message):
        compile_expression(text, PUMP)


def _slope_layout(
    rng: np.random.Generator, offset: float, trend: float, noise: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Device groups laid out as `_time_window` lays them out: each group's unused ring slots
    (NEVER, value 0) first, then its entries in time order (a timestamp may repeat); and
    random spans inside each group's entries."""
    ms: list[int] = []
    values: list[float] = []
    used: list[bool] = []
    origin: list[int] = []
    spans: list[tuple[int, int]] = []
    for _ in range(int(rng.integers(1, 8))):
        empty, count = int(rng.integers(0, 5)), int(rng.integers(0, 60))
        base = len(ms)
        first = base + empty if count else base
        times = T0 + np.sort(rng.integers(0, 900_000, count) // 1000 * 1000)
        ms += [NEVER] * empty + times.tolist()
        values += [0.0] * empty + (
            offset + trend * (times - T0) / 1000 + rng.normal(size=count) * noise
        ).tolist()
        used += [False] * empty + [True] * count
        origin += [min(first, base + empty + count - 1)] * (empty + count)
        for _ in range(10):
            a = int(rng.integers(base + empty, base + empty + count + 1))
            spans.append((a, int(rng.integers(a, base + empty + count + 1))))
    return np.array(ms), np.array(values), np.array(used), np.array(origin), spans


@pytest.mark.parametrize(
    ("offset", "trend", "noise"),
    [(0.0, 0.0, 1.0), (40.0, -0.01, 0.05), (2.5e6, 3.0, 0.0), (-7.0, 1e-6, 1e-4)],
)
def test_window_slopes_are_the_least_squares_fit_of_each_span(
    offset: float, trend: float, noise: float
) -> None:
    """The prefix-sum slopes against the reference loop's plain two-pass fit of each span
    (tests/rule_reference.py): large offsets, tiny trends, noiseless lines, repeated times,
    empty ring slots before a group's entries; NaN below three entries or with no spread."""
    rng = np.random.default_rng(11)
    for _ in range(40):
        ms, values, used, origin, spans = _slope_layout(rng, offset, trend, noise)
        if not spans:
            continue
        start = np.array([a for a, _ in spans], np.intp)
        end = np.array([b for _, b in spans], np.intp)
        got = rule_reducers.window_slopes(ms, values, used, origin, start, end)
        for (a, b), slope in zip(spans, got.tolist(), strict=True):
            expected = least_squares_slope(
                list(zip(ms[a:b].tolist(), values[a:b].tolist(), strict=True))
            )
            if math.isnan(expected):
                assert math.isnan(slope), (a, b)
            else:
                assert slope == pytest.approx(expected, rel=1e-8, abs=1e-12), (a, b)


def test_a_slope_needs_three_entries_at_more_than_one_time() -> None:
    ms = np.array([T0, T0, T0, T0 + 1, T0 + 1, T0 + 2])
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    used = np.ones(6, np.bool_)
    origin = np.zeros(6, np.intp)
    start = np.array([0, 0, 3, 2, 0], np.intp)
    end = np.array([3, 2, 5, 5, 6], np.intp)
    got = rule_reducers.window_slopes(ms, values, used, origin, start, end)
    assert math.isnan(got[0])  # three entries at one time
    assert math.isnan(got[1])  # two entries
    assert math.isnan(got[2])  # two entries
    assert got[3] == pytest.approx(1500.0)  # 1 ms apart: 4 and 5 against 3, per second
    fitted = np.polyfit((ms - T0) / 1000, values, 1)[0]
    assert got[4] == pytest.approx(fitted)


def test_a_window_written_again_in_a_rules_other_expressions_is_one_window() -> None:
    """A title value or clear that repeats the `when`'s window reads the same state, computed
    once per batch; another `only=` is another window."""
    text = """
[[rules]]
id = "r"
kind = "pump"
when = 'mean(discharge_bar, "10m") > 5'
clear = 'mean(discharge_bar, "10m") < 4 and count(running, "10m") > 1'
severity = "major"
title = "{device}: {m} {n}"
title_values = { m = 'mean(discharge_bar, "10m")', n = 'mean(discharge_bar, "10m", only=running)' }
"""
    (rule,) = parse_rule_file(text, "r.toml").rules
    assert [w.key for w in rule.windows] == ["when.w0", "clear.w1", "t.n.w0"]
