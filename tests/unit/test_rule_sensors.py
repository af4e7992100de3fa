"""Sensor rules that know rest from failure, on hand-written reading sequences: zero is the
normal value of many signals at rest, so a rail or a flat line is a sensor fault only while
the signal must move (the catalog's `moves_when`: circuit lit, barrier in its stroke, car or
pump running) or at a rail no healthy sensor gives."""

from __future__ import annotations

import pytest

from alerts.rule_compiler import compile_expression
from alerts.rule_language import RuleSyntaxError
from facility.catalog import KINDS
from facility.site import parse_site
from tests.readings import Reading, ms, run_pack

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
  { id = "stair", kind = "lighting", name = "Stairwell lighting" },
  { id = "photocell", kind = "lighting", name = "Landscape", params = { lux_sees_lamps = 0 } },
  { id = "barrier", kind = "gate", name = "Barrier", params = { gate_has_motor = 1 } },
]
"""
)


def light(device: str, t_s: float, *, on: bool, current_a: float, lux: float) -> Reading:
    return Reading(
        device,
        t_s,
        {
            "commanded_on": int(on),
            "current_a": current_a,
            "voltage_v": 230 + t_s % 3 / 10,
            "power_w": current_a * 230,
            "lamp_failures": 0,
            "lux": lux,
            "emergency_battery_ok": 1,
        },
    )


def barrier(t_s: float, *, open_s: float | None, current_a: float) -> Reading:
    """`open_s`: how long it has been open (None: closed)."""
    return Reading(
        "barrier",
        t_s,
        {
            "door_open": int(open_s is not None),
            "open_duration_s": open_s or 0.0,
            "forced_open": 0,
            "held_open": 0,
            "granted": 0,
            "denied": 0,
            "motor_current_a": current_a,
        },
    )


def test_a_dark_stairwell_reading_0_lx_all_night_raises_nothing() -> None:
    # lights off from dusk (before the timer switches them on), at 0 lx, one reading a minute
    readings = [light("stair", t, on=False, current_a=0.0, lux=0.0) for t in range(0, 36_000, 60)]
    assert run_pack(SITE, readings, 3600) == ([], [])


def test_a_photocell_that_does_not_see_its_lamps_reads_0_all_night_and_raises_nothing() -> None:
    # the site file says so for this device (lux_sees_lamps = 0): its coarse reading stays 0
    readings = [
        light("photocell", t, on=True, current_a=3.2 + t % 5 / 100, lux=0.0)
        for t in range(0, 36_000, 60)
    ]
    assert run_pack(SITE, readings, 3600) == ([], [])


def test_a_lit_circuit_whose_lux_reads_0_at_noon_is_a_sensor_fault() -> None:
    readings = [
        light("stair", t, on=True, current_a=2.1 + t % 7 / 100, lux=0.0) for t in range(0, 300, 10)
    ]
    opened, _ = run_pack(SITE, readings)
    assert [(f.rule_id, f.category, f.detected_ms) for f in opened] == [
        ("sensor.wire_cut.lighting", "sensor", ms(30))
    ]


def idle_day(dead_strokes_at: tuple[float, ...] = ()) -> list[Reading]:
    """A barrier at 0.0 A idle all day (one reading a minute), opening for a car every 20
    minutes: 3 s of stroke at 3 A, open 20 s, closed again. At `dead_strokes_at` it is
    commanded to move and draws nothing."""
    out = []
    for t in range(0, 12 * 3600, 60):
        out.append(barrier(t, open_s=None, current_a=0.0))
        if t % 1200 == 0:
            dead = t in dead_strokes_at
            out.append(barrier(t + 1, open_s=1.0, current_a=0.0 if dead else 3.0 + t % 7 / 10))
            out.append(barrier(t + 10, open_s=10.0, current_a=0.0))
            out.append(barrier(t + 21, open_s=None, current_a=0.0))
    return out


def test_a_barrier_at_0_a_idle_all_day_raises_nothing() -> None:
    assert run_pack(SITE, idle_day(), 3600) == ([], [])


def test_a_barrier_drawing_0_a_while_commanded_to_move_is_a_sensor_fault() -> None:
    opened, _ = run_pack(SITE, idle_day(dead_strokes_at=(6000, 7200)), 3600)
    assert [(f.rule_id, f.device_id, f.detected_ms) for f in opened] == [
        ("sensor.wire_cut.gate", "barrier", ms(7201))
    ]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_moves_when_of_the_catalog_compiles_for_its_kind(kind: str) -> None:
    spec = KINDS[kind]
    for f in spec.fields:
        if f.moves_when:
            try:
                compile_expression(f.moves_when, spec)
            except RuleSyntaxError as exc:
                pytest.fail(f"{kind}.{f.name}: {exc}")
        if f.rest_at_rail:
            assert f.min == 0.0, f"{kind}.{f.name}: a rest rail is a zero"
