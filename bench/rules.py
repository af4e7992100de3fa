"""bench/rules.py: the rules engine over 1M readings on one core, beside a per-reading loop.

    .venv/bin/python bench/rules.py [--readings 1000000] [--devices 10000]

Readings come straight from the simulator models (a generated portfolio of `--devices`
devices with the demo site's mix, stepped one simulated second at a time), as one `Batch` per
call, time order shuffled within the batch. Measured, best of 3 with fresh engine state:

- the whole default rule pack (every rule, windows and all) over the readings;
- the walking skeleton's 4 rules (dry run, entrapment, forced open, dark circuit: `for`
  timers per device) over the same readings, vectorised;
- those same 4 rules as a plain per-reading Python loop (dicts of per-device state, one
  reading at a time in time order), the way a non-vectorised engine does it.

The ratio compares the two implementations of the same 4 rules. A pure-Python loop of the
whole pack (windows, medians, repeat) is not written out; the whole pack's time is shown so
its cost against the targets is plain.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable
from zoneinfo import ZoneInfo

import numpy as np

from alerts.engine import RuleEngine
from alerts.rule_file import parse_rule_file
from alerts.rules import DEFAULT_RULE_FILE, default_rule_set
from facility.batch import Batch, KindBatch
from facility.catalog import KINDS
from facility.site import Site
from simulators.clock import make_tick
from simulators.models import MODELS
from simulators.portfolio import generate_site

START_MS = 1_789_950_000_000  # a weekday morning in Asia/Shanghai: lifts and pumps busy
SKELETON = ("pump.dry_run", "elevator.entrapment", "gate.forced_open", "lighting.circuit_dark")


def readings(site: Site, total: int) -> Batch:
    zone = ZoneInfo(site.timezone)
    ticks = max(1, math.ceil(total / len(site.devices)))
    parts: dict[str, list[KindBatch]] = {k: [] for k in KINDS}
    models = {k: MODELS[k](d, 1, START_MS) for k, d in site.by_kind.items() if d}
    for i in range(ticks):
        tick = make_tick(i, START_MS + i * 1000, 1.0, zone)
        for kind, model in models.items():
            values = model.step(tick)
            n = len(values)
            parts[kind].append(
                KindBatch(
                    KINDS[kind],
                    np.arange(n, dtype=np.int32),
                    np.full(n, tick.ts_ms, np.int64),
                    np.full(n, i + 1, np.int64),
                    np.round(values, 3),
                )
            )
    batch = Batch(site.id, {k: KindBatch.concat(KINDS[k], p) for k, p in parts.items() if p})
    rng = np.random.default_rng(0)
    return Batch(site.id, {k: kb.take(rng.permutation(len(kb))) for k, kb in batch.kinds.items()})


def best_of(runs: int, work: Callable[[], object]) -> tuple[float, object]:
    best, result = math.inf, None
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - started)
    return best, result


def python_loop(site: Site, batch: Batch, params: dict[str, float]) -> int:
    """The 4 skeleton rules, one reading at a time, per-device state in dicts."""
    rows: list[tuple[int, str, int, list[float]]] = []
    for kind, kb in batch.kinds.items():
        for device, ts, values in zip(
            kb.device.tolist(), kb.ts_ms.tolist(), kb.values.tolist(), strict=True
        ):
            rows.append((ts, kind, device, values))
    rows.sort(key=lambda r: (r[1], r[2], r[0]))
    col = {k: KINDS[k].index for k in KINDS}
    since: dict[tuple[str, str, int], int] = {}
    active: dict[tuple[str, str, int], bool] = {}
    opened = 0
    suction_floor = params["dry_run_suction_bar"]
    floors_mm = params["between_floors_mm"]
    dark_a = params["circuit_dark_a"]
    for ts, kind, device, v in rows:
        c = col[kind]
        if kind == "pump":
            rule, for_ms = "pump.dry_run", 30_000
            s = v[c["suction_bar"]]
            cond = v[c["running"]] > 0.5 and s < suction_floor and s > -1.0
        elif kind == "elevator":
            rule, for_ms = "elevator.entrapment", 5_000
            cond = (
                v[c["alarm_button"]] > 0.5
                and not v[c["running"]] > 0.5
                and abs(v[c["level_error_mm"]]) > floors_mm
                and v[c["door_state"]] == 0
            )
        elif kind == "gate":
            rule, for_ms = "gate.forced_open", 0
            cond = v[c["forced_open"]] > 0.5
        else:
            rule, for_ms = "lighting.circuit_dark", 60_000
            cond = v[c["commanded_on"]] > 0.5 and v[c["current_a"]] < dark_a
        key = (kind, rule, device)
        if cond:
            start = since.setdefault(key, ts)
            if not active.get(key) and ts - start >= for_ms:
                active[key] = True
                opened += 1
        else:
            since.pop(key, None)
            active[key] = False
    return opened


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    site = generate_site(args.devices)
    batch = readings(site, args.readings)
    pack = default_rule_set()
    skeleton = parse_rule_file(DEFAULT_RULE_FILE.read_text(encoding="utf-8"))
    skeleton_rules = [r for r in skeleton.rules if r.id in SKELETON]
    n = len(batch)

    def whole() -> object:
        return RuleEngine.from_rule_set(site, pack).evaluate(batch)

    def four() -> object:
        return RuleEngine(site, skeleton_rules, params=skeleton.params).evaluate(batch)

    whole_s, _ = best_of(args.runs, whole)
    four_s, _ = best_of(args.runs, four)
    loop_s, _ = best_of(1, lambda: python_loop(site, batch, dict(skeleton.params)))
    print(f"{n} readings of {len(site.devices)} devices, one core, best of {args.runs}")
    print(f"  default pack ({len(pack.rules)} rules), numpy:  {whole_s * 1000:9.1f} ms")
    print(f"  4 skeleton rules, numpy:            {four_s * 1000:9.1f} ms")
    print(f"  4 skeleton rules, per-reading loop: {loop_s * 1000:9.1f} ms")
    print(f"  ratio (loop / numpy, same 4 rules): {loop_s / four_s:9.0f}x")
    print(f"  ratio (loop of 4 / numpy whole pack): {loop_s / whole_s:7.1f}x")


if __name__ == "__main__":
    main()
