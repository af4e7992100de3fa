"""Catching up on messages of many readings: devices that each publish 100 s of readings per
message, interleaved, drained as a backlog. Judged by the newest reading, every device whose
message for the same 100 s is still queued looked silent (the ingest benchmark filed ~500
offline orders that way); judged by where the messages begin, nothing is raised, while a
device that really stops is still found. Hand-written messages through the real decoder."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from alerts.engine import RuleEngine
from alerts.faults import FaultOpened
from alerts.rules import default_rule_set
from facility.batch import Batch
from facility.site import parse_site
from facility.wire import encode_readings, telemetry_topic
from gateway.decoder import Decoder, Message
from tests.readings import T0

PUMPS = ("p1", "p2", "p3", "p4")
SITE = parse_site(
    """
[site]
id = "s1"

[[buildings]]
id = "estate"

[[buildings.units]]
id = "pump-room"
devices = [
  { id = "p1", kind = "pump" }, { id = "p2", kind = "pump" },
  { id = "p3", kind = "pump" }, { id = "p4", kind = "pump" },
]
"""
)
SPAN_S = 100
"""Each message: 100 readings 1 s apart, published when its newest is taken. Longer than the
pumps' 60 s heartbeat, so a device still queued behind another's message of the same span
would look silent."""
BACKLOG_S = 1200
"""The backlog is drained this long after the first reading was taken."""


def healthy(device: str, t_s: int) -> dict[str, float | int | bool]:
    n = t_s + PUMPS.index(device)
    return {
        "ts": T0 + t_s * 1000, "seq": t_s, "running": True, "suction_bar": 1.4 + n % 7 / 100,
        "discharge_bar": 5.0 + n % 5 / 100, "flow_m3h": 15.0 + n % 3,
        "motor_current_a": 25 + n % 4, "motor_temp_c": 52 + n % 6 / 10,
        "vibration_mm_s": 1.0 + n % 3 / 10, "vfd_hz": 42.0, "tank_level_pct": 75.0,
        "leak": False,
    }  # fmt: skip


def messages(rounds: int, *, stops: dict[str, int] | None = None) -> list[Message]:
    """Round k: every pump's message of readings [100k, 100k + 99] s, in pump order, as the
    broker queued them; a pump in `stops` sends nothing from that round on."""
    out = []
    for k in range(rounds):
        for pump in PUMPS:
            if k >= (stops or {}).get(pump, rounds):
                continue
            topic = telemetry_topic(SITE.id, "estate", "pump", pump)
            readings = [healthy(pump, t) for t in range(k * SPAN_S, (k + 1) * SPAN_S)]
            out.append(Message(topic, encode_readings(readings)))
    return out


def drain(
    backlog: list[Message], per_batch: int, *, without_message_starts: bool = False
) -> list[FaultOpened]:
    """The gateway catching up: `per_batch` messages a batch, 50 ms of wall time each, the
    rules' timer ticking after every batch (it ticks every second: more often is harsher)."""
    engine = RuleEngine.from_rule_set(SITE, default_rule_set())
    decoder = Decoder(SITE)
    wall = T0 + BACKLOG_S * 1000
    opened: list[FaultOpened] = []
    for first in range(0, len(backlog), per_batch):
        wall += 50
        decoded = decoder.decode(backlog[first : first + per_batch], now_ms=wall).batch
        if without_message_starts:  # the old judgement: the newest reading alone
            decoded = dataclasses.replace(decoded, message_start_ms=None)
        opened += engine.evaluate(decoded, arrived_ms=wall).opened
        opened += engine.tick(wall).opened
    return opened


@pytest.mark.parametrize("per_batch", [1, 2, 3, 5])
def test_a_backlog_of_100_s_messages_raises_nothing(per_batch: int) -> None:
    assert drain(messages(6), per_batch) == []


@pytest.mark.parametrize("per_batch", [1, 2, 3])
def test_judged_by_the_newest_reading_the_same_backlog_raised_offline_devices(
    per_batch: int,
) -> None:
    """The control: what the engine did before, and the benchmark showed."""
    opened = drain(messages(6), per_batch, without_message_starts=True)
    assert {f.rule_id for f in opened} == {"device.offline"}
    assert {f.device_id for f in opened} >= {"p3", "p4"}  # p4 is always behind p1


@pytest.mark.parametrize("per_batch", [1, 2, 5])
def test_a_pump_that_really_stops_during_the_backlog_is_still_offline(per_batch: int) -> None:
    opened = drain(messages(6, stops={"p3": 2}), per_batch)
    assert Counter((f.rule_id, f.device_id) for f in opened) == {("device.offline", "p3"): 1}
    (fault,) = opened
    assert fault.started_ms == T0 + (2 * SPAN_S - 1) * 1000  # its last reading


def test_the_decoder_gives_the_latest_time_a_message_begins() -> None:
    backlog = messages(2)  # p1..p4 over [0, 99] s, then over [100, 199] s
    decoded = Decoder(SITE).decode(backlog[2:6], now_ms=T0 + BACKLOG_S * 1000).batch
    assert decoded.newest_ts_ms == T0 + 199_000
    assert decoded.message_start_ms == T0 + 100_000


def test_a_rejected_reading_does_not_count_as_a_message_start() -> None:
    topic = telemetry_topic(SITE.id, "estate", "pump", "p1")
    bad_first = {**healthy("p1", 150), "suction_bar": -99.0}  # out of range: rejected
    payload = encode_readings([bad_first, healthy("p1", 160), healthy("p1", 170)])
    early = Message(telemetry_topic(SITE.id, "estate", "pump", "p2"), messages(1)[1].payload)
    result = Decoder(SITE).decode([early, Message(topic, payload)], now_ms=T0 + 600_000)
    assert len(result.rejections) == 1
    assert result.batch.message_start_ms == T0 + 160_000


def test_a_batch_built_by_hand_has_no_message_start() -> None:
    assert Batch("s1", {}).message_start_ms is None
