"""Lighting circuits and DALI groups: stairwell, landscape and emergency lighting.

The role comes from the device's id or name: 'emerg'/'emergency' -> a maintained emergency
group (always on, small LED fittings with batteries), 'land'/'garden'/'landscape' -> landscape
lighting (on from dusk until 23:30 and again from 05:30 until dawn), anything else -> a
stairwell circuit (photocell: on when the daylight falls below 400 lx, off above 800 lx).
Outdoor daylight follows the sun with the season and a cloud factor per day; indoor sensors
see a fraction of it plus their own lamps. The current is proportional to the working lamps;
lamps fail now and then (while burning) and are replaced after a few days.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from facility.batch import FloatArray
from facility.catalog import LIGHTING
from facility.site import Device
from simulators.clock import Tick, sun
from simulators.models.base import BoolArray, KindModel, role_of

STAIRWELL, LANDSCAPE, EMERGENCY = 0, 1, 2
ROLE_WORDS = {"emergency": ("emerg",), "landscape": ("land", "garden")}
CLEAR_SKY_LX = 90_000.0
PHOTOCELL_ON_LX, PHOTOCELL_OFF_LX = 400.0, 800.0
LANDSCAPE_OFF_H, LANDSCAPE_ON_H = 23.5, 5.5
LAMP_MTBF_H = 25_000.0
REPLACEMENT_MEAN_S = 4 * 86400.0
NOMINAL_V = 230.0


class LightingModel(KindModel):
    spec = LIGHTING

    def __init__(self, devices: Sequence[Device], seed: int, start_ms: int) -> None:
        super().__init__(devices, seed, start_ms)
        roles = [role_of(d, ROLE_WORDS, "stairwell") for d in self.devices]
        self.role = np.array(
            [
                {"stairwell": STAIRWELL, "landscape": LANDSCAPE, "emergency": EMERGENCY}[r]
                for r in roles
            ],
            np.int64,
        )
        lamps_lo = np.select([self.role == LANDSCAPE, self.role == EMERGENCY], [24, 18], 20)
        lamps_hi = np.select([self.role == LANDSCAPE, self.role == EMERGENCY], [60, 40], 44)
        self.lamps = np.floor(lamps_lo + (lamps_hi - lamps_lo) * self.constant(0.0, 1.0))
        self.lamp_w = np.select(
            [self.role == LANDSCAPE, self.role == EMERGENCY],
            [self.constant(35.0, 60.0), self.constant(2.5, 4.0)],
            self.constant(8.0, 12.0),
        )
        self.pf = self.constant(0.92, 0.97)
        self.v_offset = self.constant(-3.0, 3.0)
        self.indoor = self.role != LANDSCAPE
        self.indoor_gain = np.where(self.indoor, self.constant(0.002, 0.006), 1.0)
        self.own_light_lx = np.where(self.indoor, self.constant(60.0, 120.0), 4.0)
        self.failed = np.zeros(self.n)
        self.on: BoolArray = np.zeros(self.n, np.bool_)
        self.clear_faults()

    def clear_faults(self) -> None:
        n = self.n
        self.dark: BoolArray = np.zeros(n, np.bool_)
        self.extra_failed = np.zeros(n)
        self.day_burning: BoolArray = np.zeros(n, np.bool_)
        self.battery_failed: BoolArray = np.zeros(n, np.bool_)

    def _cloud(self, tick: Tick) -> float:
        """Cloud factor of the day (0.35 overcast .. 1 clear), the same for the whole site."""
        day = tick.ts_ms // 86_400_000
        u = float(self.rng.uniform([0], day, 900)[0])
        return 0.35 + 0.65 * u

    def step(self, tick: Tick) -> FloatArray:
        dt, hour = tick.dt_s, tick.hour
        outdoor = CLEAR_SKY_LX * sun(hour, tick.day_of_year) * self._cloud(tick)
        outdoor_lx = outdoor * (0.9 + 0.1 * self.uniform(tick, 1))
        # what the controller commands
        photocell = np.where(
            outdoor_lx < PHOTOCELL_ON_LX,
            True,
            np.where(outdoor_lx > PHOTOCELL_OFF_LX, False, self.on),
        )
        evening_window = hour >= 12.0 and hour < LANDSCAPE_OFF_H
        morning_window = LANDSCAPE_ON_H <= hour < 12.0
        landscape_on = photocell & (evening_window or morning_window)
        on = np.select(
            [self.role == EMERGENCY, self.role == LANDSCAPE], [True, landscape_on], photocell
        )
        self.on = on.astype(np.bool_)
        commanded = self.on | self.day_burning
        # lamps: wear while burning, replaced by maintenance a few days later
        working = np.maximum(self.lamps - self.failed, 0.0)
        p_fail = working * dt / (LAMP_MTBF_H * 3600.0)
        self.failed += (commanded & (self.uniform(tick, 2) < p_fail)).astype(np.float64)
        replaced = self.uniform(tick, 3) < -math.expm1(-dt / REPLACEMENT_MEAN_S)
        self.failed = np.where(replaced, 0.0, self.failed)
        failed = np.minimum(self.failed + self.extra_failed, self.lamps)
        working = self.lamps - failed
        # electrics: a daily sag in the evening peak, a little noise
        sag = 4.0 * math.exp(-(((hour - 19.5) / 2.0) ** 2))
        voltage = NOMINAL_V + self.v_offset - sag + 0.6 * self.noise(tick, 4)
        lamp_a = self.lamp_w / (voltage * self.pf)
        current = np.where(commanded, working * lamp_a * (1.0 + 0.01 * self.noise(tick, 5)), 0.0)
        current = np.where(self.role == EMERGENCY, current + 0.05, current)  # battery charger
        current = np.where(self.dark, 0.0, current)
        power = voltage * current * self.pf
        lux = outdoor_lx * self.indoor_gain + np.where(
            commanded & ~self.dark, self.own_light_lx * working / self.lamps, 0.0
        )
        lux += 0.3 * np.abs(self.noise(tick, 6))
        out = self.empty()
        self.put(out, "commanded_on", commanded)
        self.put(out, "current_a", np.clip(current, 0.0, 99.0))
        self.put(out, "voltage_v", voltage)
        self.put(out, "power_w", np.clip(power, 0.0, 29_000.0))
        self.put(out, "lamp_failures", failed)
        self.put(out, "lux", np.clip(lux, 0.0, 149_000.0))
        self.put(out, "emergency_battery_ok", ~self.battery_failed)
        return out
