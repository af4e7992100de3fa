"""Severity escalation and findings inside one order (rule `family`), on hand-written
sequences of elevator stops: a levelling warning that becomes major is one order whose
severity and SLA rise, with both in its history; an obstructed door that re-opens and is slow
is one order with the second finding recorded on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.engine import RuleEngine
from alerts.rule_file import RuleFileError, parse_rule_file
from alerts.rules import default_rule_set
from alerts.sink import AlertsSink
from alerts.store import WorkOrderStore
from alerts.workorders import DEFAULT_SEVERITIES
from db.engine import make_engine
from facility.site import parse_site
from tests.readings import Reading, batch, chunks, ms, run_pack

SITE = parse_site(
    """
[site]
id = "s1"
timezone = "Asia/Shanghai"

[[buildings]]
id = "b1"

[[buildings.units]]
id = "b1-u1"
devices = [{ id = "el1", kind = "elevator", name = "Elevator 1" }]
"""
)


def stops(levels_mm: list[float], *, door_s: float = 4.0, reopens: int = 0) -> list[Reading]:
    """A car that travels 20 s and stops 40 s, once a minute, at the given level errors."""
    out = []
    for i, level in enumerate(levels_mm):
        t = 60 * i
        common = {"alarm_test_ok": 1, "alarm_button": 0, "fault_code": 0}
        out.append(
            Reading(
                "el1", t,
                {**common, "running": 1, "speed_mps": 1.0, "level_error_mm": 1500.0 - i,
                 "door_state": 0, "motor_temp_c": 50 + i % 5 / 10, "vibration_mm_s": 0.8},
            )
        )  # fmt: skip
        out.append(
            Reading(
                "el1", t + 20,
                {**common, "running": 0, "speed_mps": 0.0, "level_error_mm": level,
                 "door_state": 2, "door_open_time_s": door_s, "door_reopen_count": reopens,
                 "motor_temp_c": 50 + i % 5 / 10},
            )
        )  # fmt: skip
    return out


def store_of(tmp_path: Path, readings: list[Reading]) -> WorkOrderStore:
    store = WorkOrderStore(make_engine(f"sqlite:///{tmp_path / 'orders.sqlite3'}"))
    store.migrate()
    sink = AlertsSink(SITE, RuleEngine.from_rule_set(SITE, default_rule_set()), store)
    for part in chunks(readings, 300):
        sink.handle(batch(SITE, part))
    return store


# level errors: good stops, then drifting past 10 mm (warning), then past 20 mm (major)
DRIFT = [2, -3, 1, 4, 12, 13, -12, 14, 13, 15, 16, 22, 24, 23, 25, 24]


def test_the_engine_raises_the_warning_then_the_major_of_one_family() -> None:
    opened, _ = run_pack(SITE, stops([float(x) for x in DRIFT]), 300)
    assert [(f.rule_id, f.family_rules) for f in opened] == [
        ("elevator.levelling_warning", ("elevator.levelling_warning", "elevator.levelling_major")),
        ("elevator.levelling_major", ("elevator.levelling_warning", "elevator.levelling_major")),
    ]


def test_a_warning_that_becomes_major_is_one_order_with_both_in_its_history(
    tmp_path: Path,
) -> None:
    store = store_of(tmp_path, stops([float(x) for x in DRIFT]))
    (order,) = store.list_work_orders()
    assert (order.rule_id, order.severity, order.priority) == (
        "elevator.levelling_major",
        "major",
        DEFAULT_SEVERITIES["major"].priority,
    )
    assert order.title.startswith("Levelling off by more than 20 mm")
    # the SLA tightens: a major's respond-by, counted from the warning's start
    assert order.fault_started_ms is not None
    assert (
        order.respond_by_ms == order.fault_started_ms + DEFAULT_SEVERITIES["major"].respond_s * 1000
    )
    history = [(e.event, e.note or "") for e in store.history(order.id)]
    assert [event for event, _ in history] == ["created", "escalated"]
    assert "warning -> major" in history[1][1]
    assert "elevator.levelling_major" in history[1][1]


def test_an_obstructed_door_is_one_order_with_the_slow_doors_as_a_finding(tmp_path: Path) -> None:
    # good stops, then the light curtain is blocked: 3 re-openings and 20 s doors at each stop
    readings = stops([2.0] * 4) + [
        Reading(r.device_id, r.t_s + 240, r.values)
        for r in stops([1.0, -2.0, 3.0, 2.0, 1.0, 2.0, -1.0], door_s=20.0, reopens=3)
    ]
    opened, _ = run_pack(SITE, readings, 300)
    assert sorted(f.rule_id for f in opened) == ["elevator.door_reopening", "elevator.door_slow"]
    store = store_of(tmp_path, readings)
    (order,) = store.list_work_orders()
    events = [(e.event, e.note or "") for e in store.history(order.id)]
    assert [e for e, _ in events] == ["created", "finding"]
    first, second = sorted(opened, key=lambda f: f.detected_ms)
    assert order.rule_id == first.rule_id
    assert second.rule_id in events[1][1]
    assert order.detected_ms == first.detected_ms <= second.detected_ms <= ms(660)


def test_a_family_across_kinds_is_refused_with_its_line() -> None:
    text = """
[[rules]]
id = "a"
kind = "pump"
family = "f"
when = "leak"
severity = "major"
title = "t"

[[rules]]
id = "b"
kind = "gate"
family = "f"
when = "forced_open"
severity = "major"
title = "t"
"""
    with pytest.raises(RuleFileError, match=r"^r\.toml:13: family 'f' mixes kinds"):
        parse_rule_file(text, "r.toml")


def heating() -> list[Reading]:
    """The machine-room fan fails at 10 min: the winding, at 70 C, warms by 1 C a minute while
    the car keeps running; one reading every 20 s, with a little sensor noise."""
    out = []
    for t in range(0, 3600, 20):
        temp = 70.0 + max(t - 600, 0) / 60 + (t // 20 % 3) / 10
        out.append(
            Reading(
                "el1", t,
                {"alarm_test_ok": 1, "alarm_button": 0, "fault_code": 0, "running": t // 20 % 2,
                 "speed_mps": 1.0 * (t // 20 % 2), "level_error_mm": 1000.0 - t % 40,
                 "door_state": 0, "motor_temp_c": temp, "vibration_mm_s": 0.8},
            )
        )  # fmt: skip
    return out


def test_a_rising_winding_temperature_warns_early_and_the_threshold_escalates_it(
    tmp_path: Path,
) -> None:
    opened, _ = run_pack(SITE, heating(), 300)
    assert [f.rule_id for f in opened] == [
        "elevator.motor_temp_rising",
        "elevator.motor_overheating",
    ]
    warning, major = opened
    # warned well before the limit, with the predicted time to it in the title
    assert warning.detected_ms < major.detected_ms - 10 * 60_000
    at = float(warning.title.split(" at ")[1].split(" C")[0])
    minutes = float(warning.title.split("about ")[1].split(" min")[0])
    assert abs(minutes - (100 - at)) <= 3, warning.title  # 1 C a minute
    store = store_of(tmp_path, heating())
    (order,) = store.list_work_orders()
    assert (order.rule_id, order.severity) == ("elevator.motor_overheating", "major")
    assert [e.event for e in store.history(order.id)] == ["created", "escalated"]
