"""InfluxDB line protocol built from the batch arrays in bulk.

    <kind>,site=..,building=..,unit=..,device=.. <field>=<value>,... <ts_ms>

Floats are written as floats, integer and enumeration fields with the `i` suffix, booleans as
true/false, so each field keeps one type per series.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from facility.batch import KindBatch
from facility.catalog import FieldType, KindSpec
from facility.columns import field_texts, json_texts, presence_groups
from facility.site import Site

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


def _line_format(kind: KindSpec, columns: npt.NDArray[np.intp]) -> bytes:
    """`%s <field>=%s,<int field>=%si,... %s` for one set of present fields."""
    fields = b",".join(
        escape_tag(kind.fields[c].name).encode()
        + (b"=%si" if kind.fields[c].type in (FieldType.INT, FieldType.ENUM) else b"=%s")
        for c in columns.tolist()
    )
    return b"%s " + fields + b" %s"


def encode(keys: StrArray | KeyBytes, kb: KindBatch) -> list[bytes]:
    """One line per reading that has at least one field, in the batch's order.

    Readings are grouped by which fields they report (usually one group); each group's numbers
    are turned to text a column at a time by orjson, and its lines are formatted by one
    `bytes %` per line inside `map`, so no Python code runs per reading or per value.
    """
    n = len(kb)
    if n == 0:
        return []
    encoded = keys if keys.dtype == np.object_ else key_bytes(keys.astype(np.str_, copy=False))
    ts_texts = json_texts(kb.ts_ms)
    if not np.isnan(kb.values).any():  # the usual batch: every reading reports every field
        fields = kb.kind.fields
        texts = [field_texts(fields[c].type, kb.values[:, c]) for c in range(len(fields))]
        fmt = _line_format(kb.kind, np.arange(len(fields)))
        return list(
            map(fmt.__mod__, zip(encoded[kb.device].tolist(), *texts, ts_texts, strict=True))
        )
    out = np.empty(n, dtype=object)
    keep = np.zeros(n, np.bool_)
    for rows, columns in presence_groups(kb.values):
        texts = [field_texts(kb.kind.fields[c].type, kb.values[rows, c]) for c in columns.tolist()]
        group_keys = encoded[kb.device[rows]].tolist()
        group_ts = [ts_texts[r] for r in rows.tolist()] if len(rows) < n else ts_texts
        fmt = _line_format(kb.kind, columns)
        out[rows] = list(map(fmt.__mod__, zip(group_keys, *texts, group_ts, strict=True)))
        keep[rows] = True
    lines: list[bytes] = out[keep].tolist()
    return lines
