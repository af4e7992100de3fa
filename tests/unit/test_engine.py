"""alerts/engine.py: conditions held for a while (by reading time) open and clear faults."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import numpy as np
import orjson
import pytest

from alerts.engine import Evaluation, RuleEngine
from alerts.faults import FaultCleared, FaultOpened
from alerts.interface import Category, Rule, Severity
from alerts.rule_context import RuleContext
from alerts.rule_rows import time_order
from alerts.rules import default_rule_set
from facility.batch import Batch, BoolArray, KindBatch
from facility.catalog import GATE, PUMP
from facility.site import parse_site
from gateway.decoder import Decoder, Message

SITE = parse_site(
    """
[site]
id = "s1"

[[buildings]]
id = "b1"

[[buildings.units]]
id = "u1"
devices = [{ id = "g1", kind = "gate", name = "Main gate" }]

[[buildings]]
id = "plant"

[[buildings.units]]
id = "pump-room"
devices = [
  { id = "p1", kind = "pump", name = "Booster 1" },
  { id = "p2", kind = "pump", name = "Booster 2" },
]
"""
)
T0 = 1_790_000_000_000
NAN = math.nan

Row = tuple[int, float, float, float]
"""(pump kind_index, seconds after T0, running, suction_bar)"""


def dry(device: int, t_s: float) -> Row:
    return (device, t_s, 1.0, 0.1)


def wet(device: int, t_s: float) -> Row:
    return (device, t_s, 1.0, 1.5)


def ms(t_s: float) -> int:
    return T0 + round(t_s * 1000)


def pumps(*rows: Row) -> Batch:
    values = np.full((len(rows), len(PUMP.fields)), NAN)
    values[:, PUMP.col("running")] = [r[2] for r in rows]
    values[:, PUMP.col("suction_bar")] = [r[3] for r in rows]
    kb = KindBatch(
        PUMP,
        np.array([r[0] for r in rows], np.int32),
        np.array([ms(r[1]) for r in rows], np.int64),
        np.array([round(r[1] * 1000) for r in rows], np.int64),
        values,
    )
    return Batch("s1", {"pump": kb})


def dry_run_opened(
    device: str, started_s: float, detected_s: float, *, flap: bool = False
) -> FaultOpened:
    name = {"p1": "Booster 1", "p2": "Booster 2"}[device]
    return FaultOpened(
        rule_id="pump.dry_run",
        kind="pump",
        device_id=device,
        building_id="plant",
        unit_id="pump-room",
        severity=Severity.CRITICAL,
        category=Category.EQUIPMENT,
        title=f"Pump dry run: {name}",
        title_zh=f"水泵干转：{name}",
        started_ms=ms(started_s),
        detected_ms=ms(detected_s),
        flap=flap,
        site_id="s1",
    )


def dry_run_cleared(device: str, at_s: float) -> FaultCleared:
    return FaultCleared("pump.dry_run", device, ms(at_s))


def engine(rules: Sequence[Rule] | None = None) -> RuleEngine:
    pack = default_rule_set()
    return RuleEngine(SITE, pack.rules if rules is None else rules, params=pack.params)


def run(eng: RuleEngine, *batches: Batch) -> tuple[list[FaultOpened], list[FaultCleared]]:
    opened: list[FaultOpened] = []
    cleared: list[FaultCleared] = []
    for batch in batches:
        result = eng.evaluate(batch)
        opened += result.opened
        cleared += result.cleared
    return opened, cleared


def leak(context: RuleContext) -> BoolArray:
    return context.column("leak") > 0.5


LEAK_NOW = Rule(
    id="pump.leak",
    kind="pump",
    severity=Severity.MAJOR,
    title="Leak at {device} ({device_id})",
    condition=leak,
)


# -- pump dry run (the default rule pack) -------------------------------------------------


def test_dry_run_held_30_s_opens_one_fault() -> None:
    batch = pumps(wet(0, 0), dry(0, 5), dry(0, 15), dry(0, 25), dry(0, 35), dry(0, 45))

    opened, cleared = run(engine(), batch)

    # Dry from 5 s; 35 s is the first reading at which it has held >= 30 s.
    assert opened == [dry_run_opened("p1", 5, 35)]
    assert cleared == []


def test_dry_run_held_exactly_30_s_opens() -> None:
    opened, _ = run(engine(), pumps(dry(0, 0), dry(0, 10), dry(0, 20), dry(0, 30)))

    assert opened == [dry_run_opened("p1", 0, 30)]


def test_dry_run_held_29_s_does_not_open() -> None:
    batch = pumps(*(dry(0, t) for t in range(30)))  # 0 .. 29 s

    assert run(engine(), batch) == ([], [])


def test_dry_run_held_just_under_30_s_does_not_open() -> None:
    assert run(engine(), pumps(dry(0, 0), dry(0, 29.999))) == ([], [])


def test_the_timer_carries_over_batches() -> None:
    eng = engine()

    first = run(eng, pumps(dry(0, 0), dry(0, 10)), pumps(dry(0, 20)))
    second = run(eng, pumps(dry(0, 30), dry(0, 40)))

    assert first == ([], [])
    assert second == ([dry_run_opened("p1", 0, 30)], [])


def test_an_open_fault_carries_over_batches_without_opening_again() -> None:
    eng = engine()

    opened, cleared = run(
        eng,
        pumps(dry(0, 0), dry(0, 30)),
        pumps(dry(0, 40)),
        pumps(dry(0, 50), dry(0, 60)),
        pumps(wet(0, 70)),
    )

    assert opened == [dry_run_opened("p1", 0, 30)]
    assert cleared == [dry_run_cleared("p1", 70)]


def test_shuffled_readings_give_the_same_faults_as_ordered() -> None:
    rows = [wet(0, 0), dry(0, 10), dry(0, 20), dry(0, 30), dry(0, 40), wet(0, 50), dry(0, 60)]
    rows += [dry(1, 5), dry(1, 20), dry(1, 34), dry(1, 35), wet(1, 36)]
    expected = (
        [dry_run_opened("p1", 10, 40), dry_run_opened("p2", 5, 35)],
        [dry_run_cleared("p1", 50), dry_run_cleared("p2", 36)],
    )

    assert run(engine(), pumps(*rows)) == expected
    for seed in range(5):
        shuffled = list(rows)
        random.Random(seed).shuffle(shuffled)
        assert run(engine(), pumps(*shuffled)) == expected


def test_the_same_batch_twice_opens_one_fault() -> None:
    eng = engine()
    batch = pumps(dry(0, 0), dry(0, 15), dry(0, 30))

    first = eng.evaluate(batch)
    second = eng.evaluate(batch)

    assert first.opened == [dry_run_opened("p1", 0, 30)]
    assert second == Evaluation([], [])


def test_a_replayed_older_batch_does_not_move_the_state() -> None:
    eng = engine()
    early = pumps(wet(0, 0), dry(0, 10))

    assert run(eng, early, pumps(dry(0, 20), dry(0, 40))) == ([dry_run_opened("p1", 10, 40)], [])
    # The wet reading at 0 s comes again: it must neither clear nor restart the episode.
    assert run(eng, early) == ([], [])
    assert run(eng, pumps(dry(0, 50))) == ([], [])
    assert run(eng, pumps(wet(0, 60))) == ([], [dry_run_cleared("p1", 60)])


def test_a_replay_before_the_fault_opened_keeps_the_timer() -> None:
    eng = engine()
    first = pumps(dry(0, 0), dry(0, 10))

    assert run(eng, first, pumps(dry(0, 20)), first) == ([], [])
    assert run(eng, pumps(dry(0, 30))) == ([dry_run_opened("p1", 0, 30)], [])


def test_a_late_reading_older_than_the_last_one_is_ignored() -> None:
    eng = engine()

    run(eng, pumps(dry(0, 0), dry(0, 20)))
    # A wet reading stamped 10 s arrives after the one stamped 20 s: too late to count.
    assert run(eng, pumps(wet(0, 10), dry(0, 30))) == ([dry_run_opened("p1", 0, 30)], [])


def test_a_later_batch_with_the_last_timestamp_again_does_not_move_the_state() -> None:
    eng = engine()

    assert run(eng, pumps(dry(0, 0), dry(0, 30))) == ([dry_run_opened("p1", 0, 30)], [])
    assert run(eng, pumps(wet(0, 30))) == ([], [])
    assert run(eng, pumps(wet(0, 31))) == ([], [dry_run_cleared("p1", 31)])


def test_clear_then_a_new_episode_opens_again() -> None:
    eng = engine()

    opened, cleared = run(
        eng,
        pumps(dry(0, 0), dry(0, 30)),
        pumps(wet(0, 31)),
        pumps(dry(0, 50), dry(0, 70)),
        pumps(dry(0, 80)),
    )

    # back 19 s after the clear: within the rule's gap, the same event (not a recurrence)
    assert opened == [dry_run_opened("p1", 0, 30), dry_run_opened("p1", 50, 80, flap=True)]
    assert cleared == [dry_run_cleared("p1", 31)]


def test_open_clear_and_open_again_within_one_batch() -> None:
    batch = pumps(dry(0, 0), dry(0, 30), wet(0, 40), dry(0, 45), dry(0, 60), dry(0, 75))

    opened, cleared = run(engine(), batch)

    assert opened == [dry_run_opened("p1", 0, 30), dry_run_opened("p1", 45, 75, flap=True)]
    assert cleared == [dry_run_cleared("p1", 40)]


def test_an_interruption_restarts_the_timer() -> None:
    batch = pumps(dry(0, 0), dry(0, 20), wet(0, 25), dry(0, 30), dry(0, 50))

    assert run(engine(), batch) == ([], [])


def test_two_devices_are_independent() -> None:
    eng = engine()
    rows = [dry(0, t) for t in range(0, 50, 5)] + [dry(1, t) for t in range(15, 50, 5)]
    rows.append(wet(1, 20.5))  # p2 interrupted: restarts at 25 s

    opened, cleared = run(eng, pumps(*rows), pumps(wet(0, 60), dry(1, 60)))

    assert opened == [dry_run_opened("p1", 0, 30), dry_run_opened("p2", 25, 60)]
    assert cleared == [dry_run_cleared("p1", 60)]


@pytest.mark.parametrize(
    ("running", "suction_bar"),
    [(1.0, NAN), (NAN, 0.1), (NAN, NAN), (0.0, 0.1), (1.0, 0.2)],
)
def test_no_dry_run_without_both_running_and_low_suction(
    running: float, suction_bar: float
) -> None:
    batch = pumps(*((0, float(t), running, suction_bar) for t in range(0, 120, 10)))

    assert run(engine(), batch) == ([], [])


def test_a_missing_field_breaks_a_run() -> None:
    batch = pumps(dry(0, 0), dry(0, 20), (0, 25.0, 1.0, NAN), dry(0, 30), dry(0, 55))

    assert run(engine(), batch) == ([], [])


def test_same_timestamp_twice_keeps_the_reading_with_the_higher_seq() -> None:
    # Both readings are stamped 30 s; the wet one was sent later (seq 31 > 30).
    values = np.full((5, len(PUMP.fields)), NAN)
    values[:, PUMP.col("running")] = 1.0
    values[:, PUMP.col("suction_bar")] = [0.1, 0.1, 0.1, 1.5, 0.1]
    batch = Batch(
        "s1",
        {
            "pump": KindBatch(
                PUMP,
                np.zeros(5, np.int32),
                np.array([ms(0), ms(10), ms(20), ms(30), ms(30)], np.int64),
                np.array([1, 2, 3, 31, 30], np.int64),
                values,
            )
        },
    )

    assert run(engine(), batch) == ([], [])


# -- other rules -----------------------------------------------------------------------------


def test_for_s_zero_fires_on_the_first_reading() -> None:
    values = np.full((3, len(PUMP.fields)), NAN)
    values[:, PUMP.col("leak")] = [0.0, 1.0, 1.0]
    batch = Batch(
        "s1",
        {
            "pump": KindBatch(
                PUMP,
                np.array([1, 1, 1], np.int32),
                np.array([ms(0), ms(1), ms(2)], np.int64),
                np.array([1, 2, 3], np.int64),
                values,
            )
        },
    )

    opened, cleared = run(engine([LEAK_NOW]), batch)

    assert opened == [
        FaultOpened(
            rule_id="pump.leak",
            kind="pump",
            device_id="p2",
            building_id="plant",
            unit_id="pump-room",
            severity=Severity.MAJOR,
            category=Category.EQUIPMENT,
            title="Leak at Booster 2 (p2)",
            started_ms=ms(1),
            detected_ms=ms(1),
            site_id="s1",
        )
    ]
    assert cleared == []


def test_two_rules_of_one_kind_keep_separate_state() -> None:
    values = np.full((3, len(PUMP.fields)), NAN)
    values[:, PUMP.col("running")] = 1.0
    values[:, PUMP.col("suction_bar")] = [0.1, 0.1, 0.1]
    values[:, PUMP.col("leak")] = [1.0, 0.0, 0.0]
    kb = KindBatch(
        PUMP,
        np.zeros(3, np.int32),
        np.array([ms(0), ms(15), ms(30)], np.int64),
        np.array([1, 2, 3], np.int64),
        values,
    )

    opened, cleared = run(engine([*default_rule_set().rules, LEAK_NOW]), Batch("s1", {"pump": kb}))

    assert [(f.rule_id, f.started_ms, f.detected_ms) for f in opened] == [
        ("pump.dry_run", ms(0), ms(30)),
        ("pump.leak", ms(0), ms(0)),
    ]
    assert cleared == [FaultCleared("pump.leak", "p1", ms(15))]


def test_gate_forced_open_fires_at_once() -> None:
    values = np.full((2, len(GATE.fields)), NAN)
    values[:, GATE.col("forced_open")] = [0.0, 1.0]
    kb = KindBatch(
        GATE,
        np.zeros(2, np.int32),
        np.array([ms(0), ms(1)], np.int64),
        np.array([1, 2], np.int64),
        values,
    )

    opened, _ = run(engine(), Batch("s1", {"gate": kb}))

    assert [(f.rule_id, f.device_id, f.title, f.detected_ms) for f in opened] == [
        ("gate.forced_open", "g1", "Gate forced open: Main gate", ms(1))
    ]


def test_a_kind_without_rules_is_passed_over() -> None:
    values = np.full((1, len(GATE.fields)), NAN)
    values[0, GATE.col("forced_open")] = 1.0
    kb = KindBatch(GATE, np.zeros(1, np.int32), np.array([ms(0)]), np.array([1], np.int64), values)

    assert run(engine([LEAK_NOW]), Batch("s1", {"gate": kb})) == ([], [])


def test_decoded_json_opens_the_fault() -> None:
    topic = "facility/v1/s1/plant/pump/p2/telemetry"
    readings = [
        {"ts": ms(t), "seq": i, "running": True, "suction_bar": 0.05, "flow_m3h": 0.0}
        for i, t in enumerate([0, 10, 20, 30, 40])
    ]
    decoder = Decoder(SITE)
    first = decoder.decode([Message(topic, orjson.dumps({"readings": readings[:2]}))], now_ms=T0)
    second = decoder.decode(
        [Message(topic, orjson.dumps(r)) for r in reversed(readings[2:])], now_ms=T0
    )
    assert first.rejections == second.rejections == []

    opened, cleared = run(engine(), first.batch, second.batch)

    assert opened == [dry_run_opened("p2", 0, 30)]
    assert cleared == []


# -- against a reading-by-reading model ------------------------------------------------------


def _model(batches: Sequence[Sequence[Row]], for_ms: int) -> list[tuple[object, ...]]:
    """The rule's meaning, one reading at a time per device, in time order."""
    since: dict[int, int] = {}
    active: dict[int, bool] = {}
    last: dict[int, int] = {}
    events: list[tuple[object, ...]] = []
    for batch in batches:
        seen_before = dict(last)
        for device, t_s, running, suction in sorted(batch, key=lambda r: (r[0], r[1])):
            ts = ms(t_s)
            if ts <= seen_before.get(device, -(2**63)):
                continue
            last[device] = ts
            if running > 0.5 and suction < 0.2:
                since.setdefault(device, ts)
                if not active.get(device) and ts - since[device] >= for_ms:
                    active[device] = True
                    events.append(("open", device, since[device], ts))
            else:
                if active.get(device):
                    events.append(("clear", device, ts))
                active[device] = False
                since.pop(device, None)
    return sorted(events, key=repr)


def test_engine_matches_a_reading_by_reading_model() -> None:
    rng = random.Random(20240601)
    index = {"p1": 0, "p2": 1}
    for _ in range(300):
        clock = [0, 0]
        batches: list[list[Row]] = []
        for _ in range(rng.randint(1, 5)):
            rows: list[Row] = []
            for _ in range(rng.randint(1, 8)):
                device = rng.randint(0, 1)
                step = rng.randint(-15, 20)  # negative: a late reading
                t = clock[device] + step
                clock[device] = max(clock[device], t)
                taken = {(r[0], r[1]) for b in [*batches, rows] for r in b}
                if t >= 0 and (device, t) not in taken:
                    rows.append(dry(device, t) if rng.random() < 0.6 else wet(device, t))
            if rows:
                batches.append(rows)
        eng = engine()
        got: list[tuple[object, ...]] = []
        for rows in batches:
            result = eng.evaluate(pumps(*rows))
            got += [
                ("open", index[f.device_id], f.started_ms, f.detected_ms) for f in result.opened
            ]
            got += [("clear", index[c.device_id], c.cleared_ms) for c in result.cleared]

        assert sorted(got, key=repr) == _model(batches, 30_000), batches


@pytest.mark.parametrize("seed", range(6))
def test_time_order_is_device_then_time_then_seq_whatever_the_arrival(seed: int) -> None:
    """Interleaved devices, some readings late, some timestamps twice (the higher seq last):
    every shortcut of time_order gives lexsort's order."""
    rng = np.random.default_rng(seed)
    n = 400
    device = rng.integers(0, 7, n).astype(np.int32)
    ts = T0 + np.sort(rng.integers(0, 60_000, n)).astype(np.int64)
    if seed % 2:
        late = rng.choice(n, 20, replace=False)
        ts[late] -= rng.integers(1, 5_000, 20)  # arrived after newer readings
    if seed >= 2:
        twice = rng.choice(n, 10, replace=False)
        ts[twice[:5]] = ts[twice[5:]]
        device[twice[:5]] = device[twice[5:]]
    seq = rng.permutation(n).astype(np.int64)
    kb = KindBatch(PUMP, device, ts, seq, np.zeros((n, len(PUMP.fields))))
    order = time_order(kb)
    got = np.arange(n) if order is None else order
    expected = np.lexsort((seq, ts, device))
    assert (device[got] == device[expected]).all()
    assert (ts[got] == ts[expected]).all()
    assert (seq[got] == seq[expected]).all()


def test_a_column_major_batch_stays_column_major_when_rows_are_taken() -> None:
    fields = len(PUMP.fields)
    values = np.asfortranarray(np.arange(4.0 * fields).reshape(4, fields))
    rows = np.arange(4)
    kb = KindBatch(PUMP, rows.astype(np.int32), rows + T0, rows, values)

    taken = kb.take(np.array([3, 1]))

    assert taken.values.flags.f_contiguous
    assert (taken.values == values[[3, 1]]).all()
    assert (kb.take(np.array([True, False, True, False])).values == values[[0, 2]]).all()
