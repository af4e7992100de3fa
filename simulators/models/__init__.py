"""Device models, one module per kind, each vectorised over every device of its kind.

`MODELS[kind](devices, seed, start_ms)` builds a model; `model.step(tick)` advances every
device by `tick.dt_s` and returns a (devices, fields) float64 matrix in catalog column order.
"""

from __future__ import annotations

from simulators.models.base import KindModel
from simulators.models.elevator import ElevatorModel
from simulators.models.gate import GateModel
from simulators.models.lighting import LightingModel
from simulators.models.pump import PumpModel

MODELS: dict[str, type[KindModel]] = {
    "elevator": ElevatorModel,
    "lighting": LightingModel,
    "gate": GateModel,
    "pump": PumpModel,
}

__all__ = ["MODELS", "ElevatorModel", "GateModel", "KindModel", "LightingModel", "PumpModel"]
