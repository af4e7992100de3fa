"""gateway/_json_rows.c: the usual message parsed in C into the same rows msgspec's typed path
makes; anything else left to the decoder's other paths, so the decoder accepts, rejects and
names reasons the same with and without it. Hand-written payloads and random mutations."""

from __future__ import annotations

import math
import random
import struct
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from facility.catalog import KINDS, PUMP, FieldType
from facility.site import load_site
from facility.wire import telemetry_topic
from gateway import json_rows
from gateway.decoder import Decoder, DecodeResult, Message
from tests.services import require_services
from tests.unit.test_typed_readings import JOINED_BREAKERS, NOT_USUAL, PUMP1, full

if not json_rows.COMPILED:
    message = "gateway._json_rows is not built (a C compiler at `pip install -e .`)"
    if require_services():
        pytest.fail(f"FACILITY_REQUIRE_SERVICES=1 and {message}", pytrace=False)
    pytest.skip(message, allow_module_level=True)

SITE = load_site(Path(__file__).resolve().parents[2] / "sites" / "shangri-la.toml")
NOW = 1_790_000_000_000
COLUMNS = json_rows.column_names(("ts", "seq", *PUMP.field_names))


def rows(*payloads: bytes) -> tuple[np.ndarray, list[int]]:
    table, counts = json_rows.usual_rows(list(payloads), COLUMNS)
    return table, counts.tolist()


def expected_rows(payload: bytes) -> np.ndarray:
    """The rows as orjson reads the payload: [ts, seq, field...], null NaN, booleans 1 / 0."""
    doc = orjson.loads(payload)
    readings = doc.get("readings", [doc])
    names = ("ts", "seq", *PUMP.field_names)
    return np.array([[math.nan if r[n] is None else float(r[n]) for n in names] for r in readings])


USUAL = {
    "one reading": orjson.dumps(full(0)),
    "batched": orjson.dumps({"readings": [full(1), full(2, running=False, suction_bar=None)]}),
    "keys in another order": orjson.dumps(dict(reversed(list(full(3).items())))),
    "whitespace everywhere": (
        b' \r\n{ "readings" :\t[ '
        + orjson.dumps(full(4)).replace(b":", b" : ").replace(b",", b" ,\n ")
        + b" ] }\n"
    ),
    "numbers as JSON writes them": orjson.dumps(full(5))
    .replace(b'"flow_m3h":15.25', b'"flow_m3h":1.525E+1')
    .replace(b'"vfd_hz":42.0', b'"vfd_hz":-0')
    .replace(b'"motor_temp_c":52.0', b'"motor_temp_c":5.2e1'),
    "long mantissas": orjson.dumps(full(6, flow_m3h=0.1 + 0.2, vibration_mm_s=1 / 3)),
    "integers past 2**53 in a field": orjson.dumps(full(7)).replace(
        b'"vfd_hz":42.0', b'"vfd_hz":12345678901234567890123'
    ),
    "a ts of 2**53": orjson.dumps(full(8, ts=2**53)),
}  # fmt: skip


@pytest.mark.parametrize("payload", USUAL.values(), ids=USUAL.keys())
def test_the_usual_message_becomes_the_typed_paths_rows(payload: bytes) -> None:
    table, counts = rows(payload)
    expected = expected_rows(payload)
    assert counts == [len(expected)]
    assert np.array_equal(table, expected, equal_nan=True)
    assert np.array_equal(np.signbit(table), np.signbit(expected))  # -0 stays -0


C_ONLY = {
    "a leading zero": orjson.dumps(full()).replace(b'"vfd_hz":42.0', b'"vfd_hz":042'),
    "a bare point": orjson.dumps(full()).replace(b'"vfd_hz":42.0', b'"vfd_hz":42.'),
    "a point first": orjson.dumps(full()).replace(b'"vfd_hz":42.0', b'"vfd_hz":.5'),
    "a plus sign": orjson.dumps(full()).replace(b'"vfd_hz":42.0', b'"vfd_hz":+4'),
    "a lone minus": orjson.dumps(full()).replace(b'"vfd_hz":42.0', b'"vfd_hz":-'),
    "an empty exponent": orjson.dumps(full()).replace(b'"vfd_hz":42.0', b'"vfd_hz":4e'),
    "Infinity": orjson.dumps(full()).replace(b'"vfd_hz":42.0', b'"vfd_hz":Infinity'),
    "tru": orjson.dumps(full()).replace(b'"leak":false', b'"leak":tru'),
    "nul": orjson.dumps(full()).replace(b'"leak":false', b'"leak":nul'),
    "an escaped key": orjson.dumps(full()).replace(b'"leak"', b'"le\\u0061k"'),
    "a control character in a key": orjson.dumps(full()).replace(b'"leak"', b'"le\x01ak"'),
    "an exponent in ts": orjson.dumps(full()).replace(str(full()["ts"]).encode(), b"1.78999994e12"),
    "a vertical tab for whitespace": orjson.dumps(full()).replace(b',"seq"', b',\x0b"seq"'),
    "a fraction in seq": orjson.dumps(full(seq=1.0)),
    "a null seq": orjson.dumps(full(seq=None)),
    "a ts past 2**53": orjson.dumps(full(ts=2**53 + 1)),
    "a huge seq": orjson.dumps(full()).replace(b'"seq":0', b'"seq":99999999999999999999999'),
    "trailing bytes": orjson.dumps(full()) + b" x",
    "a byte order mark": b"\xef\xbb\xbf" + orjson.dumps(full()),
    "readings not an array": b'{"readings":' + orjson.dumps(full()) + b"}",
    "readings with a trailing comma": b'{"readings":[' + orjson.dumps(full()) + b",]}",
    "an object in an array": b"[" + orjson.dumps(full()) + b"]",
    "a number too long to convert": orjson.dumps(full()).replace(
        b'"vfd_hz":42.0', b'"vfd_hz":4' + b"0" * 80 + b".5"
    ),
}


@pytest.mark.parametrize(
    "payload",
    [*NOT_USUAL.values(), *JOINED_BREAKERS.values(), *C_ONLY.values()],
    ids=[*NOT_USUAL.keys(), *JOINED_BREAKERS.keys(), *C_ONLY.keys()],
)
def test_anything_else_is_left_to_the_other_paths(payload: bytes) -> None:
    """-1 for the payload and no rows from it, between two usual ones that keep theirs."""
    table, counts = rows(orjson.dumps(full(1)), payload, orjson.dumps(full(2)))
    assert counts == [1, -1, 1]
    assert table[:, 1].tolist() == [1.0, 2.0]


def test_a_minus_zero_ts_or_seq_is_the_integer_zero() -> None:
    payload = orjson.dumps(full()).replace(b'"seq":0', b'"seq":-0')
    payload = payload.replace(str(full()["ts"]).encode(), b"-0")
    table, counts = rows(payload)
    assert counts == [1]
    assert table[0, :2].tolist() == [0.0, 0.0]
    assert not np.signbit(table[0, :2]).any()


def test_every_cut_of_a_message_is_left_to_the_other_paths() -> None:
    payload = orjson.dumps({"readings": [full(1), full(2)]})
    for cut in range(len(payload)):
        _, counts = rows(payload[:cut])
        assert counts == [-1], payload[:cut]


def test_numbers_convert_to_the_nearest_double() -> None:
    """The fast path (up to 15 digits, powers of ten to 22) and CPython's strtod agree with
    float() on every text: random doubles written shortest, with 1 to 17 digits, and with
    exponents from -330 to 310."""
    rng = random.Random(5)
    texts: list[str] = []
    for _ in range(3000):
        value = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        if not math.isfinite(value):
            continue
        texts.append(repr(value))
        texts.append(f"{value:.{rng.randint(1, 17)}g}")
        mantissa = rng.randint(0, 10 ** rng.randint(1, 18))
        texts.append(f"{'-' if rng.random() < 0.5 else ''}{mantissa}e{rng.randint(-330, 310)}")
        texts.append(f"{mantissa / 10 ** rng.randint(0, 20):.{rng.randint(0, 25)}f}")
    texts = [t.replace("inf", "1").replace("nan", "1") for t in texts]
    numbers = [t for t in texts if math.isfinite(float(t))]
    payloads = [
        orjson.dumps(full(i)).replace(b'"vfd_hz":42.0', b'"vfd_hz":' + t.encode())
        for i, t in enumerate(numbers)
    ]
    table, counts = rows(*payloads)
    assert counts == [1] * len(payloads)
    got = table[:, 2 + PUMP.col("vfd_hz")]
    expected = np.array([float(t) for t in numbers])
    assert np.array_equal(got.view(np.int64), expected.view(np.int64))


PIECES = [b",", b":", b'"', b"{", b"}", b"[", b"]", b"-", b".", b"e", b"0", b"9", b" ", b"true",
          b"null", b'"seq"', b"\\"]  # fmt: skip
"""What a mutation puts into a payload: JSON's own punctuation, digits and words."""


def _messages(rng: random.Random) -> list[Message]:
    """A gateway batch of the demo site's telemetry: one-reading and batched messages of
    every kind, about a third of them mutated a few bytes at a time."""
    devices = [d for d in SITE.devices if d.kind in KINDS]
    out: list[Message] = []
    for i in range(120):
        device = devices[rng.randrange(len(devices))]
        spec = KINDS[device.kind]
        topic = telemetry_topic(SITE.id, device.building_id, device.kind, device.id)

        def reading(t: int, spec: Any = spec) -> dict[str, Any]:
            values: dict[str, Any] = {"ts": NOW - 100_000 + t * 100, "seq": t}
            for f in spec.fields:
                if rng.random() < 0.05:
                    values[f.name] = None
                elif f.type is FieldType.BOOL:
                    values[f.name] = rng.choice([True, False, 0, 1])
                elif f.type is FieldType.FLOAT:
                    values[f.name] = round(rng.uniform(f.min, f.max), rng.randint(0, 6))
                else:
                    values[f.name] = rng.randint(int(f.min), int(f.max))
            return values

        payload = (
            orjson.dumps(reading(i))
            if rng.random() < 0.5
            else orjson.dumps({"readings": [reading(i * 10 + k) for k in range(rng.randint(1, 5))]})
        )
        if rng.random() < 0.35:
            data = bytearray(payload)
            for _ in range(rng.randint(1, 3)):
                at = rng.randrange(len(data) + 1)
                change = rng.random()
                piece = rng.choice(PIECES)
                if change < 0.4 and at < len(data):
                    del data[at]
                elif change < 0.7:
                    data[at:at] = piece
                else:
                    data[at : at + len(piece)] = piece
            payload = bytes(data)
        out.append(Message(topic, payload))
    return out


def _same(a: DecodeResult, b: DecodeResult) -> None:
    assert a.rejections == b.rejections
    assert a.batch.message_start_ms == b.batch.message_start_ms
    assert a.batch.kinds.keys() == b.batch.kinds.keys()
    for name, kb in a.batch.kinds.items():
        other = b.batch.kinds[name]
        assert kb.device.tolist() == other.device.tolist()
        assert kb.ts_ms.tolist() == other.ts_ms.tolist()
        assert kb.seq.tolist() == other.seq.tolist()
        assert np.array_equal(kb.values, other.values, equal_nan=True)


@pytest.mark.parametrize("seed", range(40))
def test_the_decoder_decides_the_same_with_and_without_it(seed: int) -> None:
    """Readings kept, their order and values, and every rejection (reason, detail, excerpt)."""
    rng = random.Random(seed)
    compiled, plain = Decoder(SITE, compiled=True), Decoder(SITE, compiled=False)
    kept = rejected = 0
    for _ in range(3):
        messages = _messages(rng)
        result = compiled.decode(messages, now_ms=NOW)
        _same(result, plain.decode(messages, now_ms=NOW))
        kept += len(result.batch)
        rejected += len(result.rejections)
    assert kept > 300  # most messages are good ones of known devices
    assert rejected > 0


def test_a_rejected_row_is_quoted_as_its_message_wrote_it() -> None:
    bad = dict(reversed(list(full(3, suction_bar=-99.0).items())))
    payload = orjson.dumps({"readings": [full(1), bad, full(4)]})
    compiled = Decoder(SITE, compiled=True).decode([Message(PUMP1, payload)], now_ms=NOW)
    plain = Decoder(SITE, compiled=False).decode([Message(PUMP1, payload)], now_ms=NOW)
    _same(compiled, plain)
    assert compiled.rejections[0].excerpt.startswith('{"leak":false')


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="columns"):
        json_rows.usual_rows([b"{}"], (b"ts", b"seq"))
    with pytest.raises(TypeError):
        json_rows.usual_rows([b"{}"], ("ts", "seq", "x"))  # type: ignore[arg-type]
    _, counts = json_rows.usual_rows(["not bytes"], COLUMNS)  # type: ignore[list-item]
    assert counts.tolist() == [-1]
