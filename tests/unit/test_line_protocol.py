"""ingest/line_protocol.py: InfluxDB line protocol built from batch arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facility.batch import KindBatch
from facility.catalog import ELEVATOR, GATE, LIGHTING, PUMP, KindSpec
from facility.site import parse_site
from ingest.line_protocol import (
    encode,
    escape_measurement,
    escape_tag,
    key_bytes,
    series_keys,
)

SITE = parse_site(
    """
[site]
id = "s1"

[[buildings]]
id = "b1"

[[buildings.units]]
id = "u1"
devices = [
  { id = "p1", kind = "pump" },
  { id = "g1", kind = "gate" },
  { id = "p2", kind = "pump" },
  { id = "e1", kind = "elevator" },
]

[[buildings]]
id = "b2"

[[buildings.units]]
id = "u2"
devices = [{ id = "l1", kind = "lighting" }]
"""
)
NAN = math.nan


def _batch(spec: KindSpec, rows: list[tuple[int, int, dict[str, float]]]) -> KindBatch:
    """rows: (kind_index, ts_ms, {field: value}); unlisted fields are NaN."""
    values = np.full((len(rows), len(spec.fields)), NAN)
    for i, (_, _, fields) in enumerate(rows):
        for name, value in fields.items():
            values[i, spec.col(name)] = value
    return KindBatch(
        spec,
        np.array([r[0] for r in rows], np.int32),
        np.array([r[1] for r in rows], np.int64),
        np.arange(len(rows), dtype=np.int64),
        values,
    )


def _lines(spec: KindSpec, rows: list[tuple[int, int, dict[str, float]]]) -> list[str]:
    return [line.decode() for line in encode(series_keys(SITE, spec), _batch(spec, rows))]


def test_series_keys_are_indexed_by_kind_index() -> None:
    keys = series_keys(SITE, PUMP)

    assert keys.tolist() == [
        "pump,site=s1,building=b1,unit=u1,device=p1",
        "pump,site=s1,building=b1,unit=u1,device=p2",
    ]
    assert series_keys(SITE, LIGHTING).tolist() == [
        "lighting,site=s1,building=b2,unit=u2,device=l1"
    ]


def test_pump_batch_lines() -> None:
    lines = _lines(
        PUMP,
        [
            (0, 1_790_000_000_000, {"running": 1.0, "suction_bar": 1.5, "flow_m3h": 31.0}),
            (1, 1_790_000_000_250, {}),  # nothing reported: no line
            (1, 1_790_000_001_000, {"leak": 1.0}),
            (0, 1_790_000_002_000, {"running": 0.0, "discharge_bar": -0.5, "leak": 0.0}),
            (1, 1_790_000_003_000, {"motor_temp_c": 0.1 + 0.2, "vfd_hz": 0.0}),
        ],
    )

    assert lines == [
        "pump,site=s1,building=b1,unit=u1,device=p1 "
        "running=true,suction_bar=1.5,flow_m3h=31.0 1790000000000",
        "pump,site=s1,building=b1,unit=u1,device=p2 leak=true 1790000001000",
        "pump,site=s1,building=b1,unit=u1,device=p1 "
        "running=false,discharge_bar=-0.5,leak=false 1790000002000",
        "pump,site=s1,building=b1,unit=u1,device=p2 "
        "motor_temp_c=0.30000000000000004,vfd_hz=0.0 1790000003000",
    ]


def test_int_fields_get_the_i_suffix_and_floats_do_not() -> None:
    lines = _lines(
        GATE,
        [(0, 5000, {"door_open": 1.0, "open_duration_s": 12.25, "granted": 3.0, "denied": 0.0})],
    )

    assert lines == [
        "gate,site=s1,building=b1,unit=u1,device=g1 "
        "door_open=true,open_duration_s=12.25,granted=3i,denied=0i 5000"
    ]


def test_enum_fields_are_written_as_integers() -> None:
    lines = _lines(
        ELEVATOR,
        [(0, 7000, {"direction": 2.0, "floor": -2.0, "door_state": 0.0, "load_kg": 640.0})],
    )

    assert lines == [
        "elevator,site=s1,building=b1,unit=u1,device=e1 "
        "direction=2i,floor=-2i,door_state=0i,load_kg=640.0 7000"
    ]


def test_large_floats_and_counts() -> None:
    lines = _lines(
        LIGHTING,
        [(0, 1, {"lux": 150000.0, "power_w": 1234.5, "lamp_failures": 500.0})],
    )

    assert lines == [
        "lighting,site=s1,building=b2,unit=u2,device=l1 "
        "power_w=1234.5,lamp_failures=500i,lux=150000.0 1"
    ]


def test_a_field_missing_in_one_row_is_left_out_of_that_row_only() -> None:
    lines = _lines(PUMP, [(0, 10, {"suction_bar": 2.0}), (0, 20, {"flow_m3h": 5.5})])

    assert [line.split(" ")[1] for line in lines] == ["suction_bar=2.0", "flow_m3h=5.5"]


def test_readings_reporting_every_field_are_written_whole_in_catalog_order() -> None:
    """The usual batch (no field missing anywhere) takes a shortcut; its lines are those of the
    general path (the same rows beside one with a field missing)."""
    full = {
        f.name: float(i % 2 if f.type.name == "BOOL" else i + 0.5)
        for i, f in enumerate(GATE.fields)
    }
    rows = [(0, 1000, full), (0, 2000, {**full, "granted": 7.0})]
    lines = _lines(GATE, rows)
    general = _lines(GATE, [*rows, (0, 3000, {"denied": 1.0})])

    assert lines == general[:2]
    assert len(lines) == 2
    fields = lines[1].split(" ")[1].split(",")
    assert [f.split("=")[0] for f in fields] == [f.name for f in GATE.fields]
    assert "granted=7i" in fields
    assert lines[1].endswith(" 2000")


def test_rows_without_fields_are_dropped() -> None:
    assert _lines(PUMP, [(0, 10, {}), (1, 20, {})]) == []


def test_keys_encoded_once_give_the_same_lines() -> None:
    """A writer encodes its series keys once (`key_bytes`); the lines are the same."""
    batch = _batch(PUMP, [(1, 10, {"suction_bar": 2.0}), (0, 20, {"flow_m3h": 5.5})])
    keys = series_keys(SITE, PUMP)

    assert key_bytes(keys).tolist() == [k.encode() for k in keys.tolist()]
    assert encode(key_bytes(keys), batch) == encode(keys, batch)
    assert encode(key_bytes(keys), batch)[1].startswith(
        b"pump,site=s1,building=b1,unit=u1,device=p1 "
    )


def test_empty_batch_gives_no_lines() -> None:
    assert encode(series_keys(SITE, PUMP), KindBatch.empty(PUMP)) == []


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain", "plain"),
        ("a,b", r"a\,b"),
        ("a b", r"a\ b"),
        ("a=b", r"a\=b"),
        ("Pump room, east = 1", r"Pump\ room\,\ east\ \=\ 1"),
        ("back\\slash", "back\\\\slash"),
        ("", ""),
    ],
)
def test_escape_tag(raw: str, escaped: str) -> None:
    assert escape_tag(raw) == escaped


def test_escape_measurement_leaves_equals_signs() -> None:
    assert escape_measurement("a b,c=d") == r"a\ b\,c=d"
