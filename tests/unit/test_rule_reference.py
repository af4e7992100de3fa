"""The engine against the scalar reference (tests/rule_reference.py): the default pack over
the demo site's simulated readings, normal and faulted devices, cut into batches that end in
the middle of windows and `for` timers, with readings out of order within a batch, late
readings and redeliveries; both must raise the same faults at the same times."""

from __future__ import annotations

import numpy as np

from alerts.engine import RuleEngine
from alerts.rules import default_rule_set
from facility.batch import Batch, KindBatch
from facility.site import Site
from gateway.decoder import Decoder
from simulators.injection import parse_injection
from simulators.publisher import MemoryPublisher
from simulators.runner import FleetSimulator, SimulationSettings
from tests.rule_reference import Cleared, Opened, ReferenceEngine

START_MS = 1_789_920_000_000  # Sunday 2026-09-20 23:20 in Asia/Shanghai
FAULTS = (
    "elevator-entrapment:10%@300+300",
    "door-obstruction:10%@60",
    "slow-doors:10%@1200/rate_per_day=1e9/max_factor=4",
    "levelling-drift:10%@60/mm_per_day=1e9/max_mm=30",
    "levelling-drift:10%@600/mm_per_day=1e9/max_mm=15",
    "motor-overheating:10%@60+1800/extra_c=200",
    "bearing-wear:10%@60/rate_per_day=1e9",
    "pump-dry-run:*@600+900",
    "pump-cavitation:*@2000",
    "pump-bearing-wear:*@60/rate_per_day=1e9",
    "low-tank:*@60",
    "pump-leak:*@300+600",
    "gate-held-open:10%@60+2400",
    "card-reader-failure:10%@60",
    "lighting-circuit-dark:10%@60+1800",
    "lamp-failures:10%@60",
    "day-burning:10%@60",
    "emergency-battery-failure:10%@60",
    "sensor-flat-line:3%@60",
    "sensor-wire-cut:3%@1200+600",
)


def readings(site: Site, seconds: float, rate_hz: float) -> Batch:
    """The site's readings with the faults above, in arrival order (start: Monday 10:20)."""
    start = START_MS + 11 * 3_600_000
    gate = site.by_kind["gate"][0].id
    texts = [*FAULTS, *(f"gate-forced-open:{gate}@{t}+30" for t in (300, 1500, 2700))]
    settings = SimulationSettings(
        rate_hz=rate_hz, speed=0, duration_s=seconds, start_ms=start, seed=3
    )
    out = MemoryPublisher()
    injections = [parse_injection(text, site, seed=3) for text in texts]
    FleetSimulator(site, settings, injections).run(out)
    result = Decoder(site).decode(out.messages, now_ms=start + round(seconds * 1000) + 1)
    assert result.rejections == []
    return result.batch


def delivered(batch: Batch, seed: int) -> list[Batch]:
    """Consecutive batches of 200..3000 readings; within each, 3 % of the readings swapped
    with another, some readings delivered twice, and a few held back into the next batch
    (too late there: older than the device's newest)."""
    rng = np.random.default_rng(seed)
    out: list[Batch] = []
    held: dict[str, KindBatch] = {}
    cuts: dict[str, list[int]] = {}
    for name, kb in batch.kinds.items():
        points, at = [], 0
        while at < len(kb):
            points.append(at)
            at += int(rng.integers(50, 800))
        cuts[name] = [*points, len(kb)]
    parts = max(len(c) - 1 for c in cuts.values())
    for index in range(parts):
        kinds: dict[str, KindBatch] = {}
        for name, kb in batch.kinds.items():
            edges = cuts[name]
            if index + 1 >= len(edges):
                continue
            part = kb.take(np.arange(edges[index], edges[index + 1]))
            order = np.arange(len(part))
            swaps = rng.integers(0, len(part), size=(max(1, len(part) // 33), 2))
            for a, b in swaps.tolist():
                order[a], order[b] = order[b], order[a]
            again = rng.integers(0, len(part), size=len(part) // 50)
            order = np.concatenate([order, again])
            late = rng.random(len(order)) < 0.005
            chunk = KindBatch.concat(
                part.kind, [held.pop(name, KindBatch.empty(part.kind)), part.take(order[~late])]
            )
            held[name] = part.take(order[late])
            kinds[name] = chunk
        out.append(Batch(batch.site_id, kinds))
    return out


def run_both(
    site: Site, batches: list[Batch]
) -> tuple[tuple[list[Opened], list[Cleared], list[Opened]], ...]:
    pack = default_rule_set()
    engine = RuleEngine.from_rule_set(site, pack)
    reference = ReferenceEngine(site, pack.rules, pack.params)
    got: tuple[list[Opened], list[Cleared], list[Opened]] = ([], [], [])
    expected: tuple[list[Opened], list[Cleared], list[Opened]] = ([], [], [])
    for batch in batches:
        result = engine.evaluate(batch)
        got[0].extend((f.rule_id, f.device_id, f.started_ms, f.detected_ms) for f in result.opened)
        got[1].extend((c.rule_id, c.device_id, c.cleared_ms) for c in result.cleared)
        got[2].extend(
            (f.rule_id, f.device_id, f.started_ms, f.detected_ms) for f in result.opened if f.flap
        )
        opened, cleared = reference.evaluate(batch)
        expected[0].extend(opened)
        expected[1].extend(cleared)
    expected[2].extend(reference.flaps)
    return got, expected


def test_the_engine_raises_what_the_reference_raises(demo_site: Site) -> None:
    batch = readings(demo_site, 3600, 0.2)
    got, expected = run_both(demo_site, delivered(batch, 11))
    assert sorted(got[0]) == sorted(expected[0])
    assert sorted(got[1]) == sorted(expected[1])
    assert sorted(got[2]) == sorted(expected[2])  # the same episodes are flaps
    fired = {rule_id for rule_id, *_ in expected[0]}
    assert len(fired) >= 20, sorted(fired)  # the comparison covers most of the pack
