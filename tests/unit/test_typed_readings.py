"""gateway/typed_readings.py: the usual message decoded typed; anything else is left to the
decoder's general path, so accepting and rejecting do not depend on the path taken."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from facility.catalog import PUMP
from facility.site import load_site
from gateway.decoder import Decoder, DecodeResult, Message, RejectReason
from gateway.rejections import excerpt
from gateway.typed_readings import TypedKind

SITE = load_site(Path(__file__).resolve().parents[2] / "sites" / "shangri-la.toml")
NOW = 1_790_000_000_000
PUMP1 = "facility/v1/shangri-la/estate/pump/pump-1/telemetry"
TYPED = TypedKind(PUMP)


def full(t: int = 0, **changes: Any) -> dict[str, Any]:
    """A pump reading reporting every field (the usual message)."""
    reading: dict[str, Any] = {
        "ts": NOW - 60_000 + t * 1000, "seq": t, "running": True, "suction_bar": 1.5,
        "discharge_bar": 5, "flow_m3h": 15.25, "motor_current_a": 25.0, "motor_temp_c": 52.0,
        "vibration_mm_s": 1.1, "vfd_hz": 42.0, "tank_level_pct": 75.0, "leak": False,
    }  # fmt: skip
    reading.update(changes)
    return reading


def batched(*readings: dict[str, Any]) -> bytes:
    return orjson.dumps({"readings": list(readings)})


def decode(*payloads: bytes) -> DecodeResult:
    return Decoder(SITE).decode([Message(PUMP1, p) for p in payloads], now_ms=NOW)


def test_the_usual_messages_decode_typed_to_the_same_table() -> None:
    single = orjson.dumps(full(0))
    many = batched(full(1), full(2, running=False, suction_bar=None))
    assert TYPED.readings(single) is not None
    readings = TYPED.readings(many)
    assert readings is not None
    assert len(readings) == 2
    table = TYPED.table(readings)
    assert table.shape == (2, 2 + len(PUMP.fields))
    assert table[0, :3].tolist() == [NOW - 59_000, 1, 1.0]  # ts, seq, running (true = 1)
    assert table[1, 2] == 0.0
    assert math.isnan(table[1, 3])
    assert table[0, 2 + PUMP.col("discharge_bar")] == 5.0  # an integer as a float
    result = decode(single, many)
    assert result.rejections == []
    kb = result.batch.kinds["pump"]
    assert kb.seq.tolist() == [0, 1, 2]
    assert np.array_equal(kb.values[1:], table[:, 2:], equal_nan=True)


NOT_USUAL = {
    "a field missing": orjson.dumps({k: v for k, v in full().items() if k != "leak"}),
    "an unknown field": orjson.dumps(full(colour=1)),
    "a string value": orjson.dumps(full(vfd_hz="42")),
    "a nested value": orjson.dumps(full(vfd_hz={"hz": 42})),
    "a float ts": orjson.dumps(full(ts=1.5)),
    "a boolean seq": orjson.dumps(full(seq=True)),
    "a duplicate key": orjson.dumps(full())[:-1] + b',"leak":true}',
    "a key besides readings": orjson.dumps({"readings": [full()], "site": 1}),
    "no readings": batched(),
    "a reading that is no object": orjson.dumps({"readings": [full(), 3]}),
    "not JSON": b'{"ts": ',
    "a JSON array": b"[1, 2]",
    "NaN": orjson.dumps(full())[:-1].replace(b'"vfd_hz":42.0', b'"vfd_hz":NaN') + b"}",
    "a number past float64": orjson.dumps(full()).replace(b'"vfd_hz":42.0', b'"vfd_hz":1e400'),
    "an array value": orjson.dumps(full(vfd_hz=[42])),
    "a batched reading with a duplicate key": (
        batched(full(1))[:-2] + b"," + orjson.dumps(full(2))[:-1] + b',"leak":true}]}'
    ),
    "readings twice": (batched(full(1))[:-1] + b',"readings":[' + orjson.dumps(full(2)) + b"]}"),
}
HUGE_SEQ = orjson.dumps(full())[:-1].replace(b'"seq":0', b'"seq":99999999999999999999999') + b"}"
"""Typed too (msgspec reads any integer); the table's checks reject it as before."""


@pytest.mark.parametrize("payload", NOT_USUAL.values(), ids=NOT_USUAL.keys())
def test_anything_else_is_left_to_the_general_path(payload: bytes) -> None:
    assert TYPED.readings(payload) is None


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("an unknown field", RejectReason.UNKNOWN_FIELD),
        ("a string value", RejectReason.BAD_TYPE),
        ("a float ts", RejectReason.BAD_TIMESTAMP),
        ("a boolean seq", RejectReason.BAD_SEQ),
        ("a key besides readings", RejectReason.NOT_OBJECT),
        ("no readings", RejectReason.NO_FIELDS),
        ("not JSON", RejectReason.MALFORMED_JSON),
        ("a JSON array", RejectReason.NOT_OBJECT),
        ("NaN", RejectReason.NON_FINITE),
        ("a number past float64", RejectReason.MALFORMED_JSON),
        ("a huge seq", RejectReason.BAD_SEQ),
    ],
)
def test_the_general_path_names_the_reason(name: str, reason: RejectReason) -> None:
    result = decode(orjson.dumps(full(5)), NOT_USUAL.get(name, HUGE_SEQ))
    assert [r.reason for r in result.rejections] == [reason]
    assert len(result.batch) == 1  # the good message beside it is kept


def test_readings_the_general_path_accepts_are_kept() -> None:
    missing = orjson.dumps({k: v for k, v in full(1).items() if k != "leak"})
    duplicate = orjson.dumps(full(2))[:-1] + b',"leak":true}'
    result = decode(missing, duplicate, orjson.dumps(full(3)))
    assert result.rejections == []
    kb = result.batch.kinds["pump"]
    leak = dict(zip(kb.seq.tolist(), kb.column("leak").tolist(), strict=True))
    assert math.isnan(leak[1])
    assert leak[2] == 1.0  # the last of a duplicated key, as orjson reads it
    assert leak[3] == 0.0
    assert result.batch.message_start_ms == NOW - 57_000


@pytest.mark.parametrize(
    ("key", "reason"), [("ts", RejectReason.BAD_TIMESTAMP), ("seq", RejectReason.BAD_SEQ)]
)
def test_a_reading_with_another_key_in_place_of_ts_or_seq_is_rejected_not_a_crash(
    key: str, reason: RejectReason
) -> None:
    """As many keys as a full reading, one of them unknown in place of ts or seq: the bulk
    conversion used to raise KeyError out of the decoder (found by tests/unit/test_json_rows)."""
    renamed = full(2)
    renamed["x" + key] = renamed.pop(key)
    result = decode(batched(full(1), renamed, full(3)))
    assert [r.reason for r in result.rejections] == [reason]
    assert result.rejections[0].detail.endswith("got None")
    assert result.batch.kinds["pump"].seq.tolist() == [1, 3]


def test_a_rejected_typed_reading_is_quoted_as_the_message_wrote_it() -> None:
    bad = dict(reversed(list(full(3, suction_bar=-99.0).items())))  # keys in another order
    result = decode(batched(full(1), bad, full(4)))
    (rejection,) = result.rejections
    assert rejection.reason is RejectReason.OUT_OF_RANGE
    assert rejection.excerpt == excerpt(orjson.dumps(bad))
    assert rejection.detail.startswith("suction_bar=-99 outside")
    assert result.batch.kinds["pump"].seq.tolist() == [1, 4]


JOINED_BREAKERS = {
    "two readings in one payload": orjson.dumps(full(7)) + b"," + orjson.dumps(full(8)),
    "an array closed early": orjson.dumps(full(7)) + b"]",
    "an array opened": b"[" + orjson.dumps(full(7)),
    "a trailing comma": orjson.dumps(full(7)) + b",",
    "nothing": b"",
    "whitespace": b" \n",
    "a reading and a number": orjson.dumps(full(7)) + b",3",
    "a reading with a duplicate key for one short a key": (
        orjson.dumps(full(7))[:-1] + b',"leak":true}'
    ),
}
"""Payloads that could pass for one-reading messages only when joined to their neighbours."""


def _pumps(count: int) -> list[str]:
    return [f"facility/v1/shangri-la/estate/pump/pump-{1 + i % 3}/telemetry" for i in range(count)]


@pytest.mark.parametrize(
    "bad", [*NOT_USUAL.values(), *JOINED_BREAKERS.values(), HUGE_SEQ],
    ids=[*NOT_USUAL.keys(), *JOINED_BREAKERS.keys(), "a huge seq"],
)  # fmt: skip
def test_one_reading_messages_decoded_together_end_as_each_alone(bad: bytes) -> None:
    """A gateway batch decodes a kind's one-reading messages in one call: a bad one among
    150 (and a batched message beside them) comes out as it would alone, and so does
    every good one, in receive order."""
    payloads = [orjson.dumps(full(t)) for t in range(150)]
    payloads[70] = bad
    payloads[71] = batched(full(200), full(201))
    payloads[149] = bad  # in the last chunk as well
    messages = [Message(t, p) for t, p in zip(_pumps(150), payloads, strict=True)]
    together = Decoder(SITE).decode(messages, now_ms=NOW)
    decoder = Decoder(SITE)
    alone = [decoder.decode([m], now_ms=NOW) for m in messages]
    assert together.rejections == [r for result in alone for r in result.rejections]
    rows = [result.batch.kinds["pump"] for result in alone if "pump" in result.batch.kinds]
    kb = together.batch.kinds["pump"]
    assert kb.seq.tolist() == [s for r in rows for s in r.seq.tolist()]
    assert kb.device.tolist() == [d for r in rows for d in r.device.tolist()]
    assert np.array_equal(kb.values, np.concatenate([r.values for r in rows]), equal_nan=True)


def test_one_reading_and_batched_messages_of_a_device_keep_receive_order() -> None:
    """Each path's readings (one-reading messages decoded together, batched ones typed, the
    general path's, some of them checked one by one) merge back into receive order."""
    topic = _pumps(1)[0]
    partial = {k: v for k, v in full(6).items() if k != "leak"}
    payloads = [orjson.dumps(full(0)), batched(full(1), full(2)), orjson.dumps(full(3))]
    payloads += [b"not json", batched(full(4), full(5, colour=1), partial, full(7))]
    payloads += [orjson.dumps(full(t)) for t in range(8, 100)]
    decoder = Decoder(SITE)
    decoder.decode([Message(topic, payloads[0])], now_ms=NOW)  # the topic is known
    result = decoder.decode([Message(topic, p) for p in payloads], now_ms=NOW)
    assert [r.reason for r in result.rejections] == [
        RejectReason.MALFORMED_JSON, RejectReason.UNKNOWN_FIELD,
    ]  # fmt: skip
    assert result.batch.kinds["pump"].seq.tolist() == [s for s in range(100) if s != 5]
