"""Faults the simulator can inject: what each does to a device model's signals.

How injections name them, their targets and times is in `simulators.injection`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, cast

import numpy as np

from facility.batch import FloatArray
from facility.catalog import KINDS
from facility.site import Device
from simulators.clock import Tick
from simulators.models.base import IntpArray
from simulators.models.elevator import ElevatorModel
from simulators.models.gate import GateModel
from simulators.models.lighting import LightingModel
from simulators.models.pump import PumpModel

__all__ = ["ANY", "FAULT_TYPES", "SITE", "FaultContext", "FaultType"]

ANY: Final = "any"
"""A fault that applies to a device of any kind."""
SITE: Final = "site"
"""A fault of the whole site (or of buildings), not of one device's signals."""
DEFAULT_START_S = 10.0
DAY_S = 86_400.0

ParamValue = float | str


@dataclass(slots=True)
class FaultContext:
    """What a fault's effect sees on one tick: when, since when, its parameters, its memory."""

    tick: Tick
    elapsed_s: float
    """Simulated seconds since the fault started."""
    params: Mapping[str, ParamValue]
    memory: dict[str, Any]
    """Per injection and kind: state a fault keeps between ticks (e.g. a frozen value)."""
    kind: str

    def number(self, name: str) -> float:
        return float(self.params[name])

    @property
    def days(self) -> float:
        return self.elapsed_s / DAY_S


Drive = Callable[[Any, IntpArray, FaultContext], None]
"""Sets the model's fault inputs for the targeted rows before the model steps."""
Overlay = Callable[[FloatArray, IntpArray, FaultContext], None]
"""Overwrites the targeted rows of the (devices, fields) output after the model stepped."""


@dataclass(frozen=True, slots=True)
class FaultType:
    name: str
    kind: str
    """A catalog kind, ANY or SITE."""
    description: str
    signature: str
    """What the fault looks like in the signals (or on the wire)."""
    parameters: Mapping[str, ParamValue] = field(default_factory=dict)
    drive: Drive | None = None
    overlay: Overlay | None = None
    behaviour: str = ""
    """Runner behaviour: 'silent', 'power-loss', 'disconnect' or 'bad-payloads'."""
    eligible: Callable[[Device], bool] | None = None
    set_wide: bool = False
    """Acts on a whole pump booster set (the unit's pumps), whichever pump is named."""

    def applies_to(self, device: Device) -> bool:
        if self.kind not in (ANY, SITE) and device.kind != self.kind:
            return False
        return self.eligible is None or self.eligible(device)

    @property
    def what(self) -> str:
        return {ANY: "device", SITE: "device"}.get(self.kind, self.kind)


# -- elevator ---------------------------------------------------------------------------------


def _entrapment(m: ElevatorModel, rows: IntpArray, c: FaultContext) -> None:
    m.stuck[rows] = True


def _door_obstruction(m: ElevatorModel, rows: IntpArray, c: FaultContext) -> None:
    m.reopen_p[rows] = c.number("reopen_probability")


def _slow_doors(m: ElevatorModel, rows: IntpArray, c: FaultContext) -> None:
    factor = 1.0 + c.number("rate_per_day") * c.days
    m.door_slow[rows] = min(factor, c.number("max_factor"))


def _levelling_drift(m: ElevatorModel, rows: IntpArray, c: FaultContext) -> None:
    drift = min(c.number("mm_per_day") * c.days, c.number("max_mm"))
    m.level_bias_mm[rows] = m.drift_sign[rows] * drift


def _overheating(m: ElevatorModel, rows: IntpArray, c: FaultContext) -> None:
    m.heat_extra_c[rows] = c.number("extra_c")


def _bearing_wear(m: ElevatorModel, rows: IntpArray, c: FaultContext) -> None:
    m.vib_factor[rows] = min(1.0 + c.number("rate_per_day") * c.days, c.number("max_factor"))


def _missed_alarm_test(m: ElevatorModel, rows: IntpArray, c: FaultContext) -> None:
    m.test_fail[rows] = True


# -- pump -------------------------------------------------------------------------------------


def _dry_run(m: PumpModel, rows: IntpArray, c: FaultContext) -> None:
    m.dry[rows] = True


def _cavitation(m: PumpModel, rows: IntpArray, c: FaultContext) -> None:
    m.cavitation[rows] = c.number("severity")


def _pump_bearing_wear(m: PumpModel, rows: IntpArray, c: FaultContext) -> None:
    m.vib_factor[rows] = min(1.0 + c.number("rate_per_day") * c.days, c.number("max_factor"))


def _low_tank(m: PumpModel, rows: IntpArray, c: FaultContext) -> None:
    m.inlet_factor[m.set_of[rows]] = c.number("inlet_factor")


def _pump_leak(m: PumpModel, rows: IntpArray, c: FaultContext) -> None:
    m.leak[rows] = True
    m.leak_m3h[rows] = c.number("leak_m3h")


# -- gate -------------------------------------------------------------------------------------


def _forced_open(m: GateModel, rows: IntpArray, c: FaultContext) -> None:
    m.forced[rows] = True


def _held_open(m: GateModel, rows: IntpArray, c: FaultContext) -> None:
    m.propped[rows] = True


def _reader_failure(m: GateModel, rows: IntpArray, c: FaultContext) -> None:
    m.reader_failed[rows] = True


# -- lighting ---------------------------------------------------------------------------------


def _circuit_dark(m: LightingModel, rows: IntpArray, c: FaultContext) -> None:
    m.dark[rows] = True


def _lamp_failures(m: LightingModel, rows: IntpArray, c: FaultContext) -> None:
    m.extra_failed[rows] = np.ceil(c.number("fraction") * m.lamps[rows])


def _day_burning(m: LightingModel, rows: IntpArray, c: FaultContext) -> None:
    m.day_burning[rows] = True


def _battery_failure(m: LightingModel, rows: IntpArray, c: FaultContext) -> None:
    m.battery_failed[rows] = True


# -- any kind: sensors ------------------------------------------------------------------------

DEFAULT_SIGNAL: Final = MappingProxyType(
    {
        "elevator": "motor_temp_c",
        "lighting": "lux",
        "gate": "motor_current_a",
        "pump": "discharge_bar",
    }
)


def _signal_col(c: FaultContext) -> int:
    signal = str(c.params["signal"]) or DEFAULT_SIGNAL[c.kind]
    return KINDS[c.kind].col(signal)


def _flat_line(values: FloatArray, rows: IntpArray, c: FaultContext) -> None:
    col = _signal_col(c)
    if "frozen" not in c.memory:
        c.memory["frozen"] = values[rows, col].copy()
    values[rows, col] = c.memory["frozen"]


def _wire_cut(values: FloatArray, rows: IntpArray, c: FaultContext) -> None:
    col = _signal_col(c)
    values[rows, col] = KINDS[c.kind].fields[col].min


def _is_emergency(device: Device) -> bool:
    return "emerg" in f"{device.id} {device.name}".lower()


def _ft(
    name: str,
    kind: str,
    description: str,
    signature: str,
    drive: Callable[..., None] | None = None,
    **extra: Any,
) -> FaultType:
    return FaultType(name, kind, description, signature, drive=cast("Drive | None", drive), **extra)


FAULT_TYPES: Final[dict[str, FaultType]] = {
    f.name: f
    for f in (
        _ft(
            "elevator-entrapment",
            "elevator",
            "The car stops between floors with its doors closed; the passenger presses the "
            "EN 81-28 alarm button (latched until the rescue).",
            "running 0, speed 0, abs(level_error_mm) 400-1300, door_state closed, alarm_button 1, "
            "fault_code 32; after the fault the car is brought to the landing.",
            _entrapment,
        ),
        _ft(
            "door-obstruction",
            "elevator",
            "Something keeps breaking the door's light curtain: the door re-opens again and "
            "again at every stop.",
            "door_reopen_count about p/(1-p) per stop (4 at p=0.8), door_open_time_s up.",
            _door_obstruction,
            parameters={"reopen_probability": 0.8},
        ),
        _ft(
            "slow-doors",
            "elevator",
            "The door operator wears: door times creep up day by day.",
            "door_open_time_s grows by rate_per_day (x the normal time) per day, up to max_factor.",
            _slow_doors,
            parameters={"rate_per_day": 0.25, "max_factor": 4.0},
        ),
        _ft(
            "levelling-drift",
            "elevator",
            "The levelling (encoder, brake, rope stretch) drifts: stops land further and "
            "further from the sill.",
            "level_error_mm at stops moves away from 0 by mm_per_day, up to max_mm.",
            _levelling_drift,
            parameters={"mm_per_day": 6.0, "max_mm": 40.0},
        ),
        _ft(
            "motor-overheating",
            "elevator",
            "The machine-room ventilation or the motor fan fails: the winding runs hot.",
            "motor_temp_c settles extra_c higher (25 min time constant, at most 140 C); "
            "fault_code 71 above 110 C.",
            _overheating,
            parameters={"extra_c": 80.0},
        ),
        _ft(
            "bearing-wear",
            "elevator",
            "A worn hoist-machine bearing: vibration rises over the days.",
            "vibration_mm_s while moving multiplied by 1 + rate_per_day x days (up to max_factor).",
            _bearing_wear,
            parameters={"rate_per_day": 1.5, "max_factor": 12.0},
        ),
        _ft(
            "missed-alarm-test",
            "elevator",
            "The alarm system's line is broken: its next 72 h automatic self-test fails.",
            "alarm_test_ok goes 0 at the car's next self-test (within 72 h) and stays 0 "
            "until a test after the fault passes.",
            _missed_alarm_test,
        ),
        _ft(
            "pump-dry-run",
            "pump",
            "The suction side runs out of water while the pump keeps running.",
            "running 1, suction_bar ~0.04, flow_m3h ~0, motor_current_a halved, vfd_hz 50, "
            "discharge_bar ~suction+0.3, motor_temp_c rising.",
            _dry_run,
        ),
        _ft(
            "pump-cavitation",
            "pump",
            "Vapour bubbles collapse in the impeller (low NPSH, clogged strainer).",
            "vibration_mm_s x(1+1.6 severity) with spikes, discharge_bar -0.8 severity, "
            "motor_current_a fluctuating +-12 %, flow -15 %.",
            _cavitation,
            parameters={"severity": 1.0},
        ),
        _ft(
            "pump-bearing-wear",
            "pump",
            "A worn pump or motor bearing: vibration rises over the days (ISO 10816 zones).",
            "vibration_mm_s while running multiplied by 1 + rate_per_day x days (up to "
            "max_factor).",
            _pump_bearing_wear,
            parameters={"rate_per_day": 0.5, "max_factor": 4.0},
        ),
        _ft(
            "low-tank",
            "pump",
            "The break tank's mains inlet fails (valve stuck, mains outage): the tank drains. "
            "Acts on the whole booster set (all pumps of the unit report the same tank).",
            "tank_level_pct falls with the demand; below 5 % the set's low-level cut-out "
            "stops the pumps (running 0) until the tank is back above 15 %.",
            _low_tank,
            parameters={"inlet_factor": 0.0},
            set_wide=True,
        ),
        _ft(
            "pump-leak",
            "pump",
            "The mechanical seal leaks: water on the pump-room floor.",
            "leak 1; flow_m3h up by leak_m3h while the pump runs.",
            _pump_leak,
            parameters={"leak_m3h": 1.5},
        ),
        _ft(
            "gate-forced-open",
            "gate",
            "The door or barrier is forced open without a card grant and left open.",
            "door_open 1, forced_open 1, granted 0, open_duration_s counting from the start "
            "(held_open once past the allowed time).",
            _forced_open,
        ),
        _ft(
            "gate-held-open",
            "gate",
            "The door is propped open.",
            "door_open 1, open_duration_s counting, held_open 1 after 30 s (doors) / 60 s "
            "(barriers); card reads go on.",
            _held_open,
        ),
        _ft(
            "card-reader-failure",
            "gate",
            "The card reader rejects every card.",
            "granted 0; denied = every card read.",
            _reader_failure,
        ),
        _ft(
            "lighting-circuit-dark",
            "lighting",
            "The circuit's breaker trips: no current although the controller commands it on.",
            "current_a 0, power_w 0 (commanded_on unchanged: the rule sees it at night).",
            _circuit_dark,
        ),
        _ft(
            "lamp-failures",
            "lighting",
            "A share of the circuit's lamps fail (a driver, a batch of bad lamps).",
            "lamp_failures up by ceil(fraction x lamps); current_a and power_w down in "
            "proportion while on.",
            _lamp_failures,
            parameters={"fraction": 0.4},
        ),
        _ft(
            "day-burning",
            "lighting",
            "The photocell or schedule fails: the circuit burns in daylight.",
            "commanded_on 1 and current drawn while lux is high.",
            _day_burning,
        ),
        _ft(
            "emergency-battery-failure",
            "lighting",
            "The emergency group's battery fails its test. Applies to emergency groups "
            "(id or name contains 'emerg').",
            "emergency_battery_ok 0.",
            _battery_failure,
            eligible=_is_emergency,
        ),
        FaultType(
            "sensor-flat-line",
            ANY,
            "An analog sensor (or its input card) freezes at its last value.",
            "the signal repeats the exact value it had at the fault's start.",
            parameters={"signal": ""},
            overlay=_flat_line,
        ),
        FaultType(
            "sensor-wire-cut",
            ANY,
            "A 4-20 mA transducer's wire is cut: the reading is pinned at the bottom of its range.",
            "the signal reads its catalog minimum (e.g. discharge_bar -1).",
            parameters={"signal": ""},
            overlay=_wire_cut,
        ),
        FaultType(
            "device-silent",
            ANY,
            "The device stops publishing (modem dead, cable cut); it keeps measuring.",
            "no messages from the device; when it returns its seq has jumped by the readings "
            "it could not send (a gap).",
            behaviour="silent",
        ),
        FaultType(
            "site-power-loss",
            SITE,
            "The site (or the named buildings / units) loses power: every device goes silent, "
            "then all come back at once and reboot.",
            "no messages from the devices; afterwards their seq restarts at 1 (a reboot), "
            "lifts stand at landings, circuits follow their schedule.",
            behaviour="power-loss",
        ),
        FaultType(
            "broker-disconnect",
            SITE,
            "The simulator's connection to the broker drops for the fault's duration; devices "
            "buffer their readings and send them on reconnect (with backoff).",
            "no messages during the outage, then the backlog at once with continuous seq.",
            behaviour="disconnect",
        ),
        FaultType(
            "bad-payloads",
            ANY,
            "The device publishes deliberately broken messages, to exercise the gateway: each "
            "kind in `kinds` (default all), `count` of each, once at the start or every "
            "`every_s` seconds.",
            "messages the gateway must reject, one reason each (see docs/simulators.md); "
            "the summary and the ledger count them by expected reason.",
            parameters={"kinds": "all", "count": 1.0, "every_s": 0.0, "oversized_bytes": 300_000.0},
            behaviour="bad-payloads",
        ),
    )
}
