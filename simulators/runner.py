"""The fleet runner: every device of a site, stepped on one clock, published as telemetry.

Simulated time advances `rate_hz` ticks per simulated second; `speed` runs it faster than wall
time (0 = as fast as the broker takes it). With the same seed, site, start time and
injections, the payload stream is byte-identical (`now_ms` pins the wall clock that only the
'future-ts' bad payload and the default start time depend on).

Per tick and kind: the model's fault inputs are cleared and set again by the active faults,
the model steps (numpy over every device), fault overlays overwrite signals, and the rows of
the devices that may publish are encoded (orjson, one reading at a time; batched readings are
joined as bytes). Device-silent rows keep counting their seq (a gap when they return); rows of
a site that lost power neither measure nor count, and reboot (seq from 1) when it returns.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np
import orjson

from facility.catalog import KINDS, FieldType, KindSpec
from facility.site import Site
from facility.wire import device_topic
from simulators.badpayloads import BAD_PAYLOADS, EXPECTED_REASON, BadContext
from simulators.clock import Tick, make_tick
from simulators.faults import FaultContext
from simulators.injection import Injection, Ledger
from simulators.models import MODELS, KindModel
from simulators.publisher import Publisher

FLOAT_DECIMALS = 3
BATCH_OPEN = b'{"readings":['
BATCH_CLOSE = b"]}"


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
    """Readings published (or held for publishing)."""
    readings_by_kind: Counter[str] = field(default_factory=Counter)
    generated: int = 0
    """Readings measured, published or not (silent devices measure too)."""
    silent_readings: int = 0
    bad_messages: int = 0
    bad_payloads: Counter[str] = field(default_factory=Counter)
    """Bad messages sent, by the rejection reason the gateway should give."""
    disconnects: int = 0
    reboots: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "ticks": self.ticks,
            "messages": self.messages,
            "readings": self.readings,
            "readings_by_kind": dict(self.readings_by_kind),
            "generated": self.generated,
            "silent_readings": self.silent_readings,
            "bad_messages": self.bad_messages,
            "bad_payloads": dict(self.bad_payloads),
            "disconnects": self.disconnects,
            "reboots": self.reboots,
        }


class Connection(Protocol):
    """What a publisher may also do: drop and restore its broker connection."""

    def suspend(self) -> None: ...

    def resume(self) -> None: ...


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


class _KindEncoder:
    """Turns a kind's output rows into JSON readings, without a dict per reading.

    Each column is serialised once by orjson (so floats get its shortest round-trip form,
    booleans `true`/`false`, integers digits) and split at the commas; a bytes template then
    puts every reading's values between its keys. Byte for byte this is what
    `orjson.dumps({"ts": ..., "seq": ..., field: value, ...})` gives, at a third of the cost.
    """

    def __init__(self, spec: KindSpec) -> None:
        self.kinds = [f.type for f in spec.fields]
        keys = ("ts", "seq", *spec.field_names)
        self.template = ("{" + ",".join(f'"{k}":%b' for k in keys) + "}").encode()

    def encode(self, ts_ms: int, seq: np.ndarray, values: np.ndarray) -> list[bytes]:
        n = len(seq)
        columns: list[list[bytes]] = [[str(ts_ms).encode()] * n, _split(seq.tolist())]
        for i, kind in enumerate(self.kinds):
            column = values[:, i]
            if kind is FieldType.FLOAT:
                columns.append(_split(column.tolist()))
            elif kind is FieldType.BOOL:
                columns.append(_split((column > 0.5).tolist()))
            else:
                columns.append(_split(column.astype(np.int64).tolist()))
        template = self.template
        return [template % row for row in zip(*columns, strict=True)]


def _split(values: list[Any]) -> list[bytes]:
    return orjson.dumps(values)[1:-1].split(b",")


class _Episode:
    """An injection while it is active: when it started, its memory, what it sent."""

    __slots__ = ("bad", "memory", "next_bad_s", "start_ms")

    def __init__(self, start_ms: int) -> None:
        self.start_ms = start_ms
        self.memory: dict[str, dict[str, Any]] = {}
        self.bad: dict[str, Counter[str]] = {}
        self.next_bad_s = 0.0


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
        self.now_ms = now_ms if now_ms is not None else time.time_ns() // 1_000_000
        start = default_start_ms(settings, self.now_ms)
        self.summary = SimulationSummary(start_ms=start)
        self.zone = ZoneInfo(site.timezone)
        self.kinds = [k for k, devices in site.by_kind.items() if devices]
        self.models: dict[str, KindModel] = {
            k: MODELS[k](site.by_kind[k], settings.seed, start) for k in self.kinds
        }
        self.encoders = {k: _KindEncoder(KINDS[k]) for k in self.kinds}
        self.topics = {k: [device_topic(d, site.id) for d in site.by_kind[k]] for k in self.kinds}
        self.seq = {k: np.zeros(len(site.by_kind[k]), np.int64) for k in self.kinds}
        self.powered_off = {k: np.zeros(len(site.by_kind[k]), np.bool_) for k in self.kinds}
        self.pending: dict[str, list[list[bytes]]] = {
            k: [[] for _ in site.by_kind[k]] for k in self.kinds
        }
        self._float_cols = {
            k: np.array([f.type is FieldType.FLOAT for f in KINDS[k].fields]) for k in self.kinds
        }
        self._episodes: dict[int, _Episode] = {}
        self._held: list[tuple[str, bytes]] = []
        self.link_up = True
        self._bad_number = 0

    @property
    def tick_ms(self) -> float:
        return 1000.0 / self.settings.rate_hz

    def active_faults(self) -> list[str]:
        """Labels of the injections active now (for the live view)."""
        return [label for label, _ in self.active_fault_rows()]

    def active_fault_rows(self) -> list[tuple[str, int]]:
        """(label, devices) of the injections active now."""
        return [
            (self.injections[i].label, len(self.injections[i].devices))
            for i in sorted(dict(self._episodes))
        ]

    # -- fault bookkeeping ------------------------------------------------------------------

    def _begin(self, index: int, tick: Tick) -> None:
        injection = self.injections[index]
        self._episodes[index] = _Episode(tick.ts_ms)
        behaviour = injection.fault.behaviour
        if behaviour == "power-loss":
            for kind in injection.kinds:
                self.powered_off[kind][injection.rows_of(kind)] = True
        elif behaviour == "disconnect" and self.link_up:
            self.link_up = False
            self.summary.disconnects += 1

    def _end(self, index: int, tick: Tick, out: list[tuple[str, bytes]]) -> None:
        injection = self.injections[index]
        episode = self._episodes.pop(index)
        extra = {device: dict(counts) for device, counts in episode.bad.items()}
        self.ledger.record(
            injection,
            episode.start_ms,
            tick.ts_ms,
            extra={d: {"sent": c} for d, c in extra.items()},
        )
        behaviour = injection.fault.behaviour
        if behaviour == "power-loss":
            for kind in injection.kinds:
                rows = injection.rows_of(kind)
                still_off = self._off_by_others(kind, index)
                rows = rows[~still_off[rows]]
                self.powered_off[kind][rows] = False
                self.models[kind].restart(rows, tick)
                self.seq[kind][rows] = 0
                self.summary.reboots += len(rows)
        elif behaviour == "disconnect" and not any(
            self.injections[i].fault.behaviour == "disconnect" for i in self._episodes
        ):
            self.link_up = True
            out.extend(self._held)
            self._held = []

    def _off_by_others(self, kind: str, index: int) -> np.ndarray:
        off = np.zeros(len(self.seq[kind]), np.bool_)
        for i in self._episodes:
            other = self.injections[i]
            if i != index and other.fault.behaviour == "power-loss":
                off[other.rows_of(kind)] = True
        return off

    def _bad_payloads(self, index: int, tick: Tick, elapsed_s: float) -> list[tuple[str, bytes]]:
        injection = self.injections[index]
        episode = self._episodes[index]
        if elapsed_s < episode.next_bad_s:
            return []
        params = injection.parameters
        every = float(params["every_s"])
        episode.next_bad_s = elapsed_s + every if every > 0 else float("inf")
        kinds = str(params["kinds"])
        names = list(BAD_PAYLOADS) if kinds == "all" else [k.strip() for k in kinds.split(",")]
        out: list[tuple[str, bytes]] = []
        for device in injection.devices:
            counts = episode.bad.setdefault(device.id, Counter())
            for name in names:
                for _ in range(int(float(params["count"]))):
                    self._bad_number += 1
                    context = BadContext(
                        site=self.site,
                        device=device,
                        ts_ms=tick.ts_ms,
                        now_ms=self.now_ms,
                        seq=int(self.seq[device.kind][device.kind_index]),
                        oversized_bytes=int(float(params["oversized_bytes"])),
                        number=self._bad_number,
                    )
                    out.append(BAD_PAYLOADS[name](context))
                    reason = EXPECTED_REASON[name]
                    counts[reason] += 1
                    self.summary.bad_payloads[reason] += 1
        self.summary.bad_messages += len(out)
        return out

    # -- one tick ---------------------------------------------------------------------------

    def tick(self, number: int) -> list[tuple[str, bytes]]:
        """Step every device to tick `number`; return the messages ready to publish."""
        ts_ms = self.summary.start_ms + round(number * self.tick_ms)
        tick = make_tick(number, ts_ms, self.tick_ms / 1000.0, self.zone)
        elapsed_s = (ts_ms - self.summary.start_ms) / 1000.0
        out: list[tuple[str, bytes]] = []
        for index, injection in enumerate(self.injections):
            active = injection.active(elapsed_s)
            if active and index not in self._episodes:
                self._begin(index, tick)
            elif not active and index in self._episodes:
                self._end(index, tick, out)
        active_now = [(i, self.injections[i]) for i in sorted(self._episodes)]
        silent = {k: np.zeros(len(self.seq[k]), np.bool_) for k in self.kinds}
        for _, injection in active_now:
            if injection.fault.behaviour == "silent":
                for kind in injection.kinds:
                    silent[kind][injection.rows_of(kind)] = True
        per_message = self.settings.readings_per_message
        for kind in self.kinds:
            model = self.models[kind]
            model.clear_faults()
            contexts = []
            for index, injection in active_now:
                fault = injection.fault
                if fault.drive is None and fault.overlay is None:
                    continue
                rows = injection.rows_of(kind)
                if not len(rows):
                    continue
                context = FaultContext(
                    tick=tick,
                    elapsed_s=(ts_ms - self._episodes[index].start_ms) / 1000.0,
                    params=injection.parameters,
                    memory=self._episodes[index].memory.setdefault(kind, {}),
                    kind=kind,
                )
                if fault.drive is not None:
                    fault.drive(model, rows, context)
                contexts.append((fault, rows, context))
            values = model.step(tick)
            for fault, rows, context in contexts:
                if fault.overlay is not None:
                    fault.overlay(values, rows, context)
            spec = KINDS[kind]
            np.clip(values, spec.min, spec.max, out=values)
            floats = self._float_cols[kind]
            values[:, floats] = np.round(values[:, floats], FLOAT_DECIMALS)
            on = ~self.powered_off[kind]
            seq = self.seq[kind]
            seq += on
            self.summary.generated += int(on.sum())
            send = on & ~silent[kind]
            self.summary.silent_readings += int((on & silent[kind]).sum())
            rows = np.flatnonzero(send)
            if not len(rows):
                continue
            payloads = self.encoders[kind].encode(ts_ms, seq[rows], values[rows])
            self.summary.readings_by_kind[kind] += len(rows)
            self.summary.readings += len(rows)
            topics = self.topics[kind]
            if per_message == 1:
                out.extend(zip([topics[r] for r in rows.tolist()], payloads, strict=True))
                continue
            pending = self.pending[kind]
            for row, payload in zip(rows.tolist(), payloads, strict=True):
                buffer = pending[row]
                buffer.append(payload)
                if len(buffer) >= per_message:
                    out.append((topics[row], BATCH_OPEN + b",".join(buffer) + BATCH_CLOSE))
                    pending[row] = []
        for index, injection in active_now:
            if injection.fault.behaviour == "bad-payloads":
                out.extend(self._bad_payloads(index, tick, elapsed_s))
        self.summary.ticks = number + 1
        self.summary.end_ms = ts_ms
        if not self.link_up:
            self._held.extend(out)
            return []
        return out

    def drain(self) -> list[tuple[str, bytes]]:
        """The end of a run: readings still waiting to fill a batched message, messages held
        during a broker outage, and the ledger lines of faults still active."""
        out = list(self._held)
        self._held = []
        self.link_up = True
        for kind in self.kinds:
            topics = self.topics[kind]
            for row, buffer in enumerate(self.pending[kind]):
                if buffer:
                    out.append((topics[row], BATCH_OPEN + b",".join(buffer) + BATCH_CLOSE))
            self.pending[kind] = [[] for _ in topics]
        for index in sorted(self._episodes):
            episode = self._episodes.pop(index)
            self.ledger.record(
                self.injections[index],
                episode.start_ms,
                self.summary.end_ms,
                extra={d: {"sent": dict(c)} for d, c in episode.bad.items()},
            )
        return out

    # -- the loop ---------------------------------------------------------------------------

    def run(self, publisher: Publisher, stop: threading.Event | None = None) -> SimulationSummary:
        s = self.settings
        ticks = None if s.duration_s is None else int(s.duration_s * s.rate_hz)
        wall_start = time.monotonic()
        number = 0
        link_up = True
        while (ticks is None or number < ticks) and not (stop is not None and stop.is_set()):
            if s.speed > 0:
                due = wall_start + number / s.rate_hz / s.speed
                delay = due - time.monotonic()
                if delay > 0 and stop is not None and stop.wait(delay):
                    break
                if delay > 0 and stop is None:
                    time.sleep(delay)
            messages = self.tick(number)
            if self.link_up != link_up:
                link_up = self._switch_link(publisher, self.link_up)
            publisher.publish_many(messages)
            self.summary.messages += len(messages)
            number += 1
        messages = self.drain()
        if not link_up:
            self._switch_link(publisher, up=True)
        publisher.publish_many(messages)
        self.summary.messages += len(messages)
        publisher.flush(60.0)
        return self.summary

    @staticmethod
    def _switch_link(publisher: Publisher, up: bool) -> bool:
        """Tell a publisher that can drop its connection (MqttPublisher) to do so."""
        method = getattr(publisher, "resume" if up else "suspend", None)
        if method is not None:
            method()
        return up
