"""Faults the simulator can inject, and the ledger that records what it injected.

An injection is `NAME[:DEVICE[,DEVICE...]][@START_S[+DURATION_S]]`, e.g.
`pump-dry-run:pump-1@10+120`: from 10 s of simulated time, for 120 s (default: to the end).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from facility.batch import FloatArray
from facility.catalog import DOOR_STATES, KINDS
from facility.errors import FacilityError
from facility.site import Device, Site

Apply = Callable[[FloatArray, np.ndarray, np.random.Generator], None]


class InjectionError(FacilityError):
    pass


@dataclass(frozen=True, slots=True)
class FaultType:
    name: str
    kind: str
    description: str
    apply: Apply
    """Overwrites the targeted rows of the kind's (devices, fields) matrix."""


def _cols(kind: str, *names: str) -> list[int]:
    return [KINDS[kind].col(n) for n in names]


def _pump_dry_run(v: FloatArray, rows: np.ndarray, rng: np.random.Generator) -> None:
    running, suction, flow, current = _cols(
        "pump", "running", "suction_bar", "flow_m3h", "motor_current_a"
    )
    v[rows, running] = 1.0
    v[rows, suction] = np.abs(rng.normal(0.05, 0.02, len(rows)))
    v[rows, flow] = 0.0
    v[rows, current] = v[rows, current] * 0.55


def _elevator_entrapment(v: FloatArray, rows: np.ndarray, rng: np.random.Generator) -> None:
    c = _cols(
        "elevator",
        "running",
        "direction",
        "speed_mps",
        "level_error_mm",
        "door_state",
        "alarm_button",
    )
    running, direction, speed, level, door, alarm = c
    v[rows, running] = 0.0
    v[rows, direction] = 0.0
    v[rows, speed] = 0.0
    v[rows, level] = 850.0 + rng.normal(0, 1, len(rows))
    v[rows, door] = float(DOOR_STATES.index("closed"))
    v[rows, alarm] = 1.0


def _gate_forced_open(v: FloatArray, rows: np.ndarray, rng: np.random.Generator) -> None:
    door_open, forced, granted = _cols("gate", "door_open", "forced_open", "granted")
    v[rows, door_open] = 1.0
    v[rows, forced] = 1.0
    v[rows, granted] = 0.0


def _lighting_circuit_dark(v: FloatArray, rows: np.ndarray, rng: np.random.Generator) -> None:
    on, current, power = _cols("lighting", "commanded_on", "current_a", "power_w")
    v[rows, on] = 1.0
    v[rows, current] = 0.0
    v[rows, power] = 0.0


FAULT_TYPES: dict[str, FaultType] = {
    f.name: f
    for f in (
        FaultType(
            "pump-dry-run", "pump", "Suction collapses while running; current drops.", _pump_dry_run
        ),
        FaultType(
            "elevator-entrapment",
            "elevator",
            "Car stops between floors, doors closed, alarm button pressed.",
            _elevator_entrapment,
        ),
        FaultType("gate-forced-open", "gate", "Door opened without a grant.", _gate_forced_open),
        FaultType(
            "lighting-circuit-dark",
            "lighting",
            "Circuit commanded on draws no current (breaker tripped).",
            _lighting_circuit_dark,
        ),
    )
}

_INJECTION = re.compile(
    r"^(?P<name>[a-z-]+)(?::(?P<devices>[a-z0-9_,-]+))?"
    r"(?:@(?P<start>\d+(?:\.\d+)?)(?:\+(?P<duration>\d+(?:\.\d+)?))?)?$"
)
DEFAULT_START_S = 10.0


@dataclass(frozen=True, slots=True)
class Injection:
    fault: FaultType
    devices: tuple[Device, ...]
    start_s: float
    duration_s: float | None

    def active(self, elapsed_s: float) -> bool:
        if elapsed_s < self.start_s:
            return False
        return self.duration_s is None or elapsed_s < self.start_s + self.duration_s

    @property
    def rows(self) -> np.ndarray:
        return np.array([d.kind_index for d in self.devices], dtype=np.intp)


def parse_injection(text: str, site: Site) -> Injection:
    match = _INJECTION.match(text.strip())
    if not match:
        raise InjectionError(
            f"bad --inject {text!r}: expected NAME[:DEVICE[,DEVICE...]][@START_S[+DURATION_S]]"
        )
    fault = FAULT_TYPES.get(match["name"])
    if fault is None:
        raise InjectionError(
            f"unknown fault {match['name']!r}; known: {', '.join(sorted(FAULT_TYPES))}"
        )
    candidates = site.by_kind[fault.kind]
    if not candidates:
        raise InjectionError(f"site {site.id!r} has no {fault.kind} to inject {fault.name} into")
    if match["devices"]:
        devices = []
        for ident in match["devices"].split(","):
            device = site.by_id.get(ident)
            if device is None or device.kind != fault.kind:
                raise InjectionError(f"{fault.name} needs a {fault.kind}; {ident!r} is not one")
            devices.append(device)
    else:
        devices = [candidates[0]]
    start = float(match["start"]) if match["start"] else DEFAULT_START_S
    duration = float(match["duration"]) if match["duration"] else None
    return Injection(fault, tuple(devices), start, duration)


class Ledger:
    """Ground truth: one JSON line per injected fault and device (start; end when it ends)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def record(self, injection: Injection, start_ms: int, end_ms: int | None) -> None:
        if self.path is None:
            return
        with self.path.open("ab") as out:
            for device in injection.devices:
                entry = {
                    "device": device.id,
                    "kind": device.kind,
                    "fault": injection.fault.name,
                    "start_ms": start_ms,
                    "end_ms": end_ms,
                    "parameters": {},
                }
                out.write(orjson.dumps(entry) + b"\n")
