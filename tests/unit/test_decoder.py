"""gateway/decoder.py: JSON telemetry to a columnar Batch, bad input rejected by reason."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from facility.catalog import ELEVATOR, GATE, PUMP, KindSpec
from facility.site import load_site
from gateway.decoder import (
    EXCERPT_BYTES,
    Decoder,
    DecodeResult,
    DecoderLimits,
    Message,
    RejectReason,
)

SITE = load_site(Path(__file__).resolve().parents[2] / "sites" / "shangri-la.toml")
NOW = 1_790_000_000_000
PUMP1 = "facility/v1/shangri-la/estate/pump/pump-1/telemetry"
PUMP3 = "facility/v1/shangri-la/estate/pump/pump-3/telemetry"
GATE_NORTH = "facility/v1/shangri-la/estate/gate/gate-north/telemetry"
ELEVATOR_B01 = "facility/v1/shangri-la/b01/elevator/b01-u2-el1/telemetry"


def _msg(topic: str, doc: Any) -> Message:
    return Message(topic, orjson.dumps(doc))


def _decode(*messages: Message, limits: DecoderLimits | None = None) -> DecodeResult:
    return Decoder(SITE, limits).decode(list(messages), now_ms=NOW)


def _row(spec: KindSpec, **values: float) -> list[float]:
    row = [math.nan] * len(spec.fields)
    for name, value in values.items():
        row[spec.col(name)] = value
    return row


def _reasons(result: DecodeResult) -> list[RejectReason]:
    return [r.reason for r in result.rejections]


def _only_rejection(result: DecodeResult, reason: RejectReason) -> None:
    assert _reasons(result) == [reason]
    assert len(result.batch) == 0
    assert result.batch.kinds == {}


# -- good input ------------------------------------------------------------------------------


def test_single_reading_becomes_one_row() -> None:
    result = _decode(
        _msg(PUMP3, {"ts": NOW - 500, "seq": 7, "running": True, "suction_bar": 1.5, "leak": False})
    )

    assert result.rejections == []
    assert result.batch.site_id == "shangri-la"
    assert list(result.batch.kinds) == ["pump"]
    kb = result.batch.kinds["pump"]
    assert kb.kind is PUMP
    assert kb.device.tolist() == [2]  # pump-3 is the third pump
    assert kb.ts_ms.tolist() == [NOW - 500]
    assert kb.seq.tolist() == [7]
    np.testing.assert_array_equal(kb.values, [_row(PUMP, running=1.0, suction_bar=1.5, leak=0.0)])
    assert kb.device.dtype == np.int32
    assert kb.ts_ms.dtype == np.int64
    assert kb.seq.dtype == np.int64


def test_batched_readings_become_one_row_each() -> None:
    result = _decode(
        _msg(
            PUMP1,
            {
                "readings": [
                    {"ts": NOW - 2000, "seq": 10, "running": True, "flow_m3h": 31},
                    {"ts": NOW - 1000, "seq": 11, "running": False, "tank_level_pct": 80.5},
                ]
            },
        )
    )

    assert result.rejections == []
    kb = result.batch.kinds["pump"]
    assert kb.device.tolist() == [0, 0]
    assert kb.ts_ms.tolist() == [NOW - 2000, NOW - 1000]
    assert kb.seq.tolist() == [10, 11]
    np.testing.assert_array_equal(
        kb.values,
        [
            _row(PUMP, running=1.0, flow_m3h=31.0),
            _row(PUMP, running=0.0, tank_level_pct=80.5),
        ],
    )


def test_messages_of_several_kinds_are_grouped_by_kind() -> None:
    result = _decode(
        _msg(GATE_NORTH, {"ts": NOW, "seq": 1, "door_open": True, "granted": 3}),
        _msg(PUMP1, {"ts": NOW, "seq": 5, "vfd_hz": 44.8}),
        _msg(ELEVATOR_B01, {"ts": NOW, "seq": 9, "floor": -2, "direction": 2, "running": 1}),
        _msg(PUMP3, {"ts": NOW + 1, "seq": 6, "vfd_hz": 40}),
    )

    assert result.rejections == []
    assert len(result.batch) == 4
    assert set(result.batch.kinds) == {"gate", "pump", "elevator"}
    gate = result.batch.kinds["gate"]
    assert gate.device.tolist() == [SITE.by_id["gate-north"].kind_index]
    np.testing.assert_array_equal(gate.values, [_row(GATE, door_open=1.0, granted=3.0)])
    pump = result.batch.kinds["pump"]
    assert pump.device.tolist() == [0, 2]
    assert pump.seq.tolist() == [5, 6]
    np.testing.assert_array_equal(pump.column("vfd_hz"), [44.8, 40.0])
    elevator = result.batch.kinds["elevator"]
    assert elevator.device.tolist() == [2]  # b01-u1-el1, b01-u1-el2, b01-u2-el1
    np.testing.assert_array_equal(
        elevator.values, [_row(ELEVATOR, floor=-2.0, direction=2.0, running=1.0)]
    )


def test_integral_values_written_as_floats_are_accepted() -> None:
    result = _decode(_msg(GATE_NORTH, {"ts": NOW, "seq": 1, "granted": 4.0, "forced_open": 0}))

    assert result.rejections == []
    np.testing.assert_array_equal(
        result.batch.kinds["gate"].values, [_row(GATE, granted=4.0, forced_open=0.0)]
    )


def test_range_and_time_limits_are_inclusive() -> None:
    result = _decode(
        _msg(PUMP1, {"ts": NOW + 300_000, "seq": 1, "suction_bar": -1}),
        _msg(PUMP1, {"ts": NOW - 30 * 86_400_000, "seq": 2, "suction_bar": 16}),
    )

    assert result.rejections == []
    assert result.batch.kinds["pump"].column("suction_bar").tolist() == [-1.0, 16.0]


def test_no_messages_give_an_empty_batch() -> None:
    result = _decode()

    assert len(result.batch) == 0
    assert result.rejections == []
    assert result.batch.newest_ts_ms is None


# -- one test per rejection reason -----------------------------------------------------------


def test_oversized_payload() -> None:
    payload = orjson.dumps({"ts": NOW, "seq": 1, "motor_temp_c": 55.25})
    limits = DecoderLimits(max_payload_bytes=len(payload) - 1)

    result = _decode(Message(PUMP1, payload), limits=limits)

    _only_rejection(result, RejectReason.OVERSIZED)
    assert str(len(payload)) in result.rejections[0].detail


def test_payload_of_exactly_the_limit_is_accepted() -> None:
    payload = orjson.dumps({"ts": NOW, "seq": 1, "motor_temp_c": 55.25})

    result = _decode(Message(PUMP1, payload), limits=DecoderLimits(max_payload_bytes=len(payload)))

    assert result.rejections == []
    assert len(result.batch) == 1


@pytest.mark.parametrize(
    "topic",
    [
        "facility/v1/shangri-la/estate/pump/pump-1/status",
        "facility/v1/shangri-la/estate/pump/pump-1",
        "facility/v2/shangri-la/estate/pump/pump-1/telemetry",
        "facility/v1/shangri-la/estate/pump//telemetry",
        "pump-1",
    ],
)
def test_bad_topic(topic: str) -> None:
    result = _decode(_msg(topic, {"ts": NOW, "seq": 1, "running": True}))

    _only_rejection(result, RejectReason.BAD_TOPIC)
    assert result.rejections[0].topic == topic


def test_unknown_site() -> None:
    result = _decode(
        _msg("facility/v1/other-site/estate/pump/pump-1/telemetry", {"ts": NOW, "seq": 1})
    )

    _only_rejection(result, RejectReason.UNKNOWN_SITE)


@pytest.mark.parametrize(
    "topic",
    [
        "facility/v1/shangri-la/estate/pump/pump-9/telemetry",  # no such device
        "facility/v1/shangri-la/estate/gate/pump-1/telemetry",  # kind differs
        "facility/v1/shangri-la/estate/boiler/pump-1/telemetry",  # no such kind
        "facility/v1/shangri-la/b01/pump/pump-1/telemetry",  # building differs
        "facility/v1/shangri-la/b02/elevator/b01-u2-el1/telemetry",  # building differs
    ],
)
def test_unknown_device(topic: str) -> None:
    result = _decode(_msg(topic, {"ts": NOW, "seq": 1, "running": True}))

    _only_rejection(result, RejectReason.UNKNOWN_DEVICE)


def test_malformed_json() -> None:
    result = _decode(Message(PUMP1, b'{"ts": 1, "seq": 1, "running": tru'))

    _only_rejection(result, RejectReason.MALFORMED_JSON)
    assert result.rejections[0].excerpt == '{"ts": 1, "seq": 1, "running": tru'


def test_empty_payload_is_malformed_json() -> None:
    _only_rejection(_decode(Message(PUMP1, b"")), RejectReason.MALFORMED_JSON)


@pytest.mark.parametrize(
    "payload",
    [
        b'{"ts": 1790000000000, "seq": 1, "suction_bar": NaN}',
        b'{"ts": 1790000000000, "seq": 1, "suction_bar": Infinity}',
        b'{"readings": [{"ts": 1790000000000, "seq": 1, "flow_m3h": -Infinity}]}',
    ],
)
def test_non_finite(payload: bytes) -> None:
    _only_rejection(_decode(Message(PUMP1, payload)), RejectReason.NON_FINITE)


@pytest.mark.parametrize(
    "doc",
    [
        [{"ts": NOW, "seq": 1, "running": True}],  # a JSON array
        "running",  # a JSON string
        42,
        None,
        {"readings": {"ts": NOW, "seq": 1, "running": True}},  # readings not a list
        {"readings": [], "ts": NOW},  # readings plus other keys
    ],
)
def test_not_object(doc: Any) -> None:
    _only_rejection(_decode(_msg(PUMP1, doc)), RejectReason.NOT_OBJECT)


def test_not_object_reading_inside_a_batch() -> None:
    result = _decode(_msg(PUMP1, {"readings": [[NOW, 1, True]]}))

    _only_rejection(result, RejectReason.NOT_OBJECT)


@pytest.mark.parametrize(
    "ts",
    [None, "1790000000000", 1_790_000_000_000.0, True, [NOW], {"ms": NOW}],
)
def test_bad_timestamp(ts: Any) -> None:
    reading: dict[str, Any] = {"seq": 1, "running": True}
    if ts is not None:
        reading["ts"] = ts

    _only_rejection(_decode(_msg(PUMP1, reading)), RejectReason.BAD_TIMESTAMP)


@pytest.mark.parametrize("seq", [None, -1, 1.0, "1", True])
def test_bad_seq(seq: Any) -> None:
    reading: dict[str, Any] = {"ts": NOW, "running": True}
    if seq is not None:
        reading["seq"] = seq

    _only_rejection(_decode(_msg(PUMP1, reading)), RejectReason.BAD_SEQ)


def test_no_fields() -> None:
    _only_rejection(_decode(_msg(PUMP1, {"ts": NOW, "seq": 1})), RejectReason.NO_FIELDS)


def test_unknown_field() -> None:
    result = _decode(_msg(PUMP1, {"ts": NOW, "seq": 1, "running": True, "pressure": 1.0}))

    _only_rejection(result, RejectReason.UNKNOWN_FIELD)
    assert "'pressure'" in result.rejections[0].detail


def test_field_of_another_kind_is_unknown() -> None:
    result = _decode(_msg(GATE_NORTH, {"ts": NOW, "seq": 1, "suction_bar": 1.0}))

    _only_rejection(result, RejectReason.UNKNOWN_FIELD)


@pytest.mark.parametrize("value", ["1.5", "", [1.5], {"bar": 1.5}, [], {}])
def test_bad_type_non_number(value: Any) -> None:
    result = _decode(_msg(PUMP1, {"ts": NOW, "seq": 1, "suction_bar": value}))

    _only_rejection(result, RejectReason.BAD_TYPE)


@pytest.mark.parametrize("batched", [False, True])
def test_null_means_not_reported(batched: bool) -> None:
    reading = {"ts": NOW, "seq": 1, "running": True, "suction_bar": None}
    result = _decode(_msg(PUMP1, {"readings": [reading]} if batched else reading))

    assert result.rejections == []
    kb = result.batch.kinds["pump"]
    assert kb.column("running").tolist() == [1.0]
    assert np.isnan(kb.column("suction_bar")).all()


def test_a_reading_of_nulls_only_has_no_fields() -> None:
    result = _decode(_msg(PUMP1, {"ts": NOW, "seq": 1, "running": None, "suction_bar": None}))

    _only_rejection(result, RejectReason.NO_FIELDS)


def test_a_string_hidden_in_a_well_formed_batch_is_still_found() -> None:
    good = {"ts": NOW, "seq": 1, "suction_bar": 1.0}
    bad = {"ts": NOW + 1, "seq": 2, "suction_bar": "1.0"}
    result = _decode(_msg(PUMP1, {"readings": [good, bad, {**good, "ts": NOW + 2, "seq": 3}]}))

    assert _reasons(result) == [RejectReason.BAD_TYPE]
    assert result.batch.kinds["pump"].seq.tolist() == [1, 3]


@pytest.mark.parametrize(
    ("topic", "field", "value"),
    [
        (GATE_NORTH, "granted", 1.5),  # int
        (ELEVATOR_B01, "direction", 0.5),  # enum
        (PUMP1, "running", 0.5),  # bool
    ],
)
def test_bad_type_fractional_value_in_an_integral_field(
    topic: str, field: str, value: float
) -> None:
    _only_rejection(
        _decode(_msg(topic, {"ts": NOW, "seq": 1, field: value})), RejectReason.BAD_TYPE
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("suction_bar", 16.01), ("suction_bar", -1.5), ("vfd_hz", 61), ("running", 2)],
)
def test_out_of_range(field: str, value: float) -> None:
    result = _decode(_msg(PUMP1, {"ts": NOW, "seq": 1, "flow_m3h": 10, field: value}))

    _only_rejection(result, RejectReason.OUT_OF_RANGE)
    assert result.rejections[0].detail.startswith(f"{field}=")


def test_out_of_range_enum_code() -> None:
    result = _decode(_msg(ELEVATOR_B01, {"ts": NOW, "seq": 1, "door_state": 4}))

    _only_rejection(result, RejectReason.OUT_OF_RANGE)
    assert result.rejections[0].detail == "door_state=4 outside [0, 3]"


def test_a_reading_both_fractional_and_out_of_range_is_rejected_once() -> None:
    result = _decode(_msg(GATE_NORTH, {"ts": NOW, "seq": 1, "granted": 10000.5}))

    _only_rejection(result, RejectReason.BAD_TYPE)


def test_ts_future() -> None:
    result = _decode(_msg(PUMP1, {"ts": NOW + 300_001, "seq": 1, "running": True}))

    _only_rejection(result, RejectReason.TS_FUTURE)


def test_ts_too_old() -> None:
    result = _decode(_msg(PUMP1, {"ts": NOW - 30 * 86_400_000 - 1, "seq": 1, "running": True}))

    _only_rejection(result, RejectReason.TS_TOO_OLD)


def test_time_limits_come_from_decoder_limits() -> None:
    limits = DecoderLimits(max_future_skew_s=1.0, max_age_s=60.0)

    result = _decode(
        _msg(PUMP1, {"ts": NOW + 1001, "seq": 1, "running": True}),
        _msg(PUMP1, {"ts": NOW + 1000, "seq": 2, "running": True}),
        _msg(PUMP1, {"ts": NOW - 60_000, "seq": 3, "running": True}),
        _msg(PUMP1, {"ts": NOW - 60_001, "seq": 4, "running": True}),
        limits=limits,
    )

    assert _reasons(result) == [RejectReason.TS_FUTURE, RejectReason.TS_TOO_OLD]
    assert result.batch.kinds["pump"].seq.tolist() == [2, 3]


@pytest.mark.parametrize(
    "reading",
    [
        {"ts": 2**63, "seq": 1, "running": True},
        {"ts": 2**64 - 1, "seq": 1, "running": True},
        {"ts": NOW, "seq": 2**63, "running": True},
    ],
)
def test_integer_too_large_for_int64_is_rejected_not_raised(reading: dict[str, Any]) -> None:
    result = _decode(
        _msg(PUMP1, {"ts": NOW, "seq": 1, "running": True}),
        _msg(PUMP3, reading),
    )

    assert len(result.rejections) == 1
    assert result.rejections[0].reason in {
        RejectReason.BAD_TIMESTAMP,
        RejectReason.TS_FUTURE,
        RejectReason.BAD_SEQ,
    }
    assert result.batch.kinds["pump"].device.tolist() == [0]


# -- partial batches, mixes, excerpts --------------------------------------------------------


def test_one_bad_reading_in_a_batch_keeps_the_good_ones() -> None:
    result = _decode(
        _msg(
            PUMP1,
            {
                "readings": [
                    {"ts": NOW - 3000, "seq": 1, "suction_bar": 1.0},
                    {"ts": NOW - 2000, "seq": 2, "suction_bar": 99.0},  # out of range
                    {"ts": NOW - 1000, "seq": 3, "suction_bar": 3.0},
                    {"ts": NOW, "seq": 4, "colour": 1},  # unknown field
                ]
            },
        )
    )

    assert _reasons(result) == [RejectReason.UNKNOWN_FIELD, RejectReason.OUT_OF_RANGE]
    assert all(r.topic == PUMP1 for r in result.rejections)
    kb = result.batch.kinds["pump"]
    assert kb.seq.tolist() == [1, 3]
    assert kb.ts_ms.tolist() == [NOW - 3000, NOW - 1000]
    assert kb.column("suction_bar").tolist() == [1.0, 3.0]
    # The rejection's excerpt is the bad reading, not the whole message.
    assert orjson.loads(result.rejections[1].excerpt) == {
        "ts": NOW - 2000,
        "seq": 2,
        "suction_bar": 99.0,
    }


def test_a_mix_of_bad_and_good_messages_keeps_exactly_the_good_readings() -> None:
    good = [
        _msg(PUMP1, {"ts": NOW - 5000, "seq": 1, "running": True, "suction_bar": 1.5}),
        _msg(GATE_NORTH, {"ts": NOW - 4000, "seq": 1, "door_open": False}),
        _msg(
            PUMP3,
            {
                "readings": [
                    {"ts": NOW - 3000, "seq": 20, "vfd_hz": 40.0},
                    {"ts": NOW - 2000, "seq": 21, "vfd_hz": 99.0},  # out_of_range
                    {"ts": NOW - 1000, "seq": 22, "vfd_hz": 41.0},
                    {"ts": "late", "seq": 23, "vfd_hz": 42.0},  # bad_timestamp
                ]
            },
        ),
        _msg(ELEVATOR_B01, {"ts": NOW, "seq": 3, "floor": 12}),
    ]
    bad = [
        Message(PUMP1, b"x" * 300),  # oversized (limit below)
        Message("a/b/c", b"{}"),  # bad_topic
        _msg("facility/v1/elsewhere/estate/pump/pump-1/telemetry", {}),  # unknown_site
        _msg("facility/v1/shangri-la/b01/pump/pump-1/telemetry", {}),  # unknown_device
        Message(PUMP1, b"{"),  # malformed_json
        Message(PUMP1, b'{"ts": 1, "seq": 1, "vfd_hz": NaN}'),  # non_finite
        Message(PUMP1, b"[]"),  # not_object
        _msg(PUMP1, {"seq": 1, "vfd_hz": 1.0}),  # bad_timestamp
        _msg(PUMP1, {"ts": NOW, "seq": -3, "vfd_hz": 1.0}),  # bad_seq
        _msg(PUMP1, {"ts": NOW, "seq": 3}),  # no_fields
        _msg(PUMP1, {"ts": NOW, "seq": 3, "rpm": 1450}),  # unknown_field
        _msg(GATE_NORTH, {"ts": NOW, "seq": 3, "door_open": "yes"}),  # bad_type
        _msg(GATE_NORTH, {"ts": NOW, "seq": 4, "denied": 0.25}),  # bad_type
        _msg(GATE_NORTH, {"ts": NOW, "seq": 5, "open_duration_s": -1.0}),  # out_of_range
        _msg(PUMP1, {"ts": NOW + 3_600_000, "seq": 4, "vfd_hz": 1.0}),  # ts_future
        _msg(PUMP1, {"ts": 0, "seq": 5, "vfd_hz": 1.0}),  # ts_too_old
    ]
    messages = [m for pair in zip(bad, good * 4, strict=False) for m in pair] + bad[len(good) * 4 :]
    assert len(messages) == len(bad) + len(good) * 4

    result = _decode(*messages, limits=DecoderLimits(max_payload_bytes=256))

    assert result.counts() == Counter(
        {
            "oversized": 1,
            "bad_topic": 1,
            "unknown_site": 1,
            "unknown_device": 1,
            "malformed_json": 1,
            "non_finite": 1,
            "not_object": 1,
            "bad_timestamp": 1 + 4,
            "bad_seq": 1,
            "no_fields": 1,
            "unknown_field": 1,
            "bad_type": 2,
            "out_of_range": 1 + 4,
            "ts_future": 1,
            "ts_too_old": 1,
        }
    )
    assert set(result.counts()) == {str(r) for r in RejectReason}
    # 4 copies of the good messages: 1 + 1 + 2 + 1 readings each.
    assert len(result.batch) == 4 * 5
    readings_sent = len(bad) + 4 * (1 + 1 + 4 + 1)
    assert len(result.batch) + len(result.rejections) == readings_sent
    pump = result.batch.kinds["pump"]
    assert sorted(zip(pump.device.tolist(), pump.seq.tolist(), strict=True)) == sorted(
        [(0, 1), (2, 20), (2, 22)] * 4
    )
    assert result.batch.kinds["gate"].seq.tolist() == [1] * 4
    assert result.batch.kinds["elevator"].column("floor").tolist() == [12.0] * 4


def test_excerpt_of_a_huge_payload_is_truncated() -> None:
    payload = b'{"ts": 1, "seq": 1, "note": "' + b"a" * 1_000_000 + b'"}'

    result = _decode(Message(PUMP1, payload))

    _only_rejection(result, RejectReason.OVERSIZED)
    excerpt = result.rejections[0].excerpt
    assert excerpt == payload[:EXCERPT_BYTES].decode() + "..."
    assert len(excerpt) == EXCERPT_BYTES + 3


def test_excerpt_of_a_huge_bad_reading_is_truncated() -> None:
    reading = {"ts": NOW, "seq": 1, "running": "y" * 5000}

    result = _decode(_msg(PUMP1, {"readings": [reading]}))

    _only_rejection(result, RejectReason.BAD_TYPE)
    excerpt = result.rejections[0].excerpt
    assert excerpt == orjson.dumps(reading)[:EXCERPT_BYTES].decode() + "..."


def test_excerpt_of_a_short_payload_is_all_of_it() -> None:
    result = _decode(Message(PUMP1, b"not json"))

    assert result.rejections[0].excerpt == "not json"


def test_excerpt_of_a_payload_of_exactly_the_excerpt_size_is_not_marked_truncated() -> None:
    payload = b"z" * EXCERPT_BYTES

    result = _decode(Message(PUMP1, payload))

    assert result.rejections[0].excerpt == "z" * EXCERPT_BYTES


def test_a_rejected_topic_is_rejected_again_on_the_next_call() -> None:
    decoder = Decoder(SITE)
    wrong = "facility/v1/shangri-la/b01/pump/pump-1/telemetry"
    reading = {"ts": NOW, "seq": 1, "running": True}

    first = decoder.decode([_msg(wrong, reading), _msg(PUMP1, reading)], now_ms=NOW)
    second = decoder.decode([_msg(wrong, reading), _msg(PUMP1, reading)], now_ms=NOW)

    for result in (first, second):
        assert _reasons(result) == [RejectReason.UNKNOWN_DEVICE]
        assert result.batch.kinds["pump"].device.tolist() == [0]


# -- whole readings (every field reported) are converted in bulk -----------------------------


def _full_pump(ts: float, seq: Any, **override: Any) -> dict[str, Any]:
    reading: dict[str, Any] = {"ts": ts, "seq": seq}
    reading.update({f.name: f.min + (f.max - f.min) / 4 for f in PUMP.fields})
    reading.update(running=True, leak=False)
    reading.update(override)
    return reading


def test_whole_readings_and_partial_ones_keep_receive_order() -> None:
    result = _decode(
        _msg(PUMP1, {"readings": [_full_pump(NOW - 3000, 1), _full_pump(NOW - 2000, 2)]}),
        _msg(PUMP3, {"ts": NOW - 1500, "seq": 7, "vfd_hz": 40.0}),
        _msg(PUMP3, _full_pump(NOW - 1000, 8, vfd_hz=41.5)),
        _msg(PUMP1, {"readings": [{"ts": NOW - 500, "seq": 3, "leak": True}, _full_pump(NOW, 4)]}),
    )

    assert result.rejections == []
    kb = result.batch.kinds["pump"]
    assert kb.seq.tolist() == [1, 2, 7, 8, 3, 4]
    assert kb.device.tolist() == [0, 0, 2, 2, 0, 0]
    expected = _full_pump(NOW, 0)
    np.testing.assert_array_equal(kb.values[0], [float(expected[f.name]) for f in PUMP.fields])
    assert kb.column("vfd_hz")[3] == 41.5
    assert np.isnan(kb.column("suction_bar")[2])
    assert np.isnan(kb.column("suction_bar")[4])
    assert kb.column("leak").tolist()[4] == 1.0


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"ts": float(NOW - 1000)}, RejectReason.BAD_TIMESTAMP),  # integral, not an integer
        ({"seq": True}, RejectReason.BAD_SEQ),
        ({"seq": -1}, RejectReason.BAD_SEQ),
        ({"suction_bar": 99.0}, RejectReason.OUT_OF_RANGE),
        ({"running": 0.5}, RejectReason.BAD_TYPE),
    ],
)
def test_a_bad_whole_reading_is_rejected_alone(bad: dict[str, Any], reason: RejectReason) -> None:
    second = {**_full_pump(NOW - 1000, 2), **bad}
    readings = [_full_pump(NOW - 2000, 1), second, _full_pump(NOW, 3)]
    result = _decode(_msg(PUMP1, {"readings": readings}), _msg(PUMP3, _full_pump(NOW, 9)))

    assert _reasons(result) == [reason]
    assert result.rejections[0].topic == PUMP1
    assert result.rejections[0].excerpt.startswith(orjson.dumps(second).decode()[:100])
    assert result.batch.kinds["pump"].seq.tolist() == [1, 3, 9]


def test_a_whole_reading_with_a_foreign_key_instead_of_a_field_is_unknown() -> None:
    swapped = _full_pump(NOW - 1000, 2)
    del swapped["vfd_hz"]
    swapped["colour"] = 3
    result = _decode(_msg(PUMP1, {"readings": [_full_pump(NOW - 2000, 1), swapped]}))

    assert _reasons(result) == [RejectReason.UNKNOWN_FIELD]
    assert result.batch.kinds["pump"].seq.tolist() == [1]


def test_null_in_a_whole_reading_means_not_reported() -> None:
    result = _decode(_msg(PUMP1, _full_pump(NOW, 1, flow_m3h=None)))

    assert result.rejections == []
    kb = result.batch.kinds["pump"]
    assert np.isnan(kb.column("flow_m3h")).all()
    assert kb.column("running").tolist() == [1.0]
