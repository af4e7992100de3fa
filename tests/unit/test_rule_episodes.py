"""Episodes that match physical events (`hold`, `clear_for`), on hand-written reading sequences:
a trapped passenger pressing the alarm button again and again is one episode and one work
order until the car moves or opens; a press at a landing with the doors open raises nothing.
The engine and the per-reading reference (tests/rule_reference.py) agree on them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from alerts.engine import RuleEngine
from alerts.rule_file import RuleFileError, parse_rule_file
from alerts.rules import default_rule_set
from alerts.sink import AlertsSink
from alerts.store import WorkOrderStore
from db.engine import make_engine
from facility.site import parse_site
from tests.readings import Reading, batch, chunks, ms
from tests.readings import run_pack as run
from tests.rule_reference import ReferenceEngine

SITE = parse_site(
    """
[site]
id = "s1"
timezone = "Asia/Shanghai"

[[buildings]]
id = "b1"

[[buildings.units]]
id = "b1-u1"
devices = [
  { id = "el1", kind = "elevator", name = "Elevator 1" },
  { id = "el2", kind = "elevator", name = "Elevator 2" },
  { id = "p1", kind = "pump", name = "Booster 1" },
]
"""
)
MOVING: dict[str, float] = {
    "running": 1,
    "speed_mps": 1.6,
    "door_state": 0,
    "alarm_button": 0,
    "fault_code": 0,
}


def lift(t_s: float, device: str = "el1", /, **values: float) -> Reading:
    # a winding temperature carries a little noise, as a live sensor does
    return Reading(device, t_s, {"alarm_test_ok": 1, "motor_temp_c": 45 + t_s % 7 / 10, **values})


def entrapment() -> list[Reading]:
    """A car travels, stops 850 mm below a landing with its doors closed at 60 s; from 70 s
    the passenger presses the alarm button for 3 s every 20 s, for 10 minutes; at 700 s a
    technician moves the car to the landing and opens the doors. One reading a second."""
    out = []
    for t in range(0, 760):
        if t < 60:
            out.append(lift(t, **MOVING, level_error_mm=2000 - 30 * t))
        elif t < 700:
            pressed = 70 <= t < 670 and (t - 70) % 20 < 3
            out.append(
                lift(
                    t, running=0, speed_mps=0, level_error_mm=-850, door_state=0,
                    alarm_button=int(pressed), fault_code=0,
                )
            )  # fmt: skip
        elif t < 705:
            out.append(lift(t, **MOVING, level_error_mm=-850 + 170 * (t - 699)))
        else:
            out.append(
                lift(
                    t, running=0, speed_mps=0, level_error_mm=3, door_state=2, alarm_button=0,
                    fault_code=0,
                )
            )  # fmt: skip
    return out


@pytest.mark.parametrize("every_s", [1, 7, 30, 1000])
def test_a_passenger_pressing_the_button_every_20_s_is_one_episode(every_s: float) -> None:
    opened, cleared = run(SITE, entrapment(), every_s)
    assert [(f.rule_id, f.started_ms, f.detected_ms) for f in opened] == [
        # the first press starts it; the car, still stuck, holds it past the 3 s press
        ("elevator.entrapment", ms(70), ms(75))
    ]
    # it clears when the car has been moving / open for clear_for (15 s), not at a release
    assert [(c.rule_id, c.cleared_ms) for c in cleared] == [("elevator.entrapment", ms(715))]


def test_the_trapped_passenger_has_one_order_that_stays_active_until_the_car_moves(
    tmp_path: Path,
) -> None:
    store = WorkOrderStore(make_engine(f"sqlite:///{tmp_path / 'orders.sqlite3'}"))
    store.migrate()
    sink = AlertsSink(SITE, RuleEngine.from_rule_set(SITE, default_rule_set()), store)
    readings = entrapment()
    for part in chunks([r for r in readings if r.t_s < 700], 20):
        sink.handle(batch(SITE, part))
    (order,) = store.list_work_orders()
    assert (order.rule_id, order.source, order.cleared_ms) == ("elevator.entrapment", "fault", None)
    assert order.recurrences == 0
    sink.handle(batch(SITE, [r for r in readings if r.t_s >= 700]))
    (order,) = store.list_work_orders()
    assert order.cleared_ms == ms(715)


def test_a_short_press_at_a_landing_with_the_doors_open_raises_nothing() -> None:
    readings = [
        lift(
            t, running=0, speed_mps=0, level_error_mm=4, door_state=2,
            alarm_button=int(10 <= t < 13), fault_code=0,
        )
        for t in range(0, 60)
    ]  # fmt: skip
    # and a car standing level with its doors closed, someone leaning on the button
    readings += [
        lift(
            t, "el2", running=0, speed_mps=0, level_error_mm=-2, door_state=0,
            alarm_button=int(10 <= t < 40), fault_code=0,
        )
        for t in range(0, 60)
    ]  # fmt: skip
    assert run(SITE, readings) == ([], [])


def test_a_stuck_car_with_its_fault_code_set_holds_the_episode_at_a_landing() -> None:
    """A car stopped a little off level with a controller fault and closed doors: the
    passenger pressed while it was between floors; the fault code keeps it trapped."""
    readings = [
        lift(
            t, running=0, speed_mps=0, level_error_mm=-400 if t < 30 else -120, door_state=0,
            alarm_button=int(t in (20, 21, 22, 23, 24, 25, 90)), fault_code=31,
        )
        for t in range(10, 200)
    ]  # fmt: skip
    readings += [lift(t, running=0, level_error_mm=0, door_state=2, fault_code=0) for t in (200,)]
    readings += [lift(t, running=0, level_error_mm=0, door_state=2, fault_code=0) for t in (230,)]
    opened, cleared = run(SITE, readings)
    assert [(f.started_ms, f.detected_ms) for f in opened] == [(ms(20), ms(25))]
    assert [c.cleared_ms for c in cleared] == [ms(230)]


# -- clear_for on its own ---------------------------------------------------------------------

HOT = """
[[rules]]
id = "hot"
kind = "pump"
when = "motor_temp_c > 100"
clear_for = "30s"
severity = "major"
title = "hot {device}"
"""


def temps(points: Sequence[tuple[float, float]]) -> list[Reading]:
    return [Reading("p1", t, {"motor_temp_c": v}) for t, v in points]


def test_a_clear_counts_once_it_has_held_for_clear_for_across_batches_and_a_restart(
    tmp_path: Path,
) -> None:
    pack = parse_rule_file(HOT)
    seq = temps(
        [(0, 105), (10, 95), (20, 95), (30, 105), (40, 95), (50, 95), (60, 95), (69, 95), (70, 95)]
    )
    engine = RuleEngine.from_rule_set(SITE, pack)
    reference = ReferenceEngine(SITE, pack.rules, pack.params)
    opened, cleared = [], []
    for i, r in enumerate(seq):
        if i == 5:  # a restart from the checkpoint while the clear is under way
            engine.save(tmp_path / "state.npz")
            engine = RuleEngine.from_rule_set(SITE, pack)
            assert engine.load(tmp_path / "state.npz")
        b = batch(SITE, [r], seq_from=i)
        result = engine.evaluate(b)
        opened += [f.detected_ms for f in result.opened]
        cleared += [c.cleared_ms for c in result.cleared]
        o, c = reference.evaluate(b)
        assert [x[3] for x in o] == [f for f in opened[len(opened) - len(result.opened) :]]
        assert [x[2] for x in c] == [x.cleared_ms for x in result.cleared]
    # 10..20 s below is only 10 s; 40..70 s below is 30 s: the clear
    assert opened == [ms(0)]
    assert cleared == [ms(70)]


# -- rule files that get them wrong -----------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('clear_for = "soon"', "my-rules.toml:7: 'clear_for' = 'soon' is not a duration"),
        ("clear_for = -5", "my-rules.toml:7: 'clear_for' = -5 is not a duration"),
        ('gap = "often"', "my-rules.toml:7: 'gap' = 'often' is not a duration"),
        ("gap = -30", "my-rules.toml:7: 'gap' = -30 is not a duration"),
        (
            'title_values = { running = "1" }',
            "my-rules.toml:7: title value name 'running' must be a new lower-case name",
        ),
        (
            'title_values = { m = "slope(motor_temp_c, 5)" }',
            "my-rules.toml:7: title value 'm': slope() window must be a duration",
        ),
        ('hold = ""', "my-rules.toml:7: hold must be a non-empty expression"),
        ("hold = 3", "my-rules.toml:7: hold must be a non-empty expression"),
        ('hold = "running and bogus > 1"', "my-rules.toml:7: column 21: unknown name 'bogus'"),
        ('hold = "age() > 60"', "my-rules.toml:7: hold cannot be used in a rule that reads age()"),
    ],
)
def test_bad_hold_clear_for_and_gap_name_the_file_and_line(line: str, expected: str) -> None:
    text = f"""
[[rules]]
id = "r"
kind = "pump"
when = "running"
severity = "major"
{line}
title = "t {{device}}"
"""
    with pytest.raises(RuleFileError) as error:
        parse_rule_file(text, "my-rules.toml")
    assert str(error.value).startswith(expected), str(error.value)


def test_a_restart_in_the_middle_of_an_entrapment_keeps_the_episode(tmp_path: Path) -> None:
    readings = entrapment()
    first = RuleEngine.from_rule_set(SITE, default_rule_set())
    opened = first.evaluate(batch(SITE, [r for r in readings if r.t_s < 400])).opened
    first.save(tmp_path / "rules.npz")  # between two presses: the stuck car holds it
    second = RuleEngine.from_rule_set(SITE, default_rule_set())
    assert second.load(tmp_path / "rules.npz")
    rest = second.evaluate(batch(SITE, [r for r in readings if r.t_s >= 400], seq_from=400))
    assert [(f.rule_id, f.started_ms) for f in opened] == [("elevator.entrapment", ms(70))]
    assert rest.opened == []
    assert [(c.rule_id, c.cleared_ms) for c in rest.cleared] == [("elevator.entrapment", ms(715))]
