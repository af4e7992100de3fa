"""facility/wire.py: telemetry topics and JSON payloads."""

from __future__ import annotations

import orjson
import pytest

from facility.wire import (
    TelemetryTopic,
    encode_reading,
    encode_readings,
    parse_topic,
    subscription,
    telemetry_topic,
)


def test_telemetry_topic_has_seven_levels_in_order() -> None:
    topic = telemetry_topic("shangri-la", "estate", "pump", "pump-1")

    assert topic == "facility/v1/shangri-la/estate/pump/pump-1/telemetry"


def test_parse_topic_gives_back_the_parts() -> None:
    parsed = parse_topic("facility/v1/shangri-la/b03/elevator/b03-u1-el2/telemetry")

    assert parsed == TelemetryTopic("shangri-la", "b03", "elevator", "b03-u1-el2")


@pytest.mark.parametrize(
    ("site", "building", "kind", "device"),
    [
        ("shangri-la", "estate", "pump", "pump-1"),
        ("s", "b", "gate", "g"),
        ("site_2", "0", "lighting", "x-y_z"),
    ],
)
def test_topic_round_trips(site: str, building: str, kind: str, device: str) -> None:
    topic = TelemetryTopic(site, building, kind, device)

    assert parse_topic(str(topic)) == topic
    assert str(topic) == telemetry_topic(site, building, kind, device)


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "facility/v2/s/b/pump/p/telemetry",  # wrong version
        "other/v1/s/b/pump/p/telemetry",  # wrong prefix
        "facility/v1/s/b/pump/p/status",  # wrong suffix
        "facility/v1/s/b/pump/p/telemetry/extra",  # 8 levels
        "facility/v1/s/pump/p/telemetry",  # 6 levels
        "facility/v1/s/b/pump/p/",  # empty suffix
        "facility/v1//b/pump/p/telemetry",  # empty site
        "facility/v1/s//pump/p/telemetry",  # empty building
        "facility/v1/s/b//p/telemetry",  # empty kind
        "facility/v1/s/b/pump//telemetry",  # empty device
        "/facility/v1/s/b/pump/p/telemetry",  # leading slash: 8 levels
        "facility/v1/s/b/pump/p/Telemetry",  # suffix is case-sensitive
    ],
)
def test_parse_topic_rejects_what_is_not_a_telemetry_topic(topic: str) -> None:
    assert parse_topic(topic) is None


def test_subscription_filters() -> None:
    assert subscription() == "facility/v1/+/+/+/+/telemetry"
    assert subscription("shangri-la") == "facility/v1/shangri-la/+/+/+/telemetry"


def test_encode_reading_puts_ts_and_seq_beside_the_fields() -> None:
    payload = encode_reading(
        1_790_000_000_123, 42, {"running": True, "suction_bar": 1.25, "floor": -2}
    )

    assert isinstance(payload, bytes)
    assert orjson.loads(payload) == {
        "ts": 1_790_000_000_123,
        "seq": 42,
        "running": True,
        "suction_bar": 1.25,
        "floor": -2,
    }


def test_encode_reading_keeps_json_types() -> None:
    doc = orjson.loads(encode_reading(1, 2, {"leak": False, "granted": 3, "lux": 0.5}))

    assert type(doc["leak"]) is bool
    assert type(doc["granted"]) is int
    assert type(doc["lux"]) is float
    assert type(doc["ts"]) is int


def test_encode_readings_wraps_many_readings() -> None:
    readings: list[dict[str, bool | int | float]] = [
        {"ts": 1000, "seq": 1, "running": True},
        {"ts": 2000, "seq": 2, "running": False, "suction_bar": 0.1},
    ]

    payload = encode_readings(readings)

    assert orjson.loads(payload) == {"readings": readings}


def test_encode_readings_of_nothing_is_an_empty_list() -> None:
    assert orjson.loads(encode_readings([])) == {"readings": []}
