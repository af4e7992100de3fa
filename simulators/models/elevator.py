"""Passenger lifts: trips between landings, doors, load, motor, EN 81-28 alarm system.

Each car is a small state machine driven by its own random numbers:

    IDLE (doors closed, waiting for a call) -> MOVE (trip) -> DOOR (open, hold, close) -> ...

A trip runs a trapezoidal speed profile (acceleration, cruise at rated speed, deceleration);
between landings the car's level error is its distance to the nearest landing, at a landing
it is the stopping accuracy (a few mm). Calls come more often when people move (morning and
evening peaks, see `simulators.clock.people_traffic`); in the morning most trips go down to
the lobby. Phases end at exact simulated times, and a step catches up on every phase that
ended since the last one, so a car behaves the same whether it is sampled every second or
every five minutes. Motor temperature integrates the time spent moving (first-order lag,
25 min); the EN 81-28 alarm system tests itself every 72 h (`alarm_test_ok` is the last result).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

import numpy as np

from facility.batch import FloatArray
from facility.catalog import DOOR_STATES, ELEVATOR
from facility.site import Device
from simulators.clock import Tick, people_traffic
from simulators.models.base import BoolArray, IntpArray, KindModel, relax

IDLE, MOVE, DOOR, STUCK = 0, 1, 2, 3
FLOOR_HEIGHT_M = 3.0
START_DELAY_S = 1.0
"""Brake lift and motor magnetisation before the car moves."""
ALARM_TEST_PERIOD_S = 72 * 3600.0
NUISANCE_ALARM_MEAN_S = 4 * 86400.0
"""A passenger presses the alarm button at a landing (and lets go) about every 4 days."""
MOTOR_TAU_S = 1500.0
MAX_TRANSITIONS_PER_STEP = 64
FAULT_CODE_SAFETY_CIRCUIT = 32
FAULT_CODE_MOTOR_OVERTEMP = 71
MOTOR_OVERTEMP_C = 110.0
MOTOR_TEMP_LIMIT_C = 140.0
"""The thermal cut-out stops short of this: the winding never reads hotter."""
_CLOSED, _OPENING, _OPEN, _CLOSING = (float(DOOR_STATES.index(s)) for s in DOOR_STATES)


def _building_layout(building_id: str) -> tuple[int, int]:
    """(floors above ground, basement levels) of a building, stable for its id."""
    h = zlib.crc32(building_id.encode())
    return 6 + h % 28, (h >> 8) % 3


class ElevatorModel(KindModel):
    spec = ELEVATOR

    def __init__(self, devices: Sequence[Device], seed: int, start_ms: int) -> None:
        super().__init__(devices, seed, start_ms)
        n = self.n
        layout = [_building_layout(d.building_id) for d in self.devices]
        self.basements = np.array([b for _, b in layout], np.float64)
        self.landings = np.array([f + b for f, b in layout], np.float64)
        self.lobby = self.basements.copy()  # landing index of floor 1
        self.rated_kg = np.where(self.landings > 20, 1050.0, 825.0)
        self.vmax = np.where(self.landings > 24, 2.5, np.where(self.landings > 12, 1.75, 1.0))
        self.accel = self.constant(0.7, 0.9)
        self.rated_a = self.vmax * 14.0 + self.constant(0.0, 4.0)
        self.door_op_s = self.constant(2.0, 2.8)
        self.door_hold_s = self.constant(3.0, 4.5)
        self.level_offset_mm = self.constant(-1.5, 1.5)
        self.level_sigma_mm = self.constant(1.8, 3.0)
        self.vib_base = self.constant(0.8, 1.2)
        self.ambient_c = self.constant(22.0, 28.0)
        self.drift_sign = np.where(self.constant(0.0, 1.0) < 0.5, -1.0, 1.0)
        # state
        self.phase = np.full(n, IDLE, np.int64)
        self.p_start = np.full(n, self.start_s)
        self.p_end = self.start_s + self.constant(0.0, 120.0)
        self.cur = np.floor(self.constant(0.0, 1.0) * self.landings)
        self.src = self.cur.copy()
        self.dst = self.cur.copy()
        self.trip_s = np.zeros(n)
        self.load = np.zeros(n)
        self.last_level_mm = self.level_offset_mm.copy()
        self.last_open_s = self.door_hold_s.copy()
        self.last_reopens = np.zeros(n)
        self.door_total_s = np.zeros(n)
        self.cycle_op_s = self.door_op_s.copy()
        self.temp_c = self.ambient_c + 8.0
        self.events = np.zeros(n, np.uint64)
        self.busy_s = np.zeros(n)
        self.next_test_s = self.start_s + self.constant(0.0, ALARM_TEST_PERIOD_S)
        self.test_ok = np.ones(n, np.bool_)
        self.alarm_until = np.full(n, -np.inf)
        self.stuck_offset_mm = np.zeros(n)
        self.clear_faults()

    def clear_faults(self) -> None:
        n = self.n
        self.stuck: BoolArray = np.zeros(n, np.bool_)
        self.reopen_p = np.full(n, 0.04)
        self.door_slow = np.ones(n)
        self.level_bias_mm = np.zeros(n)
        self.heat_extra_c = np.zeros(n)
        self.vib_factor = np.ones(n)
        self.test_fail: BoolArray = np.zeros(n, np.bool_)

    # -- transitions -------------------------------------------------------------------------

    def _floor_number(self, landing: FloatArray) -> FloatArray:
        out: FloatArray = landing - self.basements + (landing >= self.basements)
        return out

    def _start_trips(self, rows: IntpArray, start: FloatArray, u: FloatArray, tick: Tick) -> None:
        if not len(rows):
            return
        traffic = people_traffic(tick.hour, tick.weekend)
        morning = 0.0 if tick.weekend else math.exp(-(((tick.hour - 7.9) / 1.2) ** 2))
        cur, lobby, landings = self.cur[rows], self.lobby[rows], self.landings[rows]
        others = np.floor(u[:, 1] * (landings - 1))
        others += others >= cur
        above = lobby + 1 + np.floor(u[:, 2] * np.maximum(landings - lobby - 1, 1))
        above = np.minimum(above, landings - 1)
        to_lobby = u[:, 3] < 0.62 + 0.3 * morning
        dst = np.where(cur == lobby, above, np.where(to_lobby, lobby, others))
        dst = np.where(dst == cur, np.where(cur + 1 < landings, cur + 1, cur - 1), dst)
        persons = np.floor(-np.log(u[:, 4]) * (0.3 + 3.5 * traffic))
        capacity = np.floor(self.rated_kg[rows] / 75.0)
        self.load[rows] = np.minimum(persons, capacity) * (60.0 + 30.0 * u[:, 5])
        d = np.abs(dst - cur) * FLOOR_HEIGHT_M
        a = self.accel[rows]
        v = np.minimum(self.vmax[rows], np.sqrt(d * a))
        self.src[rows] = cur
        self.dst[rows] = dst
        self.trip_s[rows] = d / v + v / a
        self.phase[rows] = MOVE
        self.p_start[rows] = start
        self.p_end[rows] = start + START_DELAY_S + self.trip_s[rows]

    def _arrive(self, rows: IntpArray, start: FloatArray, u: FloatArray) -> None:
        if not len(rows):
            return
        self.cur[rows] = self.dst[rows]
        z = np.sqrt(-2 * np.log(u[:, 6])) * np.cos(2 * np.pi * u[:, 7])
        self.last_level_mm[rows] = (
            self.level_offset_mm[rows] + self.level_bias_mm[rows] + self.level_sigma_mm[rows] * z
        )
        p = np.clip(self.reopen_p[rows], 1e-6, 0.98)
        reopens = np.minimum(np.floor(np.log(u[:, 8]) / np.log(p)), 100.0)
        slow = self.door_slow[rows]
        load_factor = 1.0 + 0.4 * self.load[rows] / self.rated_kg[rows]
        hold = self.door_hold_s[rows] * load_factor * (0.85 + 0.3 * u[:, 9])
        open_s = (hold + reopens * (2.0 + 1.5 * u[:, 10])) * slow
        op = self.door_op_s[rows] * slow
        self.last_reopens[rows] = reopens
        self.last_open_s[rows] = open_s
        self.cycle_op_s[rows] = op
        self.door_total_s[rows] = 2 * op + open_s
        self.phase[rows] = DOOR
        self.p_start[rows] = start
        self.p_end[rows] = start + self.door_total_s[rows]

    def _after_doors(self, rows: IntpArray, start: FloatArray, u: FloatArray, tick: Tick) -> None:
        if not len(rows):
            return
        traffic = people_traffic(tick.hour, tick.weekend)
        chain = u[:, 11] < 0.45 * traffic
        self._start_trips(rows[chain], start[chain], u[chain], tick)
        rest = rows[~chain]
        wait = -np.log(u[~chain, 12]) * (25.0 / traffic)
        self.load[rest] = 0.0
        self.phase[rest] = IDLE
        self.p_start[rest] = start[~chain]
        self.p_end[rest] = start[~chain] + wait

    def _catch_up(self, tick: Tick) -> None:
        t, window_start = tick.t_s, tick.t_s - tick.dt_s
        for _ in range(MAX_TRANSITIONS_PER_STEP):
            due = np.flatnonzero((self.p_end <= t) & (self.phase != STUCK))
            if not len(due):
                return
            u = self.rng.block(due, self.events[due], 13)
            self.events[due] += np.uint64(1)
            start = self.p_end[due]
            phase = self.phase[due]
            moving = phase == MOVE
            m = due[moving]
            self.busy_s[m] += np.maximum(
                self.p_end[m] - np.maximum(self.p_start[m], window_start), 0
            )
            self._arrive(m, start[moving], u[moving])
            doors = phase == DOOR
            self._after_doors(due[doors], start[doors], u[doors], tick)
            idle = phase == IDLE
            self._start_trips(due[idle], start[idle], u[idle], tick)
        # A very long step (hours): let the remaining cars rejoin the present idle.
        late = (self.p_end <= t) & (self.phase != STUCK)
        self.phase[late] = IDLE
        self.load[late] = 0.0
        self.p_start[late] = t
        self.p_end[late] = t + 1.0

    # -- the step ----------------------------------------------------------------------------

    def _stuck_transitions(self, tick: Tick) -> None:
        t = tick.t_s
        new = np.flatnonzero(self.stuck & (self.phase != STUCK))
        if len(new):
            moving = self.phase[new] == MOVE
            self.cur[new] = np.where(moving, self.src[new], self.cur[new])
            u = self.rng.uniform(new, self.events[new], 20)
            sign = np.where(self.rng.uniform(new, self.events[new], 21) < 0.5, -1.0, 1.0)
            below_ok = self.cur[new] > 0
            sign = np.where(below_ok, sign, 1.0)
            self.stuck_offset_mm[new] = sign * (400.0 + 900.0 * u)
            self.load[new] = np.maximum(self.load[new], 75.0)
            self.phase[new] = STUCK
            self.p_end[new] = np.inf
        freed = np.flatnonzero(~self.stuck & (self.phase == STUCK))
        if len(freed):  # rescued: the car is brought to the landing and waits for service
            self.phase[freed] = IDLE
            self.load[freed] = 0.0
            self.last_level_mm[freed] = self.level_offset_mm[freed]
            self.p_start[freed] = t
            self.p_end[freed] = t + 120.0

    def restart(self, rows: IntpArray, tick: Tick) -> None:
        t = tick.t_s
        moving = self.phase[rows] == MOVE
        self.cur[rows] = np.where(moving, self.dst[rows], self.cur[rows])
        keep = self.phase[rows] == STUCK
        rows = rows[~keep]
        self.phase[rows] = IDLE
        self.load[rows] = 0.0
        self.p_start[rows] = t
        self.p_end[rows] = t + 30.0

    def step(self, tick: Tick) -> FloatArray:
        t, dt = tick.t_s, tick.dt_s
        self.busy_s[:] = 0.0
        self._stuck_transitions(tick)
        self._catch_up(tick)
        phase = self.phase
        moving, doors, stuck = phase == MOVE, phase == DOOR, phase == STUCK
        # where the car is
        tau = np.clip(t - self.p_start - START_DELAY_S, 0.0, self.trip_s)
        a, trip = self.accel, self.trip_s
        distance = np.abs(self.dst - self.src) * FLOOR_HEIGHT_M
        v = np.minimum(self.vmax, np.sqrt(distance * a))
        t_acc = np.where(v > 0, v / a, 0.0)
        rest = trip - tau
        s = np.where(
            tau < t_acc,
            0.5 * a * tau**2,
            np.where(
                rest < t_acc, distance - 0.5 * a * rest**2, v**2 / (2 * a) + v * (tau - t_acc)
            ),
        )
        speed = np.where(tau < t_acc, a * tau, np.where(rest < t_acc, a * rest, v))
        accelerating = (tau < t_acc) | (rest < t_acc)
        up = self.dst > self.src
        position_m = self.src * FLOOR_HEIGHT_M + np.where(up, s, -s)
        nearest = np.round(position_m / FLOOR_HEIGHT_M)
        travel_error_mm = (position_m - nearest * FLOOR_HEIGHT_M) * 1000.0
        landing = np.where(moving, nearest, self.cur)
        level = np.where(
            moving, travel_error_mm, np.where(stuck, self.stuck_offset_mm, self.last_level_mm)
        )
        speed = np.where(moving, speed, 0.0)
        # doors
        into = t - self.p_start
        op = self.cycle_op_s
        door = np.where(
            into < op, _OPENING, np.where(into > self.door_total_s - op, _CLOSING, _OPEN)
        )
        door = np.where(doors, door, _CLOSED)
        # motor
        moving_since = np.maximum(self.p_start, t - dt)
        self.busy_s += np.where(moving, np.maximum(t - moving_since, 0.0), 0.0)
        duty = np.clip(self.busy_s / max(dt, 1e-9), 0.0, 1.0)
        load_frac = self.load / self.rated_kg
        unbalance = np.abs(self.load - 0.45 * self.rated_kg) / (0.55 * self.rated_kg)
        current = self.rated_a * (0.25 + 0.6 * unbalance) * np.where(
            self.vmax > 0, speed / self.vmax, 0.0
        ) + np.where(accelerating, 0.35 * self.rated_a, 0.0)
        current = np.where(moving, current + 1.5, np.where(stuck, 0.0, 0.4))
        current *= 1.0 + 0.02 * self.noise(tick, 1)
        target = self.ambient_c + 65.0 * duty * (0.6 + 0.4 * load_frac) + self.heat_extra_c
        target = np.minimum(target, MOTOR_TEMP_LIMIT_C)
        self.temp_c = relax(self.temp_c, target, dt, MOTOR_TAU_S)
        vib = np.where(
            moving,
            (0.5 + 0.9 * speed / self.vmax) * self.vib_base * self.vib_factor,
            0.05 * np.minimum(self.vib_factor, 3.0),
        ) + 0.05 * np.abs(self.noise(tick, 2))
        # EN 81-28 alarm system
        due = self.next_test_s <= t
        if due.any():
            self.test_ok[due] = ~self.test_fail[due]
            periods = np.floor((t - self.next_test_s[due]) / ALARM_TEST_PERIOD_S) + 1
            self.next_test_s[due] += periods * ALARM_TEST_PERIOD_S
        press = self.uniform(tick, 3) < -np.expm1(-dt / NUISANCE_ALARM_MEAN_S)
        press &= ~moving & ~stuck
        pressed_at = t - dt * self.uniform(tick, 4)
        self.alarm_until = np.where(
            press, pressed_at + 3.0 + 9.0 * self.uniform(tick, 5), self.alarm_until
        )
        alarm = stuck | ((self.alarm_until > t) & ~moving)
        fault = np.where(
            stuck,
            FAULT_CODE_SAFETY_CIRCUIT,
            np.where(self.temp_c > MOTOR_OVERTEMP_C, FAULT_CODE_MOTOR_OVERTEMP, 0),
        )
        out = self.empty()
        self.put(out, "running", moving)
        self.put(out, "direction", np.where(moving, np.where(up, 1.0, 2.0), 0.0))
        self.put(out, "floor", self._floor_number(landing))
        self.put(out, "level_error_mm", level)
        self.put(out, "speed_mps", speed)
        self.put(out, "door_state", door)
        self.put(out, "door_open_time_s", self.last_open_s)
        self.put(out, "door_reopen_count", self.last_reopens)
        self.put(out, "load_kg", np.where(moving | doors | stuck, self.load, 0.0))
        self.put(out, "motor_current_a", np.clip(current, 0.0, 199.0))
        self.put(out, "motor_temp_c", self.temp_c + 0.15 * self.noise(tick, 6))
        self.put(out, "vibration_mm_s", np.clip(vib, 0.0, 49.0))
        self.put(out, "alarm_button", alarm)
        self.put(out, "alarm_test_ok", self.test_ok)
        self.put(out, "fault_code", fault)
        return out
