"""Hand-written reading sequences: what a device reports, written from the physics of the
situation rather than produced by simulators/, to test the rules against."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from alerts.engine import RuleEngine
from alerts.faults import FaultCleared, FaultOpened
from alerts.rule_file import RuleSet
from alerts.rules import default_rule_set
from facility.batch import Batch, KindBatch
from facility.catalog import KINDS
from facility.site import Site
from tests.rule_reference import Cleared, Opened, ReferenceEngine

T0 = 1_790_000_000_000
"""2026-09-21 (a Monday) 14:13:20 UTC = 22:13:20 in Shanghai."""


def ms(t_s: float, start_ms: int = T0) -> int:
    return start_ms + round(t_s * 1000)


@dataclass(frozen=True, slots=True)
class Reading:
    device_id: str
    t_s: float
    """Seconds after the sequence's start."""
    values: Mapping[str, float]


def batch(
    site: Site, readings: Iterable[Reading], *, start_ms: int = T0, seq_from: int = 0
) -> Batch:
    """The readings as one batch (any kinds; fields a reading does not name are NaN)."""
    by_kind: dict[str, list[Reading]] = {}
    for r in readings:
        by_kind.setdefault(site.by_id[r.device_id].kind, []).append(r)
    kinds: dict[str, KindBatch] = {}
    for kind, rows in by_kind.items():
        spec = KINDS[kind]
        values = np.full((len(rows), len(spec.fields)), math.nan)
        for i, r in enumerate(rows):
            for name, value in r.values.items():
                values[i, spec.col(name)] = float(value)
        kinds[kind] = KindBatch(
            spec,
            np.array([site.by_id[r.device_id].kind_index for r in rows], np.int32),
            np.array([ms(r.t_s, start_ms) for r in rows], np.int64),
            np.arange(seq_from, seq_from + len(rows), dtype=np.int64),
            values,
        )
    return Batch(site.id, kinds)


def chunks(readings: list[Reading], every_s: float) -> list[list[Reading]]:
    """The readings cut into consecutive batches of `every_s` seconds of reading time."""
    out: dict[int, list[Reading]] = {}
    for r in readings:
        out.setdefault(int(r.t_s // every_s), []).append(r)
    return [out[k] for k in sorted(out)]


def run_pack(
    site: Site, readings: list[Reading], every_s: float = 30, rule_set: RuleSet | None = None
) -> tuple[list[FaultOpened], list[FaultCleared]]:
    """A rule set (default: the default pack) over the readings in batches of `every_s`
    seconds; the per-reading reference (tests/rule_reference.py) must raise the same."""
    pack = rule_set or default_rule_set()
    engine = RuleEngine.from_rule_set(site, pack)
    reference = ReferenceEngine(site, pack.rules, pack.params)
    opened: list[FaultOpened] = []
    cleared: list[FaultCleared] = []
    expected_opened: list[Opened] = []
    expected_cleared: list[Cleared] = []
    for part in chunks(readings, every_s):
        b = batch(site, part)
        result = engine.evaluate(b)
        opened += result.opened
        cleared += result.cleared
        o, c = reference.evaluate(b)
        expected_opened += o
        expected_cleared += c
    assert sorted((f.rule_id, f.device_id, f.started_ms, f.detected_ms) for f in opened) == sorted(
        expected_opened
    )
    assert sorted((c.rule_id, c.device_id, c.cleared_ms) for c in cleared) == sorted(
        expected_cleared
    )
    flaps = [(f.rule_id, f.device_id, f.started_ms, f.detected_ms) for f in opened if f.flap]
    assert sorted(flaps) == sorted(reference.flaps)
    return opened, cleared
