"""The device catalog: which kinds exist, what each reports, in which unit, within which range.

Every later stage works on columns in the order given here, so a field's position in
`KindSpec.fields` is its column index in a `Batch`. Booleans and enumerations travel as
float64 codes inside the arrays (true = 1.0; an enumeration's code is its label's index).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Final

import numpy as np
import numpy.typing as npt


class FieldType(StrEnum):
    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    ENUM = "enum"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    type: FieldType
    unit: str
    min: float
    max: float
    description: str
    labels: tuple[str, ...] = ()
    """For enumerations: the label of each code, code = index."""
    rest_at_rail: bool = False
    """The bottom of the range is a legitimate value at rest (0 A idle, 0 lx in the dark):
    reading it is a cut wire only while the signal must move (`moves_when`). A 4-20 mA loop
    (pressure, temperature) never legitimately reads its bottom rail."""
    moves_when: str = ""
    """A rule expression over the kind's fields under which the signal must be live (off its
    rest rail, carrying noise): the circuit is lit, the barrier in its stroke, the pump
    running. Empty: always. Rules read it as `moving(field)` and `pinned(field)`."""


@dataclass(frozen=True, slots=True)
class KindSpec:
    name: str
    description: str
    heartbeat_s: float
    """A device that has not reported for this long is offline."""
    fields: tuple[FieldSpec, ...]
    index: MappingProxyType[str, int] = field(init=False, repr=False, compare=False)
    min: npt.NDArray[np.float64] = field(init=False, repr=False, compare=False)
    max: npt.NDArray[np.float64] = field(init=False, repr=False, compare=False)
    integral: npt.NDArray[np.bool_] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "index", MappingProxyType({f.name: i for i, f in enumerate(self.fields)})
        )
        object.__setattr__(self, "min", np.array([f.min for f in self.fields], dtype=np.float64))
        object.__setattr__(self, "max", np.array([f.max for f in self.fields], dtype=np.float64))
        object.__setattr__(
            self,
            "integral",
            np.array([f.type is not FieldType.FLOAT for f in self.fields], dtype=np.bool_),
        )

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def col(self, name: str) -> int:
        return self.index[name]


def _moves(rest: str | None) -> str:
    """None: not a rest value, always live; "": at rest any time (a counter, a duration)."""
    if rest is None:
        return ""
    return rest or "false"


def _f(
    name: str, unit: str, lo: float, hi: float, description: str, *, rest: str | None = None
) -> FieldSpec:
    """`rest`: the bottom rail is a value at rest, and this is when the signal must move
    ("": never required to)."""
    return FieldSpec(
        name, FieldType.FLOAT, unit, lo, hi, description,
        rest_at_rail=rest is not None, moves_when=_moves(rest),
    )  # fmt: skip


def _i(
    name: str, unit: str, lo: float, hi: float, description: str, *, rest: str | None = None
) -> FieldSpec:
    return FieldSpec(
        name, FieldType.INT, unit, lo, hi, description,
        rest_at_rail=rest is not None, moves_when=_moves(rest),
    )  # fmt: skip


def _b(name: str, description: str) -> FieldSpec:
    return FieldSpec(name, FieldType.BOOL, "", 0.0, 1.0, description)


def _e(name: str, labels: tuple[str, ...], description: str) -> FieldSpec:
    return FieldSpec(name, FieldType.ENUM, "", 0.0, float(len(labels) - 1), description, labels)


DOOR_STATES: Final = ("closed", "opening", "open", "closing")
DIRECTIONS: Final = ("stopped", "up", "down")

ELEVATOR: Final = KindSpec(
    name="elevator",
    description="Traction or hydraulic passenger lift, one car.",
    heartbeat_s=60.0,
    fields=(
        _b("running", "Car is moving."),
        _e("direction", DIRECTIONS, "Travel direction."),
        _i("floor", "", -5, 120, "Nearest landing."),
        _f(
            "level_error_mm",
            "mm",
            -3000,
            3000,
            "Car sill minus landing sill; large = between floors.",
        ),
        _f("speed_mps", "m/s", 0, 10, "Car speed.", rest="running"),
        _e("door_state", DOOR_STATES, "Car door state."),
        _f(
            "door_open_time_s",
            "s",
            0,
            600,
            "How long the door stayed open at the last stop.",
            rest="",
        ),
        _i("door_reopen_count", "", 0, 100, "Re-openings at the last stop.", rest=""),
        _f("load_kg", "kg", 0, 3000, "Car load.", rest=""),
        _f("motor_current_a", "A", 0, 200, "Hoist motor current.", rest="running"),
        FieldSpec(
            "motor_temp_c",
            FieldType.FLOAT,
            "degC",
            -20,
            150,
            "Hoist motor winding temperature (4-20 mA: the bottom rail is a cut wire).",
            moves_when="running",
        ),
        _f("vibration_mm_s", "mm/s", 0, 50, "Car vibration, RMS velocity.", rest="running"),
        _b("alarm_button", "EN 81-28 alarm button pressed in the car."),
        _b("alarm_test_ok", "Last EN 81-28 72 h automatic alarm self-test passed."),
        _i("fault_code", "", 0, 9999, "Controller fault code, 0 = none."),
    ),
)

LIGHTING: Final = KindSpec(
    name="lighting",
    description="A lighting circuit or DALI group (stairwell, landscape, emergency).",
    heartbeat_s=120.0,
    fields=(
        _b("commanded_on", "Controller commands the circuit on."),
        _f("current_a", "A", 0, 100, "Circuit current.", rest="commanded_on"),
        _f("voltage_v", "V", 0, 300, "Circuit voltage."),
        _f("power_w", "W", 0, 30000, "Active power.", rest="commanded_on"),
        _i("lamp_failures", "", 0, 500, "Lamps reported failed (DALI).", rest=""),
        _f(
            "lux",
            "lx",
            0,
            150000,
            "Ambient light at the circuit's sensor: 0 in the dark; a lit circuit lights it.",
            rest="commanded_on and current_a > 0",
        ),
        _b("emergency_battery_ok", "Emergency battery passed its last test."),
    ),
)

GATE: Final = KindSpec(
    name="gate",
    description="A unit door or barrier gate with card access.",
    heartbeat_s=120.0,
    fields=(
        _b("door_open", "Door / barrier is open."),
        _f("open_duration_s", "s", 0, 86400, "How long it has been open.", rest=""),
        _b("forced_open", "Opened without a grant (door forced)."),
        _b("held_open", "Held open past its allowed time."),
        _i("granted", "", 0, 10000, "Card reads granted since the last report.", rest=""),
        _i("denied", "", 0, 10000, "Card reads denied since the last report.", rest=""),
        _f(
            "motor_current_a",
            "A",
            0,
            50,
            "Barrier motor current (0 for doors; a barrier may draw 0.0 A at rest); it must "
            "draw current in its opening stroke (the first 3 s open).",
            rest="door_open and open_duration_s < 3",
        ),
    ),
)

PUMP: Final = KindSpec(
    name="pump",
    description="One pump of a secondary water-supply booster set.",
    heartbeat_s=60.0,
    fields=(
        _b("running", "Pump motor is running."),
        _f("suction_bar", "bar", -1, 16, "Suction pressure."),
        _f("discharge_bar", "bar", -1, 25, "Discharge pressure."),
        _f("flow_m3h", "m3/h", 0, 500, "Flow.", rest="running"),
        _f("motor_current_a", "A", 0, 400, "Motor current.", rest="running"),
        FieldSpec(
            "motor_temp_c",
            FieldType.FLOAT,
            "degC",
            -20,
            180,
            "Motor winding temperature.",
            moves_when="running",
        ),
        _f(
            "vibration_mm_s",
            "mm/s",
            0,
            50,
            "Bearing vibration, RMS velocity (ISO 10816).",
            rest="running",
        ),
        _f("vfd_hz", "Hz", 0, 60, "Variable-frequency drive output.", rest="running"),
        _f("tank_level_pct", "%", 0, 100, "Break-tank level."),
        _b("leak", "Leak sensor wet."),
    ),
)

KINDS: Final[MappingProxyType[str, KindSpec]] = MappingProxyType(
    {k.name: k for k in (ELEVATOR, LIGHTING, GATE, PUMP)}
)
KIND_NAMES: Final = tuple(KINDS)


def kind(name: str) -> KindSpec:
    """The spec of a kind; KeyError names the known kinds."""
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(f"unknown device kind {name!r}; known: {', '.join(KIND_NAMES)}") from None


def reading_dict(spec: KindSpec, row: npt.NDArray[np.float64]) -> dict[str, bool | int | float]:
    """One reading's present fields as JSON-ready Python values (for status views, not bulk)."""
    out: dict[str, bool | int | float] = {}
    for f, value in zip(spec.fields, row.tolist(), strict=True):
        if math.isnan(value):  # not reported
            continue
        if f.type is FieldType.BOOL:
            out[f.name] = value > 0.5
        elif f.type is FieldType.FLOAT:
            out[f.name] = value
        else:
            out[f.name] = int(value)
    return out
