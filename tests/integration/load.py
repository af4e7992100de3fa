"""Deterministic telemetry for reliability tests: a synthetic site and a QoS 1 publisher."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from facility.catalog import KINDS, FieldType
from facility.clock import now_ms
from facility.site import Site, parse_site
from facility.wire import encode_reading, encode_readings, telemetry_topic

Message = tuple[str, bytes]
MAX_UNACKED = 30_000


def synthetic_site(devices_per_kind: int = 25, site_id: str = "load") -> Site:
    return parse_site(synthetic_site_text(devices_per_kind, site_id))


def synthetic_site_text(devices_per_kind: int = 25, site_id: str = "load") -> str:
    """One building per kind, `devices_per_kind` devices each."""
    lines = [f'[site]\nid = "{site_id}"\n']
    for kind in KINDS:
        lines.append(f'[[buildings]]\nid = "bld-{kind}"\n\n[[buildings.units]]\nid = "unit-{kind}"')
        devices = ", ".join(
            f'{{ id = "{kind}-{i:04d}", kind = "{kind}" }}' for i in range(devices_per_kind)
        )
        lines.append(f"devices = [{devices}]\n")
    return "\n".join(lines)


HEALTHY: dict[str, bool | int | float] = {
    "alarm_test_ok": True,
    "emergency_battery_ok": True,
    "door_open_time_s": 4.0,
}
"""Fields where a quarter of the range (or false) would be a fault: a healthy value instead,
so a load run measures ingest, not a burst of work orders no real fleet would raise."""


def _normal_reading(kind: str, index: int) -> dict[str, bool | int | float]:
    values: dict[str, bool | int | float] = {}
    for f in KINDS[kind].fields:
        if f.name in HEALTHY:
            values[f.name] = HEALTHY[f.name]
        elif f.type is FieldType.BOOL:
            values[f.name] = False
        elif f.type is FieldType.FLOAT:
            values[f.name] = round(f.min + (f.max - f.min) * 0.25 + (index % 97) * 0.001, 3)
        else:
            values[f.name] = int(f.min)
    return values


@dataclass(frozen=True, slots=True)
class Stream:
    messages: list[Message]
    readings_by_kind: Counter[str]

    @property
    def readings(self) -> int:
        return sum(self.readings_by_kind.values())


def hotpath_stream(readings_per_device: int, per_message: int) -> tuple[Site, Stream]:
    """The one-process benchmarks' stream (`bench/hotpath.py`, `bench/backlog.py`): the
    ingest benchmark's 1,000 devices, readings 1 s apart starting about an hour ago."""
    site = synthetic_site(250)
    return site, stream(site, readings_per_device, per_message, now_ms() - 4_000_000)


def stream(
    site: Site, readings_per_device: int, per_message: int, start_ms: int, *, first_seq: int = 1
) -> Stream:
    """Every device reports `readings_per_device` readings 1 s apart, `per_message` per message."""
    messages: list[Message] = []
    counts: Counter[str] = Counter()
    for device in site.devices:
        topic = telemetry_topic(site.id, device.building_id, device.kind, device.id)
        counts[device.kind] += readings_per_device
        if per_message == 1:
            messages.extend(
                (
                    topic,
                    encode_reading(
                        start_ms + i * 1000, first_seq + i, _normal_reading(device.kind, i)
                    ),
                )
                for i in range(readings_per_device)
            )
            continue
        readings = [
            {"ts": start_ms + i * 1000, "seq": first_seq + i, **_normal_reading(device.kind, i)}
            for i in range(readings_per_device)
        ]
        messages.extend(
            (topic, encode_readings(readings[first : first + per_message]))
            for first in range(0, len(readings), per_message)
        )
    # Interleave devices, as a live site would publish.
    per_device = len(messages) // len(site.devices)
    interleaved = [
        messages[d * per_device + k] for k in range(per_device) for d in range(len(site.devices))
    ]
    return Stream(interleaved, counts)


class Publisher:
    """A QoS 1 publisher that can pace itself and run in a background thread."""

    def __init__(self, port: int, client_id: str = "load-publisher") -> None:
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self._client.max_inflight_messages_set(1000)
        self._client.max_queued_messages_set(0)
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()
        self.published = 0
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self.holding = threading.Event()
        """Set while publishing waits at one of its hold points for `release()`."""
        self._released = threading.Event()

    def publish_all(
        self, messages: Sequence[Message], *, per_second: float = 0.0, hold_at: Sequence[int] = ()
    ) -> None:
        """Publish every message; before each message number in `hold_at`, wait for `release()`
        (a test acts at an exact point of the stream however slow the machine is)."""
        infos: deque[paho.MQTTMessageInfo] = deque()
        holds = deque(sorted(hold_at))
        started = time.monotonic()
        for number, (topic, payload) in enumerate(messages):
            if self._closing.is_set():
                return  # closed while publishing in the background: stop where we are
            if holds and number == holds[0]:
                holds.popleft()
                held = time.monotonic()
                self.holding.set()
                self._released.wait()
                self._released.clear()
                started += time.monotonic() - held  # the pace resumes, no catching up
            if per_second and number % 100 == 0:
                delay = started + number / per_second - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            if len(infos) >= MAX_UNACKED:  # MQTT packet ids are 16 bits: never reuse a live one
                oldest = infos.popleft()
                oldest.wait_for_publish(60)
                assert oldest.is_published(), "the broker did not acknowledge a message"
            infos.append(self._client.publish(topic, payload, qos=1))
            self.published = number + 1
        for info in infos:
            info.wait_for_publish(60)
            assert info.is_published(), "the broker did not acknowledge a message"

    def start(
        self, messages: Sequence[Message], *, per_second: float, hold_at: Sequence[int] = ()
    ) -> None:
        self._thread = threading.Thread(
            target=self.publish_all,
            args=(messages,),
            kwargs={"per_second": per_second, "hold_at": hold_at},
        )
        self._thread.start()

    def release(self) -> None:
        """Go on from the hold point publishing waits at."""
        self.holding.clear()
        self._released.set()

    def join(self, timeout_s: float = 120.0) -> None:
        assert self._thread is not None
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), "publishing did not finish"

    def close(self) -> None:
        self._closing.set()
        self._released.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(60)
        self._client.disconnect()
        self._client.loop_stop()
