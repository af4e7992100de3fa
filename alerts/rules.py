"""The default rule pack (walking-skeleton subset): one rule per device kind.

Thresholds come from the domain (docs/rules.md). The TOML rule language replaces these
functions later; each stays a pure function of the batch's columns.
"""

from __future__ import annotations

import numpy as np

from alerts.interface import Rule, Severity
from facility.batch import BoolArray, KindBatch
from facility.catalog import DOOR_STATES

DRY_RUN_SUCTION_BAR = 0.2
BETWEEN_FLOORS_MM = 150.0
CIRCUIT_DARK_A = 0.1
_DOOR_CLOSED = float(DOOR_STATES.index("closed"))


def pump_dry_run(kb: KindBatch) -> BoolArray:
    """Running with no water at the suction side: the seal and impeller burn within minutes."""
    running: BoolArray = kb.column("running") > 0.5
    return running & (kb.column("suction_bar") < DRY_RUN_SUCTION_BAR)


def elevator_entrapment(kb: KindBatch) -> BoolArray:
    """EN 81-28 alarm pressed in a car that stands between floors with its doors closed."""
    pressed: BoolArray = kb.column("alarm_button") > 0.5
    between_floors: BoolArray = np.abs(kb.column("level_error_mm")) > BETWEEN_FLOORS_MM
    return (
        pressed
        & (kb.column("running") < 0.5)
        & between_floors
        & np.equal(kb.column("door_state"), _DOOR_CLOSED)
    )


def gate_forced_open(kb: KindBatch) -> BoolArray:
    """Door opened without a card grant."""
    return kb.column("forced_open") > 0.5


def lighting_circuit_dark(kb: KindBatch) -> BoolArray:
    """Commanded on but drawing no current: breaker tripped, driver or every lamp failed."""
    return (kb.column("commanded_on") > 0.5) & (kb.column("current_a") < CIRCUIT_DARK_A)


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(
        id="pump.dry_run",
        kind="pump",
        severity=Severity.CRITICAL,
        title="Pump dry run: {device}",
        condition=pump_dry_run,
        for_s=30.0,
    ),
    Rule(
        id="elevator.entrapment",
        kind="elevator",
        severity=Severity.CRITICAL,
        title="Passenger trapped: {device}",
        condition=elevator_entrapment,
        for_s=5.0,
    ),
    Rule(
        id="gate.forced_open",
        kind="gate",
        severity=Severity.MAJOR,
        title="Gate forced open: {device}",
        condition=gate_forced_open,
    ),
    Rule(
        id="lighting.circuit_dark",
        kind="lighting",
        severity=Severity.MAJOR,
        title="Lighting circuit dark while commanded on: {device}",
        condition=lighting_circuit_dark,
        for_s=60.0,
    ),
)
