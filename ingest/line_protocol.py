"""InfluxDB line protocol built from the batch arrays in bulk.

    <kind>,site=..,building=..,unit=..,device=.. <field>=<value>,... <ts_ms>

Floats are written as floats, integer and enumeration fields with the `i` suffix, booleans as
true/false, so each field keeps one type per series.

Where the package was built with a C compiler, a kind's lines are written in C
(`ingest/_line_protocol.c`): formatting a line per reading with `bytes %` was half the gateway's
hot path after decoding moved to C. Floats come out as the Python encoder writes them (orjson's
shortest text) wherever it uses fixed notation, and as CPython's shortest repr elsewhere (below
1e-5, from 1e16): the same double either way. Without the extension the Python encoder runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import cast

import numpy as np
import numpy.typing as npt

from facility.batch import Batch, KindBatch
from facility.catalog import KINDS, FieldType, KindSpec
from facility.columns import field_texts, json_texts, presence_groups
from facility.site import Site

_c_lines: Callable[..., object] | None
try:
    from ingest._line_protocol import lines as _c_lines
except ImportError:  # built without a C compiler: the Python encoder
    _c_lines = None

COMPILED = _c_lines is not None
_TYPE_CODE = {FieldType.FLOAT: 0, FieldType.INT: 1, FieldType.ENUM: 1, FieldType.BOOL: 2}

StrArray = npt.NDArray[np.str_]
KeyBytes = npt.NDArray[np.object_]
"""Series keys as UTF-8 bytes objects (`key_bytes`), ready for the line template."""


def escape_tag(value: str) -> str:
    """Tag keys and values escape commas, equals signs and spaces."""
    return value.replace("\\", "\\\\").replace(",", r"\,").replace("=", r"\=").replace(" ", r"\ ")


def escape_measurement(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", r"\,").replace(" ", r"\ ")


def series_keys(site: Site, kind: KindSpec) -> StrArray:
    """The measurement + tag set of each device of a kind, indexed by `kind_index`. `site` is
    the device's own site (a portfolio's estate), the other tags its (scoped) ids."""
    keys = [
        f"{escape_measurement(kind.name)},site={escape_tag(d.site_id or site.id)},"
        f"building={escape_tag(d.building_id)},unit={escape_tag(d.unit_id)},device={escape_tag(d.id)}"
        for d in site.by_kind[kind.name]
    ]
    return np.array(keys or [""], dtype=np.str_)


def key_bytes(keys: StrArray) -> KeyBytes:
    """`series_keys` encoded once: encoding a kind's keys costs ~0.7 µs a device, which a
    writer would otherwise pay for every device of the kind in every batch."""
    encoded: KeyBytes = np.char.encode(keys, "utf-8").astype(object)
    return encoded


def kind_keys(site: Site) -> dict[str, KeyBytes]:
    """Every kind's series keys, encoded (`key_bytes`), by kind name: what a writer keeps."""
    return {name: key_bytes(series_keys(site, spec)) for name, spec in KINDS.items()}


def encode_batch(keys: Mapping[str, KeyBytes], batch: Batch) -> list[bytes]:
    """Every kind's lines (`encode`), kind after kind, with `kind_keys`."""
    lines: list[bytes] = []
    for kb in batch:
        lines.extend(encode(keys[kb.kind.name], kb))
    return lines


def encode_body(keys: Mapping[str, KeyBytes], batch: Batch) -> tuple[bytes, int]:
    """`encode_batch`'s lines as one request body, "\n" between them, and how many: written
    straight into one buffer in C, without a bytes object per line and their join (a tenth
    of the writer's CPU for 300k readings)."""
    parts: list[bytes] = []
    count = 0
    for kb in batch:
        if _c_lines is not None and len(kb):
            joined = _c_lines(*_c_args(keys[kb.kind.name], kb), True)
            body, lines = cast("tuple[bytes, int]", joined)
        else:
            kind_lines = encode(keys[kb.kind.name], kb)
            body, lines = b"\n".join(kind_lines), len(kind_lines)
        if lines:
            parts.append(body)
            count += lines
    return b"\n".join(parts), count


def _line_format(kind: KindSpec, columns: npt.NDArray[np.intp]) -> bytes:
    """`%s <field>=%s,<int field>=%si,... %s` for one set of present fields."""
    fields = b",".join(
        escape_tag(kind.fields[c].name).encode()
        + (b"=%si" if kind.fields[c].type in (FieldType.INT, FieldType.ENUM) else b"=%s")
        for c in columns.tolist()
    )
    return b"%s " + fields + b" %s"


@cache
def _c_fields(kind: KindSpec) -> tuple[tuple[bytes, int], ...]:
    """Each field's `name=` and how its value is written, as the C encoder takes them."""
    return tuple((escape_tag(f.name).encode() + b"=", _TYPE_CODE[f.type]) for f in kind.fields)


def encode(
    keys: StrArray | KeyBytes, kb: KindBatch, *, compiled: bool | None = None
) -> list[bytes]:
    """One line per reading that has at least one field, in the batch's order; in C unless
    `compiled` is False or the extension is not built (`COMPILED`)."""
    if _c_lines is not None and compiled is not False and len(kb):
        return cast("list[bytes]", _c_lines(*_c_args(keys, kb)))
    return _encode_python(_encoded(keys), kb)


def _encoded(keys: StrArray | KeyBytes) -> KeyBytes:
    if keys.dtype == np.object_:
        return cast("KeyBytes", keys)
    return key_bytes(keys.astype(np.str_, copy=False))


def _c_args(keys: StrArray | KeyBytes, kb: KindBatch) -> tuple[object, ...]:
    """The C encoder's arguments for a kind's batch."""
    return (
        _encoded(keys).tolist(),
        np.ascontiguousarray(kb.device, np.int32),
        np.ascontiguousarray(kb.ts_ms, np.int64),
        np.asfortranarray(kb.values, np.float64).T,  # field by field: the decoder's order
        _c_fields(kb.kind),
    )


def _encode_python(encoded: KeyBytes, kb: KindBatch) -> list[bytes]:
    """One line per reading that has at least one field, in the batch's order.

    Readings are grouped by which fields they report (usually one group); each group's numbers
    are turned to text a column at a time by orjson, and its lines are formatted by one
    `bytes %` per line inside `map`, so no Python code runs per reading or per value.
    """
    n = len(kb)
    if n == 0:
        return []
    ts_texts = json_texts(kb.ts_ms)
    out = np.empty(n, dtype=object)
    keep = np.zeros(n, np.bool_)
    for rows, columns in presence_groups(kb.values):
        whole = len(rows) == n  # the usual batch: one group, every row
        texts = [
            field_texts(kb.kind.fields[c].type, kb.values[:, c] if whole else kb.values[rows, c])
            for c in columns.tolist()
        ]
        group_keys = encoded[kb.device if whole else kb.device[rows]].tolist()
        group_ts = ts_texts if whole else [ts_texts[r] for r in rows.tolist()]
        fmt = _line_format(kb.kind, columns)
        lines = list(map(fmt.__mod__, zip(group_keys, *texts, group_ts, strict=True)))
        if whole:
            return lines
        out[rows] = lines
        keep[rows] = True
    kept: list[bytes] = out[keep].tolist()
    return kept
