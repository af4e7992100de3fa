"""The wire format devices speak: MQTT topics and JSON payloads (docs/protocol.md).

Topic:   facility/v1/{site}/{building}/{kind}/{device}/telemetry
Payload: one reading   {"ts": <ms since epoch>, "seq": <int>, "<field>": <value>, ...}
         or many       {"readings": [{"ts": ..., "seq": ..., ...}, ...]}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import orjson

from facility.site import Device, local_id

TOPIC_PREFIX: Final = "facility/v1"
TOPIC_SUFFIX: Final = "telemetry"
TOPIC_LEVELS: Final = 7
READINGS_KEY: Final = "readings"
RESERVED_KEYS: Final = frozenset({"ts", "seq"})

JsonValue = bool | int | float
Reading = Mapping[str, JsonValue]


@dataclass(frozen=True, slots=True)
class TelemetryTopic:
    site: str
    building: str
    kind: str
    device: str

    def __str__(self) -> str:
        return telemetry_topic(self.site, self.building, self.kind, self.device)


def telemetry_topic(site: str, building: str, kind: str, device: str) -> str:
    return f"{TOPIC_PREFIX}/{site}/{building}/{kind}/{device}/{TOPIC_SUFFIX}"


def device_topic(device: Device, site_id: str) -> str:
    """The topic `device` publishes on: its own site's (a portfolio's estate, else `site_id`),
    with the site file's own ids (`b03`, not the portfolio's `riverside:b03`)."""
    return telemetry_topic(
        device.site_id or site_id, local_id(device.building_id), device.kind, local_id(device.id)
    )


def subscription(site: str = "+") -> str:
    """The topic filter that matches every telemetry topic of a site (or of all sites)."""
    return f"{TOPIC_PREFIX}/{site}/+/+/+/{TOPIC_SUFFIX}"


def parse_topic(topic: str) -> TelemetryTopic | None:
    """The parts of a telemetry topic, or None when the topic is not one."""
    parts = topic.split("/")
    if (
        len(parts) != TOPIC_LEVELS
        or f"{parts[0]}/{parts[1]}" != TOPIC_PREFIX
        or parts[6] != TOPIC_SUFFIX
        or not all(parts[2:6])
    ):
        return None
    return TelemetryTopic(parts[2], parts[3], parts[4], parts[5])


def encode_reading(ts_ms: int, seq: int, values: Reading) -> bytes:
    return orjson.dumps({"ts": ts_ms, "seq": seq, **values})


def encode_readings(readings: Sequence[Mapping[str, JsonValue]]) -> bytes:
    """Many readings of one device in one message; each reading carries its own ts and seq."""
    return orjson.dumps({READINGS_KEY: list(readings)})
