"""InfluxDB line protocol built from the batch arrays in bulk, with numpy string ufuncs.

    <kind>,site=..,building=..,unit=..,device=.. <field>=<value>,... <ts_ms>

Floats are written as floats, integer and enumeration fields with the `i` suffix, booleans as
true/false, so each field keeps one type per series.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

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


def _field_text(spec_type: FieldType, column: npt.NDArray[np.float64]) -> StrArray:
    if spec_type is FieldType.BOOL:
        return np.where(column > 0.5, "true", "false")
    safe = np.where(np.isnan(column), 0.0, column)
    if spec_type is FieldType.FLOAT:
        return safe.astype(np.str_)  # numpy 2 writes the shortest repr that round-trips
    return np.char.add(safe.astype(np.int64).astype(np.str_), "i")


def encode(keys: StrArray, kb: KindBatch) -> list[str]:
    """One line per reading that has at least one field."""
    n = len(kb)
    if n == 0:
        return []
    fields = np.full(n, "", dtype=object)
    present = ~np.isnan(kb.values)
    for col, spec in enumerate(kb.kind.fields):
        mask = present[:, col]
        if not mask.any():
            continue
        text = np.char.add(f"{escape_tag(spec.name)}=", _field_text(spec.type, kb.values[:, col]))
        separator = np.where(fields != "", ",", "")
        fields = np.where(mask, fields + separator + text.astype(object), fields)
    lines = (
        keys[kb.device].astype(object)
        + " "
        + fields
        + " "
        + kb.ts_ms.astype(np.str_).astype(object)
    )
    keep = present.any(axis=1)
    return list(lines[keep])
