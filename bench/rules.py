"""bench/rules.py: the default rule pack over 1M readings on one core, beside a per-reading loop.

    .venv/bin/python bench/rules.py [--readings 1000000] [--devices 10000] [--runs 5]

Readings are the simulator's: a generated portfolio of `--devices` devices (the demo site's
mix) at 1 Hz with faults injected on 1 % of them, published 10 readings per message, decoded
by the gateway's decoder, in arrival order; 1 % of the readings are then swapped with one up to
2,000 places later (out of order within their batch). The engine first sees `--warmup-s`
seconds of them (windows and timers filled, as in steady operation); each timed run starts
from that warmed state (the engine's checkpoint). Pinned to one core, best of `--runs`:

- the whole default pack over the next `--readings` readings in consecutive batches of 10k
  and of 100k readings (as the gateway calls it), and as one batch;
- the same readings as one fully shuffled batch;
- the same readings in 10k batches through the scalar reference (tests/rule_reference.py: the
  same rules walked one reading at a time in plain Python, per-device deques and dicts), once;
- the floor of any numpy engine over the same one batch: putting the readings in (device, time)
  order and reading each column the pack reads in that order (no rule evaluated), then that
  plus one numpy pass per rule over its kind's readings (a comparison, nothing else).

The run checks that the engine and the loop raised the same faults, and prints the machine's
load average before and after (other work on the machine slows every row).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from alerts.engine import RuleEngine
from alerts.faults import FaultOpened
from alerts.rule_compiler import Expression
from alerts.rule_file import RuleSet
from alerts.rule_rows import time_order
from alerts.rules import default_rule_set
from facility.batch import Batch
from facility.site import Site
from gateway.decoder import Decoder
from simulators.injection import parse_injection
from simulators.portfolio import generate_site
from simulators.publisher import MemoryPublisher
from simulators.runner import FleetSimulator, SimulationSettings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the scalar reference lives with the tests

from tests.rule_reference import ReferenceEngine  # noqa: E402

START_MS = 1_789_950_000_000  # a weekday morning in Asia/Shanghai: lifts and pumps busy
FAULTS = (
    "pump-dry-run:1%@30",
    "elevator-entrapment:1%@20+60",
    "door-obstruction:1%@0",
    "motor-overheating:1%@0/extra_c=200",
    "gate-forced-open:1%@40+20",
    "lighting-circuit-dark:1%@0",
    "lamp-failures:1%@0",
    "sensor-wire-cut:1%@50",
)


def simulated(devices: int, seconds: int) -> tuple[Batch, Site]:
    """The portfolio's readings for `seconds`, decoded, in arrival order."""
    site = generate_site(devices)
    settings = SimulationSettings(
        rate_hz=1, speed=0, duration_s=seconds, start_ms=START_MS, seed=1, readings_per_message=10
    )
    out = MemoryPublisher()
    injections = [parse_injection(text, site, seed=1) for text in FAULTS]
    FleetSimulator(site, settings, injections).run(out)
    result = Decoder(site).decode(out.messages, now_ms=START_MS + seconds * 1000 + 1)
    return result.batch, site


def arrival(kinds: Batch, seed: int = 0) -> Batch:
    """Interleave the kinds back into one stream order and swap 1 % of the readings with one
    up to 2,000 places later."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, kb in kinds.kinds.items():
        order = np.arange(len(kb))
        picks = rng.choice(len(kb), size=len(kb) // 100, replace=False)
        for a in picks.tolist():
            b = min(len(kb) - 1, a + int(rng.integers(1, 2000)))
            order[a], order[b] = order[b], order[a]
        out[name] = kb.take(order)
    return Batch(kinds.site_id, out)


def split(batch: Batch, start: int, stop: int, size: int) -> list[Batch]:
    """Readings [start, stop) of the stream (each kind in proportion), in batches of `size`."""
    total = len(batch)
    parts: list[Batch] = []
    for begin in range(start, stop, size):
        end = min(stop, begin + size)
        kinds = {}
        for name, kb in batch.kinds.items():
            lo, hi = len(kb) * begin // total, len(kb) * end // total
            if hi > lo:
                kinds[name] = kb.take(np.arange(lo, hi))
        parts.append(Batch(batch.site_id, kinds))
    return parts


def shuffled(batch: Batch) -> Batch:
    rng = np.random.default_rng(7)
    return Batch(
        batch.site_id, {k: kb.take(rng.permutation(len(kb))) for k, kb in batch.kinds.items()}
    )


def numpy_floor(batch: Batch, pack: RuleSet, runs: int) -> tuple[float, float, int]:
    """Best seconds of (order + read the pack's columns) and (that + one pass per rule), and
    how many columns that is: what any numpy engine pays before windows, timers or faults."""
    fields: dict[str, set[str]] = {}
    passes: dict[str, int] = {}
    for rule in pack.rules:
        for kind in batch.kinds if rule.kind == "any" else [rule.kind]:
            passes[kind] = passes.get(kind, 0) + 1
            for condition in (rule.condition, rule.clear):
                if isinstance(condition, Expression):
                    fields.setdefault(kind, set()).update(condition.fields)
    best_read = best_pass = math.inf
    for _ in range(runs):
        started = time.perf_counter()
        columns: dict[str, list[np.ndarray]] = {}
        for kb in batch:
            order = time_order(kb)
            columns[kb.kind.name] = [
                kb.column(f) if order is None else np.ascontiguousarray(kb.column(f)[order])
                for f in sorted(fields.get(kb.kind.name, ()))
            ]
        read = time.perf_counter()
        for kind, cols in columns.items():
            for i in range(passes.get(kind, 0) if cols else 0):
                np.greater(cols[i % len(cols)], 0.0)
        done = time.perf_counter()
        best_read = min(best_read, read - started)
        best_pass = min(best_pass, done - started)
    return best_read, best_pass, sum(len(f) for f in fields.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--warmup-s", type=int, default=60)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    load_before = os.getloadavg()
    seconds = args.warmup_s + math.ceil(args.readings / args.devices)
    decoded, site = simulated(args.devices, seconds)
    stream = arrival(decoded)
    warm = len(stream) * args.warmup_s // seconds
    stop = min(len(stream), warm + args.readings)
    pack = default_rule_set()
    engine = RuleEngine.from_rule_set(site, pack)
    for part in split(stream, 0, warm, 100_000):
        engine.evaluate(part)
    checkpoint = Path(tempfile.mkdtemp()) / "rules-state.npz"
    engine.save(checkpoint)  # each run starts from this warmed state
    n = stop - warm
    rows: list[tuple[str, float]] = []

    def timed(label: str, batches: list[Batch]) -> list[FaultOpened]:
        """Best of the runs, each from the warmed state."""
        best, opened = math.inf, []
        for _ in range(args.runs):
            warmed = RuleEngine.from_rule_set(site, pack)
            warmed.load(checkpoint)
            started = time.perf_counter()
            opened = [f for b in batches for f in warmed.evaluate(b).opened]
            best = min(best, time.perf_counter() - started)
        rows.append((label, best))
        return opened

    ten_k = split(stream, warm, stop, 10_000)
    opened = timed(f"arrival order, {len(ten_k)} batches of 10k", ten_k)
    timed("arrival order, 10 batches of 100k", split(stream, warm, stop, 100_000))
    whole = split(stream, warm, stop, n)
    timed("arrival order, one batch", whole)
    timed("fully shuffled, one batch", [shuffled(whole[0])])
    floor_read, floor_pass, columns = numpy_floor(whole[0], pack, args.runs)
    reference = ReferenceEngine(site, pack.rules, pack.params)
    for part in split(stream, 0, warm, 100_000):
        reference.evaluate(part)
    started = time.perf_counter()
    loop_opened = [f for b in ten_k for f in reference.evaluate(b)[0]]
    loop_s = time.perf_counter() - started
    load_after = os.getloadavg()
    same = sorted(loop_opened) == sorted(
        (f.rule_id, f.device_id, f.started_ms, f.detected_ms) for f in opened
    )
    print(
        f"{n} readings of {args.devices} devices after a {args.warmup_s} s warm-up, "
        f"default pack ({len(pack.rules)} rules), one core, best of {args.runs}"
    )
    for label, best in rows:
        print(f"  {label:40s} {best * 1000:9.1f} ms   loop / this {loop_s / best:6.0f}x")
    print(f"  {'per-reading Python loop, 10k batches':40s} {loop_s * 1000:9.1f} ms")
    print(
        f"  numpy floor, one batch: order + read {columns} columns {floor_read * 1000:.1f} ms; "
        f"+ one pass per rule {floor_pass * 1000:.1f} ms"
    )
    print(f"  faults opened: {len(loop_opened)}; engine and loop agree: {same}")
    print(f"  load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    checkpoint.unlink()
    checkpoint.parent.rmdir()


if __name__ == "__main__":
    main()
