"""Values as text in bulk: the JSON objects must say exactly what the per-reading view says."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from facility.catalog import KINDS, reading_dict
from facility.columns import json_objects, presence_groups


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_json_objects_match_the_per_reading_dict(kind: str) -> None:
    spec = KINDS[kind]
    rng = np.random.default_rng(7)
    values = rng.uniform(-50, 500, size=(400, len(spec.fields))).round(3)
    values[rng.random(values.shape) < 0.2] = np.nan  # fields not reported
    values[5] = np.nan  # a reading that reports nothing
    objects = json_objects(spec, values)
    assert len(objects) == len(values)
    for row, text in zip(values, objects, strict=True):
        assert orjson.loads(text) == reading_dict(spec, row)
    assert objects[5] == b"{}"


def test_presence_groups_cover_every_reporting_row_once() -> None:
    values = np.array([[1.0, np.nan], [np.nan, np.nan], [2.0, np.nan], [3.0, 4.0]])
    groups = {tuple(rows.tolist()): tuple(cols.tolist()) for rows, cols in presence_groups(values)}
    assert groups == {(0, 2): (0,), (3,): (0, 1)}
