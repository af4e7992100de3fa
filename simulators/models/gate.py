"""Access gates: unit doors (card reader, magnetic lock) and barrier gates (motorised).

A device whose id or name says 'door' is a unit door (no motor: `motor_current_a` is 0);
anything else is a barrier gate. People pass as a Poisson process whose rate follows the
daily traffic (see `simulators.clock.people_traffic`); about half of the passages are
entries that read a card (a few reads are denied: expired cards), the rest leave by the
exit button. Each passage opens the door for a few seconds; now and then someone props it
open for minutes (a delivery), which shows as `held_open` once it is open longer than the
allowed time (doors 30 s, barriers 60 s). The state at a tick depends only on the last
passage in the step, so the doors behave the same at any sampling rate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from facility.batch import FloatArray
from facility.catalog import GATE
from facility.site import Device
from simulators.clock import Tick, people_traffic
from simulators.models.base import BoolArray, KindModel, role_of
from simulators.rng import poisson

ROLE_WORDS = {"door": ("door",)}
PEAK_PASSAGES_PER_H = {"door": 70.0, "barrier": 240.0}
CARD_SHARE = 0.5
DENIED_SHARE = 0.03
PROPPED_SHARE = 0.002
ALLOWED_OPEN_S = {"door": 30.0, "barrier": 60.0}
BARRIER_STROKE_S = 3.0


class GateModel(KindModel):
    spec = GATE

    def __init__(self, devices: Sequence[Device], seed: int, start_ms: int) -> None:
        super().__init__(devices, seed, start_ms)
        roles = [role_of(d, ROLE_WORDS, "barrier") for d in self.devices]
        self.barrier: BoolArray = np.array([r == "barrier" for r in roles], np.bool_)
        self.peak_rate_s = np.array([PEAK_PASSAGES_PER_H[r] for r in roles]) / 3600.0
        self.peak_rate_s *= self.constant(0.7, 1.3)
        self.allowed_s = np.array([ALLOWED_OPEN_S[r] for r in roles])
        self.pass_open_s = np.where(self.barrier, self.constant(7.0, 11.0), self.constant(4.0, 7.0))
        self.motor_a = self.constant(2.2, 3.4)
        self.opened_at = np.full(self.n, -np.inf)
        self.open_until = np.full(self.n, -np.inf)
        self.clear_faults()

    def clear_faults(self) -> None:
        n = self.n
        self.forced: BoolArray = np.zeros(n, np.bool_)
        self.propped: BoolArray = np.zeros(n, np.bool_)
        self.reader_failed: BoolArray = np.zeros(n, np.bool_)

    def step(self, tick: Tick) -> FloatArray:
        t, dt = tick.t_s, tick.dt_s
        rate = self.peak_rate_s * people_traffic(tick.hour, tick.weekend)
        u, z = self.uniform, self.noise
        card_reads = poisson(u(tick, 1), z(tick, 1), rate * CARD_SHARE * dt)
        denied = poisson(u(tick, 2), z(tick, 2), rate * CARD_SHARE * DENIED_SHARE * dt)
        exits = poisson(u(tick, 3), z(tick, 3), rate * (1 - CARD_SHARE) * dt)
        granted = np.where(self.reader_failed, 0.0, card_reads)
        denied = np.where(self.reader_failed, denied + card_reads, denied)
        passages = granted + exits
        # the last passage in (t - dt, t]: the maximum of k uniform times
        k = np.maximum(passages, 1.0)
        last = t - dt + dt * self.uniform(tick, 4) ** (1.0 / k)
        propped = self.uniform(tick, 5) < 1.0 - (1.0 - PROPPED_SHARE) ** passages
        hold = np.where(
            propped,
            120.0 + 780.0 * self.uniform(tick, 6),
            self.pass_open_s * (0.8 + 0.4 * self.uniform(tick, 7)),
        )
        some = passages > 0
        was_open = self.open_until > last
        self.opened_at = np.where(some & ~was_open, last, self.opened_at)
        self.open_until = np.where(some, np.maximum(self.open_until, last + hold), self.open_until)
        # faults: a propped door is open from the fault's start; a forced one too
        held = self.propped | self.forced
        starting = held & (self.open_until < t)
        self.opened_at = np.where(starting, t, self.opened_at)
        self.open_until = np.where(held, np.maximum(self.open_until, t + dt + 1.0), self.open_until)
        door_open = self.open_until > t
        duration = np.where(door_open, t - self.opened_at, 0.0)
        stroke = (t - self.opened_at < BARRIER_STROKE_S) | (
            ~door_open & (t - self.open_until < BARRIER_STROKE_S)
        )
        current = np.where(stroke, self.motor_a, np.where(door_open, 0.4, 0.1))
        current = np.where(self.barrier, current * (1.0 + 0.03 * self.noise(tick, 8)), 0.0)
        out = self.empty()
        self.put(out, "door_open", door_open)
        self.put(out, "open_duration_s", np.clip(duration, 0.0, 86_400.0))
        self.put(out, "forced_open", self.forced)
        self.put(out, "held_open", door_open & (duration > self.allowed_s))
        self.put(out, "granted", np.where(self.forced, 0.0, np.minimum(granted, 10_000)))
        self.put(out, "denied", np.minimum(denied, 10_000))
        self.put(out, "motor_current_a", np.clip(current, 0.0, 49.0))
        return out
