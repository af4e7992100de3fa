"""The fleet runner: every device of a site, sampled on one clock, published as telemetry.

Simulated time advances `rate_hz` ticks per simulated second; `speed` runs it faster than wall
time (0 = as fast as the broker takes it). With the same seed, site and start time, the
payload stream is byte-identical.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from facility.catalog import KINDS, reading_dict
from facility.site import Site
from facility.wire import encode_reading, encode_readings, telemetry_topic
from simulators.clock import local_hour
from simulators.faults import Injection, Ledger
from simulators.models import MODELS, DeviceModel
from simulators.publisher import Publisher

FLOAT_DECIMALS = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulationSettings:
    rate_hz: float = 1.0
    speed: float = 1.0
    duration_s: float | None = None
    start_ms: int | None = None
    seed: int = 0
    readings_per_message: int = 1


@dataclass(slots=True)
class SimulationSummary:
    start_ms: int
    end_ms: int = 0
    ticks: int = 0
    messages: int = 0
    readings: int = 0
    readings_by_kind: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        return {
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "ticks": self.ticks,
            "messages": self.messages,
            "readings": self.readings,
            "readings_by_kind": dict(self.readings_by_kind),
        }


OPEN_ENDED_REPLAY_S = 86400.0
"""A sped-up run without a duration replays from this long ago, so it stays in the past."""


def default_start_ms(settings: SimulationSettings, now_ms: int) -> int:
    """Where simulated time starts; readings must never be stamped in the future.

    Real time (speed 1) starts now. A sped-up run of known length ends now; an open-ended one
    starts a day ago and catches up with the wall clock (at speed 10, after 2.7 hours).
    """
    if settings.start_ms is not None:
        return settings.start_ms
    if settings.speed == 1.0:
        return now_ms
    if settings.duration_s is not None:
        return now_ms - int(settings.duration_s * 1000)
    return now_ms - int(OPEN_ENDED_REPLAY_S * 1000)


class FleetSimulator:
    def __init__(
        self,
        site: Site,
        settings: SimulationSettings,
        injections: Sequence[Injection] = (),
        ledger: Ledger | None = None,
        *,
        now_ms: int | None = None,
    ) -> None:
        if settings.rate_hz <= 0:
            raise ValueError("rate_hz must be positive")
        if settings.readings_per_message < 1:
            raise ValueError("readings_per_message must be at least 1")
        self.site = site
        self.settings = settings
        self.injections = tuple(injections)
        self.ledger = ledger or Ledger(None)
        rng = np.random.default_rng(settings.seed)
        self.models: dict[str, DeviceModel] = {
            name: MODELS[name](len(devices), rng)
            for name, devices in site.by_kind.items()
            if devices
        }
        self.topics = {
            name: [telemetry_topic(site.id, d.building_id, name, d.id) for d in devices]
            for name, devices in site.by_kind.items()
        }
        self.seq = {name: np.zeros(len(d), np.int64) for name, d in site.by_kind.items()}
        self.pending: dict[str, list[dict[str, bool | int | float]]] = {}
        start = default_start_ms(
            settings, now_ms if now_ms is not None else time.time_ns() // 1_000_000
        )
        self.summary = SimulationSummary(start_ms=start)
        self._active: dict[int, int] = {}

    @property
    def tick_ms(self) -> float:
        return 1000.0 / self.settings.rate_hz

    def tick(self, number: int) -> list[tuple[str, bytes]]:
        """Sample every device at tick `number`; return the messages ready to publish."""
        ts_ms = self.summary.start_ms + round(number * self.tick_ms)
        elapsed_s = number / self.settings.rate_hz
        hour = local_hour(ts_ms, self.site.timezone)
        active = [inj for inj in self.injections if inj.active(elapsed_s)]
        self._update_ledger(active, ts_ms)
        out: list[tuple[str, bytes]] = []
        for name, model in self.models.items():
            values = np.round(model.sample(ts_ms, hour), FLOAT_DECIMALS)
            for injection in active:
                if injection.fault.kind == name:
                    injection.fault.apply(values, injection.rows, np.random.default_rng(number))
            values = np.clip(values, KINDS[name].min, KINDS[name].max)
            seq = self.seq[name]
            seq += 1
            out.extend(self._messages(name, ts_ms, seq, values))
            self.summary.readings_by_kind[name] += len(seq)
            self.summary.readings += len(seq)
        self.summary.ticks = number + 1
        self.summary.end_ms = ts_ms
        return out

    def _messages(
        self, kind: str, ts_ms: int, seq: np.ndarray, values: np.ndarray
    ) -> list[tuple[str, bytes]]:
        spec = KINDS[kind]
        topics = self.topics[kind]
        per_message = self.settings.readings_per_message
        out: list[tuple[str, bytes]] = []
        for row, topic in enumerate(topics):
            reading = reading_dict(spec, values[row])
            if per_message == 1:
                out.append((topic, encode_reading(ts_ms, int(seq[row]), reading)))
                continue
            buffer = self.pending.setdefault(topic, [])
            buffer.append({"ts": ts_ms, "seq": int(seq[row]), **reading})
            if len(buffer) >= per_message:
                out.append((topic, encode_readings(buffer)))
                self.pending[topic] = []
        return out

    def drain(self) -> list[tuple[str, bytes]]:
        """Messages for readings still waiting to fill a batched message."""
        out = [(topic, encode_readings(buf)) for topic, buf in self.pending.items() if buf]
        self.pending.clear()
        for key, injection in enumerate(self.injections):
            if key in self._active:
                self.ledger.record(injection, self._active.pop(key), self.summary.end_ms)
        return out

    def _update_ledger(self, active: list[Injection], ts_ms: int) -> None:
        for key, injection in enumerate(self.injections):
            if injection in active and key not in self._active:
                self._active[key] = ts_ms
            elif injection not in active and key in self._active:
                self.ledger.record(injection, self._active.pop(key), ts_ms)

    def run(self, publisher: Publisher, stop: threading.Event | None = None) -> SimulationSummary:
        s = self.settings
        ticks = None if s.duration_s is None else int(s.duration_s * s.rate_hz)
        wall_start = time.monotonic()
        number = 0
        while (ticks is None or number < ticks) and not (stop is not None and stop.is_set()):
            if s.speed > 0:
                due = wall_start + number / s.rate_hz / s.speed
                delay = due - time.monotonic()
                if delay > 0 and stop is not None and stop.wait(delay):
                    break
                if delay > 0 and stop is None:
                    time.sleep(delay)
            for topic, payload in self.tick(number):
                publisher.publish(topic, payload)
                self.summary.messages += 1
            number += 1
        for topic, payload in self.drain():
            publisher.publish(topic, payload)
            self.summary.messages += 1
        publisher.flush(60.0)
        return self.summary
