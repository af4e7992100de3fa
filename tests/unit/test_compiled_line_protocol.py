"""ingest/_line_protocol.c: a kind's line protocol written in C is the Python encoder's, byte
for byte, wherever the Python encoder writes fixed notation; elsewhere every float reads back
as the same double. Rows reporting nothing give no line; bad arguments raise."""

from __future__ import annotations

import math
import random
import struct

import numpy as np
import pytest

from facility.batch import Batch, KindBatch
from facility.catalog import KINDS, PUMP, FieldType, KindSpec
from ingest import line_protocol
from ingest.line_protocol import encode, encode_batch, encode_body, key_bytes
from tests.services import require_services

if not line_protocol.COMPILED:
    message = "ingest._line_protocol is not built (a C compiler at `pip install -e .`)"
    if require_services():
        pytest.fail(f"FACILITY_REQUIRE_SERVICES=1 and {message}", pytrace=False)
    pytest.skip(message, allow_module_level=True)

T0 = 1_790_000_000_000
KEYS = key_bytes(np.array([f"k,device=d\\ {i}" for i in range(8)], dtype=np.str_))


def _batch(kind: KindSpec, values: np.ndarray, rng: random.Random) -> KindBatch:
    n = len(values)
    return KindBatch(
        kind,
        np.array([rng.randrange(len(KEYS)) for _ in range(n)], np.int32),
        np.array([T0 + rng.randrange(-(10**9), 10**9) for _ in range(n)], np.int64),
        np.arange(n, dtype=np.int64),
        np.asfortranarray(values),
    )


def _decimal(rng: random.Random) -> float:
    """A value as sensors send them: up to 15 significant digits, 1e-5 to 1e15."""
    digits = rng.randint(1, 15)
    mantissa = rng.randrange(10 ** (digits - 1), 10**digits) * rng.choice([1, -1])
    value = mantissa / 10 ** rng.randint(0, 20)
    return value if 1e-5 <= abs(value) < 1e15 else float(mantissa)


def _values(kind: KindSpec, n: int, rng: random.Random, number: object) -> np.ndarray:
    out = np.empty((n, len(kind.fields)))
    for row in range(n):
        for c, f in enumerate(kind.fields):
            pick = rng.random()
            if pick < 0.1:
                out[row, c] = math.nan
            elif f.type is FieldType.BOOL:
                out[row, c] = rng.choice([0.0, 1.0])
            elif f.type is FieldType.FLOAT:
                out[row, c] = number(rng)  # type: ignore[operator]
            else:
                out[row, c] = float(rng.randint(-(10**12), 10**12))
    return out


@pytest.mark.parametrize("kind", KINDS.values(), ids=KINDS.keys())
def test_the_lines_are_the_python_encoders_byte_for_byte(kind: KindSpec) -> None:
    rng = random.Random(kind.name)
    specials = [0.0, -0.0, 1.0, -1.0, 0.1, 1e-5, 2.5e-5, 9.999e15, 1e15, 123456.789, 0.3]
    specials += [0.1 + 0.2, 6.881506350319426e-05, -1 / 30000, 9.999999999999999e-05]
    specials += [rng.uniform(1e-5, 1e-4) for _ in range(10)]  # 16-17 digits: repr's, laid out
    for _ in range(20):
        values = _values(kind, 50, rng, _decimal)
        float_columns = [c for c, f in enumerate(kind.fields) if f.type is FieldType.FLOAT]
        if float_columns:
            values[: len(specials), float_columns[0]] = specials
        values[7] = math.nan  # a reading that reports nothing: no line
        kb = _batch(kind, values, rng)
        compiled = encode(KEYS, kb)
        python = encode(KEYS, kb, compiled=False)
        assert compiled == python
        assert len(python) == 50 - int(np.isnan(values).all(axis=1).sum())


def _field_values(line: bytes) -> dict[str, str]:
    fields = line.split(b" ")[-2].decode()
    return dict(pair.split("=", 1) for pair in fields.split(","))


def test_every_double_reads_back_as_itself() -> None:
    """Random bit patterns (every magnitude, subnormals included) and values around the
    notation's edges: each float field's text is a number that reads back as the double."""
    rng = random.Random(3)
    doubles = [
        struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0] for _ in range(20000)
    ]
    doubles += [x * 10.0**e for x in (1.0, 1.5, 9.99, 0.1) for e in range(-25, 25)]
    doubles += [5e-324, 1.7976931348623157e308, 2.0**53, 2.0**53 + 2, 9007199254740993.0]
    doubles = [d for d in doubles if math.isfinite(d)]
    values = np.full((len(doubles), len(PUMP.fields)), math.nan)
    column = PUMP.col("flow_m3h")
    values[:, column] = doubles
    lines = encode(KEYS, _batch(PUMP, values, rng))
    assert len(lines) == len(doubles)
    for line, value in zip(lines, doubles, strict=True):
        text = _field_values(line)["flow_m3h"]
        assert float(text) == value
        assert math.copysign(1, float(text)) == math.copysign(1, value)
        assert not text.endswith("i")


def test_integer_and_boolean_fields_keep_their_types() -> None:
    values = np.full((2, len(PUMP.fields)), math.nan)
    values[:, PUMP.col("running")] = [1.0, 0.0]
    values[:, PUMP.col("leak")] = [0.0, 1.0]
    lines = encode(KEYS, KindBatch(PUMP, np.array([0, 1], np.int32),
                                   np.array([T0, T0 + 1]), np.array([1, 2]), values))  # fmt: skip
    assert lines == [
        KEYS[0] + b" running=true,leak=false " + str(T0).encode(),
        KEYS[1] + b" running=false,leak=true " + str(T0 + 1).encode(),
    ]
    elevator = KINDS["elevator"]
    values = np.full((1, len(elevator.fields)), math.nan)
    values[0, elevator.col("floor")] = -3.0
    (line,) = encode(KEYS, KindBatch(elevator, np.array([2], np.int32), np.array([T0]),
                                     np.array([1]), values))  # fmt: skip
    assert line == KEYS[2] + b" floor=-3i " + str(T0).encode()


def test_bad_arguments_raise() -> None:
    kb = _batch(PUMP, np.ones((3, len(PUMP.fields))), random.Random(1))
    lines = line_protocol._c_lines
    assert lines is not None
    fields = line_protocol._c_fields(PUMP)
    args = (KEYS.tolist(), kb.device, kb.ts_ms, np.asfortranarray(kb.values).T, fields)
    with pytest.raises(IndexError, match="no series key"):
        lines(KEYS.tolist()[:1], *args[1:])
    with pytest.raises(ValueError, match="differ in length"):
        lines(args[0], kb.device[:2], *args[2:])
    with pytest.raises(TypeError, match="series keys must be bytes"):
        lines(["k"] * 8, *args[1:])
    with pytest.raises(TypeError, match="a field is"):
        lines(*args[:4], (("x=", 0),) * len(fields))
    with pytest.raises(ValueError, match="fields"):
        lines(*args[:4], ())
    with pytest.raises(ValueError, match="a field's type"):
        lines(*args[:4], ((b"x=", 7),) * len(fields))
    with pytest.raises(ValueError, match="differ in length"):
        lines(args[0], args[1], np.zeros(len(kb) * 8 + 3, np.uint8), *args[3:])
    huge = np.asfortranarray(kb.values).T.copy()
    huge[0, 0] = 1e19
    with pytest.raises(ValueError, match="outside int64"):
        lines(*args[:3], huge, ((b"n=", 1),) * len(fields))


@pytest.mark.parametrize("compiled", [True, False], ids=["c", "python"])
def test_a_body_is_the_lines_joined_and_counted(
    compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`encode_body` (one buffer in C) is `encode_batch`'s lines joined by newlines, kind after
    kind, with their count: readings that report nothing leave no line and no stray newline,
    first, last or in between, and a kind with no line adds nothing."""
    if not compiled:
        monkeypatch.setattr(line_protocol, "_c_lines", None)
    rng = random.Random(7)
    keys = {name: KEYS for name in KINDS}
    for _ in range(30):
        kinds = {}
        for name, kind in KINDS.items():
            n = rng.randrange(0, 12)
            values = _values(kind, n, rng, _decimal)
            for row in range(n):
                if rng.random() < 0.3:
                    values[row] = math.nan  # nothing reported: no line
            kinds[name] = _batch(kind, values, rng)
        batch = Batch("s", kinds)
        lines = encode_batch(keys, batch)
        assert encode_body(keys, batch) == (b"\n".join(lines), len(lines))
    silent = Batch("s", {"pump": _batch(PUMP, np.full((3, len(PUMP.fields)), math.nan), rng)})
    assert encode_body(keys, silent) == (b"", 0)
