"""Booster sets of the secondary water supply: pumps, drives, break tank.

The pumps of one unit (e.g. the estate's pump room) form one booster set that keeps the
discharge header at its set-point (5-6.5 bar) from a break tank. The set's demand follows
domestic water use (`simulators.clock.water_demand`: morning and evening peaks); the lead
pump runs all the time, the lag pump joins above 60 % of one pump's capacity, the others are
standby; the lead role rotates daily. A drive (VFD) speed follows from the pump curve
(head ~ f^2 minus a flow term); the current follows f^3 and the flow; the motor warms with
its current (first-order lag, 40 min). The break tank drains when demand exceeds the mains
inlet (peaks) and refills through a modulating float valve; below 5 % the set's low-level
cut-out stops the pumps until the tank is back above 15 %. Suction pressure is the tank's
water column above the pumps minus pipe losses, so it never drops below ~0.45 bar on water.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from facility.batch import FloatArray
from facility.catalog import PUMP
from facility.site import Device
from simulators.clock import Tick, water_demand
from simulators.models.base import BoolArray, KindModel, relax

BAR_PER_M = 0.0981
PUMP_ELEVATION_M = 5.0
"""Tank floor above the pump inlets."""
TANK_HEIGHT_M = 3.0
LAG_START_SHARE = 0.6
CUTOUT_PCT, RESTART_PCT = 5.0, 15.0
FLOAT_VALVE_SET_PCT, FLOAT_VALVE_BAND_PCT = 96.0, 15.0
MOTOR_TAU_S = 2400.0


class PumpModel(KindModel):
    spec = PUMP

    def __init__(self, devices: Sequence[Device], seed: int, start_ms: int) -> None:
        super().__init__(devices, seed, start_ms)
        units = sorted(
            {d.unit_id for d in self.devices}, key=[d.unit_id for d in self.devices].index
        )
        unit_index = {u: i for i, u in enumerate(units)}
        self.set_of = np.array([unit_index[d.unit_id] for d in self.devices], np.intp)
        self.sets = len(units)
        self.set_size = np.bincount(self.set_of, minlength=self.sets).astype(np.float64)
        position = np.zeros(self.n)
        seen: dict[int, int] = {}
        for row, s in enumerate(self.set_of.tolist()):  # construction only, not the step
            position[row] = seen.get(s, 0)
            seen[s] = seen.get(s, 0) + 1
        self.position = position
        set_rows = np.arange(self.sets)
        u = self.rng.uniform
        self.peak_m3h = 45.0 + 30.0 * u(set_rows, 0, 1500)
        self.inlet_m3h = self.peak_m3h * (0.7 + 0.1 * u(set_rows, 0, 1501))
        self.tank_m3 = self.peak_m3h * (0.6 + 0.3 * u(set_rows, 0, 1502))
        self.setpoint_bar = 5.0 + 1.5 * u(set_rows, 0, 1503)
        self.tank_pct = 85.0 + 10.0 * u(set_rows, 0, 1504)
        self.cutout: BoolArray = np.zeros(self.sets, np.bool_)
        self.capacity_m3h = self.peak_m3h[self.set_of] * 0.75
        self.rated_a = self.constant(18.0, 26.0)
        self.vib_base = self.constant(1.3, 2.3)
        self.ambient_c = self.constant(18.0, 26.0)
        self.temp_c = self.ambient_c + 15.0
        self.clear_faults()

    def clear_faults(self) -> None:
        n = self.n
        self.dry: BoolArray = np.zeros(n, np.bool_)
        self.cavitation = np.zeros(n)
        self.inlet_factor = np.ones(self.sets)
        self.leak: BoolArray = np.zeros(n, np.bool_)
        self.leak_m3h = np.zeros(n)
        self.vib_factor = np.ones(n)

    def step(self, tick: Tick) -> FloatArray:
        dt = tick.dt_s
        day = tick.ts_ms // 86_400_000
        # the set: demand, who runs
        set_rows = np.arange(self.sets)
        jitter = 1.0 + 0.06 * self.rng.normal(set_rows, tick.number, 1)
        demand = self.peak_m3h * water_demand(tick.hour, tick.weekend) * jitter
        role = (self.position - day) % self.set_size[self.set_of]
        lead = role == 0
        lag_needed = demand[self.set_of] > LAG_START_SHARE * self.capacity_m3h
        self.cutout = np.where(
            self.tank_pct < CUTOUT_PCT,
            True,
            np.where(self.tank_pct > RESTART_PCT, False, self.cutout),
        )
        running = (lead | ((role == 1) & lag_needed)) & ~self.cutout[self.set_of]
        running |= self.dry  # no water, yet the controller calls for pressure
        n_running = np.bincount(self.set_of, weights=running, minlength=self.sets)
        served = np.where(n_running > 0, demand, 0.0)
        # break tank: float valve (proportional) against the demand and leaks
        leaks = np.bincount(self.set_of, weights=self.leak_m3h * running, minlength=self.sets)
        inlet_max = self.inlet_m3h * self.inlet_factor
        out_m3h = served + leaks
        gain = inlet_max / FLOAT_VALVE_BAND_PCT  # m3/h per % below the set-point
        equilibrium = FLOAT_VALVE_SET_PCT - out_m3h / np.maximum(gain, 1e-9)
        linear = equilibrium >= FLOAT_VALVE_SET_PCT - FLOAT_VALVE_BAND_PCT
        tau_s = self.tank_m3 / 100.0 / np.maximum(gain, 1e-9) * 3600.0
        relaxed = equilibrium + (self.tank_pct - equilibrium) * np.exp(-dt / tau_s)
        inflow = np.clip(gain * (FLOAT_VALVE_SET_PCT - self.tank_pct), 0.0, inlet_max)
        draining = self.tank_pct - (out_m3h - inflow) * dt / 3600.0 / self.tank_m3 * 100.0
        self.tank_pct = np.clip(np.where(linear, relaxed, draining), 0.0, 100.0)
        # each pump
        share = np.where(running, served[self.set_of] / np.maximum(n_running[self.set_of], 1), 0.0)
        flow = share + np.where(running, self.leak_m3h, 0.0)
        q = flow / self.capacity_m3h
        level_m = self.tank_pct[self.set_of] / 100.0 * TANK_HEIGHT_M
        suction = BAR_PER_M * (PUMP_ELEVATION_M + level_m) - 0.08 * q**2
        suction += 0.008 * self.noise(tick, 2)
        setpoint = self.setpoint_bar[self.set_of]
        shutoff = setpoint * 1.3
        head = setpoint - suction + 0.25 * setpoint * q**2
        hz = np.where(running, 50.0 * np.sqrt(np.clip(head / shutoff, 0.0, 1.0)), 0.0)
        hz += np.where(running, 0.2 * self.noise(tick, 3), 0.0)
        discharge = np.where(
            running, setpoint - 0.15 * q + 0.03 * self.noise(tick, 4), suction + 0.02
        )
        current = np.where(
            running, 2.5 + self.rated_a * (hz / 50.0) ** 3 * (0.55 + 0.45 * np.minimum(q, 1.5)), 0.0
        )
        vib = np.where(running, self.vib_base * (0.7 + 0.3 * hz / 50.0) * self.vib_factor, 0.05)
        # faults that change the hydraulics
        dry = self.dry
        suction = np.where(dry, np.abs(0.04 + 0.02 * self.noise(tick, 5)), suction)
        flow = np.where(dry, np.abs(0.2 * self.noise(tick, 6)), flow)
        discharge = np.where(dry, suction + 0.3 + 0.05 * self.noise(tick, 7), discharge)
        hz = np.where(dry, 50.0, hz)
        current = np.where(dry, current * 0.5, current)
        cav = self.cavitation * running
        vib = vib * (1.0 + 1.6 * cav) + cav * 2.5 * self.uniform(tick, 8) ** 4 * 4.0
        discharge = discharge - 0.8 * cav
        flow = flow * (1.0 - 0.15 * cav)
        suction = suction - 0.1 * cav
        current = current * (1.0 + cav * 0.12 * self.noise(tick, 9))
        vib += 0.08 * np.abs(self.noise(tick, 10))
        heat = self.ambient_c + 40.0 * (current / self.rated_a) ** 2 + np.where(dry, 30.0, 0.0)
        self.temp_c = relax(self.temp_c, heat, dt, MOTOR_TAU_S)
        out = self.empty()
        self.put(out, "running", running)
        self.put(out, "suction_bar", suction)
        self.put(out, "discharge_bar", discharge)
        self.put(out, "flow_m3h", np.clip(flow, 0.0, 499.0))
        self.put(out, "motor_current_a", np.clip(current, 0.0, 399.0))
        self.put(out, "motor_temp_c", self.temp_c + 0.2 * self.noise(tick, 11))
        self.put(out, "vibration_mm_s", np.clip(vib, 0.0, 49.0))
        self.put(out, "vfd_hz", np.clip(hz, 0.0, 60.0))
        self.put(
            out,
            "tank_level_pct",
            np.clip(self.tank_pct[self.set_of] + 0.1 * self.noise(tick, 12), 0.0, 100.0),
        )
        self.put(out, "leak", self.leak)
        return out
