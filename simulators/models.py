"""Device models, one class per kind, each vectorised over every device of its kind.

`sample(ts_ms, hour)` returns a (devices, fields) float64 matrix in catalog column order.
The walking skeleton keeps signals simple but plausible (daily patterns, noise around
normal operating points); the simulators issue makes them realistic.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from facility.batch import FloatArray
from facility.catalog import ELEVATOR, GATE, LIGHTING, PUMP, KindSpec
from simulators.clock import daylight


class DeviceModel(Protocol):
    spec: KindSpec

    def sample(self, ts_ms: int, hour: float) -> FloatArray: ...


def _traffic(hour: float) -> float:
    """Residential traffic: morning and evening peaks, quiet at night (0.05 .. 1)."""
    morning = math.exp(-(((hour - 8.0) / 1.2) ** 2))
    evening = math.exp(-(((hour - 18.5) / 1.5) ** 2))
    day = 0.3 if 7 <= hour <= 22 else 0.05
    return max(day, morning, evening)


class _Model:
    spec: KindSpec

    def sample(self, ts_ms: int, hour: float) -> FloatArray:
        raise NotImplementedError

    def __init__(self, devices: int, rng: np.random.Generator) -> None:
        self.n = devices
        self.rng = rng

    def _empty(self) -> FloatArray:
        return np.zeros((self.n, len(self.spec.fields)), np.float64)

    def _set(self, out: FloatArray, name: str, values: npt.NDArray[Any] | float) -> None:
        out[:, self.spec.col(name)] = values


class ElevatorModel(_Model):
    spec = ELEVATOR

    def __init__(self, devices: int, rng: np.random.Generator) -> None:
        super().__init__(devices, rng)
        self.floor = rng.integers(1, 19, devices).astype(np.float64)
        self.temp_c = np.full(devices, 35.0)

    def sample(self, ts_ms: int, hour: float) -> FloatArray:
        n, rng, out = self.n, self.rng, self._empty()
        running = rng.random(n) < 0.6 * _traffic(hour)
        direction = np.where(running, rng.integers(1, 3, n), 0).astype(np.float64)
        self.floor = np.clip(
            self.floor + np.where(direction == 1, 1, np.where(direction == 2, -1, 0)), 1, 18
        )
        load = np.where(running, rng.uniform(60, 600, n) * _traffic(hour), 0.0)
        speed = np.where(running, rng.normal(1.75, 0.05, n), 0.0)
        self.temp_c += np.where(running, 0.05, -0.03) * (self.temp_c - 20 + 1)
        self.temp_c = np.clip(self.temp_c, 25.0, 60.0)
        self._set(out, "running", running)
        self._set(out, "direction", direction)
        self._set(out, "floor", self.floor)
        self._set(
            out, "level_error_mm", np.where(running, rng.normal(0, 30, n), rng.normal(0, 3, n))
        )
        self._set(out, "speed_mps", np.clip(speed, 0, None))
        self._set(
            out, "door_state", np.where(running, 0.0, rng.choice([0.0, 2.0], n, p=[0.7, 0.3]))
        )
        self._set(out, "door_open_time_s", np.clip(rng.normal(4.0, 0.6, n), 1, None))
        self._set(out, "door_reopen_count", (rng.random(n) < 0.03).astype(np.float64))
        self._set(out, "load_kg", load)
        self._set(
            out, "motor_current_a", np.where(running, 12 + load * 0.02 + rng.normal(0, 0.5, n), 0.3)
        )
        self._set(out, "motor_temp_c", self.temp_c + rng.normal(0, 0.2, n))
        self._set(out, "vibration_mm_s", np.abs(rng.normal(np.where(running, 1.2, 0.2), 0.1, n)))
        self._set(out, "alarm_button", 0.0)
        self._set(out, "alarm_test_ok", 1.0)
        self._set(out, "fault_code", 0.0)
        return out


class LightingModel(_Model):
    spec = LIGHTING

    def __init__(self, devices: int, rng: np.random.Generator) -> None:
        super().__init__(devices, rng)
        self.nominal_a = rng.uniform(1.5, 4.0, devices)

    def sample(self, ts_ms: int, hour: float) -> FloatArray:
        n, rng, out = self.n, self.rng, self._empty()
        sun = daylight(hour)
        on = np.full(n, sun < 0.15)
        voltage = rng.normal(228.0, 1.5, n)
        current = np.where(on, self.nominal_a * rng.normal(1.0, 0.01, n), 0.0)
        self._set(out, "commanded_on", on)
        self._set(out, "current_a", current)
        self._set(out, "voltage_v", voltage)
        self._set(out, "power_w", current * voltage * 0.95)
        self._set(out, "lamp_failures", 0.0)
        self._set(
            out,
            "lux",
            np.clip(sun * 50000 * rng.uniform(0.8, 1.0, n) + rng.uniform(0, 5, n), 0, None),
        )
        self._set(out, "emergency_battery_ok", 1.0)
        return out


class GateModel(_Model):
    spec = GATE

    def sample(self, ts_ms: int, hour: float) -> FloatArray:
        n, rng, out = self.n, self.rng, self._empty()
        passages = rng.poisson(0.3 * _traffic(hour), n)
        door_open = passages > 0
        self._set(out, "door_open", door_open)
        self._set(out, "open_duration_s", np.where(door_open, rng.uniform(2, 8, n), 0.0))
        self._set(out, "forced_open", 0.0)
        self._set(out, "held_open", 0.0)
        self._set(out, "granted", passages)
        self._set(out, "denied", (rng.random(n) < 0.01).astype(np.float64))
        self._set(out, "motor_current_a", np.where(door_open, rng.normal(1.5, 0.1, n), 0.0))
        return out


class PumpModel(_Model):
    """A booster set: the first two pumps share the duty, the last one is standby."""

    spec = PUMP

    def __init__(self, devices: int, rng: np.random.Generator) -> None:
        super().__init__(devices, rng)
        self.duty = np.arange(devices) < max(devices - 1, 1)
        self.tank_pct = np.full(devices, 80.0)

    def sample(self, ts_ms: int, hour: float) -> FloatArray:
        n, rng, out = self.n, self.rng, self._empty()
        demand = _traffic(hour)
        hz = np.where(self.duty, 30 + 18 * demand + rng.normal(0, 0.3, n), 0.0)
        running = self.duty
        flow = np.where(running, 40 * demand * hz / 48 + rng.normal(0, 0.5, n), 0.0)
        self._set(out, "running", running)
        self._set(out, "suction_bar", rng.normal(1.5, 0.03, n))
        self._set(
            out,
            "discharge_bar",
            np.where(running, 4.0 + 0.8 * demand, 1.5) + rng.normal(0, 0.03, n),
        )
        self._set(out, "flow_m3h", np.clip(flow, 0, None))
        self._set(
            out,
            "motor_current_a",
            np.where(running, 8 + 14 * (hz / 50) ** 2 + rng.normal(0, 0.2, n), 0.0),
        )
        self._set(out, "motor_temp_c", np.where(running, 55.0, 30.0) + rng.normal(0, 0.3, n))
        self._set(out, "vibration_mm_s", np.abs(np.where(running, rng.normal(2.0, 0.15, n), 0.05)))
        self._set(out, "vfd_hz", np.clip(hz, 0, 60))
        self._set(out, "tank_level_pct", np.clip(self.tank_pct + rng.normal(0, 0.2, n), 0, 100))
        self._set(out, "leak", 0.0)
        return out


MODELS: dict[str, type[_Model]] = {
    "elevator": ElevatorModel,
    "lighting": LightingModel,
    "gate": GateModel,
    "pump": PumpModel,
}
