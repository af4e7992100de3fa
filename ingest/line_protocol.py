"""InfluxDB line protocol built from the batch arrays in bulk.

    <kind>,site=..,building=..,unit=..,device=.. <field>=<value>,... <ts_ms>

Floats are written as floats, integer and enumeration fields with the `i` suffix, booleans as
true/false, so each field keeps one type per series.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import orjson

from facility.batch import KindBatch
from facility.catalog import FieldType, KindSpec
from facility.site import Site

StrArray = npt.NDArray[np.str_]


def escape_tag(value: str) -> str:
    """Tag keys and values escape commas, equals signs and spaces."""
    return value.replace("\\", "\\\\").replace(",", r"\,").replace("=", r"\=").replace(" ", r"\ ")


def escape_measurement(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", r"\,").replace(" ", r"\ ")


def series_keys(site: Site, kind: KindSpec) -> StrArray:
    """The measurement + tag set of each device of a kind, indexed by `kind_index`."""
    keys = [
        f"{escape_measurement(kind.name)},site={escape_tag(site.id)},"
        f"building={escape_tag(d.building_id)},unit={escape_tag(d.unit_id)},device={escape_tag(d.id)}"
        for d in site.by_kind[kind.name]
    ]
    return np.array(keys or [""], dtype=np.str_)


_BOOL_TEXT = np.array([b"false", b"true"], dtype=object)
_NUMPY = orjson.OPT_SERIALIZE_NUMPY


def _json_texts(column: npt.NDArray[np.float64] | npt.NDArray[np.int64]) -> list[bytes]:
    """Each number's JSON text: orjson writes shortest round-trip floats in C (ryu)."""
    return orjson.dumps(np.ascontiguousarray(column), option=_NUMPY)[1:-1].split(b",")


def _field_texts(spec_type: FieldType, column: npt.NDArray[np.float64]) -> list[bytes]:
    if spec_type is FieldType.BOOL:
        return list(_BOOL_TEXT[(column > 0.5).astype(np.intp)])
    if spec_type is FieldType.FLOAT:
        return _json_texts(column)
    return _json_texts(column.astype(np.int64))


def _line_format(kind: KindSpec, columns: npt.NDArray[np.intp]) -> bytes:
    """`%s <field>=%s,<int field>=%si,... %s` for one set of present fields."""
    fields = b",".join(
        escape_tag(kind.fields[c].name).encode()
        + (b"=%si" if kind.fields[c].type in (FieldType.INT, FieldType.ENUM) else b"=%s")
        for c in columns.tolist()
    )
    return b"%s " + fields + b" %s"


def encode(keys: StrArray, kb: KindBatch) -> list[bytes]:
    """One line per reading that has at least one field, in the batch's order.

    Readings are grouped by which fields they report (usually one group); each group's numbers
    are turned to text a column at a time by orjson, and its lines are formatted by one
    `bytes %` per line inside `map`, so no Python code runs per reading or per value.
    """
    n = len(kb)
    if n == 0:
        return []
    present = ~np.isnan(kb.values)
    keep = present.any(axis=1)
    weights = np.left_shift(1, np.arange(present.shape[1], dtype=np.int64))
    patterns = present.astype(np.int64) @ weights
    key_bytes = np.char.encode(keys, "utf-8").astype(object)
    ts_texts = _json_texts(kb.ts_ms)
    out = np.empty(n, dtype=object)
    for pattern in np.unique(patterns[keep]).tolist():
        rows = np.flatnonzero(patterns == pattern)
        columns = np.flatnonzero(present[rows[0]])
        texts = [_field_texts(kb.kind.fields[c].type, kb.values[rows, c]) for c in columns.tolist()]
        group_keys = key_bytes[kb.device[rows]].tolist()
        group_ts = [ts_texts[r] for r in rows.tolist()] if len(rows) < n else ts_texts
        fmt = _line_format(kb.kind, columns)
        out[rows] = list(map(fmt.__mod__, zip(group_keys, *texts, group_ts, strict=True)))
    lines: list[bytes] = out[keep].tolist()
    return lines
