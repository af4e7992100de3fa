"""What every device model shares: per-device random numbers, the output matrix, fault inputs.

A model holds the state of every device of one kind in numpy arrays (one row per device, in
`Device.kind_index` order) and advances all of them at once: `step(tick)` moves the state on by
`tick.dt_s` simulated seconds and returns a (devices, fields) float64 matrix in catalog column
order. No per-device Python loop runs in a step. Faults act through the model's fault inputs
(arrays reset by `clear_faults()` before every step) and by overwriting output columns.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from facility.batch import FloatArray
from facility.catalog import KindSpec
from facility.site import Device
from simulators.clock import Tick
from simulators.rng import CounterRandom, normal_from

IntpArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]

CONSTANT_SLOTS = 1000
"""Random slots from here on draw per-device constants (counter 0) at construction."""


class KindModel(ABC):
    spec: ClassVar[KindSpec]
    UNIFORMS: ClassVar[int] = 10
    """Per-tick uniform slots (0 .. UNIFORMS-1) and normal slots (0 .. NORMALS-1) a step may
    use; they come from one vectorised draw per tick."""
    NORMALS: ClassVar[int] = 13

    def __init__(self, devices: Sequence[Device], seed: int, start_ms: int) -> None:
        self.devices = tuple(devices)
        self.n = len(self.devices)
        self.rows: IntpArray = np.arange(self.n, dtype=np.intp)
        self.rng = CounterRandom(seed, self.spec.name)
        self._constant_slot = CONSTANT_SLOTS
        self.start_s = start_ms / 1000.0
        self._block_tick = -1
        self._block = np.empty((0, 0))

    # -- random helpers ---------------------------------------------------------------------

    def constant(self, low: float, high: float) -> FloatArray:
        """A fresh per-device constant, uniform in [low, high)."""
        self._constant_slot += 1
        u = self.rng.uniform(self.rows, 0, self._constant_slot)
        out: FloatArray = low + (high - low) * u
        return out

    def _draws(self, tick: Tick) -> FloatArray:
        if self._block_tick != tick.number:
            width = self.UNIFORMS + 2 * self.NORMALS
            self._block = self.rng.block(self.rows, tick.number, width)
            self._block_tick = tick.number
        return self._block

    def noise(self, tick: Tick, slot: int) -> FloatArray:
        """Standard normal noise per device for this tick."""
        block = self._draws(tick)
        column = self.UNIFORMS + 2 * slot
        return normal_from(block[:, column], block[:, column + 1])

    def uniform(self, tick: Tick, slot: int) -> FloatArray:
        """Uniform in (0, 1) per device for this tick."""
        if slot >= self.UNIFORMS:
            raise IndexError(f"uniform slot {slot} >= {self.UNIFORMS}")
        column: FloatArray = self._draws(tick)[:, slot]
        return column

    # -- output ------------------------------------------------------------------------------

    def empty(self) -> FloatArray:
        return np.zeros((self.n, len(self.spec.fields)), np.float64)

    def put(self, out: FloatArray, name: str, values: npt.NDArray[Any] | float) -> None:
        out[:, self.spec.col(name)] = values

    # -- the contract ------------------------------------------------------------------------

    def clear_faults(self) -> None:  # noqa: B027 - a hook: no-op for models without fault inputs
        """Reset every fault input to 'healthy'; active faults set theirs again each tick."""

    @abstractmethod
    def step(self, tick: Tick) -> FloatArray:
        """Advance every device to `tick`; the readings, in catalog column order."""

    def restart(self, rows: IntpArray, tick: Tick) -> None:  # noqa: B027 - a hook, no-op by default
        """Power came back for these devices: they boot into a safe idle state."""


def relax(value: FloatArray, target: FloatArray, dt_s: float, tau_s: float) -> FloatArray:
    """First-order lag, exact for a target held constant over dt (stable at any rate)."""
    out: FloatArray = target + (value - target) * np.exp(-dt_s / tau_s)
    return out


def role_of(device: Device, words: Mapping[str, tuple[str, ...]], default: str) -> str:
    """A device's role from words in its id or name (e.g. 'emerg' -> emergency lighting)."""
    text = f"{device.id} {device.name}".lower()
    for role, keys in words.items():
        if any(k in text for k in keys):
            return role
    return default
