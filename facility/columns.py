"""Readings' values as text, a column at a time: shared by line protocol and device state.

Numbers become text in C (orjson's shortest round-trip floats), and rows are grouped by which
fields they report, so one `bytes %` template formats each row: no Python code per value.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import orjson

from facility.catalog import FieldType, KindSpec

IntpArray = npt.NDArray[np.intp]

_BOOL_TEXT = np.array([b"false", b"true"], dtype=object)
_NUMPY = orjson.OPT_SERIALIZE_NUMPY


def json_texts(column: npt.NDArray[np.float64] | npt.NDArray[np.int64]) -> list[bytes]:
    """Each number's JSON text."""
    return orjson.dumps(np.ascontiguousarray(column), option=_NUMPY)[1:-1].split(b",")


def field_texts(spec_type: FieldType, column: npt.NDArray[np.float64]) -> list[bytes]:
    """A field's values as JSON / line-protocol literals: booleans true/false, integers whole."""
    if spec_type is FieldType.BOOL:
        return list(_BOOL_TEXT[(column > 0.5).astype(np.intp)])
    if spec_type is FieldType.FLOAT:
        return json_texts(column)
    return json_texts(column.astype(np.int64))


def presence_groups(values: npt.NDArray[np.float64]) -> Iterator[tuple[IntpArray, IntpArray]]:
    """(rows, present columns) for each set of reported fields (NaN = not reported); rows
    reporting nothing are left out. Usually there is one group per batch and kind: when no
    value is missing, all rows and columns at once, without grouping."""
    present = ~np.isnan(values)
    if present.all():
        if len(values):
            yield np.arange(len(values)), np.arange(values.shape[1])
        return
    weights = np.left_shift(1, np.arange(present.shape[1], dtype=np.int64))
    patterns = present.astype(np.int64) @ weights
    for pattern in np.unique(patterns[present.any(axis=1)]).tolist():
        rows = np.flatnonzero(patterns == pattern)
        yield rows, np.flatnonzero(present[rows[0]])


def json_objects(kind: KindSpec, values: npt.NDArray[np.float64]) -> list[bytes]:
    """Each row's reported fields as a JSON object (`{}` when it reports none)."""
    out = np.full(len(values), b"{}", dtype=object)
    for rows, columns in presence_groups(values):
        names = [kind.fields[c].name for c in columns.tolist()]
        template = b"{" + b",".join(orjson.dumps(n) + b":%s" for n in names) + b"}"
        texts = [field_texts(kind.fields[c].type, values[rows, c]) for c in columns.tolist()]
        out[rows] = list(map(template.__mod__, zip(*texts, strict=True)))
    result: list[bytes] = out.tolist()
    return result
